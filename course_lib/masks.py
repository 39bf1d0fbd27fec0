"""Hole masks: the release's random boxes (DeepFill v1) and free-form brush strokes (v2).

Convention (style guide): a ``mask`` is a float tensor of shape (B or 1, 1, H, W) with
1 = hole and 0 = known.

* DeepFill v1 trains on ONE rectangle per batch: a 128x128 box at a uniformly random
  top-left corner (margins 0) of the 256x256 image, shrunk on each side by a random
  0..MAX_DELTA/2 = 0..16 px, so holes are 96..128 px on a side (release training setup).
  The 128x128 box (not the shrunk hole) is the "local patch" that the local critic and the
  spatially discounted L1 loss see.  :func:`random_bbox`, :func:`bbox_to_mask`,
  :func:`random_box_mask`, :func:`local_patch`.
* DeepFill v2 (ICCV 2019) trains on free-form brush strokes: a few strokes of 4-12
  vertices, 12-40 px wide, turning by angles around 2*pi/5.  :func:`brush_stroke_mask`,
  rasterised by the pure function :func:`strokes_to_mask` (which a drawing widget can call);
  :func:`stroke_masks` scales them to small toy images, and :func:`partial_conv_mask_updates`
  / :func:`hole_boundary_fraction` show why vanilla and partial convolutions struggle on them
  (notebook 11).

Every random function takes ``generator``: a ``torch.Generator``, an int seed (a fresh
generator seeded with it, via :func:`course_lib.seed.make_generator`, so the same int gives
the same mask every call), or ``None`` (torch's global RNG, which
:func:`course_lib.seed.seed_everything` seeds).

Taught in notebook 01 (the inpainting problem: holes and masks); used by the trainer and
the evaluation.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from course_lib.seed import make_generator

__all__ = [
    "BBox",
    "random_bbox",
    "bbox_to_mask",
    "random_box_mask",
    "local_patch",
    "brush_stroke_mask",
    "strokes_to_mask",
    "stroke_masks",
    "partial_conv_mask_updates",
    "hole_boundary_fraction",
]

GeneratorLike = Optional[Union[int, torch.Generator]]
Point = Sequence[float]  # (x, y) = (column, row) in pixels


class BBox(NamedTuple):
    """A box as the release writes it: ``(top, left, height, width)`` in pixels."""

    top: int
    left: int
    height: int
    width: int


def _as_generator(generator: GeneratorLike) -> Optional[torch.Generator]:
    """``None`` stays ``None`` (global RNG); an int or a Generator goes through make_generator."""
    return None if generator is None else make_generator(generator)


def _randint(low: int, high: int, generator: Optional[torch.Generator]) -> int:
    """One integer uniform in ``[low, high)`` (``high`` exclusive, like ``tf.random_uniform``)."""
    return int(torch.randint(low, high, (1,), generator=generator).item())


def _uniform(low: float, high: float, generator: Optional[torch.Generator]) -> float:
    """One float uniform in ``[low, high)``."""
    return low + (high - low) * float(torch.rand((), generator=generator).item())


def _pair(value: Union[int, Sequence[int]], name: str) -> tuple[int, int]:
    """``7`` -> ``(7, 7)``; ``(a, b)`` stays; anything else is a clear error."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints (vertical, horizontal), got {value!r}")


