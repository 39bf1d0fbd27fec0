"""Table-1 metrics against hand-worked values and a slow loop version of SSIM."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.metrics import all_metrics, l1_error, l2_error, psnr, ssim, tv_loss


def test_l1_l2_on_a_tiny_hand_example():
    x = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])  # (1, 1, 2, 2) in [0, 1]
    y = torch.tensor([[[[0.5, 0.5], [0.0, 0.25]]]])
    # |diffs| = 0.5, 0, 1, 0 -> mean 0.375; squares 0.25, 0, 1, 0 -> mean 0.3125
    assert l1_error(x, y, value_range=(0, 1)).tolist() == pytest.approx([37.5])
    assert l2_error(x, y, value_range=(0, 1)).tolist() == pytest.approx([31.25])
    # the same images in [-1, 1] give the same percentages
    assert l1_error(2 * x - 1, 2 * y - 1).tolist() == pytest.approx([37.5])
    assert l2_error(2 * x - 1, 2 * y - 1).tolist() == pytest.approx([31.25])
    # only the left column (diffs 0.5 and 1)
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert l1_error(x, y, mask, value_range=(0, 1)).tolist() == pytest.approx([75.0])
    assert l2_error(x, y, mask, value_range=(0, 1)).tolist() == pytest.approx([62.5])


def test_relative_l1_l2_on_the_same_hand_example():
    """The paper's errors (release issue #146): sum |y - x| / sum |x|, sum (y - x)^2 / sum x^2."""
    x = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])  # (1, 1, 2, 2) in [0, 1], the ground truth
    y = torch.tensor([[[[0.5, 0.5], [0.0, 0.25]]]])
    # sum |diffs| = 1.5, sum |x| = 1.75 -> 85.714 %; sum diffs^2 = 1.25, sum x^2 = 1.3125 -> 95.238 %
    assert l1_error(x, y, value_range=(0, 1), relative=True).tolist() == pytest.approx([100 * 1.5 / 1.75])
    assert l2_error(x, y, value_range=(0, 1), relative=True).tolist() == pytest.approx([100 * 1.25 / 1.3125])
    assert l1_error(2 * x - 1, 2 * y - 1, relative=True).tolist() == pytest.approx([100 * 1.5 / 1.75])
    # the left column: x = 0 and 1, diffs 0.5 and 1 -> 1.5 / 1 and 1.25 / 1
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert l1_error(x, y, mask, value_range=(0, 1), relative=True).tolist() == pytest.approx([150.0])
    assert l2_error(x, y, mask, value_range=(0, 1), relative=True).tolist() == pytest.approx([125.0])
    # swapping the roles changes the denominator: the ground truth comes first
    assert l1_error(y, x, value_range=(0, 1), relative=True).tolist() == pytest.approx([100 * 1.5 / 1.25])


def _relative_loop(x, y, mask, power):
    """Slow reference: per image, sum over channels and hole pixels of |y - x|^p / |x|^p, with floats."""
    out = []
    for b in range(x.shape[0]):
        num = den = 0.0
        for c in range(x.shape[1]):
            for i in range(x.shape[2]):
                for j in range(x.shape[3]):
                    if mask[min(b, mask.shape[0] - 1), 0, i, j] > 0:
                        gt, got = float(x[b, c, i, j]), float(y[b, c, i, j])
                        num += abs(got - gt) ** power
                        den += abs(gt) ** power
        out.append(100.0 * num / den)
    return out


def test_relative_errors_match_a_slow_loop():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 6, 5, generator=g)  # [0, 1]
    y = torch.rand(2, 3, 6, 5, generator=g)
    everywhere = torch.ones(1, 1, 6, 5)
    hole = (torch.rand(2, 1, 6, 5, generator=g) > 0.5).float()
    hole[:, :, 0, 0] = 1  # never empty
    for mask, arg in ((everywhere, None), (hole, hole)):
        for power, fn in ((1, l1_error), (2, l2_error)):
            got = fn(x, y, arg, value_range=(0, 1), relative=True).tolist()
            assert got == pytest.approx(_relative_loop(x, y, mask, power), rel=1e-5), (power, arg is None)


def test_relative_errors_refuse_an_all_black_ground_truth():
    x = torch.rand(2, 3, 4, 4)
    x[1] = 0.0  # image 1 is black: sum |x| = sum x^2 = 0
    y = torch.rand(2, 3, 4, 4)
    for fn in (l1_error, l2_error):
        with pytest.raises(ValueError, match=r"image\(s\) \[1\].*relative=False"):
            fn(x, y, value_range=(0, 1), relative=True)
        assert torch.isfinite(fn(x, y, value_range=(0, 1))).all()  # the absolute error is defined
    x = torch.rand(1, 3, 4, 4)
    x[..., :2, :2] = 0.0  # black only in the hole
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :2] = 1
    with pytest.raises(ValueError, match="over the hole"):
        l1_error(x, y[:1], mask, value_range=(0, 1), relative=True)
    with pytest.raises(ValueError, match="no hole pixel"):
        l1_error(x, y[:1], torch.zeros(1, 1, 4, 4), value_range=(0, 1), relative=True)


