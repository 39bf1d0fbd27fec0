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

Shown in notebook 90 (official weights) and used by the
``python -m course_lib inpaint`` command.
"""
from __future__ import annotations

import warnings
from typing import Callable, NamedTuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from course_lib.images import image_info, image_to_tensor, mask_to_tensor, tensor_to_image
from course_lib.ops import resize_nearest

__all__ = ["inpaint", "InpaintResult", "pad_to_multiple", "hole_bbox", "SIZE_MULTIPLE"]

SIZE_MULTIPLE = 8  # the generator's H, W must be multiples of 8 (two stride-2 convs + rate-2 attention)

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor]
GeneratorFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class InpaintResult(NamedTuple):
    """``inpaint(..., return_stages=True)``: every field in the input's form (PIL, array, tensor).

    * ``result``: the final image, ``x2 * mask + input * (1 - mask)``;
    * ``stage1``: the coarse network's raw output over the whole image (not pasted);
    * ``flow``: the contextual-attention offsets as a colour image, upscaled (nearest) to the
      image size.
    """

    result: ImageLike
    stage1: ImageLike
    flow: ImageLike


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


def _warn_if_large(mask: torch.Tensor, train_size: int, train_hole: int) -> None:
    """Warn when the hole is larger than what the official v1 models saw in training.

    Each image's holes are measured by their bounding box (a ring-shaped or scattered mask
    counts as its whole extent). Limit per axis:
    ``min(train_hole, train_hole * side / train_size)`` px, i.e. neither more pixels than the
    training holes (the network's receptive field is in pixels) nor a larger fraction of the
    image (less context around it) than 128 of 256.
    """
    boxes = [hole_bbox(mask[b:b + 1]) for b in range(mask.shape[0])]  # one hole box per image
    boxes = [box for box in boxes if box is not None]
    if not boxes:
        return
    box_h, box_w = max(box[2] for box in boxes), max(box[3] for box in boxes)
    H, W = mask.shape[-2:]
    limit_h = min(train_hole, train_hole * H / train_size)
    limit_w = min(train_hole, train_hole * W / train_size)
    if box_h > limit_h or box_w > limit_w:
        warnings.warn(
            f"the hole spans {box_h}x{box_w} px (its bounding box) on a {H}x{W} image, more than the "
            f"{limit_h:.0f}x{limit_w:.0f} px the model was trained for: the official DeepFill v1 models "
            f"saw {train_size}x{train_size} images with ONE rectangular hole of at most "
            f"{train_hole}x{train_hole} px, so larger holes (and free-form masks, which v1 never saw) "
            "tend to come out blurry or broken. Use smaller holes, or pass warn_large_hole=False.",
            UserWarning, stacklevel=3)


def _device_dtype(generator: GeneratorFn, x: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    """The generator's parameter device and dtype (the input's, for a parameter-free callable)."""
    if isinstance(generator, nn.Module):
        for p in generator.parameters():
            return p.device, p.dtype
    return x.device, (x.dtype if x.is_floating_point() else torch.float32)


def inpaint(generator: GeneratorFn, image: ImageLike, mask: Union[ImageLike, torch.Tensor], *,
            return_stages: bool = False, warn_large_hole: bool = True,
            train_size: int = 256, train_hole: int = 128) -> Union[ImageLike, InpaintResult]:
    """Fill the hole of ``image`` given by ``mask`` (1 / white = hole) with ``generator``.

    ``generator`` is a :class:`course_lib.generator.Generator` (or any callable
    ``(x, mask) -> (x_stage1, x_stage2, flow)`` on H, W multiples of 8).
    ``image``: PIL image, uint8 array (H, W, 3), or float tensor in [-1, 1] (3, H, W) /
    (1, 3, H, W) / (B, 3, H, W); any H, W. ``mask``: anything
    :func:`course_lib.images.mask_to_tensor` reads, same H, W; shared by a batch or one per image.

    Padding (to a multiple of 8, by edge replication, bottom/right): the padded MASK is
    replicated as well, so padded pixels are known except below/right of a hole touching the
    border, where they belong to the hole. Marking those known instead would show the
    network either a grey strip (the zeroed hole, replicated) or, if ``image`` still holds
    the original content in the hole, that content; both are cropped away anyway.

    Returns the final image ``x2 * mask + image * (1 - mask)`` in the input's form (PIL ->
    PIL, uint8 array -> uint8 array, tensor -> tensor of the same shape, dtype and device);
    known pixels are returned exactly, and an empty mask returns the input unchanged. With
    ``return_stages=True``, an :class:`InpaintResult` ``(result, stage1, flow)``.

    Warns (UserWarning) when the hole is larger than the training holes (``train_hole`` px
    of ``train_size``, scaled down for smaller images); ``warn_large_hole=False`` silences it.
    """
    if train_size < 1 or train_hole < 1:
        raise ValueError(f"train_size and train_hole must be positive, got {train_size}, {train_hole}")
    info = image_info(image)
    x = image_to_tensor(image)  # (B, 3, H, W) float in [-1, 1]
    m = mask_to_tensor(mask).to(x.device)  # (B or 1, 1, H, W), {0, 1}
    B, _, H, W = x.shape
    if m.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"mask is {tuple(m.shape[-2:])} (H, W) but the image is {(H, W)}: resize the mask to the "
            "image with nearest neighbour, e.g. mask.resize(image.size, Image.NEAREST) for PIL")
    if m.shape[0] not in (1, B):
        raise ValueError(f"a batch of {m.shape[0]} masks for {B} images: give one mask or one per image")
    if warn_large_hole:
        _warn_if_large(m, train_size, train_hole)

    device, dtype = _device_dtype(generator, x)
    x_pad = pad_to_multiple(x).to(device=device, dtype=dtype)  # (B, 3, H8, W8)
    m_pad = pad_to_multiple(m).to(device=device, dtype=dtype)  # (B or 1, 1, H8, W8)
    was_training = isinstance(generator, nn.Module) and generator.training
    if isinstance(generator, nn.Module):
        generator.eval()
    try:
        with torch.no_grad():
            x1, x2, flow = generator(x_pad * (1.0 - m_pad), m_pad)  # (B, 3, H8, W8) x2, (B, 3, h, w)
    finally:
        if was_training:
            generator.train()

    with torch.no_grad():
        x2 = x2[..., :H, :W].to(device=x.device, dtype=x.dtype)  # (B, 3, H, W)
        m = m.to(x.dtype)
        result = tensor_to_image(x2 * m + x * (1.0 - m), info)  # exact on known pixels
        if not return_stages:
            return result
        stage1 = x1[..., :H, :W].to(device=x.device, dtype=x.dtype)  # (B, 3, H, W)
        flow_full = resize_nearest(flow.float(), tuple(x_pad.shape[-2:]))  # (B, 3, H8, W8)
        flow_full = flow_full[..., :H, :W].to(device=x.device, dtype=x.dtype)  # (B, 3, H, W)
        return InpaintResult(result, tensor_to_image(stage1.clamp(-1, 1), info),
                             tensor_to_image(flow_full.clamp(-1, 1), info))