def random_bbox(height: int = 256, width: int = 256, box_height: int = 128, box_width: int = 128,
                margin: Union[int, Sequence[int]] = (0, 0),
                generator: GeneratorLike = None) -> BBox:
    """A random ``box_height`` x ``box_width`` box inside a ``height`` x ``width`` image.

    Release (``random_bbox``): ``top = tf.random_uniform([], minval=margin_v,
    maxval=height - margin_v - box_height, dtype=tf.int32)``, and the same for ``left``.
    ``maxval`` is EXCLUSIVE (as in TF), so at the defaults ``top`` is in 0..127 and the
    box never touches the last row/column; the box always lies inside the image.

    When the range is empty because the box (plus margins) exactly fills the image,
    the box sits at the margin (``top = margin_v``); a box (plus margins) larger than
    the image is a ValueError.

    Returns a :class:`BBox` ``(top, left, box_height, box_width)``.
    """
    margin_v, margin_h = _pair(margin, "margin")
    if min(height, width, box_height, box_width) < 1 or min(margin_v, margin_h) < 0:
        raise ValueError(
            f"random_bbox needs positive sizes and non-negative margins, got image {height}x{width}, "
            f"box {box_height}x{box_width}, margin ({margin_v}, {margin_h})")
    max_top = height - margin_v - box_height  # exclusive upper bound
    max_left = width - margin_h - box_width
    if max_top < margin_v or max_left < margin_h:
        raise ValueError(
            f"a {box_height}x{box_width} box with margins ({margin_v}, {margin_h}) does not fit in a "
            f"{height}x{width} image; use a box of at most "
            f"{height - 2 * margin_v}x{width - 2 * margin_h} (or smaller margins / a larger image)")
    g = _as_generator(generator)
    top = _randint(margin_v, max_top, g) if max_top > margin_v else margin_v
    left = _randint(margin_h, max_left, g) if max_left > margin_h else margin_h
    return BBox(top, left, box_height, box_width)


def _is_int_scalar(value: object) -> bool:
    """An int, a NumPy integer or a 0-dim tensor: one coordinate of a box."""
    return isinstance(value, numbers.Integral) or (isinstance(value, torch.Tensor) and value.dim() == 0)


def _check_bbox(bbox: Sequence[int], height: int, width: int) -> BBox:
    """Validate a ``(top, left, height, width)`` box against an image size."""
    if len(bbox) != 4:
        raise ValueError(f"a bbox is (top, left, height, width), got {bbox!r}")
    top, left, box_h, box_w = (int(v) for v in bbox)
    if box_h < 1 or box_w < 1 or top < 0 or left < 0 or top + box_h > height or left + box_w > width:
        raise ValueError(
            f"bbox {tuple(bbox)} (top, left, height, width) does not lie inside a {height}x{width} "
            f"image; make top + height <= {height} and left + width <= {width}")
    return BBox(top, left, box_h, box_w)