def test_psnr_of_a_known_mse_per_image():
    x = torch.zeros(2, 3, 4, 4)
    y = torch.cat([torch.full((1, 3, 4, 4), 0.1), torch.full((1, 3, 4, 4), 0.01)])
    # mse 0.01 -> 20 dB; mse 1e-4 -> 40 dB
    assert psnr(x, y, value_range=(0, 1)).tolist() == pytest.approx([20.0, 40.0], abs=1e-4)
    assert psnr(2 * x - 1, 2 * y - 1).tolist() == pytest.approx([20.0, 40.0], abs=1e-4)
    assert math.isinf(psnr(x, x, value_range=(0, 1))[0].item())
    assert psnr(x, x, value_range=(0, 1), max_db=100.0).tolist() == [100.0, 100.0]


def test_tv_on_a_hand_example():
    y = torch.tensor([[[[0.0, 0.5, 0.5], [1.0, 1.0, 0.0]]]])  # (1, 1, 2, 3)
    # vertical |diffs| 1, 0.5, 0.5 -> 2/3; horizontal 0.5, 0, 0, 1 -> 0.375
    assert tv_loss(y, value_range=(0, 1)).item() == pytest.approx(100 * (2 / 3 + 0.375))
    assert tv_loss(torch.zeros(1, 3, 5, 5)).item() == 0.0
    assert tv_loss(2 * y - 1).item() == pytest.approx(100 * (2 / 3 + 0.375))


def slow_ssim(x: torch.Tensor, y: torch.Tensor, k: int = 11, sigma: float = 1.5) -> float:
    """Wang et al. (2004) written out: Gaussian-weighted statistics window by window, 'valid'."""
    w = [[math.exp(-((i - k // 2) ** 2 + (j - k // 2) ** 2) / (2 * sigma**2)) for j in range(k)] for i in range(k)]
    total = sum(sum(r) for r in w)
    w = [[v / total for v in r] for r in w]
    c1, c2 = 0.01**2, 0.03**2
    C, H, W = x.shape
    values = []
    for c in range(C):
        for top in range(H - k + 1):
            for left in range(W - k + 1):
                px = [[float(x[c, top + i, left + j]) for j in range(k)] for i in range(k)]
                py = [[float(y[c, top + i, left + j]) for j in range(k)] for i in range(k)]
                mx = sum(w[i][j] * px[i][j] for i in range(k) for j in range(k))
                my = sum(w[i][j] * py[i][j] for i in range(k) for j in range(k))
                vx = sum(w[i][j] * (px[i][j] - mx) ** 2 for i in range(k) for j in range(k))
                vy = sum(w[i][j] * (py[i][j] - my) ** 2 for i in range(k) for j in range(k))
                cxy = sum(w[i][j] * (px[i][j] - mx) * (py[i][j] - my) for i in range(k) for j in range(k))
                values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return sum(values) / len(values)


def test_ssim_matches_a_slow_loop_version():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 13, 14, generator=g)
    y = (x + 0.2 * torch.randn(2, 3, 13, 14, generator=g)).clamp(0, 1)
    got = ssim(x, y, value_range=(0, 1))
    for b in range(2):
        assert got[b].item() == pytest.approx(slow_ssim(x[b], y[b]), abs=1e-5)
    assert 0.0 < got.min() < got.max() < 1.0


def test_ssim_identical_constant_and_mask():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    # constant images a, b: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1)
    a, b = torch.full((1, 1, 12, 12), 0.2), torch.full((1, 1, 12, 12), 0.6)
    assert ssim(a, b, value_range=(0, 1)).item() == pytest.approx((0.24 + 1e-4) / (0.40 + 1e-4), abs=1e-6)
    # with a mask, only the windows that overlap the hole count
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(2)) * 2 - 1
    y = x.clone()
    y[..., :, 16:] = 0.0  # change columns 16..23 only
    mask = torch.zeros(1, 1, 24, 24)
    mask[..., 2:4, 2:4] = 1  # windows overlapping it start at column <= 3: they end at column <= 13
    assert ssim(x, y, mask).item() == pytest.approx(1.0, abs=1e-6)
    mask[..., 2:4, 6:8] = 1  # now windows starting at column 6 (up to column 16) overlap the hole
    assert ssim(x, y, mask).item() < 1 - 1e-4  # column 16 sits at the edge of their Gaussian window
    assert ssim(x, y).item() < 0.99


def test_all_metrics_and_input_checks():
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = x.clone()
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    y[..., 4:12, 4:12] = 0
    m = all_metrics(x, y, mask)
    assert set(m) == {"l1", "l2", "psnr", "tv", "ssim", "hole_l1", "hole_psnr", "hole_ssim"}
    assert all(v.shape == (3,) for v in m.values())
    # the hole is a quarter of the image: whole-image L1 is a quarter of the hole's
    assert torch.allclose(m["l1"] * 4, m["hole_l1"], rtol=1e-5)
    rel = all_metrics(x, y, mask, relative=True)
    assert set(rel) == set(m)
    for name in ("l1", "l2", "hole_l1"):
        assert not torch.allclose(rel[name], m[name]), name
    assert torch.allclose(rel["hole_l1"], l1_error(x, y, mask, relative=True))
    assert torch.allclose(rel["l2"], l2_error(x, y, relative=True))
    for name in ("psnr", "tv", "ssim", "hole_psnr", "hole_ssim"):
        assert torch.equal(rel[name], m[name]), name
    with pytest.raises(ValueError, match="same shape"):
        l1_error(x, y[:, :, :8])
    with pytest.raises(ValueError, match="batch"):
        psnr(x[0], y[0])
    with pytest.raises(ValueError, match="mask must be"):
        l1_error(x, y, mask[..., :8])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[..., :8, :8], y[..., :8, :8])
    with pytest.raises(ValueError, match="value_range"):
        l1_error(x, y, value_range=(1, 1))
