"""Attention for TRELLIS and TRELLIS.2: flash_attn, else xformers with its CUDA kernels, else a stand-in on torch.

Both model codebases pick their attention library from ATTN_BACKEND (dense) and SPARSE_ATTN_BACKEND (sparse)
when their modules are imported, and their sparse transformers have no path without flash_attn or xformers.
PyPI has neither for the Space's torch 2.11 on CUDA 13.0 (xformers 0.0.35 imports without its kernels), so
where neither runs, flash_attn's API is provided here on torch's scaled_dot_product_attention, which brings
its own fused kernels: sequences go through it in batches (one length, or padded lengths within a factor of two).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
import types

from .base import library_present

STAND_IN_VERSION = "0.0.0"  # below 2.1, so that transformers' probes do not take the stand-in for FlashAttention-2
STAND_IN = "torch sdpa"
_choice: dict | None = None


def choose_backend() -> dict:
    """Sets the backends before a TRELLIS module is imported; returns {"backend", "why"}. Once per process.

    An ATTN_BACKEND set by whoever runs the server (a Space variable) is kept as it is. Nothing is registered
    here: `prepare` puts the stand-in in place when a pipeline is about to load.
    """
    global _choice
    if _choice is not None:
        return _choice
    if os.environ.get("ATTN_BACKEND"):
        _choice = {"backend": os.environ["ATTN_BACKEND"], "why": "ATTN_BACKEND is set"}
    elif _real_flash_attn():
        os.environ["ATTN_BACKEND"] = "flash_attn"
        _choice = {"backend": "flash_attn", "why": "flash_attn imports"}
    elif (xformers := _xformers_problem()) is None:
        os.environ["ATTN_BACKEND"] = "xformers"
        _choice = {"backend": "xformers", "why": "xformers has its CUDA kernels"}
    else:
        os.environ["ATTN_BACKEND"] = "sdpa"
        os.environ["SPARSE_ATTN_BACKEND"] = "flash_attn"
        _choice = {"backend": STAND_IN, "why": f"flash_attn is not installed and {xformers}: flash_attn's API "
                                                "on torch's scaled_dot_product_attention serves instead"}
    return _choice


def prepare() -> dict:
    """choose_backend, then the stand-in registered as flash_attn where it is the choice: before a pipeline loads."""
    choice = choose_backend()
    if choice["backend"] == STAND_IN and sys.modules.get("flash_attn") is None:
        sys.modules["flash_attn"] = stand_in_module()
    return choice


def _real_flash_attn() -> bool:
    module = sys.modules.get("flash_attn")
    if module is not None:
        return getattr(module, "__version__", "") != STAND_IN_VERSION
    if not library_present("flash_attn"):
        return False
    try:
        return hasattr(importlib.import_module("flash_attn"), "flash_attn_varlen_func")
    except Exception:  # noqa: BLE001 - a wheel built for another torch fails here: the stand-in serves instead
        return False


def _xformers_problem() -> str | None:
    """Why xformers cannot run attention here, or None. A wheel built for another torch imports with a warning
    and without its compiled kernels, which xformers records as `_has_cpp_library` (PyPI's 0.0.35 is built for
    torch 2.10 on CUDA 12.8; on torch 2.11 memory_efficient_attention then has no operator)."""
    if not library_present("xformers"):
        return "xformers is not installed"
    try:
        module = importlib.import_module("xformers")
    except Exception as exc:  # noqa: BLE001 - the reason given
        return f"xformers does not import ({type(exc).__name__}: {exc})"
    if getattr(module, "_has_cpp_library", True):
        return None
    return f"xformers {getattr(module, '__version__', '?')} has no CUDA kernels for this torch"


MIN_BATCH = 4  # sequences of one exact length go through SDPA unpadded from this many on


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, dropout_p=0.0,
                     softmax_scale=None, causal=False, **_):
    """flash_attn_varlen_func: q (total_q, heads, dim), k and v (total_k, heads, dim), sequences laid end to end
    as the cumulative lengths say; each query sequence attends to its own key sequence.

    Sequences of one length go through one SDPA call (as a view where they lie back to back, as windows do);
    the rest are padded, in buckets of lengths within a factor of two, with the padding masked out.
    """
    starts_q, starts_k = cu_seqlens_q[:-1].tolist(), cu_seqlens_k[:-1].tolist()
    lengths_q = (cu_seqlens_q[1:] - cu_seqlens_q[:-1]).tolist()
    lengths_k = (cu_seqlens_k[1:] - cu_seqlens_k[:-1]).tolist()
    if causal and lengths_q != lengths_k:
        raise NotImplementedError("the attention stand-in has causal masks only for equal lengths")
    exact: dict[tuple[int, int], list[int]] = {}
    for index, shape in enumerate(zip(lengths_q, lengths_k)):
        if shape[0]:
            exact.setdefault(shape, []).append(index)
    out = q.new_zeros(q.shape)  # a query with no keys gets zeros
    padded: dict[tuple[int, int], list[int]] = {}
    options = (dropout_p, softmax_scale, causal)
    for (length_q, length_k), members in exact.items():
        if length_k and len(members) >= MIN_BATCH:
            _attend_equal(out, q, k, v, members, starts_q, starts_k, length_q, length_k, options)
        elif length_k:
            padded.setdefault((_bucket(length_q), _bucket(length_k)), []).extend(members)
    for members in padded.values():
        if len(members) == 1:  # alone: no padding, no mask (a mask keeps SDPA off its fastest kernel)
            index = members[0]
            _attend_equal(out, q, k, v, members, starts_q, starts_k, lengths_q[index], lengths_k[index], options)
        else:
            _attend_padded(out, q, k, v, members, (starts_q, lengths_q), (starts_k, lengths_k), options)
    return out


def _bucket(length: int) -> int:
    return 1 << (length - 1).bit_length()


def _back_to_back(starts: list[int], length: int) -> slice | None:
    """The rows of sequences of one length as one slice, where they lie back to back."""
    if all(later - earlier == length for earlier, later in zip(starts, starts[1:])):
        return slice(starts[0], starts[0] + length * len(starts))
    return None


def _attend_equal(out, q, k, v, members, starts_q, starts_k, length_q, length_k, options) -> None:
    """Sequences of one length: gathered (or viewed) as (batch, length, heads, dim), one SDPA call."""
    import torch

    def rows(starts, length):
        chosen = [starts[i] for i in members]
        return _back_to_back(chosen, length) or (torch.tensor(chosen, device=q.device)[:, None]
                                                  + torch.arange(length, device=q.device)[None, :])

    rows_q, rows_k = rows(starts_q, length_q), rows(starts_k, length_k)

    def take(features, where, length):
        if isinstance(where, slice):
            return features[where].reshape(-1, length, *features.shape[1:])  # a view unless kv came packed
        return features[where]

    result = dense_attention(take(q, rows_q, length_q), take(k, rows_k, length_k), take(v, rows_k, length_k), *options)
    out[rows_q] = result.reshape(-1, *q.shape[1:]) if isinstance(rows_q, slice) else result


def _attend_padded(out, q, k, v, members, queries, keys, options) -> None:
    """Sequences of lengths within a factor of two: padded to the longest, the padded keys masked out (and, for
    causal attention, the later keys), the padded queries' results dropped."""
    import torch
    import torch.nn.functional as F

    dropout_p, softmax_scale, causal = options
    device = q.device

    def rows(starts_lengths):
        starts, lengths = starts_lengths
        start = torch.tensor([starts[i] for i in members], device=device)
        length = torch.tensor([lengths[i] for i in members], device=device)
        position = torch.arange(int(length.max()), device=device)
        valid = position[None, :] < length[:, None]
        return start[:, None] + torch.minimum(position[None, :], length[:, None] - 1), valid, position

    rows_q, valid_q, position_q = rows(queries)
    rows_k, valid_k, position_k = rows(keys)
    mask = valid_k[:, None, None, :]
    if causal:
        mask = mask & (position_k[None, :] <= position_q[:, None])[None, None]
    result = F.scaled_dot_product_attention(q[rows_q].transpose(1, 2), k[rows_k].transpose(1, 2),
                                            v[rows_k].transpose(1, 2), attn_mask=mask, dropout_p=dropout_p,
                                            scale=softmax_scale).transpose(1, 2)
    out[rows_q[valid_q]] = result[valid_q]