def bbox_to_mask(bbox: Sequence[int], height: int, width: int,
                 max_delta: Union[int, Sequence[int]] = (32, 32),
                 generator: GeneratorLike = None) -> torch.Tensor:
    """The hole inside a box: the box shrunk by a random margin on each side.

    Release (``bbox2mask``/``npmask``): ``delta_h = randint(0 .. max_delta_h // 2)``
    (inclusive) is removed from BOTH the top and the bottom of the box, and
    ``delta_w = randint(0 .. max_delta_w // 2)`` from both the left and the right. With a
    128x128 box and ``max_delta = 32`` the hole is 96..128 px on a side (even sizes).

    Returns a (1, 1, H, W) float32 mask, 1 inside the hole.
    """
    top, left, box_h, box_w = _check_bbox(bbox, height, width)
    max_dh, max_dw = _pair(max_delta, "max_delta")
    if max_dh < 0 or max_dw < 0:
        raise ValueError(f"max_delta must be non-negative, got {(max_dh, max_dw)}")
    if 2 * (max_dh // 2) >= box_h or 2 * (max_dw // 2) >= box_w:
        raise ValueError(
            f"max_delta {(max_dh, max_dw)} could shrink the {box_h}x{box_w} box to nothing; "
            f"use max_delta < the box size (the release: 32 for a 128 box)")
    g = _as_generator(generator)
    delta_h = _randint(0, max_dh // 2 + 1, g)
    delta_w = _randint(0, max_dw // 2 + 1, g)
    mask = torch.zeros(1, 1, height, width)  # (1, 1, H, W)
    mask[..., top + delta_h: top + box_h - delta_h, left + delta_w: left + box_w - delta_w] = 1.0
    return mask


def random_box_mask(batch: int = 1, height: int = 256, width: int = 256,
                    box_height: int = 128, box_width: int = 128,
                    margin: Union[int, Sequence[int]] = (0, 0),
                    max_delta: Union[int, Sequence[int]] = (32, 32),
                    per_sample: bool = False,
                    generator: GeneratorLike = None) -> tuple[torch.Tensor, list[BBox]]:
    """Random box holes for a batch: :func:`random_bbox` then :func:`bbox_to_mask`.

    Release: ONE box and one hole per batch, shared by all images (``per_sample=False``,
    mask (1, 1, H, W), one bbox). ``per_sample=True`` draws one box per image instead
    (mask (B, 1, H, W), B bboxes): more varied batches, not what the release did.

    Returns ``(mask, bboxes)``; ``bboxes`` is a list of :class:`BBox` (length 1 or B),
    ready for :func:`local_patch`.
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    g = _as_generator(generator)
    count = batch if per_sample else 1
    masks, bboxes = [], []
    for _ in range(count):
        bbox = random_bbox(height, width, box_height, box_width, margin, generator=g)
        masks.append(bbox_to_mask(bbox, height, width, max_delta, generator=g))  # (1, 1, H, W)
        bboxes.append(bbox)
    return torch.cat(masks, dim=0), bboxes  # (B or 1, 1, H, W)


def local_patch(x: torch.Tensor, bbox: Union[Sequence[int], Sequence[Sequence[int]]]) -> torch.Tensor:
    """Crop the box out of an NCHW tensor: the release's ``local_patch`` (the local critic's input).

    ``bbox`` is one ``(top, left, height, width)`` box for the whole batch (release), or a
    list of boxes: one (shared) or one per sample. A batch-1 tensor (e.g. a shared mask)
    with B boxes gives B crops. All boxes must have the same size.

    Returns (B, C, box_height, box_width).
    """
    if x.dim() != 4:
        raise ValueError(f"local_patch expects an NCHW tensor, got shape {tuple(x.shape)}")
    B, _, H, W = x.shape
    single = len(bbox) == 4 and all(_is_int_scalar(v) for v in bbox)
    boxes = [_check_bbox(b, H, W) for b in ([bbox] if single else list(bbox))]
    if not boxes:
        raise ValueError("local_patch got an empty list of boxes")
    if len({(b.height, b.width) for b in boxes}) != 1:
        raise ValueError("local_patch needs boxes of one size so the crops stack into a batch, "
                         f"got sizes {sorted({(b.height, b.width) for b in boxes})}")
    if len(boxes) == 1:
        t, l, h, w = boxes[0]
        return x[:, :, t:t + h, l:l + w]  # (B, C, h, w)
    if B not in (1, len(boxes)):
        raise ValueError(f"{len(boxes)} boxes for a batch of {B}: give one box, one per sample, "
                         "or a batch-1 tensor")
    crops = [x[(i if B > 1 else 0):(i if B > 1 else 0) + 1, :, t:t + h, l:l + w]
             for i, (t, l, h, w) in enumerate(boxes)]  # each (1, C, h, w)
    return torch.cat(crops, dim=0)  # (len(boxes), C, h, w)


def strokes_to_mask(strokes: Sequence[Sequence[Point]], height: int, width: int,
                    width_px: Union[float, Sequence[float]] = 20.0) -> torch.Tensor:
    """Rasterise brush strokes (polylines) into a hole mask: a pure function for widgets.

    ``strokes`` is a list of polylines, each a list of ``(x, y)`` = (column, row) points in
    pixel coordinates (pixel ``(row i, col j)`` has its centre at ``x = j, y = i``).
    ``width_px`` is the brush diameter (one number, or one per stroke). A pixel is a hole
    when its centre lies within ``width_px / 2`` of a segment of a stroke: the brush is a
    disk swept along the polyline, which gives round joints and round ends, as DeepFill
    v2 draws them (a line plus a disk at every vertex). A one-point stroke is a dot.

    Returns a (1, 1, H, W) float32 mask, 1 = hole.
    """
    if height < 1 or width < 1:
        raise ValueError(f"strokes_to_mask needs a positive size, got {height}x{width}")
    widths = ([float(width_px)] * len(strokes) if isinstance(width_px, (int, float))
              else [float(w) for w in width_px])
    if len(widths) != len(strokes):
        raise ValueError(f"got {len(widths)} widths for {len(strokes)} strokes: "
                         "give one width or one per stroke")
    rows = torch.arange(height, dtype=torch.float64).view(height, 1)  # (H, 1)
    cols = torch.arange(width, dtype=torch.float64).view(1, width)  # (1, W)
    hole = torch.zeros(height, width, dtype=torch.bool)  # (H, W)
    for stroke, w in zip(strokes, widths):
        points = [(float(p[0]), float(p[1])) for p in stroke]
        if not points:
            continue
        if w <= 0:
            raise ValueError(f"stroke width must be positive, got {w}")
        r2 = (w / 2.0) ** 2
        segments = list(zip(points[:-1], points[1:])) or [(points[0], points[0])]
        for (x0, y0), (x1, y1) in segments:
            dx, dy = x1 - x0, y1 - y0
            length2 = dx * dx + dy * dy
            # parameter of the closest point on the segment, clamped to [0, 1]
            t = (((cols - x0) * dx + (rows - y0) * dy) / length2).clamp(0.0, 1.0) if length2 > 0 \
                else torch.zeros(height, width, dtype=torch.float64)  # (H, W)
            dist2 = (cols - (x0 + t * dx)) ** 2 + (rows - (y0 + t * dy)) ** 2  # (H, W)
            hole |= dist2 <= r2
    return hole.to(torch.float32).view(1, 1, height, width)  # (1, 1, H, W)


def brush_stroke_mask(height: int = 256, width: int = 256, generator: GeneratorLike = None, *,
                      max_strokes: int = 3, min_vertices: int = 4, max_vertices: int = 12,
                      min_width: float = 12.0, max_width: float = 40.0,
                      mean_angle: float = 2 * math.pi / 5, angle_range: float = 2 * math.pi / 15,
                      random_flip: bool = True) -> torch.Tensor:
    """A free-form hole made of random brush strokes (DeepFill v2, "free-form masks").

    DeepFill v2's sampler, re-written here with the same facts:

    * 1..``max_strokes`` strokes (v2: 1..3), each a polyline of ``min_vertices`` ..
      ``max_vertices`` vertices (inclusive here; the paper says 4-12), drawn with a
      brush ``min_width`` .. ``max_width`` px wide (12-40);
    * each stroke draws its own turning range ``[mean - u1, mean + u2]`` with
      ``u1, u2 ~ U(0, angle_range)`` around ``mean_angle = 2*pi/5`` (range 2*pi/15); each
      segment's direction is drawn from it, mirrored (``2*pi - angle``) on every other
      segment, so strokes zig-zag instead of curling up;
    * segment lengths ~ Normal(r, r/2) clipped to [0, 2r] with r = image diagonal / 8; the
      start point is uniform in the image and every vertex is clipped to the image;
    * round joints and ends (:func:`strokes_to_mask`); finally a random left-right and a
      random top-bottom flip (``random_flip``).

    Returns a (1, 1, H, W) float32 mask, 1 = hole. Deterministic for a seed.
    """
    if max_strokes < 1 or not 1 <= min_vertices <= max_vertices or not 0 < min_width <= max_width:
        raise ValueError("brush_stroke_mask needs max_strokes >= 1, 1 <= min_vertices <= max_vertices "
                         f"and 0 < min_width <= max_width, got {max_strokes}, {min_vertices}, "
                         f"{max_vertices}, {min_width}, {max_width}")
    g = _as_generator(generator)
    radius = math.sqrt(height ** 2 + width ** 2) / 8.0
    strokes, widths = [], []
    for _ in range(_randint(1, max_strokes + 1, g)):
        n_vertices = _randint(min_vertices, max_vertices + 1, g)
        angle_min = mean_angle - _uniform(0.0, angle_range, g)
        angle_max = mean_angle + _uniform(0.0, angle_range, g)
        x, y = float(_randint(0, width, g)), float(_randint(0, height, g))
        points = [(x, y)]
        for i in range(n_vertices - 1):  # n_vertices points -> n_vertices - 1 segments
            angle = _uniform(angle_min, angle_max, g)
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            step = float(torch.normal(torch.tensor(radius), torch.tensor(radius / 2), generator=g))
            step = min(max(step, 0.0), 2 * radius)
            x = min(max(x + step * math.cos(angle), 0.0), width - 1.0)
            y = min(max(y + step * math.sin(angle), 0.0), height - 1.0)
            points.append((x, y))
        strokes.append(points)
        widths.append(_uniform(min_width, max_width, g))
    mask = strokes_to_mask(strokes, height, width, widths)  # (1, 1, H, W)
    if random_flip:
        if _uniform(0.0, 1.0, g) < 0.5:
            mask = mask.flip(-1)
        if _uniform(0.0, 1.0, g) < 0.5:
            mask = mask.flip(-2)
    return mask


# ----------------------------------------------------------------------------- DeepFill v2 (notebook 11)

def stroke_masks(batch: int, size: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``batch`` free-form masks (B, 1, size, size): v2's brush strokes scaled from 256 px to ``size``.

    :func:`brush_stroke_mask` with brush widths 12-40 px times
    ``size / 256`` (3-10 px at 64 px), one mask per image.
    """
    if not isinstance(batch, int) or batch < 1 or not isinstance(size, int) or size < 8:
        raise ValueError(f"stroke_masks needs batch >= 1 and size >= 8 (ints), got {batch!r}, {size!r}")
    scale = size / 256.0
    masks = [brush_stroke_mask(size, size, generator, min_width=12.0 * scale, max_width=40.0 * scale)
             for _ in range(batch)]
    return torch.cat(masks, dim=0)  # (B, 1, size, size)


def partial_conv_mask_updates(mask: torch.Tensor, kernel: int = 3, steps: int = 4) -> list[torch.Tensor]:
    """The hole after each of ``steps`` partial-conv layers (Liu et al. 2018, the rule v2 replaces).

    A partial conv marks an output pixel valid as soon as ONE input pixel of its
    ``kernel x kernel`` window is valid, however few: the hole (``mask``, 1 = hole,
    (B, 1, H, W)) shrinks by ``kernel // 2`` pixels per layer, a hard 0/1 rule that cannot
    tell a pixel that saw one known neighbour from one that saw nine. Stride 1, 'SAME'
    windows (the padding counts as hole). Returns ``steps`` masks, the first after one layer.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd positive int, got {kernel!r}")
    out, valid = [], 1.0 - mask
    for _ in range(steps):
        valid = F.max_pool2d(valid, kernel, stride=1, padding=kernel // 2)  # any valid pixel in the window
        out.append(1.0 - valid)
    return out


def hole_boundary_fraction(mask: torch.Tensor, kernel: int = 3) -> float:
    """Fraction of the hole's pixels whose ``kernel x kernel`` window also holds known pixels.

    ``mask`` (B, 1, H, W), 1 = hole. At such a pixel a vanilla conv mixes known values with the
    hole's zeros; outside the image nothing counts (the padding is neither). 0 for an empty hole.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd positive int, got {kernel!r}")
    known = 1.0 - mask
    sees_known = F.max_pool2d(known, kernel, stride=1, padding=kernel // 2)  # (B, 1, H, W): 1 if any known
    holes = mask.sum()
    return float((sees_known * mask).sum() / holes) if holes > 0 else 0.0
