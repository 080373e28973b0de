"""Attention for TRELLIS and TRELLIS.2: flash_attn, else xformers with its CUDA kernels, else a stand-in on torch.

Both model codebases pick their attention library from ATTN_BACKEND (dense) and SPARSE_ATTN_BACKEND (sparse)
when their modules are imported, and their sparse transformers have no path without flash_attn or xformers.
PyPI has neither for the Space's torch 2.11 on CUDA 13.0 (xformers 0.0.35 imports without its kernels), so
where neither runs, flash_attn's API is provided here on torch's scaled_dot_product_attention, which brings
its own fused kernels: sequences of equal length go through one call, so windowed attention stays batched.
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


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, dropout_p=0.0,
                     softmax_scale=None, causal=False, **_):
    """flash_attn_varlen_func: q (total_q, heads, dim), k and v (total_k, heads, dim), sequences laid end to end
    as the cumulative lengths say; each query sequence attends to its own key sequence."""
    starts_q, starts_k = cu_seqlens_q[:-1].tolist(), cu_seqlens_k[:-1].tolist()
    lengths_q = (cu_seqlens_q[1:] - cu_seqlens_q[:-1]).tolist()
    lengths_k = (cu_seqlens_k[1:] - cu_seqlens_k[:-1]).tolist()
    groups: dict[tuple[int, int], list[int]] = {}
    for index, shape in enumerate(zip(lengths_q, lengths_k)):
        groups.setdefault(shape, []).append(index)
    out = q.new_empty(q.shape)
    for (length_q, length_k), members in groups.items():
        if length_q == 0:
            continue
        rows_q = _rows([starts_q[i] for i in members], length_q, q.device)
        rows_k = _rows([starts_k[i] for i in members], length_k, q.device)
        result = dense_attention(_take(q, rows_q, length_q), _take(k, rows_k, length_k), _take(v, rows_k, length_k),
                                 dropout_p, softmax_scale, causal)
        if isinstance(rows_q, slice):
            out[rows_q] = result.reshape(-1, *q.shape[1:])
        else:
            out[rows_q] = result
    return out


def _rows(starts: list[int], length: int, device):
    """The rows of sequences of one length: a slice where they lie back to back (windows usually do: a view, no
    copy), else an index tensor (batch, length)."""
    import torch

    if all(later - earlier == length for earlier, later in zip(starts, starts[1:])):
        return slice(starts[0], starts[0] + length * len(starts))
    return torch.tensor(starts, device=device)[:, None] + torch.arange(length, device=device)[None, :]


def _take(features, rows, length: int):
    """(batch, length, heads, dim) of the rows _rows chose."""
    if isinstance(rows, slice):
        return features[rows].reshape(-1, length, *features.shape[1:])  # a view unless kv came packed
    return features[rows]


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
