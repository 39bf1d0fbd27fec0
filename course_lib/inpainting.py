"""Inpaint one image (or a batch) with a generator: the high-level API of the course.

``inpaint(generator, image, mask)`` takes what users have (a PIL image, a uint8 array, a
tensor; any size) and gives back the same kind of thing, with only the hole changed.

What it does, against the release's ``test.py``:

* ``test.py`` CROPS image and mask to a multiple of 8 (losing up to 7 rows and columns);
  here both are PADDED at the bottom/right by replicating the last row/column, run, and
  cropped back, so no pixel is lost;
* hole where the mask is > 127.5 (uint8) / > 0.5 (float), RGBA alpha masks understood
  (:func:`course_lib.images.mask_to_tensor`);
* the generator runs in eval mode under ``torch.no_grad()`` on its own device and dtype;
* final image ``x2 * mask + input * (1 - mask)`` (known pixels come back exactly);
* output ``(x + 1) * 127.5`` saturated to uint8 (rounded, see :func:`course_lib.images.to_uint8`).

Large photos, two modes (``mode=``; :data:`MODES`):

* ``"exact"``: the whole image through the model, as the release's ``test.py``, with the fast
  contextual attention restricted to the hole (:func:`course_lib.attention_fast.use_fast_attention`),
  the symmetric 'SAME' paddings folded into the convs (:func:`course_lib.ops.fold_same_padding`)
  and no gradients; peak memory grows with the pixel count (:func:`exact_memory_bytes`): 4.7 GB
  above the process's baseline at 2048 x 2048 with a 10 % hole (measured; README "Speed");
* ``"crop"``: iopaint's "crop" strategy: only a window around the hole's bounding box
  (:func:`crop_window`: twice the hole's side, at least ``train_size``, as the training
  images had a hole of half their side) goes through the model, downscaled to ``train_size``
  when larger (the model's scale), and the fill is pasted back into the hole with a feathered
  seam (:func:`feather_fill`); any image size, memory bounded by the window;
* ``"auto"`` (default): exact when the image's longer side is at most ``crop_trigger`` (1024 px,
  like iopaint's crop trigger size) and :func:`exact_memory_bytes` fits ``memory_budget``, else
  crop (an exact 2048 px run fits 6 GiB but takes minutes on a CPU).

``return_stages=True`` says which mode ran and where (:class:`InpaintResult` ``mode``, ``window``,
``scale``). Outside the hole the result equals the input exactly in every mode.

Shown in notebook 90 (official weights) and used by the
``python -m course_lib inpaint`` command.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, NamedTuple, Optional, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from course_lib.attention_fast import use_fast_attention
from course_lib.images import image_info, image_to_tensor, mask_to_tensor, tensor_to_image
from course_lib.ops import fold_same_padding, resize_nearest

__all__ = ["inpaint", "InpaintResult", "pad_to_multiple", "hole_bbox", "SIZE_MULTIPLE", "MODES",
           "DEFAULT_MEMORY_BUDGET", "exact_memory_bytes", "crop_window", "feather_fill", "hole_fraction",
           "MOSTLY_HOLE", "RECTANGLE_KINDS", "restore_mode"]

SIZE_MULTIPLE = 8  # the generator's H, W must be multiples of 8 (two stride-2 convs + rate-2 attention)
MODES = ("auto", "exact", "crop")
# bytes: admits exact mode up to about 2048 x 2048 (cnum 32); "auto" also caps the side (crop_trigger)
DEFAULT_MEMORY_BUDGET = 6 * 2**30
Window = tuple[int, int, int, int]  # (top, left, height, width) in image pixels

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor]
GeneratorFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class _Stages(NamedTuple):
    result: ImageLike
    stage1: ImageLike
    flow: ImageLike


class InpaintResult(_Stages):
    """``inpaint(..., return_stages=True)``: the images in the input's form (PIL, array, tensor).

    A 3-tuple ``(result, stage1, flow)`` (so ``result, stage1, flow = inpaint(...)`` works):

    * ``result``: the final image, ``x2 * mask + input * (1 - mask)``;
    * ``stage1``: the coarse network's raw output over the whole image (not pasted);
    * ``flow``: the contextual-attention offsets as a colour image, upscaled (nearest) to the
      image size (white away from the hole: the fast attention computes the offsets only where
      the hole can use them).

    and what ran, as attributes:

    * ``mode``: ``"exact"`` or ``"crop"`` (``mode="auto"`` picks one);
    * ``window``: ``(top, left, height, width)`` of the part of the image the model saw (the
      whole image in exact mode);
    * ``scale``: model pixels per image pixel in that window (1.0 in exact mode).

    In crop mode ``stage1`` and ``flow`` hold the window's (resized back); outside it, the input
    and white (zero offset).
    """

    mode: str
    window: Optional[Window]
    scale: float

    def __new__(cls, result: ImageLike, stage1: ImageLike, flow: ImageLike, mode: str = "exact",
                window: Optional[Window] = None, scale: float = 1.0) -> "InpaintResult":
        self = super().__new__(cls, result, stage1, flow)
        self.mode, self.window, self.scale = mode, window, scale
        return self

    def describe(self) -> str:
        """One line: ``exact, whole 2048x2048 image`` or ``crop, window 512x512 at (top, left), run at 256x256``."""
        if self.window is None:
            return self.mode
        t, l_, h, w = self.window
        if self.mode == "exact":
            return f"exact, whole {w}x{h} image"
        return (f"crop, window {w}x{h} at (x={l_}, y={t}), run at "
                f"{max(1, round(w * self.scale))}x{max(1, round(h * self.scale))}")


def pad_to_multiple(t: torch.Tensor, multiple: int = SIZE_MULTIPLE) -> torch.Tensor:
    """Pad an NCHW tensor at the bottom/right by replicating its edge, up to a multiple of ``multiple``."""
    H, W = t.shape[-2:]
    pad_h, pad_w = -H % multiple, -W % multiple
    if pad_h == 0 and pad_w == 0:
        return t
    return F.pad(t, (0, pad_w, 0, pad_h), mode="replicate")  # (B, C, H + pad_h, W + pad_w)


def hole_bbox(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, left, height, width)`` of all holes of a (B, 1, H, W) mask, or None."""
    rows = torch.nonzero(mask.amax(dim=(0, 1, 3)) > 0.5).flatten()  # (n_rows,)
    cols = torch.nonzero(mask.amax(dim=(0, 1, 2)) > 0.5).flatten()  # (n_cols,)
    if rows.numel() == 0:
        return None
    top, left = int(rows[0]), int(cols[0])
    return top, left, int(rows[-1]) - top + 1, int(cols[-1]) - left + 1


