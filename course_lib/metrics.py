"""Image-quality measures of the paper's Table 1 (mean L1 %, mean L2 %, PSNR, TV %) and SSIM.

Table 1 of Yu et al. (CVPR 2018) reports, on Places2 validation images, relative errors
"reported only as reference" by the release's author (learned inpainting has many right
answers, so pixel errors to the ground truth say little): PatchMatch L1 16.1 %, L2 3.9 %,
PSNR 16.62 dB, TV 25.0 %; contextual attention 8.6 %, 2.1 %, 18.91 dB, 25.3 %. The paper
does not define the measures exactly. course_lib's definitions, all computed **per
image** on images scaled to [0, 1] (a batch in, a ``(B,)`` tensor out):

* ``l1_error``: ``100 * mean |y - x|`` over channels and pixels (percent of the range), an
  **absolute** error; with ``relative=True`` the **relative l1 error**
  ``100 * sum |y - x| / sum |x|`` (``x`` the ground truth);
* ``l2_error``: ``100 * mean (y - x)^2`` (the mean squared error, in percent), absolute; with
  ``relative=True`` the **squared relative l2 error** ``100 * sum (y - x)^2 / sum x^2``;
* ``psnr``: ``10 * log10(1 / mse)`` dB (peak 1.0); identical images give ``inf`` unless
  ``max_db`` caps it;
* ``tv_loss``: total variation of the output ``y`` alone, as a percent of the range:
  ``100 * (mean |y[:, i+1, j] - y[:, i, j]| + mean |y[:, i, j+1] - y[:, i, j]|)``, each
  mean over the pixel pairs that exist (anisotropic TV per pixel). A high value means
  a busy or noisy image, a low one a smooth (blurry) one: compare it with the ground
  truth's TV, not with zero. This is our reading of the paper's "TV loss"; the paper's
  exact normalisation is not stated.
* ``ssim``: Wang, Bovik, Sheikh & Simoncelli (2004), Gaussian window 11x11, sigma 1.5,
  K1 = 0.01, K2 = 0.03, dynamic range L = 1, computed per channel on the 'valid' windows
  (no padding, as the authors' MATLAB code) and averaged over windows and channels.

The paper's L1 and L2 columns are relative errors: "relative L1 error and squared relative
L2 error", the author wrote in release issue #146 (JiahuiYu/generative_inpainting, "metrics
used in the paper"), whose formula is posted there as an image. ``relative=True`` is our
reading of those words: the l1 norm of the error over the l1 norm of the ground truth, and
the squared l2 norm of the error over the squared l2 norm of the ground truth, per image,
over channels and pixels (the hole's pixels with ``mask``), on images mapped to [0, 1] (the
paper's value range for the measures is not stated). The denominator is 0 only for an
all-black ground truth (over the hole, with ``mask``); such an image raises ``ValueError``
rather than giving ``inf``. Absolute and relative numbers are on different scales: say which
one a table holds (``python -m course_lib evaluate`` labels its columns, ``--relative``
switches).

Images may be given in [-1, 1] (course_lib's ``x``, the default ``value_range``) or in
[0, 1] (``value_range=(0, 1)``). The optional ``mask`` (B or 1, 1, H, W), 1 = hole,
restricts the L1 / L2 / PSNR / SSIM average to the hole (SSIM: the windows overlapping it).

Used by ``python -m course_lib evaluate`` and the trainer's validation (``course_lib.train``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = [
    "to_unit_range",
    "l1_error",
    "l2_error",
    "psnr",
    "tv_loss",
    "ssim",
    "ssim_map",
    "gaussian_window",
    "all_metrics",
    "METRIC_NAMES",
]

METRIC_NAMES: tuple[str, ...] = ("l1", "l2", "psnr", "tv", "ssim")
ValueRange = tuple[float, float]


def to_unit_range(x: torch.Tensor, value_range: ValueRange = (-1.0, 1.0)) -> torch.Tensor:
    """Map images from ``value_range`` to [0, 1] as float (no clipping)."""
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, e.g. (-1, 1) or (0, 1); got {value_range}")
    return (x.to(torch.float32) - lo) / (hi - lo)


def _pair(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two image batches and bring both to [0, 1]."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (B, C, H, W), got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name} must be a batch (B, C, H, W), got shape {tuple(t.shape)}; "
                             f"add a batch axis with {name}[None]")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return to_unit_range(x, value_range), to_unit_range(y, value_range)


def _weights(mask: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """Per-pixel weights (B, 1, H, W): ones, or the hole mask (1 = hole) broadcast to B."""
    B, _, H, W = like.shape
    if mask is None:
        return like.new_ones(B, 1, H, W)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != like.shape[-2:] or mask.shape[0] not in (1, B):
        raise ValueError(f"mask must be (B or 1, 1, H, W) = (.., 1, {H}, {W}), got {tuple(mask.shape)}")
    return mask.to(like).expand(B, 1, H, W)


def _weight_sums(w: torch.Tensor) -> torch.Tensor:
    """The weights' sum per image (B,) of ``w`` (B, 1, H, W), refusing an image with an empty hole."""
    total = w.sum(dim=(1, 2, 3))  # (B,)
    if bool((total == 0).any()):
        raise ValueError("the mask has an image with no hole pixel: cannot average over an empty hole")
    return total


