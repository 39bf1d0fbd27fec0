"""What PSNR cannot see: two fills of one hole with equal PSNR, one plausible and one blurred.

PSNR is a function of the mean squared error only. On a texture, a fill that continues the
texture but is slightly out of phase is heavily penalised pixel by pixel, while a smooth
fill that predicts the local mean is not (the mean is the L2-optimal guess of an uncertain
pixel, lesson 01). :func:`equal_psnr_fills` builds the pair exactly: the blurred fill is the
course's diffusion baseline, the plausible one is the same stripes with their phase shifted
by the amount (found by bisection) that gives the same hole PSNR. :func:`sharpness` is one
number that tells them apart: the mean gradient magnitude in the hole, relative to the
ground truth's (1 for a fill as sharp as the real texture, near 0 for a blur).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from course_lib.baselines import diffusion_fill
from course_lib.metrics import psnr

__all__ = ["sine_stripes", "sharpness", "EqualPSNR", "equal_psnr_fills"]


def sine_stripes(size: int = 64, period: float = 8.0, angle: float = 0.5, phase: float = 0.0,
                 colours: tuple[tuple[float, float, float], tuple[float, float, float]] =
                 ((0.9, 0.5, -0.6), (-0.7, -0.2, 0.6))) -> torch.Tensor:
    """Smooth stripes ``(1, 3, size, size)`` in [-1, 1]: two colours mixed by ``(1 + sin(2 pi u / period + phase)) / 2``.

    ``u = col * cos(angle) + row * sin(angle)`` (pixels), so ``phase`` shifts the stripes
    continuously across their direction.
    """
    if size < 1 or period <= 0:
        raise ValueError(f"sine_stripes needs size >= 1 and period > 0, got {size}, {period}")
    rows = torch.arange(size, dtype=torch.float64).view(size, 1)  # (H, 1)
    cols = torch.arange(size, dtype=torch.float64).view(1, size)  # (1, W)
    u = cols * math.cos(angle) + rows * math.sin(angle)  # (H, W)
    t = (1.0 + torch.sin(2.0 * math.pi * u / period + phase)) / 2.0  # (H, W) in [0, 1]
    a, b = (torch.tensor(c, dtype=torch.float64).view(3, 1, 1) for c in colours)  # (3, 1, 1)
    return (a * t + b * (1.0 - t)).to(torch.float32)[None]  # (1, 3, H, W)


def _gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|forward difference| summed over channels, on the (H-1, W-1) grid: (B, H-1, W-1)."""
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]  # (B, C, H-1, W-1)
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]  # (B, C, H-1, W-1)
    return torch.sqrt(dx ** 2 + dy ** 2).sum(dim=1)  # (B, H-1, W-1)


def sharpness(filled: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean gradient magnitude of ``filled`` over the hole divided by the same for ``real``: (B,).

    ``filled``, ``real`` (B, 3, H, W); ``mask`` (B or 1, 1, H, W), 1 = hole. 1 means as
    much detail as the ground truth, 0 a flat fill. Raises if the hole is empty or the
    ground truth is flat there (the ratio would be undefined).
    """
    m = mask[..., :-1, :-1].to(filled.dtype).expand(filled.shape[0], 1, -1, -1)[:, 0]  # (B, H-1, W-1)
    area = m.sum(dim=(1, 2))  # (B,)
    if bool((area == 0).any()):
        raise ValueError("sharpness needs a hole: the mask has no pixel = 1 (inside the last row/column excluded)")
    mine = (_gradient_magnitude(filled) * m).sum(dim=(1, 2)) / area  # (B,)
    truth = (_gradient_magnitude(real) * m).sum(dim=(1, 2)) / area  # (B,)
    if bool((truth == 0).any()):
        raise ValueError("the ground truth is flat inside the hole: sharpness relative to it is undefined")
    return mine / truth


class EqualPSNR(NamedTuple):
    """The pair of :func:`equal_psnr_fills`: images (1, 3, H, W), hole PSNRs in dB, the phase shift (radians)."""

    image: torch.Tensor
    mask: torch.Tensor
    plausible: torch.Tensor
    blurred: torch.Tensor
    psnr_plausible: float
    psnr_blurred: float
    shift: float


def equal_psnr_fills(size: int = 64, hole: int = 24, period: float = 8.0, angle: float = 0.5,
                     tolerance_db: float = 1e-3) -> EqualPSNR:
    """Stripes with a centred ``hole`` x ``hole`` hole, filled twice with the same hole PSNR.

    ``blurred``: :func:`course_lib.baselines.diffusion_fill`. ``plausible``: the stripes with
    their phase shifted by ``shift`` inside the hole, where ``shift`` in (0, pi) is found by
    bisection so that the two hole PSNRs differ by less than ``tolerance_db``. (A shift of 0
    is the ground truth, PSNR infinite; a shift of pi swaps the colours, far below the blur.)
    """
    if not 0 < hole < size:
        raise ValueError(f"the hole ({hole} px) must be smaller than the image ({size} px) and positive")
    image = sine_stripes(size, period, angle)  # (1, 3, H, W)
    mask = torch.zeros(1, 1, size, size)
    top = (size - hole) // 2
    mask[..., top:top + hole, top:top + hole] = 1.0
    blurred = diffusion_fill(image, mask)  # (1, 3, H, W)
    target = float(psnr(image, blurred, mask))

    def fill_with(shift: float) -> torch.Tensor:
        return image * (1 - mask) + sine_stripes(size, period, angle, phase=shift) * mask  # (1, 3, H, W)

    low, high = 0.0, math.pi  # PSNR(fill_with(s)) falls as s grows on [0, pi]
    if float(psnr(image, fill_with(high), mask)) >= target:
        raise ValueError("even the colour-swapped stripes score above the blur: use a larger hole or period")
    for _ in range(60):
        mid = (low + high) / 2
        score = float(psnr(image, fill_with(mid), mask))
        if abs(score - target) < tolerance_db:
            break
        low, high = (mid, high) if score > target else (low, mid)
    plausible = fill_with(mid)
    return EqualPSNR(image, mask, plausible, blurred, float(psnr(image, plausible, mask)), target, mid)
