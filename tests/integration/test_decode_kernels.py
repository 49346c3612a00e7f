"""The decoder's native kernels (attend.c, gemm.c, elementwise.c) and prompt-lookup drafts, against torch and
plain decoding.

Correctness only: the kernels agree with torch's SDPA, matmul, RMSNorm and SiLU to float rounding (RoPE and
the residual add bit for bit) and give each query row, or each matmul row, the same bits whatever shares
its call. Drafted decoding end to end:
tests/integration/test_backend_fast.py.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess

import pytest
import torch
import torch.nn.functional as F

from cpu_engine import features, native
from cpu_engine.draft import NgramIndex
from cpu_engine.llama_fast import rms_norm

needs_kernel = pytest.mark.skipif(native.kernel() is None, reason="no C compiler: the SDPA fallback is used")


def _case(rows=5, kv=2, rep=3, width=2, d=64, capacity=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    kc = torch.randn(rows + 2, kv, capacity, d, generator=g)
    vc = torch.randn(rows + 2, kv, capacity, d, generator=g)
    q = torch.randn(rows, kv, width * rep, d, generator=g)
    # Row j's token t sits at position start_j + t; each of its rep query heads sees columns [0, position].
    starts = torch.randint(0, capacity - width, (rows,), generator=g)
    limit = (starts[:, None] + torch.arange(width)[None]).repeat_interleave(rep, dim=1) + 1
    return q, kc, vc, limit.contiguous()


def _sdpa(q, kc, vc, limit):
    cols = torch.arange(kc.shape[2])
    mask = cols[None, None, None] < limit[:, None, :, None]
    return F.scaled_dot_product_attention(
        q, kc[: q.shape[0]], vc[: q.shape[0]], attn_mask=mask, scale=q.shape[-1] ** -0.5
    )


@needs_kernel
@pytest.mark.parametrize("d", [64, 48, 128, 40, 36])  # 40 and 36 take the portable loops
def test_kernel_matches_sdpa(d):
    q, kc, vc, limit = _case(d=d)
    out = native.attend(q, kc, vc, limit, d**-0.5)
    torch.testing.assert_close(out, _sdpa(q, kc, vc, limit), rtol=1e-5, atol=1e-5)


@needs_kernel
def test_kernel_rows_do_not_depend_on_what_shares_the_call():
    q, kc, vc, limit = _case(rows=6, width=3)
    together = native.attend(q, kc, vc, limit, 0.125)
    # The first token's query heads alone, and row 4 alone in slot 0: bit for bit the same.
    first = native.attend(q[:, :, :3].contiguous(), kc, vc, limit[:, :3].contiguous(), 0.125)
    assert torch.equal(first, together[:, :, :3])
    alone = native.attend(q[4:5].contiguous(), kc[4:5].contiguous(), vc[4:5].contiguous(), limit[4:5], 0.125)
    assert torch.equal(alone, together[4:5])


@needs_kernel
def test_kernel_query_heads_alone_match_their_group():
    # The kernel passes over the keys once for the query heads that share a kv head; one head alone
    # must still get the same bits.
    q, kc, vc, limit = _case(rows=3, width=2)
    together = native.attend(q, kc, vc, limit, 0.125)
    for r in range(q.shape[2]):
        alone = native.attend(
            q[:, :, r : r + 1].contiguous(), kc, vc, limit[:, r : r + 1].contiguous(), 0.125
        )
        assert torch.equal(alone, together[:, :, r : r + 1])


@needs_kernel
def test_kernel_skips_padding_rows():
    q, kc, vc, limit = _case(width=2)
    limit[:, 3:] = 0
    out = native.attend(q, kc, vc, limit, 0.125)
    assert torch.equal(out[:, :, 3:], torch.zeros_like(out[:, :, 3:]))
    torch.testing.assert_close(
        out[:, :, :3], _sdpa(q, kc, vc, limit.clamp(min=1))[:, :, :3], rtol=1e-5, atol=1e-5
    )


def test_kernels_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("HARNESS_NATIVE", "0")
    native.library.cache_clear()
    try:
        assert native.kernel() is None and native.gemm_kernel() is None and "SDPA" in native.describe()
        assert native.pack_panels(torch.randn(32, 8)) is None
    finally:
        monkeypatch.delenv("HARNESS_NATIVE")
        native.library.cache_clear()


@needs_kernel
@pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc/self/maps")
def test_the_kernels_run_on_torchs_openmp_runtime():
    # Two runtimes would be two thread pools spinning against each other on the same cores.
    line = features.openmp_check(native.library())
    assert line.startswith("OpenMP: the kernels run on torch's runtime"), line
    assert features.openmp_runtime(native.library()) is not None


needs_gemm = pytest.mark.skipif(
    native.gemm_kernel() is None, reason="no AVX2/FMA build: oneDNN runs the matmuls"
)


@needs_gemm
@pytest.mark.parametrize("rows", [1, 2, 5, 6, 7, 13, 64, 200, 450])
@pytest.mark.parametrize("n,k", [(960, 576), (48, 1536), (112, 64), (16, 3)])
def test_gemm_matches_a_float64_matmul(rows, n, k):
    # 112 columns = 7 panels: the one-row path's groups of 6 panels leave one over.
    g = torch.Generator().manual_seed(rows * 7 + n)
    w, x = torch.randn(n, k, generator=g) / k**0.5, torch.randn(rows, k, generator=g)
    out = native.gemm(x, native.pack_panels(w))
    torch.testing.assert_close(out.double(), x.double() @ w.double().T, rtol=1e-5, atol=2e-5)


@needs_gemm
def test_gemm_rows_do_not_depend_on_their_call():
    g = torch.Generator().manual_seed(1)
    w, x = torch.randn(96, 576, generator=g), torch.randn(400, 576, generator=g)
    panels = native.pack_panels(w)
    together = native.gemm(x, panels)
    # Alone, in a small call, across the 192-row chunk boundary, and in a 3-d input.
    for part in (slice(0, 1), slice(5, 9), slice(180, 200), slice(3, 400)):
        assert torch.equal(native.gemm(x[part], panels), together[part])
    assert torch.equal(native.gemm(x[:12].view(3, 4, 576), panels), together[:12].view(3, 4, 96))


@needs_gemm
def test_linear_runs_the_native_matmul_on_decode_calls_and_torchs_on_prefill_calls():
    from cpu_engine.linear import Linear

    g = torch.Generator().manual_seed(2)
    w, b = torch.randn(96, 576, generator=g), torch.randn(96, generator=g)
    linear, panels = Linear(w, b), native.pack_panels(w)
    limit = features.GEMM_MAX_ROWS
    for rows in (1, limit):
        x = torch.randn(rows, 576, generator=g)
        assert torch.equal(linear(x), native.gemm(x, panels) + b)
    for x in (torch.randn(limit + 1, 576, generator=g), torch.randn(2, limit, 576, generator=g)):
        assert torch.equal(linear(x), F.linear(x, w, b))  # rows counted across the leading dimensions


@needs_gemm
@pytest.mark.skipif("avx512f" not in native._cpu_flags().split(), reason="no AVX-512: one build only")
def test_gemm_avx512_build_gives_the_avx2_builds_bits(tmp_path):
    # The AVX-512 micro-kernel tiles rows and panels differently, but each output is still one FMA
    # chain over k in order: the bits must be the AVX2 build's, at every row count and tile tail.
    avx2 = tmp_path / "gemm_avx2.so"
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    subprocess.run([cc, *native.FLAGS, "-mno-avx512f", str(native.SOURCES[1]), "-o", str(avx2)], check=True)
    lib = ctypes.CDLL(str(avx2))
    lib.gemm.restype, lib.gemm.argtypes = None, [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 3
    g = torch.Generator().manual_seed(3)
    for n, k in [(960, 576), (576, 1536), (112, 64), (208, 96)]:
        w = torch.randn(n, k, generator=g) / k**0.5
        panels = native.pack_panels(w)
        for rows in (1, 2, 3, 4, 5, 6, 7, 9, 11, 18, 64, 197, 200):
            x = torch.randn(rows, k, generator=g)
            ours, theirs = native.gemm(x, panels), torch.empty(rows, n)
            lib.gemm(x.data_ptr(), panels.data_ptr(), theirs.data_ptr(), rows, n, k)
            assert torch.equal(ours.view(torch.int32), theirs.view(torch.int32)), (n, k, rows)


def test_gemm_leaves_what_it_cannot_take_to_onednn():
    assert native.pack_panels(torch.randn(40, 8)) is None  # 40 columns are not whole panels
    assert native.pack_panels(torch.randn(32, 8, dtype=torch.float64)) is None


@needs_kernel
@pytest.mark.parametrize("dim", [576, 36])  # 36: the scalar sum of squares
def test_residual_norm_adds_exactly_and_normalises_like_hf(dim):
    g = torch.Generator().manual_seed(dim)
    x, delta, w = (
        torch.randn(9, dim, generator=g),
        torch.randn(9, dim, generator=g),
        torch.randn(dim, generator=g),
    )
    expected_x = x + delta
    h = native.residual_norm(x, delta, w, 1e-5)
    assert torch.equal(x, expected_x)  # in place, with torch's rounding
    torch.testing.assert_close(h, rms_norm(expected_x, w, 1e-5), rtol=1e-6, atol=1e-6)
    assert torch.equal(native.residual_norm(x[4:5].clone(), None, w, 1e-5), h[4:5])  # a row alone: same bits


@needs_kernel
@pytest.mark.parametrize("inter", [1536, 13])  # 13: the scalar tail
def test_silu_mul_matches_torch(inter):
    g = torch.Generator().manual_seed(inter)
    gu = torch.randn(5, 2 * inter, generator=g) * 8
    gu[0, :6] = torch.tensor([-100.0, -88.0, -20.0, 0.0, 30.0, 100.0])
    expected = F.silu(gu[:, :inter]) * gu[:, inter:]
    torch.testing.assert_close(native.silu_mul(gu), expected, rtol=2e-6, atol=1e-7)


@needs_kernel
@pytest.mark.parametrize("d", [64, 36])  # 36: the scalar rotation
def test_rope_store_rotates_like_torch_and_fills_the_cache(d):
    heads, kv, slots, capacity = 6, 2, 4, 32
    g = torch.Generator().manual_seed(d)
    qkv = torch.randn(5, (heads + 2 * kv) * d, generator=g)
    angles = torch.arange(capacity)[:, None] * torch.rand(d // 2, generator=g)[None]
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    slot, pos = torch.tensor([0, 3, 3, 1, 2]), torch.tensor([7, 0, 1, 31, 12])
    kc, vc = torch.zeros(slots, kv, capacity, d), torch.zeros(slots, kv, capacity, d)
    q = native.rope_store(qkv, cos, sin, slot, pos, kc, vc, heads)

    def rope(x):  # HF's apply_rotary_pos_emb
        c, s = cos[pos][:, None], sin[pos][:, None]
        return x * c + torch.cat((-x[..., d // 2 :], x[..., : d // 2]), -1) * s

    heads_of = qkv.view(5, heads + 2 * kv, d)
    assert torch.equal(q, rope(heads_of[:, :heads]))
    assert torch.equal(kc[slot, :, pos], rope(heads_of[:, heads : heads + kv]))
    assert torch.equal(vc[slot, :, pos], heads_of[:, heads + kv :])
    written = torch.zeros(slots, capacity, dtype=torch.bool)
    written[slot, pos] = True
    assert not kc.transpose(1, 2)[~written].any() and not vc.transpose(1, 2)[~written].any()


def test_ngram_index_proposes_what_followed_the_latest_match():
    index = NgramIndex([1, 2, 3, 4, 9, 2, 3, 5, 7])
    index.extend([2, 3])
    assert index.draft(3) == [5, 7, 2]  # the latest earlier "2 3" was followed by 5 7 2
    assert index.draft(0) == []
    assert NgramIndex([1, 2, 3]).draft(4) == []  # nothing repeats
    loop = NgramIndex([7, 8, 7, 8, 7])
    assert loop.draft(4) == [8, 7]  # a loop proposes its continuation, up to the known tokens
    assert NgramIndex([5, 6, 1, 6]).draft(2) == []  # unigram matches are too weak to propose
