"""The fast contextual attention against the step-by-step layer (the reference, itself tested
against a loop in tests/test_attention.py), and the generator's composite with it switched on
against the dense generator: forward and backward, to 1e-5 in float32.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import contextual_attention
from course_lib.attention_fast import (
    DEFAULT_MAX_BYTES,
    _diagonal_sum,
    contextual_attention_batched,
    chunk_rows,
    contextual_attention_fast,
    fast_attention_settings,
    fuse_tables,
    needed_rows,
    score_bytes_bound,
    use_fast_attention,
)
from course_lib.generator import Generator

def assert_near(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    """``max |a - b| <= tol * max(1, max |b|)``: float32 sums in another order differ by ~1e-7
    of the LARGEST entry, so gradients (here up to ~30) are compared relative to their scale."""
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    err = float((a - b).abs().max()) if b.numel() else 0.0
    assert a.shape == b.shape and err <= tol * scale, f"max |diff| {err:.3g} > {tol:g} * {scale:.3g}"


def _masks(B: int, H: int, W: int) -> torch.Tensor:
    """Per-sample masks: a box, a box touching the bottom-right border, empty, full, ..."""
    m = torch.zeros(B, 1, H, W)  # (B, 1, H, W)
    m[0, :, H // 4: H // 2 + 1, W // 3: W // 3 + W // 4] = 1.0
    if B > 1:
        m[1, :, H - H // 3:, W - W // 3:] = 1.0  # touches the border
    if B > 3:
        m[3] = 1.0  # full; sample 2 stays empty
    return m


# ---------------------------------------------------------------- index tables by hand

def test_fuse_tables_by_hand_on_a_2x3_grid():
    # grid 2x3, row-major p = i*3 + j; column-major order 0,3,1,4,2,5
    combos, rows, cols = fuse_tables((2, 3), (2, 3), 3)
    assert combos[4] == (0, 0) and (rows[:, 4] == torch.arange(6)).all()
    # d2 = +1 from p = 0 (0,0) is (1,0) = 3; then d1 = +1 -> 4, d1 = -1 -> 2
    k = combos.index((1, 1))
    assert rows[0, k] == 4 and rows[0, combos.index((1, -1))] == 2
    # the last position in column-major order (p = 5) has no successor: padding
    assert rows[5, combos.index((1, 0))] == -1
    # (1, 1) = p 4 -> column-major next is (0, 2) = p 2: the wrap to the next column
    assert rows[4, combos.index((1, 0))] == 2
    assert cols.tolist()[1] == [0, 1, 2, 3, 4, 5]  # d2 = 0: identity
    assert cols.tolist()[2] == [3, 4, 5, 1, 2, -1]
    combos, rows, cols = fuse_tables((2, 3), (2, 3), 3, fuse=False)
    assert combos == [(0, 0)] and rows.shape == (6, 1) and cols.shape == (1, 6)


def test_needed_rows_covers_the_pasted_patches():
    # rate 2, 8 px: row i pastes output rows 2i-1 .. 2i+2
    need = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    need[..., 0, 0] = True
    assert needed_rows(need, 2)[0, 0].nonzero().tolist() == [[0, 0]]
    need[..., 0, 0], need[..., 4, 5] = False, True
    # row 4: patches 1 (rows 1..4) and 2 (3..6); column 5: patches 2 (3..6) and 3 (5..8)
    assert needed_rows(need, 2)[0, 0].nonzero().tolist() == [[1, 2], [1, 3], [2, 2], [2, 3]]
    need[..., 4, 5], need[..., 3, 3] = False, True  # row 3: patches 1 (2..5) and 2 (3..6)
    assert needed_rows(need, 2)[0, 0].nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]


def test_chunk_size_respects_the_bound():
    for B, L, K, budget in ((1, 4096, 9, 2**20), (8, 1024, 9, 2**28), (2, 100, 1, 10)):
        n = chunk_rows(B, L, K, budget)
        assert n >= 1
        assert n == 1 or score_bytes_bound(B, n, L, K) <= budget < score_bytes_bound(B, n + 1, L, K)


# ---------------------------------------------------------------- the layer

@pytest.mark.parametrize("shape, fuse", [((4, 6, 16, 24), True), ((3, 5, 14, 22), True), ((2, 4, 10, 10), False)])
def test_all_rows_equal_the_dense_layer_forward_and_backward(shape, fuse):
    """Odd grids (7x11, 5x5), per-sample masks (box, border box, empty, full), small chunks."""
    B, C, H, W = shape
    g = torch.Generator().manual_seed(1)
    f = torch.randn(B, C, H, W, generator=g).requires_grad_(True)  # (B, C, H, W)
    mask = _masks(B, H, W)
    w = torch.randn(B, C, H, W, generator=g)
    y, flow = contextual_attention(f, f, mask, fuse=fuse)
    (gy,) = torch.autograd.grad((y * w).sum(), f)
    stats: dict = {}
    y2, flow2 = contextual_attention_fast(f, f, mask, fuse=fuse, max_bytes=20_000, stats=stats)
    (gy2,) = torch.autograd.grad((y2 * w).sum(), f)
    assert stats["chunks"] > 1  # the small budget really chunks
    assert_near(y2, y)
    assert_near(gy2, gy)
    torch.testing.assert_close(flow2, flow)


def test_the_formula_is_exact_in_float64():
    """The same sums in another order: in float64 the two agree to ~1e-12, values and gradients."""
    B, C, H, W = 3, 4, 14, 18
    g = torch.Generator().manual_seed(6)
    f = torch.randn(B, C, H, W, generator=g, dtype=torch.float64).requires_grad_(True)
    mask = _masks(B, H, W).double()
    w = torch.randn(B, C, H, W, generator=g, dtype=torch.float64)
    y, _ = contextual_attention(f, f, mask)
    y2, _ = contextual_attention_fast(f, f, mask, max_bytes=50_000)
    assert_near(y2, y, 1e-12)
    assert_near(torch.autograd.grad((y2 * w).sum(), f)[0], torch.autograd.grad((y * w).sum(), f)[0], 1e-12)


def test_different_foreground_and_background_and_no_mask():
    g = torch.Generator().manual_seed(2)
    f = torch.randn(2, 3, 12, 8, generator=g)  # (B, C, H, W)
    b = torch.randn(2, 3, 8, 10, generator=g)  # (B, C, Hb, Wb)
    y, _ = contextual_attention(f, b, None)
    y2, _ = contextual_attention_fast(f, b, None)
    assert_near(y2, y)


def test_restricted_rows_are_exact_on_need_and_cheaper():
    B, C, H, W = 3, 4, 24, 24
    g = torch.Generator().manual_seed(3)
    f = torch.randn(B, C, H, W, generator=g).requires_grad_(True)  # (B, C, H, W)
    mask = _masks(B, H, W)
    need = F.max_pool2d(mask, 3, 1, 1) > 0  # (B, 1, H, W): the hole and a 1 px ring
    w = torch.randn(B, C, H, W, generator=g) * need
    y, _ = contextual_attention(f, f, mask)
    (gy,) = torch.autograd.grad((y * w).sum(), f)
    stats: dict = {}
    y2, _ = contextual_attention_fast(f, f, mask, need=need, stats=stats)
    (gy2,) = torch.autograd.grad((y2 * w).sum(), f)
    assert_near(y2 * need, y * need)
    assert_near(gy2, gy)
    rows = needed_rows(need, 2).flatten(1).sum(1).tolist()
    assert stats["rows"] == rows and rows[2] == 0 and max(rows) < (H // 2) * (W // 2)


def test_largest_score_tensor_stays_within_the_bound():
    B, C, H, W = 2, 4, 32, 32
    f = torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(4))
    L, K = (H // 2) * (W // 2), 9
    for budget in (50_000, 400_000, DEFAULT_MAX_BYTES):
        stats: dict = {}
        contextual_attention_fast(f, f, _masks(B, H, W), max_bytes=budget, stats=stats)
        n = stats["chunk_rows"]
        assert n == chunk_rows(B, L, K, budget)
        assert stats["score_numel_max"] * 4 <= max(budget, score_bytes_bound(B, 1, L, K))
        assert stats["score_numel_max"] <= B * (K * n + 1) * L  # raw rows of a chunk: <= K per fused row, + a zero row


def test_bad_inputs_name_the_fix():
    f = torch.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match=r"need must be \(1 or B, 1, H, W\)"):
        contextual_attention_fast(f, f, None, need=torch.ones(1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        contextual_attention_fast(f, f, None, max_bytes=0)
    with pytest.raises(ValueError, match="multiple of rate"):
        contextual_attention_fast(torch.randn(1, 2, 7, 8), torch.randn(1, 2, 7, 8))
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        with use_fast_attention(max_bytes=-1):
            pass


def test_switch_is_off_by_default_and_restored():
    assert fast_attention_settings() == (False, DEFAULT_MAX_BYTES)
    with pytest.raises(RuntimeError):
        with use_fast_attention(max_bytes=1234):
            assert fast_attention_settings() == (True, 1234)
            raise RuntimeError("inside")
    assert fast_attention_settings() == (False, DEFAULT_MAX_BYTES)


# ---------------------------------------------------------------- the generator

def _composite_and_grads(gen: Generator, x: torch.Tensor, mask: torch.Tensor, w: torch.Tensor, fast: bool):
    x = x.clone().requires_grad_(True)
    with use_fast_attention(fast, max_bytes=30_000):
        _, x2, _ = gen(x, mask)
    out = x2 * mask + x * (1 - mask)  # (B, 3, H, W), as course_lib.inpaint composes
    params = [p for p in gen.parameters()]
    grads = torch.autograd.grad((out * w).sum(), [x] + params, allow_unused=True)
    return out.detach(), grads


@pytest.mark.parametrize("train_mode", [False, True])
def test_generator_composite_equals_dense_forward_and_backward(train_mode):
    """Batch 4: box, border box, empty, full mask; 40x56 image -> 5x7 attention grid (odd)."""
    torch.manual_seed(0)
    gen = Generator(cnum=4).train(train_mode)
    B, H, W = 4, 40, 56
    g = torch.Generator().manual_seed(5)
    x = torch.rand(B, 3, H, W, generator=g) * 2 - 1
    mask = _masks(B, H, W)
    w = torch.randn(B, 3, H, W, generator=g)
    dense, g_dense = _composite_and_grads(gen, x, mask, w, fast=False)
    fast, g_fast = _composite_and_grads(gen, x, mask, w, fast=True)
    assert_near(fast, dense)
    for a, b in zip(g_fast, g_dense):
        if b is None:
            assert a is None or not a.abs().any()
        else:
            assert_near(a, b)


def test_hole_reach_covers_every_pixel_the_composite_depends_on():
    """Independent check: the gradient of the composite w.r.t. the attention output is zero outside."""
    torch.manual_seed(0)
    gen = Generator(cnum=4).eval()
    B, H, W = 2, 48, 64
    mask = _masks(B, H, W)
    ref = gen.refine
    pm = torch.randn(B, 16, H // 4, W // 4, requires_grad=True)  # the attention output
    x_hallu = torch.randn(B, 16, H // 4, W // 4)
    h = ref._run(pm, ("pmconv9", "pmconv10"))
    h = ref._run(torch.cat([x_hallu, h], 1), ref.AFTER_ATTENTION[2:])  # (B, 3, H, W)
    (grad,) = torch.autograd.grad((h * mask * torch.randn(B, 3, H, W)).sum(), pm)
    depends = grad.abs().sum(1, keepdim=True) > 0  # (B, 1, h, w)
    reach = ref.hole_reach(mask, (H // 4, W // 4))
    assert not (depends & ~reach).any()  # nothing the composite reads is left out
    assert depends.sum() >= 0.9 * reach.sum()  # and the reach is not much larger
    # by hand, one hole pixel at row 32 of 64: 3 convs -> rows 29..35; the x2 upsampling
    # 32 -> 64 reads row round(i * 31/63) -> 14..17; 2 convs -> 12..19; 16 -> 32 reads
    # round(i * 15/31) -> 6..9; 4 convs -> 2..13
    one = torch.zeros(1, 1, 64, 64)
    one[..., 32, 32] = 1.0
    r = ref.hole_reach(one, (16, 16))[0, 0].nonzero()
    assert r[:, 0].min() == 2 and r[:, 0].max() == 13


def test_empty_and_full_masks_through_inference():
    torch.manual_seed(0)
    gen = Generator(cnum=4).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for value in (0.0, 1.0):
        mask = torch.full((1, 1, 32, 32), value)
        with torch.no_grad():
            _, dense, _ = gen(x, mask)
            with use_fast_attention():
                _, fast, _ = gen(x, mask)
        assert_near(fast * mask, dense * mask)


# ---------------------------------------------------------------- the training path: batched dense layer

def test_diagonal_sum_equals_a_loop_over_the_padded_matrix():
    """out[p, q] = sum over d of m[p + d, q + d], zero outside; TF 'SAME' puts the extra tap at the end."""
    g = torch.Generator().manual_seed(3)
    m = torch.randn(2, 5, 7, generator=g, dtype=torch.float64)
    for k, shifts in ((3, (-1, 0, 1)), (2, (0, 1)), (1, (0,)), (4, (-1, 0, 1, 2))):
        expected = torch.zeros_like(m)
        for p in range(5):
            for q in range(7):
                for d in shifts:
                    if 0 <= p + d < 5 and 0 <= q + d < 7:
                        expected[:, p, q] += m[:, p + d, q + d]
        assert torch.allclose(_diagonal_sum(m, k), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape, fuse, shared", [((4, 6, 16, 24), True, False), ((3, 5, 14, 22), True, True),
                                                 ((2, 4, 10, 10), False, False)])
def test_batched_layer_equals_the_dense_layer_everywhere(shape, fuse, shared):
    """Odd grids (7x11, 5x5), per-sample masks (box, border box, empty, full) or one shared mask:
    values, gradients w.r.t. f and b (different tensors) and the flow."""
    B, C, H, W = shape
    g = torch.Generator().manual_seed(4)
    f = torch.randn(B, C, H, W, generator=g).requires_grad_(True)  # (B, C, H, W)
    b = (f.detach() + 0.5 * torch.randn(B, C, H, W, generator=g)).requires_grad_(True)
    mask = _masks(B, H, W)[:1] if shared else _masks(B, H, W)
    w = torch.randn(B, C, H, W, generator=g)
    y, flow = contextual_attention(f, b, mask, fuse=fuse)
    grads = torch.autograd.grad((y * w).sum(), (f, b))
    y2, flow2 = contextual_attention_batched(f, b, mask, fuse=fuse)
    grads2 = torch.autograd.grad((y2 * w).sum(), (f, b))
    assert_near(y2, y)
    for got, want in zip(grads2, grads):
        assert_near(got, want)
    torch.testing.assert_close(flow2, flow)


def test_batched_layer_is_exact_in_float64_and_handles_other_sizes():
    g = torch.Generator().manual_seed(5)
    f = torch.randn(3, 4, 14, 18, generator=g, dtype=torch.float64).requires_grad_(True)
    mask = _masks(3, 14, 18).double()
    w = torch.randn(3, 4, 14, 18, generator=g, dtype=torch.float64)
    y, _ = contextual_attention(f, f, mask)
    y2, _ = contextual_attention_batched(f, f, mask)
    assert_near(y2, y, 1e-12)
    assert_near(torch.autograd.grad((y2 * w).sum(), f)[0], torch.autograd.grad((y * w).sum(), f)[0], 1e-12)
    f = torch.randn(2, 3, 12, 8, generator=g)  # foreground and background of different sizes, no mask
    b = torch.randn(2, 3, 8, 10, generator=g)
    assert_near(contextual_attention_batched(f, b, None)[0], contextual_attention(f, b, None)[0])


def test_batched_layer_bad_inputs_name_the_fix():
    f = torch.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match="odd ksize"):
        contextual_attention_batched(f, f, None, ksize=4)
    with pytest.raises(ValueError, match="multiple of rate"):
        contextual_attention_batched(torch.randn(1, 2, 7, 8), torch.randn(1, 2, 7, 8), None)
    with pytest.raises(ValueError, match="fuse_k"):
        contextual_attention_batched(f, f, None, fuse_k=0)