def _weighted_mean(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean of ``v`` (B, C, H, W) over C, H, W weighted by ``w`` (B, 1, H, W) -> (B,)."""
    num = (v * w).sum(dim=(1, 2, 3))  # (B,)
    return num / (_weight_sums(w) * v.shape[1])


def _relative(num: torch.Tensor, den: torch.Tensor, name: str, norm: str) -> torch.Tensor:
    """``100 * num / den`` per image (B,), refusing a zero denominator (an all-black ground truth)."""
    zero = (den == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(f"the relative {name} divides by {norm} of the ground truth x, which is 0 for "
                         f"image(s) {zero} (all black in [0, 1], over the hole when a mask is given); "
                         f"use relative=False (the absolute error) for such images")
    return 100.0 * num / den


def _error(err: torch.Tensor, ref: Optional[torch.Tensor], w: torch.Tensor, name: str, norm: str) -> torch.Tensor:
    """``100 * weighted mean of err`` (absolute, ``ref`` None) or ``100 * sum(err) / sum(ref)`` over the
    weights ``w`` (relative: :func:`_relative`); ``err``, ``ref`` (B, C, H, W), ``w`` (B, 1, H, W) -> (B,)."""
    if ref is None:
        return 100.0 * _weighted_mean(err, w)
    _weight_sums(w)  # the same "empty hole" check as the absolute error
    num = (err * w).sum(dim=(1, 2, 3))  # (B,)
    den = (ref * w).sum(dim=(1, 2, 3))  # (B,)
    return _relative(num, den, name, norm)


def l1_error(x: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None,
             value_range: ValueRange = (-1.0, 1.0), relative: bool = False) -> torch.Tensor:
    """L1 error in percent, per image, on [0, 1] images, ``x`` the ground truth. (B,).

    ``relative=False`` (default): the absolute error ``100 * mean |y - x|`` (percent of the
    range). ``relative=True``: the paper's relative l1 error (release issue #146),
    ``100 * sum |y - x| / sum |x|``; raises ``ValueError`` when ``sum |x|`` is 0.
    With ``mask`` (1 = hole) the means and sums run over the hole only.
    """
    x, y = _pair(x, y, value_range)
    return _error((y - x).abs(), x.abs() if relative else None, _weights(mask, x), "l1 error", "sum |x|")


def l2_error(x: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None,
             value_range: ValueRange = (-1.0, 1.0), relative: bool = False) -> torch.Tensor:
    """L2 error in percent, per image, on [0, 1] images, ``x`` the ground truth. (B,).

    ``relative=False`` (default): the absolute error ``100 * mean (y - x)^2`` (the mean
    squared error in percent). ``relative=True``: the paper's squared relative l2 error
    (release issue #146), ``100 * sum (y - x)^2 / sum x^2``; raises ``ValueError`` when
    ``sum x^2`` is 0. With ``mask`` (1 = hole) the means and sums run over the hole only.
    """
    x, y = _pair(x, y, value_range)
    return _error((y - x) ** 2, x**2 if relative else None, _weights(mask, x), "squared l2 error", "sum x^2")


def psnr(x: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None,
         value_range: ValueRange = (-1.0, 1.0), max_db: Optional[float] = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image: ``10 log10(1 / mse)``, peak 1 on [0, 1].

    ``mse`` is the mean over channels and pixels (over the hole with ``mask``). Identical
    images give ``inf``; ``max_db`` (e.g. 100) caps the value so averages stay finite.
    """
    x, y = _pair(x, y, value_range)
    mse = _weighted_mean((y - x) ** 2, _weights(mask, x))  # (B,)
    out = 10.0 * torch.log10(1.0 / mse)
    return out.clamp(max=max_db) if max_db is not None else out


def tv_loss(y: torch.Tensor, value_range: ValueRange = (-1.0, 1.0)) -> torch.Tensor:
    """Total variation of ``y`` in percent, per image (see the module docstring). (B,).

    ``100 * (mean |vertical neighbour differences| + mean |horizontal differences|)`` on
    [0, 1], means over channels and existing pixel pairs. Our definition: the paper does
    not specify its normalisation.
    """
    if not isinstance(y, torch.Tensor) or y.dim() != 4:
        raise ValueError(f"y must be a batch (B, C, H, W), got {getattr(y, 'shape', type(y))}")
    if y.shape[-1] < 2 or y.shape[-2] < 2:
        raise ValueError(f"tv_loss needs images of at least 2x2 pixels, got {tuple(y.shape[-2:])}")
    y = to_unit_range(y, value_range)
    dv = (y[:, :, 1:, :] - y[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))  # (B,)
    dh = (y[:, :, :, 1:] - y[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))  # (B,)
    return 100.0 * (dv + dh)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 1-D Gaussian of SSIM (Wang et al. 2004): (size,), sums to 1."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange = (-1.0, 1.0),
             window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Local SSIM (Wang et al. 2004, eq. 13) at every 'valid' window: (B, C, H-10, W-10).

    ``SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))``
    with Gaussian-weighted local means, variances and covariance, C1 = (k1 L)^2,
    C2 = (k2 L)^2, L = 1 (images in [0, 1]). Computed in float64.
    """
    x, y = _pair(x, y, value_range)
    if x.shape[-1] < window or x.shape[-2] < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {tuple(x.shape[-2:])}")
    x, y = x.to(torch.float64), y.to(torch.float64)
    C = x.shape[1]
    g = gaussian_window(window, sigma).to(x.device)
    kv = g.view(1, 1, window, 1).repeat(C, 1, 1, 1)  # (C, 1, k, 1)
    kh = g.view(1, 1, 1, window).repeat(C, 1, 1, 1)  # (C, 1, 1, k)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, 'valid'
        return F.conv2d(F.conv2d(t, kv, groups=C), kh, groups=C)  # (B, C, H-k+1, W-k+1)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * 1.0) ** 2, (k2 * 1.0) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None,
         value_range: ValueRange = (-1.0, 1.0), window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004), averaged over valid windows and channels. (B,).

    With ``mask``, only the windows that overlap the hole count (the windows in which a
    completed image can differ from the ground truth).
    """
    m = ssim_map(x, y, value_range, window, sigma, k1, k2)  # (B, C, H-k+1, W-k+1)
    if mask is None:
        return m.mean(dim=(1, 2, 3)).to(torch.float32)
    touches = F.max_pool2d(_weights(mask, x).to(m), window, stride=1)  # (B, 1, H-k+1, W-k+1)
    return _weighted_mean(m, (touches > 0).to(m)).to(torch.float32)


