"""Contextual attention against a slow loop reference and hand-worked examples.

The reference below follows the release's recipe (reference doc, "Contextual attention",
steps 1-10) with explicit loops over positions and patches; it shares no code with
course_lib.attention.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import (
    attention_offsets,
    contextual_attention,
    downsample,
    extract_patches,
    fuse_scores,
    masked_softmax,
    matching_scores,
    normalize_patches,
    reconstruct,
    valid_patches,
)
from course_lib.flow import flow_to_color


# ---------------------------------------------------------------- slow reference

def tf_same_before(size: int, kernel: int, stride: int) -> int:
    """Top/left padding of TF 'SAME': total = max((ceil(n/s)-1)*s + k - n, 0), half before."""
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


def nearest_rows(n_in: int, n_out: int) -> list[int]:
    """align_corners nearest: round(i * (in-1)/(out-1)), half away from zero."""
    if n_out == 1:
        return [0]
    return [min(int(math.floor(i * (n_in - 1) / (n_out - 1) + 0.5)), n_in - 1) for i in range(n_out)]


def window(img: np.ndarray, top: int, left: int, k: int) -> np.ndarray:
    """img (C, H, W) window of size k at (top, left), zeros outside the image."""
    C, H, W = img.shape
    out = np.zeros((C, k, k))
    for a in range(k):
        for c in range(k):
            y, x = top + a, left + c
            if 0 <= y < H and 0 <= x < W:
                out[:, a, c] = img[:, y, x]
    return out


def identity_fuse(M: np.ndarray, k: int) -> np.ndarray:
    """out[p, q] = sum_d M[p + d - before, q + d - before], zeros outside."""
    P, Q = M.shape
    before = (k - 1) // 2
    out = np.zeros_like(M)
    for p in range(P):
        for q in range(Q):
            total = 0.0
            for d in range(k):
                pp, qq = p + d - before, q + d - before
                if 0 <= pp < P and 0 <= qq < Q:
                    total += M[pp, qq]
            out[p, q] = total
    return out


def reference_attention(f: np.ndarray, b: np.ndarray, mask: np.ndarray | None, ksize: int = 3,
                        rate: int = 2, fuse_k: int = 3, scale: float = 10.0, fuse: bool = True) -> dict:
    """Loop version of the release's contextual attention (stride 1), all intermediates."""
    B, C, H, W = f.shape
    Hb, Wb = b.shape[2:]
    h, w = H // rate, W // rate  # downsampled foreground
    hb, wb = Hb // rate, Wb // rate  # downsampled background
    rows_f, cols_f = nearest_rows(H, h), nearest_rows(W, w)
    rows_b, cols_b = nearest_rows(Hb, hb), nearest_rows(Wb, wb)
    if mask is None:
        mask = np.zeros((1, 1, Hb, Wb))
    out = {k: [] for k in ("raw", "w", "mm", "scores", "fused", "attention", "y", "offsets")}
    kr = 2 * rate
    for n in range(B):
        # step 1: raw 2r x 2r patches of b, stride r, TF SAME
        top, left = tf_same_before(Hb, kr, rate), tf_same_before(Wb, kr, rate)
        raw = [window(b[n], i * rate - top, j * rate - left, kr) for i in range(hb) for j in range(wb)]
        # step 2: downsample
        fs = f[n][:, rows_f][:, :, cols_f]
        bs = b[n][:, rows_b][:, :, cols_b]
        ms = mask[n if mask.shape[0] > 1 else 0][:, rows_b][:, :, cols_b]
        # step 3, 4: matching patches and their validity
        pad = tf_same_before(hb, ksize, 1)
        patches = [window(bs, i - pad, j - pad, ksize) for i in range(hb) for j in range(wb)]
        mm = np.array([float(window(ms, i - pad, j - pad, ksize).mean() == 0)
                       for i in range(hb) for j in range(wb)])
        # step 5: background-only normalisation
        normed = [p / max(np.sqrt((p**2).sum()), 1e-4) for p in patches]
        # step 6: scores[p, l] = <f window at p, normalised patch l>
        L = hb * wb
        S = np.zeros((h * w, L))
        pad_f = tf_same_before(h, ksize, 1)
        for i in range(h):
            for j in range(w):
                fw = window(fs, i - pad_f, j - pad_f, ksize)
                for l in range(L):
                    S[i * w + j, l] = float((fw * normed[l]).sum())
        # step 7: fuse row-major, then column-major, then back
        fused = S
        if fuse:
            fused = identity_fuse(S, fuse_k)
            col_f = [j * h + i for i in range(h) for j in range(w)]  # row-major p -> column-major p'
            col_b = [j * hb + i for i in range(hb) for j in range(wb)]
            M = np.zeros_like(fused)
            for p in range(h * w):
                for q in range(L):
                    M[col_f[p], col_b[q]] = fused[p, q]
            M = identity_fuse(M, fuse_k)
            fused = np.zeros_like(M)
            for p in range(h * w):
                for q in range(L):
                    fused[p, q] = M[col_f[p], col_b[q]]
        # step 8: masked softmax
        A = np.zeros_like(fused)
        for p in range(h * w):
            s = fused[p] * mm * scale
            e = np.exp(s - s.max())
            A[p] = e / e.sum() * mm
        # step 9: offsets (argmax index divided by the foreground width, release quirk)
        offs = np.zeros((2, h, w), dtype=np.int64)
        for i in range(h):
            for j in range(w):
                idx = int(np.argmax(A[i * w + j]))
                offs[:, i, j] = (idx // w - i, idx % w - j)
        # step 10: paste raw patches at stride r, SAME crop, / 4
        y = np.zeros((C, H, W))
        top_o, left_o = tf_same_before(H, kr, rate), tf_same_before(W, kr, rate)
        for i in range(h):
            for j in range(w):
                for l in range(L):
                    a = A[i * w + j, l]
                    for u in range(kr):
                        for v in range(kr):
                            yy, xx = i * rate - top_o + u, j * rate - left_o + v
                            if 0 <= yy < H and 0 <= xx < W:
                                y[:, yy, xx] += a * raw[l][:, u, v]
        y /= 4.0
        to_map = lambda M: M.T.reshape(L, h, w)  # [P, L] -> (L, h, w)
        out["raw"].append(np.stack(raw))
        out["w"].append(np.stack(patches))
        out["mm"].append(mm)
        out["scores"].append(to_map(S))
        out["fused"].append(to_map(fused))
        out["attention"].append(to_map(A))
        out["y"].append(y)
        out["offsets"].append(offs)
    return {k: np.stack(v) for k, v in out.items()}


def t64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


@pytest.fixture(scope="module")
def case() -> dict:
    """f = b (2, 4, 16, 16) float64, one box hole per sample, at different places."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 16, generator=g, dtype=torch.float64)
    mask = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    mask[0, :, 4:10, 6:12] = 1.0
    mask[1, :, 8:16, 0:6] = 1.0
    ref = reference_attention(x.numpy(), x.numpy(), mask.numpy())
    return {"x": x, "mask": mask, "ref": ref}


# ---------------------------------------------------------------- against the reference

def test_steps_match_reference(case: dict) -> None:
    x, mask, ref = case["x"], case["mask"], case["ref"]
    raw = extract_patches(x, 4, 2)
    assert torch.allclose(raw, t64(ref["raw"]), atol=0, rtol=0)
    xs = downsample(x, 2)
    w = extract_patches(xs, 3, 1)
    assert torch.equal(w, t64(ref["w"]))
    mm = valid_patches(downsample(mask, 2), 3)
    assert torch.equal(mm, t64(ref["mm"]))
    scores = matching_scores(xs, normalize_patches(w))
    assert torch.allclose(scores, t64(ref["scores"]), atol=1e-10)
    fused = fuse_scores(scores, 3)
    assert torch.allclose(fused, t64(ref["fused"]), atol=1e-10)
    attention = masked_softmax(fused, mm, 10.0)
    assert torch.allclose(attention, t64(ref["attention"]), atol=1e-10)
    y = reconstruct(attention, raw, 2, (16, 16))
    assert torch.allclose(y, t64(ref["y"]), atol=1e-10)


def test_contextual_attention_matches_reference(case: dict) -> None:
    x, mask, ref = case["x"], case["mask"], case["ref"]
    y, flow = contextual_attention(x, x, mask)
    assert y.dtype == torch.float64 and y.shape == x.shape
    assert torch.allclose(y, t64(ref["y"]), atol=1e-10)
    offsets = torch.from_numpy(ref["offsets"])
    expected_flow = F.interpolate(flow_to_color(offsets, dtype=torch.float64), size=(16, 16),
                                  mode="bilinear", align_corners=True)
    assert flow.shape == (2, 3, 16, 16)
    assert torch.allclose(flow, expected_flow, atol=1e-12)


def test_offsets_match_reference(case: dict) -> None:
    offsets = attention_offsets(t64(case["ref"]["attention"]), 8)
    assert offsets.dtype == torch.int64
    assert torch.equal(offsets, torch.from_numpy(case["ref"]["offsets"]))


def test_f_and_b_differ_in_size_and_no_fuse() -> None:
    g = torch.Generator().manual_seed(1)
    f = torch.randn(1, 3, 8, 12, generator=g, dtype=torch.float64)
    b = torch.randn(1, 3, 12, 8, generator=g, dtype=torch.float64)
    mask = torch.zeros(1, 1, 12, 8, dtype=torch.float64)
    mask[..., 2:6, 2:6] = 1.0
    for fuse in (True, False):
        ref = reference_attention(f.numpy(), b.numpy(), mask.numpy(), fuse=fuse)
        y, flow = contextual_attention(f, b, mask, fuse=fuse)
        assert torch.allclose(y, t64(ref["y"]), atol=1e-10), f"fuse={fuse}"
        expected_flow = F.interpolate(flow_to_color(torch.from_numpy(ref["offsets"]), dtype=torch.float64),
                                      size=(8, 12), mode="bilinear", align_corners=True)
        assert torch.allclose(flow, expected_flow, atol=1e-12), f"fuse={fuse}"


def test_per_sample_masks_equal_separate_calls(case: dict) -> None:
    x, mask = case["x"], case["mask"]
    y, flow = contextual_attention(x, x, mask)
    for n in range(2):
        y_n, flow_n = contextual_attention(x[n:n + 1], x[n:n + 1], mask[n:n + 1])
        assert torch.allclose(y[n:n + 1], y_n, atol=1e-12)
        assert torch.equal(flow[n:n + 1], flow_n)


def test_float32_input_stays_float32(case: dict) -> None:
    x, mask = case["x"].float(), case["mask"][:1].float()  # one mask for the batch, as the release
    y, flow = contextual_attention(x, x, mask)
    assert y.dtype == torch.float32 and flow.dtype == torch.float32
    ref = reference_attention(x.double().numpy(), x.double().numpy(), mask.double().numpy())
    assert torch.allclose(y.double(), t64(ref["y"]), atol=1e-4)


# ---------------------------------------------------------------- hand-worked examples

def test_extract_patches_index_table() -> None:
    # 4x5 image 1..20, kernel 2, stride 2: rows need no padding (total 0); columns
    # need 1 (ceil(5/2)=3 patches: (3-1)*2 + 2 - 5 = 1) and TF puts it on the right.
    x = torch.arange(1.0, 21.0).view(1, 1, 4, 5)
    p = extract_patches(x, 2, 2)
    assert p.shape == (1, 6, 1, 2, 2)
    expected = [
        [[1, 2], [6, 7]], [[3, 4], [8, 9]], [[5, 0], [10, 0]],
        [[11, 12], [16, 17]], [[13, 14], [18, 19]], [[15, 0], [20, 0]],
    ]
    assert p[0, :, 0].tolist() == expected


def test_extract_patches_odd_kernel_and_channels() -> None:
    # 3x3 image 1..9, kernel 3, stride 1: one pixel of zeros on every side.
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    x = torch.cat([x, 100 + x], dim=1)  # (1, 2, 3, 3): channel 1 = 100 + channel 0
    p = extract_patches(x, 3, 1)
    assert p.shape == (1, 9, 2, 3, 3)
    assert p[0, 0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]  # top-left patch
    assert p[0, 4, 0].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]  # centre patch
    assert p[0, 8, 0].tolist() == [[5, 6, 0], [8, 9, 0], [0, 0, 0]]  # bottom-right patch
    assert p[0, 4, 1].tolist() == [[101, 102, 103], [104, 105, 106], [107, 108, 109]]


def test_extract_patches_even_kernel_stride_one_pads_bottom_right() -> None:
    # kernel 2, stride 1 on 3x3: total padding 1, all of it after (bottom/right).
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    p = extract_patches(x, 2, 1)
    assert p.shape == (1, 9, 1, 2, 2)
    assert p[0, 0, 0].tolist() == [[1, 2], [4, 5]]
    assert p[0, 2, 0].tolist() == [[3, 0], [6, 0]]
    assert p[0, 8, 0].tolist() == [[9, 0], [0, 0]]


def test_extract_patches_raw_4x4_stride_2_pads_one_each_side() -> None:
    # kernel 4, stride 2 on 4x4: 2 patches per axis, total padding 2 -> (1, 1).
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    p = extract_patches(x, 4, 2)
    assert p.shape == (1, 4, 1, 4, 4)
    assert p[0, 0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11]]
    assert p[0, 3, 0].tolist() == [[6, 7, 8, 0], [10, 11, 12, 0], [14, 15, 16, 0], [0, 0, 0, 0]]


def test_downsample_uses_align_corners_rows() -> None:
    x = torch.arange(8.0).view(1, 1, 8, 1).expand(1, 1, 8, 8)
    # round(i * 7/3) for i = 0..3: 0, 2.33 -> 2, 4.67 -> 5, 7
    assert downsample(x, 2)[0, 0, :, 0].tolist() == [0, 2, 5, 7]


def test_valid_patches_hand_drawn_mask() -> None:
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 1, 2] = 1.0  # one hole pixel
    expected = [
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [1, 1, 1, 1],
    ]  # a 3x3 window centred within one pixel of (1, 2) sees the hole
    mm = valid_patches(mask, 3)
    assert mm.shape == (1, 16)
    assert mm.view(4, 4).tolist() == expected


def test_normalize_patches_unit_norm_and_floor() -> None:
    w = torch.zeros(1, 2, 1, 2, 2)
    w[0, 0, 0] = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # norm 5
    w[0, 1, 0, 0, 0] = 1e-6  # norm below the floor: divided by 1e-4
    n = normalize_patches(w.double())
    assert torch.allclose(n[0, 0, 0], torch.tensor([[0.6, 0.0], [0.0, 0.8]], dtype=torch.float64))
    assert math.isclose(float(n[0, 1, 0, 0, 0]), 1e-2, rel_tol=1e-5)


def test_normalize_patches_gradient_is_finite_on_an_all_zero_patch() -> None:
    # An all-zero patch (a zeroed hole) must not turn the gradient into NaN: d sqrt(s)/ds is
    # infinite at s = 0. By hand: patch 0 has norm 5 > eps, so d(sum of n)/dw = (1 - n * sum(n)) / 5
    # elementwise with n = w / 5; patch 1 is zero, its gradient is 1 / eps (divided by the floor).
    w = torch.zeros(1, 2, 1, 2, 2, dtype=torch.float64)
    w[0, 0, 0] = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    w.requires_grad_(True)
    normalize_patches(w).sum().backward()
    assert torch.isfinite(w.grad).all()
    n = w.detach()[0, 0, 0] / 5
    assert torch.allclose(w.grad[0, 0, 0], (1 - n * n.sum()) / 5)
    assert torch.allclose(w.grad[0, 1], torch.full((1, 2, 2), 1e4, dtype=torch.float64))


def test_fuse_scores_hand_example() -> None:
    # Hf = Wf = Hb = Wb = 2, score matrix [foreground p, background q] 4x4 with a single
    # 1 at (0, 0). Pass 1 (row-major, identity 3x3): ones at (0, 0) and (1, 1).
    # Reorder column-major, p = (i, j) -> j*2 + i: (1, 1) becomes (2, 2).
    # Pass 2: (0,0) <- (0,0),(1,1) = 1; (1,1) <- (0,0),(1,1),(2,2) = 2;
    # (2,2) <- (1,1),(2,2),(3,3) = 1; (3,3) <- (2,2),(3,3) = 1.
    # Back to row-major, (1, 1) and (2, 2) swap: diagonal 1, 1, 2, 1.
    scores = torch.zeros(1, 4, 2, 2)
    scores[0, 0, 0, 0] = 1.0  # patch q = 0 at foreground (0, 0)
    fused = fuse_scores(scores, 3)
    M = fused.permute(0, 2, 3, 1).reshape(4, 4)  # (1, L, 2, 2) -> [p, q]
    assert torch.equal(M, torch.diag(torch.tensor([1.0, 1.0, 2.0, 1.0])))


def test_fuse_scores_needs_bg_size_when_sizes_differ() -> None:
    with pytest.raises(ValueError, match="bg_size"):
        fuse_scores(torch.zeros(1, 6, 2, 2))
    assert fuse_scores(torch.zeros(1, 6, 2, 2), bg_size=(2, 3)).shape == (1, 6, 2, 2)


def test_reconstruct_one_hot_gives_back_the_image() -> None:
    x = torch.arange(64.0).view(1, 1, 8, 8) - 20.0  # integers: the sums are exact
    raw = extract_patches(x, 4, 2)  # (1, 16, 1, 4, 4)
    attention = torch.eye(16).view(1, 16, 4, 4)  # position (i, j) picks its own patch i*4+j
    y = reconstruct(attention, raw, 2, (8, 8))
    assert torch.equal(y[..., 1:7, 1:7], x[..., 1:7, 1:7])  # interior: 4 patches / 4
    # Border rows/columns are covered by 2 patches only (the other half fell in the
    # padding), corners by one.
    assert torch.equal(y[..., 0, 1:7], x[..., 0, 1:7] / 2)
    assert torch.equal(y[..., 1:7, 7], x[..., 1:7, 7] / 2)
    assert float(y[0, 0, 0, 0]) == float(x[0, 0, 0, 0]) / 4


def test_masked_softmax_zero_on_invalid_and_no_renormalisation() -> None:
    g = torch.Generator().manual_seed(2)
    scores = torch.randn(1, 5, 2, 3, generator=g, dtype=torch.float64)
    mm = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    a = masked_softmax(scores, mm, 10.0)
    assert torch.all(a[:, [1, 4]] == 0)
    for i in range(2):
        for j in range(3):
            s = [float(scores[0, l, i, j]) for l in (0, 2, 3)]
            valid = sum(math.exp(10 * v) for v in s)
            total = valid + 2 * math.exp(0.0)  # the two invalid patches enter with score 0
            assert math.isclose(float(a[0, :, i, j].sum()), valid / total, rel_tol=1e-12)
            assert math.isclose(float(a[0, 0, i, j]), math.exp(10 * s[0]) / total, rel_tol=1e-12)


def test_offsets_identity_and_hand_example() -> None:
    identity = torch.eye(12).view(1, 12, 3, 4)
    assert torch.equal(attention_offsets(identity, 4), torch.zeros(1, 2, 3, 4, dtype=torch.long))
    # every position attends to patch 5 = (row 1, col 1) of a 3x4 grid
    a = torch.zeros(1, 12, 3, 4)
    a[:, 5] = 1.0
    off = attention_offsets(a, 4)
    assert off[0, 0].tolist() == [[1] * 4, [0] * 4, [-1] * 4]
    assert off[0, 1].tolist() == [[1, 0, -1, -2]] * 3
    # release quirk: the index is split with the given (foreground) width
    off = attention_offsets(a, 3)  # 5 -> (1, 2)
    assert off[0, :, 0, 0].tolist() == [1, 2]


def test_self_attention_without_hole_copies_itself_and_flow_is_white() -> None:
    # Without fuse and hole, <b_p, b_q / |b_q|> <= |b_p| with equality only at q = p
    # (Cauchy-Schwarz, random patches are never parallel): every position attends most
    # to its own patch, every offset is 0 and the flow image is white.
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y, flow = contextual_attention(x, x, fuse=False)
    assert torch.allclose(flow, torch.ones_like(flow), rtol=0, atol=1e-12)  # bilinear x2: 1 ulp


def test_full_mask_is_finite() -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    y, flow = contextual_attention(x, x, torch.ones(1, 1, 8, 8))
    assert torch.isfinite(y).all() and torch.isfinite(flow).all()
    assert torch.equal(y, torch.zeros_like(y))  # no valid patch: all weights are 0


def test_empty_mask_equals_no_mask() -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    y0, flow0 = contextual_attention(x, x, torch.zeros(2, 1, 8, 8))
    y1, flow1 = contextual_attention(x, x, None)
    assert torch.equal(y0, y1) and torch.equal(flow0, flow1)


def test_gradcheck_f_and_b() -> None:
    g = torch.Generator().manual_seed(5)
    f = torch.randn(1, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    mask[..., :2, :2] = 1.0  # a hole in the corner: 12 of the 16 patches stay valid
    assert int(valid_patches(downsample(mask, 2), 3).sum()) == 12

    def fn(f_: torch.Tensor, b_: torch.Tensor) -> torch.Tensor:
        return contextual_attention(f_, b_, mask, softmax_scale=2.0)[0]

    assert torch.autograd.gradcheck(fn, (f, b), eps=1e-6, atol=1e-6, fast_mode=True)
    y, flow = contextual_attention(f, b, mask)
    (y * torch.randn(y.shape, generator=g, dtype=torch.float64)).sum().backward()
    assert f.grad is not None and f.grad.abs().sum() > 0
    assert b.grad is not None and b.grad.abs().sum() > 0
    assert not flow.requires_grad


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize(
    "f_shape, b_shape, mask, error, words",
    [
        ((1, 3, 8, 8), (1, 3, 8, 8), torch.full((1, 1, 8, 8), 0.5), ValueError, "(mask > 0.5).float()"),
        ((1, 3, 8, 8), (1, 3, 8, 8), torch.zeros(1, 1, 4, 4), ValueError, "match b"),
        ((1, 3, 8, 8), (1, 3, 8, 8), torch.zeros(3, 1, 8, 8), ValueError, "(1 or B, 1, H, W)"),
        ((1, 3, 8, 8), (1, 3, 8, 8), torch.zeros(1, 2, 8, 8), ValueError, "(1 or B, 1, H, W)"),
        ((1, 3, 8, 8), (1, 4, 8, 8), None, ValueError, "same batch size and channels"),
        ((2, 3, 8, 8), (1, 3, 8, 8), None, ValueError, "same batch size and channels"),
        ((1, 3, 7, 8), (1, 3, 7, 8), None, ValueError, "multiple of rate"),
        ((3, 8, 8), (3, 8, 8), None, ValueError, "4-D"),
    ],
)
def test_bad_inputs_raise_clear_errors(f_shape, b_shape, mask, error, words) -> None:
    with pytest.raises(error, match=None) as info:
        contextual_attention(torch.zeros(f_shape), torch.zeros(b_shape), mask)
    assert words in str(info.value)


def test_integer_features_raise_type_error() -> None:
    with pytest.raises(TypeError, match="float"):
        contextual_attention(torch.zeros(1, 3, 8, 8, dtype=torch.long), torch.zeros(1, 3, 8, 8))
    with pytest.raises(TypeError):
        contextual_attention(np.zeros((1, 3, 8, 8)), torch.zeros(1, 3, 8, 8))  # type: ignore[arg-type]


def test_extract_patches_accepts_integer_tensors() -> None:
    p = extract_patches(torch.arange(16).view(1, 1, 4, 4), 2, 2)  # int64, as masks may be
    assert p.dtype == torch.int64 and p[0, 1, 0].tolist() == [[2, 3], [6, 7]]


def test_stride_two_runs_and_keeps_shapes() -> None:
    # The release only runs stride 1 with fuse (its reshape assumes L = Hb*Wb); here the
    # fuse uses the grid of patch positions. Shape and finiteness only.
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:8, 4:8] = 1.0
    for fuse in (True, False):
        y, flow = contextual_attention(x, x, mask, stride=2, fuse=fuse)
        assert y.shape == x.shape and flow.shape == (2, 3, 16, 16)
        assert torch.isfinite(y).all()


def test_valid_patches_rejects_a_non_binary_mask():
    # [1, -1] averages to 0 and would wrongly count as a valid patch
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 1, 1], mask[0, 0, 1, 2] = 1.0, -1.0
    with pytest.raises(ValueError, match=r"mask > 0.5"):
        valid_patches(mask, 3)
