"""TRELLIS's attention: which library serves, and the flash_attn stand-in on torch against attention by hand."""

import math
import sys

import pytest

from server.generators import attention
from tests.fakes import fake_module

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the test extra installs it on 3.11)")


def by_hand(q, k, v, scale=None):
    """softmax(q k^T * scale) v for one sequence: q (lq, heads, dim), k and v (lk, heads, dim)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    weights = torch.softmax(torch.einsum("qhd,khd->hqk", q.double(), k.double()) * scale, dim=-1)
    return torch.einsum("hqk,khd->qhd", weights, v.double())


def sequences(lengths_q, lengths_k, heads=3, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(sum(lengths_q), heads, dim, generator=generator)
    k = torch.randn(sum(lengths_k), heads, dim, generator=generator)
    v = torch.randn(sum(lengths_k), heads, dim, generator=generator)
    cumulative = [torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)
                  for lengths in (lengths_q, lengths_k)]
    return q, k, v, *cumulative


def expected(q, k, v, cu_q, cu_k, scale=None):
    parts = [by_hand(q[cu_q[i]:cu_q[i + 1]], k[cu_k[i]:cu_k[i + 1]], v[cu_k[i]:cu_k[i + 1]], scale)
             for i in range(len(cu_q) - 1)]
    return torch.cat(parts).float()


# Windows of one size go through one call (back to back: as a view; else gathered); lengths that differ are
# padded in buckets, with masks; a single long sequence goes alone. Every path is in one of these.
LAYOUTS = {"windows": ([16] * 8, None), "scattered windows": ([16] * 6 + [9, 16, 3], None),
           "sparse windows": ([3, 17, 9, 12, 30, 31, 1, 5, 64, 2, 33, 17], None),
           "cross": ([5, 7, 5, 6], [11, 4, 11, 9]), "one": ([200], None)}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_varlen_attention_equals_attention_by_hand_per_sequence(layout):
    lengths_q, lengths_k = LAYOUTS[layout]
    q, k, v, cu_q, cu_k = sequences(lengths_q, lengths_k or lengths_q)
    module = attention.stand_in_module()
    out = module.flash_attn_varlen_func(q, k, v, cu_q, cu_k, max(lengths_q), max(lengths_k or lengths_q))
    assert out.shape == q.shape
    assert torch.allclose(out, expected(q, k, v, cu_q, cu_k), atol=1e-5)
    scaled = module.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 0, 0, 0.0, 0.3)
    assert torch.allclose(scaled, expected(q, k, v, cu_q, cu_k, 0.3), atol=1e-5)
    assert not torch.allclose(scaled, out, atol=1e-3)  # the scale reaches the kernel
    packed = module.flash_attn_varlen_kvpacked_func(q, torch.stack([k, v], dim=1), cu_q, cu_k, 0, 0)
    assert torch.equal(packed, out)
    if lengths_k is None:
        qkv = module.flash_attn_varlen_qkvpacked_func(torch.stack([q, k, v], dim=1), cu_q, max(lengths_q))
        assert torch.equal(qkv, out)


def test_causal_varlen_attention_masks_later_keys_in_every_path():
    lengths = [16] * 5 + [3, 17, 9, 12]
    q, k, v, cu, _ = sequences(lengths, lengths, seed=4)
    out = attention.stand_in_module().flash_attn_varlen_func(q, k, v, cu, cu, 17, 17, causal=True)
    for i in range(len(lengths)):
        rows = slice(int(cu[i]), int(cu[i + 1]))
        n = lengths[i]
        scores = torch.einsum("qhd,khd->hqk", q[rows].double(), k[rows].double()) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
        assert torch.allclose(out[rows], torch.einsum("hqk,khd->qhd", scores.softmax(-1), v[rows].double()).float(),
                              atol=1e-5)


def test_causal_varlen_attention_refuses_key_lengths_unlike_the_queries():
    q, k, v, cu_q, cu_k = sequences([4, 6], [4, 7])
    with pytest.raises(NotImplementedError, match="equal lengths"):
        attention.stand_in_module().flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, causal=True)


def test_a_query_sequence_without_keys_gets_zeros():
    q, k, v, cu_q, cu_k = sequences([4, 6, 5], [7, 0, 3])
    out = attention.stand_in_module().flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7)
    assert torch.equal(out[4:10], torch.zeros_like(out[4:10]))
    assert torch.allclose(out[:4], by_hand(q[:4], k[:7], v[:7]).float(), atol=1e-5)


def test_dense_functions_take_batch_first_layouts():
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 12, 4, 8, generator=generator) for _ in range(3))
    module = attention.stand_in_module()
    out = module.flash_attn_func(q, k, v)
    for b in range(2):
        assert torch.allclose(out[b], by_hand(q[b], k[b], v[b]).float(), atol=1e-5)
    assert torch.equal(module.flash_attn_qkvpacked_func(torch.stack([q, k, v], dim=2)), out)
    assert torch.equal(module.flash_attn_kvpacked_func(q, torch.stack([k, v], dim=2)), out)
    with pytest.raises(NotImplementedError, match="equal lengths"):
        module.flash_attn_func(q, k[:, :5], v[:, :5], causal=True)


@pytest.fixture
def fresh_choice(monkeypatch):
    """Neither library installed (conftest: no choice made yet, no backend in the environment)."""
    monkeypatch.setitem(sys.modules, "flash_attn", None)
    monkeypatch.setitem(sys.modules, "xformers", None)
    return monkeypatch


def test_without_kernels_the_stand_in_serves_and_is_registered_only_to_load(fresh_choice):
    fresh_choice.setitem(sys.modules, "xformers", fake_module("xformers", __version__="0.0.35", _has_cpp_library=False))
    choice = attention.choose_backend()
    assert choice["backend"] == attention.STAND_IN and "xformers" in choice["why"]
    import os

    assert (os.environ["ATTN_BACKEND"], os.environ["SPARSE_ATTN_BACKEND"]) == ("sdpa", "flash_attn")
    assert sys.modules["flash_attn"] is None  # health alone registers nothing
    attention.prepare()
    import flash_attn  # what TRELLIS's sparse attention does at its first call

    assert flash_attn.__version__ == attention.STAND_IN_VERSION and callable(flash_attn.flash_attn_varlen_func)
    assert attention.choose_backend() is choice  # once per process


@pytest.mark.parametrize("installed, backend", [
    ({"flash_attn": {"__version__": "2.8.3", "flash_attn_varlen_func": print}}, "flash_attn"),
    ({"xformers": {"_has_cpp_library": True}}, "xformers"),
    ({"flash_attn": {"__version__": "2.8.3", "flash_attn_varlen_func": print}, "xformers": {"_has_cpp_library": True}},
     "flash_attn"),
])
def test_a_working_library_is_preferred_to_the_stand_in(fresh_choice, installed, backend):
    import os

    for name, attributes in installed.items():
        fresh_choice.setitem(sys.modules, name, fake_module(name, **attributes))
    assert attention.choose_backend()["backend"] == backend == os.environ["ATTN_BACKEND"]
    attention.prepare()
    assert sys.modules["flash_attn"] is None or sys.modules["flash_attn"].__version__ == "2.8.3"


def test_an_attn_backend_set_by_the_operator_is_kept(fresh_choice):
    import os

    fresh_choice.setenv("ATTN_BACKEND", "naive")
    assert attention.choose_backend() == {"backend": "naive", "why": "ATTN_BACKEND is set"}
    assert os.environ["ATTN_BACKEND"] == "naive" and "SPARSE_ATTN_BACKEND" not in os.environ


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here (the GPU machine runs this)")
def test_varlen_attention_on_cuda_in_half_precision_matches_by_hand():
    # As TRELLIS calls it: bf16 features and int32 cumulative lengths on the GPU; torch picks its fused kernel.
    lengths = [64] * 40 + [17, 64, 5]
    q, k, v, cu_q, cu_k = sequences(lengths, lengths, heads=8, dim=64, seed=3)
    reference = expected(q, k, v, cu_q, cu_k)
    module = attention.stand_in_module()
    out = module.flash_attn_varlen_func(*(t.cuda().bfloat16() for t in (q, k, v)), cu_q.cuda(), cu_k.cuda(), 64, 64)
    assert out.dtype == torch.bfloat16 and out.device.type == "cuda"
    assert (out.float().cpu() - reference).abs().max() < 0.03