def all_metrics(x: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None,
                value_range: ValueRange = (-1.0, 1.0), max_db: float = 100.0,
                relative: bool = False) -> dict[str, torch.Tensor]:
    """Every measure per image, as ``{name: (B,)}``.

    Whole-image ``l1``, ``l2``, ``psnr``, ``tv`` (of ``y``), ``ssim`` (Table 1 style);
    with ``mask`` also ``hole_l1``, ``hole_psnr`` and ``hole_ssim`` (over the hole only,
    where a completed image can differ from the ground truth). ``x`` is the ground truth.
    ``relative`` picks the absolute (default) or the paper's relative ``l1``, ``l2`` and
    ``hole_l1`` (see :func:`l1_error`, :func:`l2_error`); the other measures are the same.
    """
    out = {
        "l1": l1_error(x, y, value_range=value_range, relative=relative),
        "l2": l2_error(x, y, value_range=value_range, relative=relative),
        "psnr": psnr(x, y, value_range=value_range, max_db=max_db),
        "tv": tv_loss(y, value_range=value_range),
        "ssim": ssim(x, y, value_range=value_range),
    }
    if mask is not None:
        out["hole_l1"] = l1_error(x, y, mask, value_range, relative=relative)
        out["hole_psnr"] = psnr(x, y, mask, value_range, max_db=max_db)
        out["hole_ssim"] = ssim(x, y, mask, value_range)
    return out