#: hole kinds whose training masks are one rectangle (course_lib.masks.HOLE_KINDS): free-form masks are new to them
RECTANGLE_KINDS = ("box", "border")
#: a mask with more than this share of hole is "almost all hole" (:func:`hole_fraction`)
MOSTLY_HOLE = 0.9
#: a hole filling less than this share of its bounding box is free-form rather than a rectangle
_RECTANGLE_FILL = 0.9


def hole_fraction(mask: torch.Tensor) -> float:
    """The share of hole pixels in a (B, 1, H, W) {0, 1} mask (0.0 for an empty mask)."""
    return float(mask.float().mean()) if mask.numel() else 0.0


def _warn_if_large(mask: torch.Tensor, train_size: int, train_hole: int, train_holes: str = "box") -> None:
    """Warn when the hole differs from what the model saw in training: larger, or free-form.

    ``train_size`` / ``train_hole`` / ``train_holes`` are the training image size, hole box size
    and hole kind of the model (a checkpoint's ``image_size``, ``hole_size`` and ``hole_kind``;
    256 / 128 / "box" for the official models). For models trained on one rectangle
    (:data:`RECTANGLE_KINDS`): each image's holes are measured by their bounding box (a
    ring-shaped or scattered mask counts as its whole extent); limit per axis
    ``min(train_hole, train_hole * side / train_size)`` px, i.e. neither more pixels than the
    training holes (the network's receptive field is in pixels) nor a larger fraction of the
    image (less context around it) than ``train_hole`` of ``train_size``; and a hole that fills
    less than 90 % of its bounding box (free-form: strokes, several blobs) gets a note, as such
    models never saw one. Models trained on free-form holes get neither. Every model: a mask
    that is all hole, or more than :data:`MOSTLY_HOLE` (90 %) hole, is said (usually an inverted
    mask), instead of the other two.
    """
    silence = "silence this with warn_large_hole=False (command line: --no-hole-warning)"
    H, W = mask.shape[-2:]
    if mask.numel() and bool((mask > 0.5).all()):
        warnings.warn(f"the mask is all hole on the {W}x{H} (WxH) image: nothing of the image is known, so the "
                      "model invents every pixel; if 0 / black marks the hole in your mask, invert it "
                      f"(1 - mask; command line: --invert-mask); {silence}", UserWarning, stacklevel=3)
        return
    share = hole_fraction(mask)
    if share > MOSTLY_HOLE:
        warnings.warn(f"the mask makes {100 * share:.0f} % of the {W}x{H} (WxH) image a hole, so almost nothing is "
                      "known to fill it from; if 0 / black marks the hole in your mask, invert it (1 - mask; "
                      f"command line: --invert-mask); {silence}", UserWarning, stacklevel=3)
        return
    if train_holes not in RECTANGLE_KINDS:
        return
    boxes = [hole_bbox(mask[b:b + 1]) for b in range(mask.shape[0])]  # one hole box per image
    filled = [float(mask[b].sum()) / (box[2] * box[3]) for b, box in enumerate(boxes) if box is not None]
    boxes = [box for box in boxes if box is not None]
    if not boxes:
        return
    box_h, box_w = max(box[2] for box in boxes), max(box[3] for box in boxes)
    limit_h = min(train_hole, train_hole * H / train_size)
    limit_w = min(train_hole, train_hole * W / train_size)
    if box_h > limit_h or box_w > limit_w:
        warnings.warn(
            f"the hole spans {box_w}x{box_h} px (WxH, its bounding box) on a {W}x{H} image, more than the "
            f"{limit_w:.0f}x{limit_h:.0f} px the model was trained for: it saw {train_size}x{train_size} "
            f"images with ONE rectangular hole of at most {train_hole}x{train_hole} px, so larger holes (and "
            "free-form masks, which a box-trained v1 model never saw) tend to come out blurry or broken. "
            f"Use smaller holes, or {silence}.", UserWarning, stacklevel=3)
    elif min(filled) < _RECTANGLE_FILL:
        warnings.warn(
            f"the mask is free-form (its hole fills {100 * min(filled):.0f} % of its {box_w}x{box_h} px (WxH) "
            f"bounding box): this model was trained on rectangular holes only (hole kind {train_holes!r}), as "
            "the official DeepFill v1 models, so strokes and scattered holes may come out with visible "
            "edges; a model trained with --holes box_or_strokes (DeepFill v2's masks) handles them; "
            f"{silence}", UserWarning, stacklevel=3)


