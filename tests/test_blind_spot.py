"""course_lib.blind_spot: two fills with equal PSNR, one plausible, one blurred."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.blind_spot import equal_psnr_fills, sharpness, sine_stripes
from course_lib.metrics import psnr


def test_sine_stripes_by_hand():
    x = sine_stripes(size=8, period=8.0, angle=0.0, colours=((1.0, 1.0, 1.0), (-1.0, -1.0, -1.0)))
    # angle 0: u = col; t = (1 + sin(2 pi col / 8)) / 2; value = 2 t - 1 = sin(2 pi col / 8)
    expected = torch.sin(2 * math.pi * torch.arange(8.0) / 8).expand(8, 8)
    assert x.shape == (1, 3, 8, 8)
    assert torch.allclose(x[0, 0], expected, atol=1e-6) and torch.equal(x[0, 0], x[0, 2])
    shifted = sine_stripes(size=8, period=8.0, angle=0.0, phase=math.pi / 2,
                           colours=((1.0, 1.0, 1.0), (-1.0, -1.0, -1.0)))
    assert torch.allclose(shifted[0, 0, 0], torch.cos(2 * math.pi * torch.arange(8.0) / 8), atol=1e-6)
    with pytest.raises(ValueError, match="period > 0"):
        sine_stripes(period=0)


def test_sharpness_of_the_truth_is_one_of_a_flat_fill_zero():
    x = sine_stripes(16)
    m = torch.zeros(1, 1, 16, 16)
    m[..., 4:12, 4:12] = 1
    assert torch.allclose(sharpness(x, x, m), torch.ones(1))
    flat = x * (1 - m) + x.mean() * m
    inner = torch.zeros_like(m)
    inner[..., 5:11, 5:11] = 1  # away from the hole's border, where a flat fill still has edges
    assert torch.allclose(sharpness(flat, x, inner), torch.zeros(1))
    with pytest.raises(ValueError, match="needs a hole"):
        sharpness(x, x, torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="flat inside the hole"):
        sharpness(x, torch.zeros_like(x), m)


def test_equal_psnr_fills_have_equal_psnr_and_differ_in_sharpness():
    r = equal_psnr_fills(size=64, hole=24)
    assert abs(r.psnr_plausible - r.psnr_blurred) < 1e-3
    assert abs(float(psnr(r.image, r.plausible, r.mask)) - r.psnr_blurred) < 1e-3
    assert 0 < r.shift < math.pi
    assert torch.equal(r.plausible * (1 - r.mask), r.image * (1 - r.mask))
    assert torch.equal(r.blurred * (1 - r.mask), r.image * (1 - r.mask))
    plausible, blurred = float(sharpness(r.plausible, r.image, r.mask)), float(sharpness(r.blurred, r.image, r.mask))
    assert plausible > 0.9 and blurred < 0.5


def test_equal_psnr_fills_refuse_a_hole_that_does_not_fit():
    for hole in (0, 64, 80):
        with pytest.raises(ValueError, match="smaller than the image"):
            equal_psnr_fills(size=64, hole=hole)
