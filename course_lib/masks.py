"""Hole masks: the release's random boxes (DeepFill v1) and free-form brush strokes (v2).

Convention (style guide): a ``mask`` is a float tensor of shape (B or 1, 1, H, W) with
1 = hole and 0 = known.

* DeepFill v1 trains on ONE rectangle per batch: a 128x128 box at a uniformly random
  top-left corner (margins 0) of the 256x256 image, shrunk on each side by a random
  0..MAX_DELTA/2 = 0..16 px, so holes are 96..128 px on a side (release training setup).
  The 128x128 box (not the shrunk hole) is the "local patch" that the local critic and the
  spatially discounted L1 loss see.  :func:`random_bbox`, :func:`bbox_to_mask`,
  :func:`random_box_mask`, :func:`local_patch`.
* DeepFill v2 (ICCV 2019) trains on free-form holes. The release's ``brush_stroke_mask``
  (``inpaint_ops.py``) draws 1-3 strokes (``np.random.randint(1, 4)``) of 4-11 "vertices"
  (``num_vertex = np.random.randint(4, 12)``, upper end excluded; it draws ``num_vertex``
  segments from a random start point, so the polyline has one point more), 12-39 px wide at 256 px
  (``int(np.random.uniform(12, 40))``), turning by angles around 2*pi/5 +- up to 2*pi/15.
  Its random flips do nothing: ``mask.transpose(...)`` returns a flipped copy that the
  release throws away. Its training code always ORs the strokes with a random box
  (``tf.logical_or``): strokes are never a training hole alone there. course_lib's
  :func:`brush_stroke_mask` reads the release's constants as ranges with both ends included
  (4-12 vertices, 12-40 px) and applies its random flips (lesson 11, glossary "Free-form mask");
  it is rasterised by the pure function :func:`strokes_to_mask` (which a drawing widget can call);
  :func:`stroke_masks` scales them to small toy images, and :func:`partial_conv_mask_updates`
  / :func:`hole_boundary_fraction` show why vanilla and partial convolutions struggle on them
  (notebook 11).

* Training on other holes (config ``hole_kind``, :data:`HOLE_KINDS`): :func:`training_holes`
  draws the release's box, v2's strokes, a box OR strokes (how v2 trains), the user's own
  masks (:class:`MaskFolder`: a random one, randomly flipped) or a box against the image's
  border (:func:`border_box_mask`), one per image; a free-form hole's local box is
  :func:`local_box_around`.

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
import os
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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
    "HOLE_KINDS",
    "FREE_FORM_KINDS",
    "local_box_around",
    "border_box_mask",
    "MaskFolder",
    "training_holes",
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
            f"random_bbox needs positive sizes and non-negative margins, got image {width}x{height} (WxH), "
            f"box {box_width}x{box_height}, margin ({margin_v}, {margin_h})")
    max_top = height - margin_v - box_height  # exclusive upper bound
    max_left = width - margin_h - box_width
    if max_top < margin_v or max_left < margin_h:
        raise ValueError(
            f"a {box_width}x{box_height} (WxH) box with margins ({margin_v}, {margin_h}) does not fit in a "
            f"{width}x{height} image; use a box of at most "
            f"{width - 2 * margin_h}x{height - 2 * margin_v} (or smaller margins / a larger image)")
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
            f"bbox {tuple(bbox)} (top, left, height, width) does not lie inside a {width}x{height} (WxH) "
            f"image; make top + height <= {height} and left + width <= {width}")
    return BBox(top, left, box_h, box_w)


def bbox_to_mask(bbox: Sequence[int], height: int, width: int,
                 max_delta: Union[int, Sequence[int]] = (32, 32),
                 generator: GeneratorLike = None, device: Optional[torch.device] = None) -> torch.Tensor:
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
            f"max_delta {(max_dh, max_dw)} could shrink the {box_w}x{box_h} (WxH) box to nothing; "
            f"use max_delta < the box size (the release: 32 for a 128 box)")
    g = _as_generator(generator)
    delta_h = _randint(0, max_dh // 2 + 1, g)
    delta_w = _randint(0, max_dw // 2 + 1, g)
    mask = torch.zeros(1, 1, height, width, device=device)  # (1, 1, H, W), made on ``device`` (no copy)
    mask[..., top + delta_h: top + box_h - delta_h, left + delta_w: left + box_w - delta_w] = 1.0
    return mask


def random_box_mask(batch: int = 1, height: int = 256, width: int = 256,
                    box_height: int = 128, box_width: int = 128,
                    margin: Union[int, Sequence[int]] = (0, 0),
                    max_delta: Union[int, Sequence[int]] = (32, 32),
                    per_sample: bool = False,
                    generator: GeneratorLike = None,
                    device: Optional[torch.device] = None) -> tuple[torch.Tensor, list[BBox]]:
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
        masks.append(bbox_to_mask(bbox, height, width, max_delta, generator=g, device=device))  # (1, 1, H, W)
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
        raise ValueError(f"strokes_to_mask needs a positive size, got {width}x{height} (WxH)")
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

    DeepFill v2's sampler, re-written here with the release's constants as inclusive ranges. The release differs in
    three ways (lesson 11): its vertex count ``np.random.randint(4, 12)`` and width
    ``int(np.random.uniform(12, 40))`` exclude the upper ends (4-11 segments after a random start point, so 5-12 points; 12-39 px), its
    flips are computed and thrown away (the result of ``mask.transpose`` is not kept), and
    in training it ORs the strokes with a random box (course_lib's ``"box_or_strokes"``
    holes of :func:`training_holes`). Here:

    * 1..``max_strokes`` strokes (v2: 1..3), each a polyline of ``min_vertices`` ..
      ``max_vertices`` vertices, both ends included (4-12), drawn with a
      brush ``min_width`` .. ``max_width`` px wide (12-40, both ends included);
    * each stroke draws its own turning range ``[mean - u1, mean + u2]`` with
      ``u1, u2 ~ U(0, angle_range)`` around ``mean_angle = 2*pi/5`` (range 2*pi/15); each
      segment's direction is drawn from it, mirrored (``2*pi - angle``) on every other
      segment, so strokes zig-zag instead of curling up;
    * segment lengths ~ Normal(r, r/2) clipped to [0, 2r] with r = image diagonal / 8; the
      start point is uniform in the image and every vertex is clipped to the image;
    * round joints and ends (:func:`strokes_to_mask`); finally a random left-right and a
      random top-bottom flip (``random_flip``), which, unlike the release's, are applied.

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


# ----------------------------------------------------------------------------- training hole kinds

#: Hole kinds the trainer draws (config key ``hole_kind``; :func:`training_holes`):
#:
#: * ``"box"``: the release's box (default): one per batch, 96..128 px in a 128 box at 256;
#: * ``"strokes"``: DeepFill v2's free-form brush strokes, one mask per image;
#: * ``"box_or_strokes"``: a release box OR-ed with v2 strokes, one per image: how DeepFill
#:   v2 trains (its strokes are never used alone);
#: * ``"folder"``: the user's own masks (:class:`MaskFolder`), a random one per image, flipped;
#: * ``"border"``: a release box pushed against a random side of the image, so the hole
#:   touches the border (extending a photo past its edge, "outpainting").
HOLE_KINDS = ("box", "strokes", "box_or_strokes", "folder", "border")
#: hole kinds whose masks are not one rectangle: a v1 model trained on "box" or "border" never saw them
FREE_FORM_KINDS = ("strokes", "box_or_strokes", "folder")


def local_box_around(mask: torch.Tensor, box_size: int) -> BBox:
    """The ``box_size`` square that the local critic and the discounted L1 see for a free-form hole.

    The release crops the 128x128 box that holds its rectangular hole; a free-form hole has no
    such box, so this is the ``box_size`` square centred on the hole's bounding box, moved to lie
    inside the image. When that square holds no hole pixel at all (a stroke shaped like a ring,
    or a hole larger than the square), it is centred on the hole pixel nearest to the bounding
    box's centre instead; an empty hole gives the centred square. ``mask`` is (1, 1, H, W), 1 = hole.
    Deterministic (no random draw). Returns a :class:`BBox`.
    """
    H, W = mask.shape[-2:]
    if box_size > min(H, W):
        raise ValueError(f"a local box of {box_size} px does not fit a {W}x{H} (WxH) mask; use "
                         f"hole_size <= {min(H, W)}")
    hole = mask.reshape(H, W) > 0.5  # (H, W)
    points = torch.nonzero(hole)  # (n, 2) rows, cols
    if points.numel() == 0:
        cy, cx = H // 2, W // 2
    else:
        top, left = points.min(dim=0).values.tolist()
        bottom, right = points.max(dim=0).values.tolist()
        cy, cx = (top + bottom + 1) // 2, (left + right + 1) // 2
    def placed(cy: int, cx: int) -> BBox:
        t = min(max(cy - box_size // 2, 0), H - box_size)
        l_ = min(max(cx - box_size // 2, 0), W - box_size)
        return BBox(t, l_, box_size, box_size)
    box = placed(cy, cx)
    if points.numel() and not bool(hole[box.top:box.top + box_size, box.left:box.left + box_size].any()):
        d2 = (points[:, 0] - cy) ** 2 + (points[:, 1] - cx) ** 2  # (n,)
        cy, cx = points[int(torch.argmin(d2))].tolist()
        box = placed(cy, cx)
    return box


def border_box_mask(height: int, width: int, box_size: int, max_delta: int = 32,
                    generator: GeneratorLike = None) -> tuple[torch.Tensor, BBox]:
    """A release box pushed against a random side of the image: the hole touches the border.

    One side (top, bottom, left or right) is drawn uniformly; the ``box_size`` square lies
    against it at a uniformly random position along it, and the hole is the box shrunk by a
    random ``0..max_delta // 2`` px (as :func:`bbox_to_mask`) on the three sides away from the
    border only, so it reaches the image's edge: what the model must fill to extend a photo
    ("outpainting"). Returns ``(mask (1, 1, H, W), box)``; the box is the local critic's patch.
    """
    if box_size > min(height, width):
        raise ValueError(f"a {box_size} px box does not fit a {width}x{height} (WxH) image")
    half = max_delta // 2
    if 2 * half >= box_size:
        raise ValueError(f"max_delta {max_delta} could shrink the {box_size} box to nothing; use "
                         "max_delta < the box size (the release: 32 for a 128 box)")
    g = _as_generator(generator)
    side = _randint(0, 4, g)  # 0 top, 1 bottom, 2 left, 3 right
    if side < 2:
        top = 0 if side == 0 else height - box_size
        left = _randint(0, width - box_size + 1, g)
    else:
        left = 0 if side == 2 else width - box_size
        top = _randint(0, height - box_size + 1, g)
    dh, dw = _randint(0, half + 1, g), _randint(0, half + 1, g)
    # shrink every side but the one on the border: (top, bottom, left, right) cuts
    cut = [dh, dh, dw, dw]
    cut[side] = 0
    mask = torch.zeros(1, 1, height, width)  # (1, 1, H, W)
    mask[..., top + cut[0]: top + box_size - cut[1], left + cut[2]: left + box_size - cut[3]] = 1.0
    return mask, BBox(top, left, box_size, box_size)


class MaskFolder:
    """A folder of the user's own hole masks, drawn at random for training (``hole_kind="folder"``).

    Every image file under ``folder`` (recursive, as :func:`course_lib.data.list_images`) is a
    mask; white (> 127.5) is the hole, as the inference command reads masks
    (:func:`course_lib.images.mask_to_tensor`), or black with ``invert=True`` (masks made for
    other inpainting projects often mark the hole black). :meth:`draw` picks one uniformly,
    resizes it to ``size x size`` (nearest neighbour; the aspect ratio is not kept: a mask is a
    shape, not a photo) and flips it left-right and top-bottom with probability 1/2 each, so a
    folder of N masks gives about 4N different holes.

    Checks that catch a wrong folder before training starts: no image files is an error; when
    the first masks (up to 16) are on average more than half hole the convention is probably the
    other one, an error names ``mask_invert``. A drawn mask with no known pixel at all is an
    error naming the file (the known-pixel loss divides by the known area). Masks are cached
    (at most ``cache`` of them, as bools at ``size``).
    """

    def __init__(self, folder: Union[str, "os.PathLike[str]"], size: int, invert: bool = False,
                 cache: int = 4096) -> None:
        from pathlib import Path

        from course_lib.data import list_images  # lazy: data pulls in the data-set classes

        if not str(folder):
            raise ValueError("hole_kind=folder needs a folder of masks: --set mask_folder=PATH")
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"mask folder {str(folder)!r} does not exist or is not a folder; "
                                    "set mask_folder to a folder of mask images (white = hole)")
        self.folder, self.size, self.invert = str(folder), int(size), bool(invert)
        self.paths = list_images(folder)
        if not self.paths:
            raise ValueError(f"mask folder {self.folder!r} holds no image files; put your masks there as "
                             "PNG (white = hole, or black with mask_invert=true)")
        self._cache: dict[int, torch.Tensor] = {}
        self._cache_size = int(cache)
        sample = [self.load(i) for i in range(min(16, len(self.paths)))]
        mean = float(torch.stack([m.float().mean() for m in sample]).mean())
        if mean > 0.5:
            colour = "black" if self.invert else "white"
            raise ValueError(
                f"the masks in {self.folder!r} are on average {100 * mean:.0f} % hole (read with {colour} = "
                "hole): they probably mark the hole the other way round; "
                + ("drop mask_invert (train without --invert-masks)" if self.invert else
                   "set mask_invert=true (train --invert-masks, or --set mask_invert=true)")
                + ", or use masks whose hole is a smaller part of the image")

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> torch.Tensor:
        """Mask ``index`` at ``size x size`` as a (size, size) bool tensor, True = hole (not flipped)."""
        if index in self._cache:
            return self._cache[index]
        from course_lib.images import load_mask

        path = self.paths[index]
        hole = load_mask(path)  # (1, 1, h, w) float, 1 = hole (white); raises a clear error on a bad file
        if self.invert:
            hole = 1.0 - hole
        pil = Image.fromarray((hole[0, 0].numpy() * 255).astype("uint8"))
        pil = pil.resize((self.size, self.size), Image.Resampling.NEAREST)
        out = torch.from_numpy(np.asarray(pil) > 127)  # (size, size) bool
        if bool(out.all()):
            raise ValueError(f"mask {path!r} is all hole at {self.size}x{self.size}: training needs known "
                             "pixels around the hole; remove it from the folder"
                             + ("" if self.invert else ", or set mask_invert=true if black marks the hole"))
        if len(self._cache) < self._cache_size:
            self._cache[index] = out
        return out

    def draw(self, generator: GeneratorLike = None) -> torch.Tensor:
        """A random mask of the folder, randomly flipped: (1, 1, size, size) float32, 1 = hole."""
        g = _as_generator(generator)
        mask = self.load(_randint(0, len(self.paths), g)).to(torch.float32).view(1, 1, self.size, self.size)
        if _uniform(0.0, 1.0, g) < 0.5:
            mask = mask.flip(-1)
        if _uniform(0.0, 1.0, g) < 0.5:
            mask = mask.flip(-2)
        return mask  # (1, 1, size, size)


def training_holes(kind: str, batch: int, size: int, hole_size: int = 128, max_delta: int = 32,
                   margin: int = 0, generator: GeneratorLike = None, per_sample: bool = False,
                   folder: Optional[MaskFolder] = None) -> tuple[torch.Tensor, list[BBox]]:
    """The holes of one training batch, of the kind ``kind`` (:data:`HOLE_KINDS`).

    * ``"box"``: :func:`random_box_mask` (release: one box per batch, mask (1, 1, H, W); one per
      image with ``per_sample=True``);
    * ``"strokes"``: v2's :func:`brush_stroke_mask` with brush widths scaled by ``size / 256``
      (12..40 px at 256), one per image;
    * ``"box_or_strokes"``: a release box (:func:`random_bbox`, :func:`bbox_to_mask`) OR the
      strokes, one per image (DeepFill v2's training masks);
    * ``"folder"``: :meth:`MaskFolder.draw`, one per image (``folder`` is required);
    * ``"border"``: :func:`border_box_mask`, one per image.

    Every kind but the release box is drawn per image, since the generator, the losses and the
    critics take (B, 1, H, W) masks with one local box per image. The local box
    (``hole_size`` square) is the box itself for the box kinds and :func:`local_box_around` the
    hole for strokes and folder masks. Returns ``(mask, boxes)``: mask (1 or B, 1, size, size),
    ``boxes`` a list of :class:`BBox` of the same length, ready for :func:`local_patch`.
    """
    if kind not in HOLE_KINDS:
        raise ValueError(f"unknown hole kind {kind!r}; choose one of {', '.join(HOLE_KINDS)}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    g = _as_generator(generator)
    if kind == "box":
        return random_box_mask(batch, size, size, hole_size, hole_size, margin=margin, max_delta=max_delta,
                               per_sample=per_sample, generator=g)
    if kind == "folder" and folder is None:
        raise ValueError("hole_kind 'folder' needs a MaskFolder (config: --set mask_folder=PATH)")
    scale = size / 256.0
    masks, boxes = [], []
    for _ in range(batch):
        if kind == "border":
            m, box = border_box_mask(size, size, hole_size, max_delta, generator=g)
        elif kind == "box_or_strokes":
            box = random_bbox(size, size, hole_size, hole_size, margin, generator=g)
            m = bbox_to_mask(box, size, size, max_delta, generator=g)
            strokes = brush_stroke_mask(size, size, g, min_width=12.0 * scale, max_width=40.0 * scale)
            m = torch.maximum(m, strokes)  # logical OR of two {0, 1} masks
        else:
            if kind == "strokes":
                m = brush_stroke_mask(size, size, g, min_width=12.0 * scale, max_width=40.0 * scale)
            else:
                m = folder.draw(g)  # type: ignore[union-attr]
            box = local_box_around(m, hole_size)
        masks.append(m)
        boxes.append(box)
    return torch.cat(masks, dim=0), boxes  # (B, 1, size, size), B boxes
