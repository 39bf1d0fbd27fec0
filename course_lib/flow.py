"""The attention map as a colour picture: the Middlebury optical-flow colour code.

Contextual attention (paper Section 4.1, attention visualisation) shows where each pixel copied its patch
from: the offset (row, col) of the best background patch is drawn with the colour wheel
of the Middlebury optical-flow benchmark (hue = direction, saturation = length).
The release (``inpaint_ops.py``: ``make_color_wheel``, ``compute_color``,
``flow_to_image``) uses the wheel with segments RY 15, YG 6, GC 4, CB 11, BM 13, MR 6
(55 colours). This module reproduces its colours to within 1/255 (``atan2`` differs in the last bit
between numpy and torch), indexing 0-based.

Taught in notebook 06 and lessons/06_contextual_attention.md, where the flow image is read.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from typing import Iterator

import torch

__all__ = ["COLOR_WHEEL_SEGMENTS", "make_color_wheel", "compute_color", "flow_to_color", "flow_pictures",
           "pictures_enabled"]

_PICTURES = contextvars.ContextVar("course_lib_flow_pictures", default=True)


@contextlib.contextmanager
def flow_pictures(enabled: bool) -> Iterator[None]:
    """Inside ``with flow_pictures(False):`` contextual attention returns ``flow = None`` instead of the picture.

    The trainer's steps never look at the picture; drawing it (float64 colour arithmetic) in
    every generator forward cost time and, before the colour code ran on the device, several
    waits for the GPU. :meth:`course_lib.train.Trainer.save_images` draws it when it shows it.
    """
    token = _PICTURES.set(bool(enabled))
    try:
        yield
    finally:
        _PICTURES.reset(token)


def pictures_enabled() -> bool:
    """False inside ``flow_pictures(False)``; True otherwise (the default: notebooks see the flow)."""
    return _PICTURES.get()

# (name, length) of each hue segment, in wheel order: red->yellow->green->cyan->blue->magenta->red
COLOR_WHEEL_SEGMENTS: tuple[tuple[str, int], ...] = (
    ("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6),
)

# Offsets larger than this are "unknown flow" in the Middlebury code: drawn as zero flow.
UNKNOWN_FLOW_THRESH = 1e7

# Each segment: (channel held at 255, channel that ramps, ramp goes up?)
_SEGMENT_RULES: tuple[tuple[int, int, bool], ...] = (
    (0, 1, True),   # RY: R = 255, G 0 -> 255
    (1, 0, False),  # YG: G = 255, R 255 -> 0
    (1, 2, True),   # GC: G = 255, B 0 -> 255
    (2, 1, False),  # CB: B = 255, G 255 -> 0
    (2, 0, True),   # BM: B = 255, R 0 -> 255
    (0, 2, False),  # MR: R = 255, B 255 -> 0
)


def make_color_wheel() -> torch.Tensor:
    """The 55 RGB colours of the Middlebury wheel, values 0..255 (float64 tensor (55, 3)).

    Within a segment of length ``n`` the ramp is ``floor(255 * i / n)`` for ``i = 0..n-1``
    (going up) or ``255 - floor(255 * i / n)`` (going down), as in the release's
    ``make_color_wheel``. Row 0 is pure red (255, 0, 0), row 15 yellow (255, 255, 0).
    """
    rows = []
    for (_, n), (held, ramped, up) in zip(COLOR_WHEEL_SEGMENTS, _SEGMENT_RULES):
        seg = torch.zeros(n, 3, dtype=torch.float64)  # (n, 3)
        ramp = torch.floor(255.0 * torch.arange(n, dtype=torch.float64) / n)  # (n,)
        seg[:, held] = 255.0
        seg[:, ramped] = ramp if up else 255.0 - ramp
        rows.append(seg)
    return torch.cat(rows, dim=0)  # (55, 3)


@functools.lru_cache(maxsize=None)
def _wheel_on(device: torch.device) -> torch.Tensor:
    """:func:`make_color_wheel` on ``device``, made once per device (a copy to the GPU per call would wait)."""
    return make_color_wheel().to(device)  # (55, 3), never written to


def _check_offsets(offsets: torch.Tensor) -> None:
    if not isinstance(offsets, torch.Tensor):
        raise TypeError(
            f"flow_to_color expects a torch.Tensor of offsets (B, 2, H, W), got "
            f"{type(offsets).__name__}; wrap it with torch.as_tensor(...)"
        )
    if offsets.dim() != 4 or offsets.shape[1] != 2:
        raise ValueError(
            f"flow_to_color expects offsets of shape (B, 2, H, W) (channel 0 = row offset, "
            f"channel 1 = column offset), got {tuple(offsets.shape)}; add a batch dimension "
            f"with offsets[None] or move the (row, col) axis to dim 1"
        )
    if offsets.dtype == torch.bool or offsets.is_complex():
        raise TypeError(f"flow_to_color needs integer or float offsets, got dtype {offsets.dtype}")


def compute_color(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Colours of flow vectors ``(u, v)`` already divided by the largest radius.

    Release ``compute_color``: ``u`` (row) and ``v`` (column) float tensors of any equal
    shape ``S``; returns ``(*S, 3)`` float64 with whole values 0..255. The hue angle
    ``atan2(-v, -u) / pi`` is mapped onto the 55-colour wheel with linear interpolation
    between neighbouring colours; saturation fades to white as the radius goes to 0
    (``col = 1 - rad * (1 - col)``); beyond radius 1 the colour is darkened,
    ``col * 0.75`` (never reached from :func:`flow_to_color`, which normalises first);
    the result is ``floor(255 * col)``. NaN vectors are black.
    """
    wheel = _wheel_on(u.device) / 255.0  # (55, 3) in [0, 1]
    ncols = wheel.shape[0]
    nan = torch.isnan(u) | torch.isnan(v)
    u = torch.where(nan, torch.zeros_like(u), u).to(torch.float64)
    v = torch.where(nan, torch.zeros_like(v), v).to(torch.float64)
    rad = torch.sqrt(u**2 + v**2).unsqueeze(-1)  # (*S, 1)
    a = torch.atan2(-v, -u) / math.pi  # (*S,) in [-1, 1]
    # The release computes the 1-based position fk in [1, ncols]; keep that arithmetic so
    # that the interpolation weight f is bit-identical, then index 0-based.
    fk = (a + 1.0) / 2.0 * (ncols - 1) + 1.0  # (*S,)
    k0_1based = torch.floor(fk)
    f = (fk - k0_1based).unsqueeze(-1)  # (*S, 1)
    k0 = k0_1based.long() - 1  # 0-based, in [0, ncols - 1]
    k1 = k0 + 1
    k1 = torch.where(k1 == ncols, torch.zeros_like(k1), k1)  # wrap around the wheel (only when f == 0)
    col = (1.0 - f) * wheel[k0] + f * wheel[k1]  # (*S, 3)
    col = torch.where(rad <= 1.0, 1.0 - rad * (1.0 - col), col * 0.75)
    col = col * (~nan).unsqueeze(-1)  # NaN -> black
    return torch.floor(255.0 * col).clamp(0, 255)  # (*S, 3), as np.uint8(np.floor(...))