def dense_attention(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, **_):
    """flash_attn_func: q (batch, length_q, heads, dim), k and v (batch, length_k, heads, dim)."""
    import torch.nn.functional as F

    if causal and q.shape[1] != k.shape[1]:
        raise NotImplementedError("the attention stand-in has causal masks only for equal lengths")
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         dropout_p=dropout_p, is_causal=causal, scale=softmax_scale)
    return out.transpose(1, 2)


def stand_in_module() -> types.ModuleType:
    """A module named flash_attn with its dense and varlen functions (plain, kv-packed and qkv-packed)."""
    module = types.ModuleType("flash_attn")
    module.__spec__ = importlib.machinery.ModuleSpec("flash_attn", None)  # found by find_spec, as installed
    module.__version__ = STAND_IN_VERSION
    module.flash_attn_func = dense_attention
    module.flash_attn_kvpacked_func = lambda q, kv, *args, **kw: dense_attention(
        q, kv[:, :, 0], kv[:, :, 1], *args, **kw)
    module.flash_attn_qkvpacked_func = lambda qkv, *args, **kw: dense_attention(
        qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], *args, **kw)
    module.flash_attn_varlen_func = varlen_attention
    module.flash_attn_varlen_kvpacked_func = lambda q, kv, cu_q, cu_k, *args, **kw: varlen_attention(
        q, kv[:, 0], kv[:, 1], cu_q, cu_k, *args, **kw)
    module.flash_attn_varlen_qkvpacked_func = lambda qkv, cu, max_seqlen=None, *args, **kw: varlen_attention(
        qkv[:, 0], qkv[:, 1], qkv[:, 2], cu, cu, max_seqlen, max_seqlen, *args, **kw)
    return module
