"""Non-learned hole filling: the baselines a learned inpainting model must beat (notebook 01).

* :func:`mean_fill`: every hole pixel gets the mean colour of the known pixels.
* :func:`diffusion_fill`: harmonic ("diffusion") inpainting: each hole pixel becomes the
  average of its 4 neighbours, iterated until the fill is smooth; solved coarse-to-fine
  on an image pyramid so that a 128 px hole converges in a fraction of a second.

Both keep the known pixels exactly: ``x_filled = x * (1 - mask) + fill * mask``. They
show what the paper's Table 1 measures cannot tell apart well: a smooth, blurry fill has a
decent PSNR and a low TV, yet looks nothing like the missing content.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mean_fill", "diffusion_fill"]


def _check(x: torch.Tensor, mask: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be an image batch (B, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4 or mask.shape[1] != 1 \
            or mask.shape[-2:] != x.shape[-2:] or mask.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"mask must be (B or 1, 1, H, W) matching x {tuple(x.shape)}, got "
                         f"{getattr(mask, 'shape', type(mask))}; 1 = hole")


def mean_fill(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the hole with the mean colour of the known pixels, per image and channel. (B, C, H, W)."""
    _check(x, mask)
    known = (1 - mask).expand(x.shape[0], 1, *x.shape[-2:])  # (B, 1, H, W)
    count = known.sum(dim=(2, 3), keepdim=True).clamp(min=1)  # (B, 1, 1, 1)
    mean = (x * known).sum(dim=(2, 3), keepdim=True) / count  # (B, C, 1, 1)
    return x * (1 - mask) + mean * mask


def _diffuse(x: torch.Tensor, known: torch.Tensor, fill: torch.Tensor, iterations: int) -> torch.Tensor:
    """Jacobi iterations of the discrete Laplace equation inside the hole (known pixels fixed)."""
    kernel = torch.tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]], dtype=x.dtype)
    kernel = kernel.view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)  # (C, 1, 3, 3)
    y = x * known + fill * (1 - known)
    for _ in range(iterations):
        avg = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])  # (B, C, H, W)
        y = x * known + avg * (1 - known)
    return y


def diffusion_fill(x: torch.Tensor, mask: torch.Tensor, iterations: int = 60, levels: int = 6) -> torch.Tensor:
    """Harmonic inpainting, coarse to fine: smooth colours that match the hole's border. (B, C, H, W).

    At the coarsest level (the image halved ``levels - 1`` times, stopping at 8 px) the
    hole starts as :func:`mean_fill`; each finer level starts from the coarser solution
    (upsampled) and runs ``iterations`` averaging steps. Deterministic.
    """
    _check(x, mask)
    m = mask.to(x.dtype).expand(x.shape[0], 1, *x.shape[-2:])  # (B, 1, H, W)
    pyramid = [(x, m)]
    while len(pyramid) < levels and min(pyramid[-1][0].shape[-2:]) >= 16:
        xs, ms = pyramid[-1]
        known = 1 - ms
        weight = F.avg_pool2d(known, 2)  # (B, 1, H/2, W/2): fraction of known pixels
        xs_small = F.avg_pool2d(xs * known, 2) / weight.clamp(min=1e-6)  # known-pixel average
        ms_small = (weight < 0.5).to(x.dtype)  # mostly hole -> hole
        pyramid.append((xs_small * (1 - ms_small), ms_small))
    xs, ms = pyramid[-1]
    fill = mean_fill(xs, ms)
    for level in range(len(pyramid) - 1, -1, -1):
        xs, ms = pyramid[level]
        if fill.shape[-2:] != xs.shape[-2:]:
            fill = F.interpolate(fill, size=xs.shape[-2:], mode="bilinear", align_corners=False)
        fill = _diffuse(xs, 1 - ms, fill, iterations)
    return x * (1 - mask) + fill * mask