def flow_to_color(offsets: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Colour-code offsets ``(B, 2, H, W)`` into an RGB image ``(B, 3, H, W)`` in [-1, 1].

    Release ``flow_to_image``, per image: ``u`` = channel 0 (row offset), ``v`` =
    channel 1 (column offset); |values| > 1e7 count as unknown and become 0; both are
    divided by (largest radius + float64 eps); :func:`compute_color` gives 0..255 colours,
    returned as ``img / 127.5 - 1``.

    So: zero offset = white, an offset pointing down (+row) = red, up = sky blue
    (0, 209, 255), right (+col) = orange-yellow (255, 229, 0), left = violet (88, 0, 255).

    Deviation: the release keeps a running maximum radius across the images of a batch
    (image i is normalised by the largest radius among images 0..i); here each image is
    normalised by its own largest radius, so a picture does not depend on its batch mates.
    """
    _check_offsets(offsets)
    u = offsets[:, 0].detach().to(torch.float64).clone()  # (B, H, W)
    v = offsets[:, 1].detach().to(torch.float64).clone()  # (B, H, W)
    unknown = (u.abs() > UNKNOWN_FLOW_THRESH) | (v.abs() > UNKNOWN_FLOW_THRESH)
    u = torch.where(unknown, torch.zeros_like(u), u)  # where(), not u[unknown] = 0: no wait for the GPU
    v = torch.where(unknown, torch.zeros_like(v), v)
    finite_rad = torch.nan_to_num(torch.sqrt(u**2 + v**2), nan=0.0)  # (B, H, W)
    max_rad = finite_rad.flatten(1).amax(dim=1).view(-1, 1, 1)  # (B, 1, 1)
    eps = torch.finfo(torch.float64).eps  # numpy's np.finfo(float).eps, as the release
    img = compute_color(u / (max_rad + eps), v / (max_rad + eps))  # (B, H, W, 3)
    return (img.permute(0, 3, 1, 2) / 127.5 - 1.0).to(dtype)  # (B, 3, H, W) in [-1, 1]