def restore_mode(result: Image.Image, original: Image.Image) -> Image.Image:
    """An RGB result in the PIL mode of the photo it came from, where that mode can hold it.

    Grey photos ("L", "1", 16-bit "I;16"/"I") come back as "L": the luma of the result
    (ITU-R 601, PIL's ``convert("L")``), which on known pixels, whose three channels are
    equal, is exactly the input's grey value (16-bit grey scaled to 8 bits by ``/ 257``); so
    the fill is grey too. "LA" and "RGBA" get their original alpha channel back. Other modes
    (palette "P", "CMYK", ...) stay "RGB": converting back would quantise the fill.
    """
    mode = original.mode
    if mode in ("L", "1", "I;16", "I;16B", "I;16L", "I"):
        return result.convert("L")
    if mode == "LA":
        return Image.merge("LA", (result.convert("L"), original.getchannel("A")))
    if mode == "RGBA":
        return Image.merge("RGBA", (*result.split()[:3], original.getchannel("A")))
    return result


def _device_dtype(generator: GeneratorFn, x: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    """The generator's parameter device and dtype (the input's, for a parameter-free callable)."""
    if isinstance(generator, nn.Module):
        for p in generator.parameters():
            return p.device, p.dtype
    return x.device, (x.dtype if x.is_floating_point() else torch.float32)


def exact_memory_bytes(batch: int, height: int, width: int, cnum: int = 32) -> int:
    """Estimated peak memory of exact mode (no gradients, fast attention), in bytes.

    ``38 * batch * H * W * cnum + 512 MiB`` (``H, W`` padded to multiples of 8): the widest
    full-resolution activations (the x2-upsampled ``2 * cnum`` channels before ``conv15`` /
    ``allconv15``, its padded copy and the conv's output) dominate; 512 MiB covers the
    attention's chunk (:data:`course_lib.attention_fast.DEFAULT_MAX_BYTES`) and the weights.
    Fitted to the peak resident memory above the process's baseline measured at 512, 1024
    and 2048 px (0.43, 1.24 and 4.68 GB; README "Speed"), which it bounds from above
    (0.86, 1.81, 5.64 GB); the default 6 GiB budget of ``mode="auto"`` admits 2048 x 2048.
    """
    return int(38 * batch * height * width * cnum + 512 * 2**20)


def crop_window(bbox: Window, image_size: tuple[int, int], train_size: int = 256) -> Window:
    """The crop-mode window ``(top, left, height, width)`` around a hole's bounding box.

    A square of side ``max(2 * max(box height, box width), train_size)`` centred on the box
    (the training images were ``train_size`` px with a hole of up to half their side), shifted
    to lie inside the image and cut to the image where the image is smaller. It always
    contains the box.
    """
    top, left, bh, bw = bbox
    H, W = image_size
    side = max(2 * max(bh, bw), train_size)
    h, w = min(H, side), min(W, side)
    t = min(max(top + bh // 2 - h // 2, 0), H - h)
    l_ = min(max(left + bw // 2 - w // 2, 0), W - w)
    return t, l_, h, w


def _check_window(window: object, bbox: Window, image_size: tuple[int, int]) -> Window:
    H, W = image_size
    if (not isinstance(window, (tuple, list)) or len(window) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in window)):
        raise ValueError(f"window must be (top, left, height, width) in pixels, got {window!r}")
    t, l_, h, w = window
    if h < 1 or w < 1 or t < 0 or l_ < 0 or t + h > H or l_ + w > W:
        raise ValueError(
            f"window {tuple(window)} (top, left, height, width) is larger than or outside the {W}x{H} "
            f"image (WxH); give one inside it, e.g. {crop_window(bbox, image_size)}, or leave window=None")
    bt, bl, bh, bw = bbox
    if bt < t or bl < l_ or bt + bh > t + h or bl + bw > l_ + w:
        raise ValueError(
            f"window {tuple(window)} does not contain the hole's bounding box {bbox} (top, left, height, "
            f"width): the model can only fill what it sees; enlarge the window or leave window=None")
    return t, l_, h, w


def _box_mean(t: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the ``(2 * radius + 1)`` square around each pixel, inside the image only (separable)."""
    k = 2 * radius + 1
    t = F.avg_pool2d(t, (k, 1), 1, (radius, 0), count_include_pad=False)  # rows
    return F.avg_pool2d(t, (1, k), 1, (0, radius), count_include_pad=False)  # then columns


def feather_fill(fill: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, feather: int) -> torch.Tensor:
    """Blend the fill towards the local colour of the known pixels near the hole's edge.

    ``alpha = clamp(1 - 2 * k, 0, 1)`` with ``k`` the fraction of known pixels in the
    ``(2 * feather + 1)`` square around each pixel: 1 deep in the hole, 0 where half the
    square is known (at a straight edge); the fill is ``alpha * fill + (1 - alpha) * c`` with
    ``c`` the mean of those known pixels. Only hole pixels change (the caller composites with
    the mask), so the seam fades over ``feather`` px on the hole's side. ``feather=0``: ``fill``.
    All (B, C, H, W) with ``mask`` (B or 1, 1, H, W).
    """
    box = hole_bbox(mask)
    if feather <= 0 or box is None:
        return fill
    H, W = mask.shape[-2:]
    t, l_ = max(box[0] - feather, 0), max(box[1] - feather, 0)  # only the hole changes: work near it
    b, r = min(box[0] + box[2] + feather, H), min(box[1] + box[3] + feather, W)
    region = (Ellipsis, slice(t, b), slice(l_, r))
    known = 1.0 - mask[region]  # (B or 1, 1, h, w)
    frac = _box_mean(known, feather)  # (B or 1, 1, h, w)
    colour = _box_mean(x[region] * known, feather) / frac.clamp(min=1e-6)  # (B, C, h, w)
    alpha = (1.0 - 2.0 * frac).clamp(0.0, 1.0)
    out = fill.clone()
    out[region] = torch.where(frac > 0, alpha * fill[region] + (1.0 - alpha) * colour, fill[region])
    return out  # (B, C, H, W)


def _run_generator(generator: GeneratorFn, x: torch.Tensor, m: torch.Tensor, device: torch.device,
                   dtype: torch.dtype, fast_attention: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad to multiples of 8, run under no_grad (with the fast attention), crop back: (x1, x2, flow) at x's size."""
    H, W = x.shape[-2:]
    x_pad = pad_to_multiple(x).to(device=device, dtype=dtype)  # (B, 3, H8, W8)
    m_pad = pad_to_multiple(m).to(device=device, dtype=dtype)  # (B or 1, 1, H8, W8)
    was_training = isinstance(generator, nn.Module) and generator.training
    if isinstance(generator, nn.Module):
        generator.eval()
    try:
        with torch.no_grad(), use_fast_attention(fast_attention), fold_same_padding(fast_attention):
            x1, x2, flow = generator(x_pad * (1.0 - m_pad), m_pad)  # (B, 3, H8, W8) x2, (B, 3, h, w)
    finally:
        if was_training:
            generator.train()
    with torch.no_grad():
        flow = resize_nearest(flow.float(), tuple(x_pad.shape[-2:]))  # (B, 3, H8, W8)
        crop = (Ellipsis, slice(0, H), slice(0, W))
        return (x1[crop].to(device=x.device, dtype=x.dtype), x2[crop].to(device=x.device, dtype=x.dtype),
                flow[crop].to(device=x.device, dtype=x.dtype))


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking) of an NCHW float tensor; identity at the same size."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)


def _check_not_empty(image: object, what: str) -> None:
    """Refuse an image or mask without pixels (0 x 0, W x 0, 0 x H): there is nothing to fill."""
    if isinstance(image, Image.Image):
        empty, size = 0 in image.size, "{}x{} pixels (WxH)".format(*image.size)
    elif isinstance(image, np.ndarray):
        empty, size = image.size == 0, f"an array of shape {image.shape}"
    elif isinstance(image, torch.Tensor):
        empty, size = image.numel() == 0, f"a tensor of shape {tuple(image.shape)}"
    else:
        return  # image_to_tensor / mask_to_tensor name what is wrong with other inputs
    if empty:
        raise ValueError(f"the {what} is {size}: it has no pixels, so there is nothing to inpaint; "
                         "give an image and a mask of at least 1 x 1 pixel")


def inpaint(generator: GeneratorFn, image: ImageLike, mask: Union[ImageLike, torch.Tensor], *,
            return_stages: bool = False, warn_large_hole: bool = True,
            train_size: Optional[int] = None, train_hole: Optional[int] = None,
            train_holes: Optional[str] = None, mode: str = "auto",
            memory_budget: int = DEFAULT_MEMORY_BUDGET, window: Optional[Window] = None,
            feather: Optional[int] = None, fast_attention: bool = True,
            crop_trigger: int = 1024) -> Union[ImageLike, InpaintResult]:
    """Fill the hole of ``image`` given by ``mask`` (1 / white = hole) with ``generator``.

    ``generator`` is a :class:`course_lib.generator.Generator` (or any callable
    ``(x, mask) -> (x_stage1, x_stage2, flow)`` on H, W multiples of 8).
    ``image``: PIL image, uint8 array (H, W, 3), or float tensor in [-1, 1] (3, H, W) /
    (1, 3, H, W) / (B, 3, H, W); any H, W. ``mask``: anything
    :func:`course_lib.images.mask_to_tensor` reads, same H, W; shared by a batch or one per image.

    ``mode``: ``"exact"``, ``"crop"`` or ``"auto"`` (see the module docstring); ``auto`` runs
    exact when ``max(H, W) <= crop_trigger`` and :func:`exact_memory_bytes` <= ``memory_budget``
    bytes (default 6 GiB), else crop.
    Crop mode only: ``window`` ``(top, left, height, width)`` overrides :func:`crop_window` (it
    must lie inside the image and contain the hole's bounding box). ``feather`` (px) blends the
    fill into the known pixels around it over that many pixels (:func:`feather_fill`): in crop
    mode its default is the window's downscaling factor, rounded up (0 when not resized); in
    exact mode it is off (0, the release pastes the raw fill) unless given.
    ``fast_attention=False`` runs the step-by-step dense attention instead of the fast one
    restricted to the hole, and the convs with their padded copies (same result to ~1e-6;
    memory grows with the square of the pixel count).

    Padding (to a multiple of 8, by edge replication, bottom/right): the padded MASK is
    replicated as well, so padded pixels are known except below/right of a hole touching the
    border, where they belong to the hole. Marking those known instead would show the
    network either a grey strip (the zeroed hole, replicated) or, if ``image`` still holds
    the original content in the hole, that content; both are cropped away anyway.

    Returns the final image ``x2 * mask + image * (1 - mask)`` in the input's form (PIL ->
    PIL, uint8 array -> uint8 array, tensor -> tensor of the same shape, dtype and device);
    known pixels are returned exactly, and an empty mask returns the input unchanged. With
    ``return_stages=True``, an :class:`InpaintResult` ``(result, stage1, flow, mode, window, scale)``.

    Warns (UserWarning) when the hole is larger than the training holes (``train_hole`` px
    of ``train_size``, scaled down for smaller images; in crop mode measured at the model's
    scale), when it is free-form but the model was trained on rectangles (``train_holes``, the
    checkpoint's ``hole_kind``: "box" for the official models), and when it is (almost) all
    hole (:func:`_warn_if_large`); ``warn_large_hole=False`` silences them. The three default
    to the generator's ``training_sizes`` attribute, which :func:`course_lib.load_generator`
    sets from the checkpoint's config (``image_size``, ``hole_size``, ``hole_kind``), else to
    the release's 256, 128 and "box".

    A PIL image comes back in its own mode where that mode holds a photo course_lib can give
    back (:func:`restore_mode`): grey ("L", 1-bit, 16-bit) as "L" (the fill's luma), "LA" and
    "RGBA" with their alpha channel; other modes (palette, CMYK, ...) as "RGB".
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)} (auto: exact when it fits "
                         "memory_budget, else crop)")
    # the model's training sizes: given, else what load_generator read from its checkpoint, else the release's
    known = getattr(generator, "training_sizes", None) or {}
    train_size = int(known.get("train_size", 256)) if train_size is None else train_size
    train_hole = int(known.get("train_hole", 128)) if train_hole is None else train_hole
    train_holes = str(known.get("train_holes", "box")) if train_holes is None else train_holes
    if train_size < 1 or train_hole < 1:
        raise ValueError(f"train_size and train_hole must be positive, got {train_size}, {train_hole}")
    if not isinstance(train_holes, str):
        raise TypeError(f"train_holes must be a hole kind such as 'box' or 'strokes', got {train_holes!r}")
    if not isinstance(memory_budget, (int, float)) or memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
    if not isinstance(crop_trigger, int) or crop_trigger < 1:
        raise ValueError(f"crop_trigger must be a positive int (pixels), got {crop_trigger!r}")
    if feather is not None and (not isinstance(feather, int) or feather < 0):
        raise ValueError(f"feather must be a non-negative int (pixels), got {feather!r}")
    _check_not_empty(image, "image")
    _check_not_empty(mask, "mask")
    info = image_info(image)
    x = image_to_tensor(image)  # (B, 3, H, W) float in [-1, 1]
    m = mask_to_tensor(mask).to(x.device)  # (B or 1, 1, H, W), {0, 1}
    B, _, H, W = x.shape
    if m.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"mask is {m.shape[-1]}x{m.shape[-2]} (WxH) but the image is {W}x{H}: resize the mask to the "
            "image with nearest neighbour, e.g. mask.resize(image.size, Image.NEAREST) for PIL")
    if m.shape[0] not in (1, B):
        raise ValueError(f"a batch of {m.shape[0]} masks for {B} images: give one mask or one per image")
    bbox = hole_bbox(m)
    if mode == "crop" and bbox is None:
        raise ValueError("crop mode needs a hole to crop around, but the mask is empty (no pixel > 0.5); "
                         "use mode='auto' or 'exact' (--mode auto / exact), which return the image unchanged")
    if window is not None:
        if mode != "crop":
            raise ValueError(f"window= is for mode='crop' (got mode={mode!r}); pass mode='crop' with it")
        window = _check_window(window, bbox, (H, W))
    if mode == "auto":
        cnum = getattr(generator, "cnum", 32)
        fits = exact_memory_bytes(B, H + (-H % SIZE_MULTIPLE), W + (-W % SIZE_MULTIPLE), cnum) <= memory_budget
        mode = "exact" if (fits and max(H, W) <= crop_trigger) or bbox is None else "crop"

    device, dtype = _device_dtype(generator, x)
    m = m.to(x.dtype)
    if mode == "exact":
        if warn_large_hole:
            _warn_if_large(m, train_size, train_hole, train_holes)
        x1, x2, flow = _run_generator(generator, x, m, device, dtype, fast_attention)
        if feather:  # optional seam blending (off by default, as the release)
            with torch.no_grad():
                x2 = feather_fill(x2, x, m, feather)
        out, t, l_, h, w, scale = x2 * m + x * (1.0 - m), 0, 0, H, W, 1.0
    else:
        t, l_, h, w = window if window is not None else crop_window(bbox, (H, W), train_size)
        scale = min(1.0, train_size / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x_win, m_win = x[..., t:t + h, l_:l_ + w], m[..., t:t + h, l_:l_ + w]  # (B, 3, h, w), (B or 1, 1, h, w)
        with torch.no_grad():
            x_s = _resize(x_win, size)  # (B, 3, h', w') at the model's scale
            m_s = (F.interpolate(m_win, size=size, mode="area") > 0).to(x.dtype)  # any overlap is hole
        if warn_large_hole:
            _warn_if_large(m_s, train_size, train_hole, train_holes)
        x1_s, x2_s, flow_s = _run_generator(generator, x_s, m_s, device, dtype, fast_attention)
        with torch.no_grad():
            fill = _resize(x2_s * m_s + x_s * (1.0 - m_s), (h, w))  # (B, 3, h, w)
            fw = (math.ceil(1.0 / scale) if scale < 1.0 else 0) if feather is None else feather
            fill = feather_fill(fill, x_win, m_win, fw)
            out = x.clone()
            out[..., t:t + h, l_:l_ + w] = fill * m_win + x_win * (1.0 - m_win)
            x1 = x.clone()
            x1[..., t:t + h, l_:l_ + w] = _resize(x1_s, (h, w))
            flow = torch.ones_like(x)  # white: zero offset
            flow[..., t:t + h, l_:l_ + w] = _resize(flow_s, (h, w))

    with torch.no_grad():
        result = tensor_to_image(out, info)  # exact on known pixels
        if isinstance(image, Image.Image):
            result = restore_mode(result, image)
        if not return_stages:
            return result
        return InpaintResult(result, tensor_to_image(x1.clamp(-1, 1), info), tensor_to_image(flow.clamp(-1, 1), info),
                             mode, (t, l_, h, w), scale)
