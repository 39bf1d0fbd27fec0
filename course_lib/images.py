"""Images and masks in and out: files, PIL, uint8 arrays <-> NCHW tensors in [-1, 1].

The release (``test.py``) reads with OpenCV, maps pixels to ``x / 127.5 - 1``, counts a
mask pixel as a hole where its value is ``> 127.5`` and writes ``(x + 1) * 127.5``
saturated to uint8. Here images are RGB (course_lib's convention; the release is BGR, see
the converter), and the conversions accept what course users actually pass: PIL images of
any mode, ``uint8`` arrays ``(H, W, 3)``, tensors ``(3, H, W)`` / ``(B, 3, H, W)``.

Masks (1 = hole) come from many tools; :func:`mask_to_tensor` reads them as:

* ``uint8`` values (PIL "L"/"RGB", arrays, uint8 tensors): hole where ``> 127.5`` (release);
* float values (arrays, tensors): hole where ``> 0.5``; bool: ``True`` is a hole;
* several colour channels: hole where ANY channel is a hole (the release looks at its first
  channel only; the two agree on black-and-white masks);
* RGBA whose colour is the same everywhere: the hole is in the ALPHA channel (strokes
  painted on a transparent layer; a frequent cause of wrong results in the release's issue
  tracker), so alpha is used; otherwise the colour is used.

Used by the notebooks to load photos and by :func:`course_lib.inpainting.inpaint`.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = [
    "ImageInfo",
    "load_image",
    "load_mask",
    "save_image",
    "to_rgb",
    "image_info",
    "image_to_tensor",
    "tensor_to_image",
    "to_uint8",
    "mask_to_tensor",
    "mask_to_image",
]

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor]
PathLike = Union[str, "os.PathLike[str]"]

# tolerance on the [-1, 1] range of float tensors (rounding from other libraries)
_RANGE_TOL = 1e-3


@dataclass(frozen=True)
class ImageInfo:
    """What an input image was, so a result can be handed back in the same form.

    ``kind`` is ``"pil"``, ``"array"`` (uint8 H x W x 3) or ``"tensor"``; for tensors
    ``batched`` says whether it had a batch axis, and ``dtype``/``device`` are its own.
    """

    kind: str
    batched: bool = True
    dtype: Optional[torch.dtype] = None
    device: Optional[torch.device] = None


def _open(path: PathLike) -> Image.Image:
    """Open an image file fully (not lazily) with its EXIF orientation applied.

    OpenCV's ``imread`` (the release) also applies the EXIF orientation.
    """
    name = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{name!r} is a folder, not an image file; pass one image file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no image file at {name!r}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{name!r} is an empty file (0 bytes), not an image; copy it again")
    try:
        with Image.open(path) as image:  # reads the header only: a huge size is refused here
            image.load()
            return ImageOps.exif_transpose(image) or image
    except Image.DecompressionBombError as err:
        raise ValueError(f"{name!r} claims more pixels than course_lib decodes ({err}); resize the "
                         "photo first (inpainting works at the model's scale, 256 to 512 px)") from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL: unidentified, truncated, broken chunks
        kind = "truncated" if "truncated" in str(err) else "corrupt or not an image"
        raise ValueError(f"{name!r} cannot be read as an image ({kind}: {err}); check the file "
                         "(open it in an image viewer) or export it again as PNG or JPEG") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: grey and palette expanded, alpha dropped, 16-bit scaled.

    Dropping alpha keeps the stored colour of transparent pixels, as OpenCV's
    ``imread`` (the release) does.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"to_rgb expects a PIL image, got {type(image).__name__}")
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey -> 8-bit
        grey = (np.asarray(image, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "F":
        raise ValueError("a float ('F' mode) image has no fixed range; convert it to 8-bit first, e.g. "
                         "Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def load_image(path: PathLike) -> Image.Image:
    """Read an image file as an RGB PIL image (EXIF orientation applied; see :func:`to_rgb`)."""
    return to_rgb(_open(path))


def load_mask(path: PathLike) -> torch.Tensor:
    """Read a mask file as a (1, 1, H, W) float tensor, 1 = hole (rules: :func:`mask_to_tensor`)."""
    return mask_to_tensor(_open(path))


def image_info(image: ImageLike) -> ImageInfo:
    """Describe an input image (kind, batch axis, dtype, device) for :func:`tensor_to_image`."""
    if isinstance(image, Image.Image):
        return ImageInfo("pil")
    if isinstance(image, np.ndarray):
        return ImageInfo("array")
    if isinstance(image, torch.Tensor):
        return ImageInfo("tensor", batched=image.dim() == 4, dtype=image.dtype, device=image.device)
    raise TypeError(f"expected a PIL image, a uint8 numpy array (H, W, 3) or a tensor (3, H, W) / "
                    f"(B, 3, H, W), got {type(image).__name__}")


def _uint8_to_float(array: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1] as the release: ``x / 127.5 - 1``."""
    return array.to(torch.float32) / 127.5 - 1.0


def image_to_tensor(image: ImageLike) -> torch.Tensor:
    """An image as an NCHW tensor in [-1, 1], RGB.

    * PIL image (any mode, via :func:`to_rgb`) or ``uint8`` array (H, W, 3):
      (1, 3, H, W) float32, ``x = pixel / 127.5 - 1`` (release).
    * tensor (3, H, W) or (B, 3, H, W): float tensors must already be in [-1, 1] and keep
      their dtype and device; uint8 tensors (e.g. torchvision's ``read_image``) are mapped
      like arrays.

    :func:`image_info` and :func:`tensor_to_image` convert a result back to the input's form.
    """
    if isinstance(image, Image.Image):
        array = np.asarray(to_rgb(image), dtype=np.uint8)  # (H, W, 3)
        return _uint8_to_float(torch.from_numpy(array.copy())).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"image arrays must be uint8 (0..255), got dtype {image.dtype}; for floats in "
                            "[0, 1] use (a * 255).round().astype(np.uint8), or pass a tensor in [-1, 1]")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image arrays must be (H, W, 3) RGB, got shape {image.shape}; for grey use "
                             "np.stack([a] * 3, axis=-1), for RGBA drop alpha with a[..., :3]")
        tensor = torch.from_numpy(np.ascontiguousarray(image))  # (H, W, 3)
        return _uint8_to_float(tensor).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
    if isinstance(image, torch.Tensor):
        if image.dim() == 3:
            image = image.unsqueeze(0)  # (1, 3, H, W)
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image tensors must be (3, H, W) or (B, 3, H, W) RGB, got shape "
                             f"{tuple(image.shape)}; for (H, W, 3) use t.permute(2, 0, 1)")
        if image.dtype == torch.uint8:
            return _uint8_to_float(image)
        if not image.is_floating_point():
            raise TypeError(f"image tensors must be float in [-1, 1] or uint8, got {image.dtype}")
        if not torch.isfinite(image).all():
            raise ValueError("the image tensor contains NaN or inf")
        low, high = float(image.min()), float(image.max())
        if low < -1 - _RANGE_TOL or high > 1 + _RANGE_TOL:
            hint = ("it looks like 0..255: use x / 127.5 - 1" if high > 2 else
                    "use x.clamp(-1, 1), or x * 2 - 1 if it is in [0, 1]")
            raise ValueError(f"image tensors must be in [-1, 1], got values in [{low:.3g}, {high:.3g}]; "
                             f"{hint}")
        return image
    raise TypeError(f"expected a PIL image, a uint8 numpy array (H, W, 3) or a tensor (3, H, W) / "
                    f"(B, 3, H, W), got {type(image).__name__}")


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 as the release, ``(x + 1) * 127.5`` saturated to 0..255.

    Rounded to the nearest integer (the release's ``saturate_cast`` truncates), so that
    ``pixel / 127.5 - 1`` maps back to exactly the same pixel.
    """
    return ((x.detach().to(torch.float32) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def tensor_to_image(x: torch.Tensor, like: Union[ImageInfo, str] = "pil") -> ImageLike:
    """An NCHW tensor in [-1, 1] back to the form ``like`` describes.

    ``like`` is an :class:`ImageInfo` (from :func:`image_info` of the original input) or one of
    ``"pil"`` (RGB image), ``"array"`` (uint8 (H, W, 3)), ``"tensor"`` (returned as given).
    PIL and array need a single image: (3, H, W) or (1, 3, H, W).
    """
    info = ImageInfo(like) if isinstance(like, str) else like
    if info.kind not in ("pil", "array", "tensor"):
        raise ValueError(f"like must be 'pil', 'array', 'tensor' or an ImageInfo, got {info.kind!r}")
    if x.dim() == 3:
        x = x.unsqueeze(0)  # (1, C, H, W)
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) or (C, H, W) tensor, got shape {tuple(x.shape)}")
    if info.kind == "tensor":
        out = to_uint8(x) if info.dtype == torch.uint8 else x.to(info.dtype or x.dtype)
        out = out.to(info.device) if info.device is not None else out
        if not info.batched:
            if out.shape[0] != 1:
                raise ValueError(f"cannot drop the batch axis of a batch of {out.shape[0]}")
            out = out[0]  # (C, H, W)
        return out
    if x.shape[0] != 1:
        raise ValueError(f"a {info.kind} holds one image, got a batch of {x.shape[0]}; "
                         "convert x[i:i+1] one by one")
    array = to_uint8(x[0]).permute(1, 2, 0).cpu().numpy()  # (H, W, C)
    if info.kind == "array":
        return array
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0])  # mode "L"
    return Image.fromarray(array)  # mode "RGB"


def save_image(image: ImageLike, path: PathLike) -> None:
    """Write an image (PIL, uint8 array, or tensor in [-1, 1]) to a file; format from the suffix."""
    pil = image if isinstance(image, Image.Image) else tensor_to_image(image_to_tensor(image), "pil")
    pil.save(path)


def mask_to_image(mask: torch.Tensor) -> Image.Image:
    """A (1, 1, H, W) or (H, W) mask as a black/white "L" PIL image (255 = hole)."""
    m = mask_to_tensor(mask)  # (B, 1, H, W)
    if m.shape[0] != 1:
        raise ValueError(f"mask_to_image draws one mask, got a batch of {m.shape[0]}")
    return Image.fromarray((m[0, 0].cpu().numpy() * 255).astype(np.uint8))  # mode "L"


def _holes_from_channels(values: np.ndarray, threshold: float, alpha: Optional[np.ndarray]) -> np.ndarray:
    """(H, W, C) colour values (+ optional (H, W) alpha) -> (H, W) bool hole map (module rules)."""
    colour_constant = bool((values == values[:1, :1]).all())
    if alpha is not None and colour_constant and not bool((alpha == alpha.flat[0]).all()):
        return alpha > threshold
    return (values > threshold).any(axis=-1)


def _mask_from_pil(image: Image.Image) -> np.ndarray:
    """A PIL mask -> (H, W) bool hole map."""
    mode = image.mode
    if mode == "1":
        return np.asarray(image, dtype=bool)
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(image, dtype=np.float64) > 65535 / 2  # 16-bit grey
    if mode == "F":
        return _mask_from_array(np.asarray(image, dtype=np.float32))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA")
    return _mask_from_array(np.asarray(image))


def _mask_from_array(array: np.ndarray) -> np.ndarray:
    """A mask array (H, W) or (H, W, C), C in 1..4, bool / uint8 / int 0-1 / float -> (H, W) bool."""
    if array.ndim == 2:
        array = array[:, :, None]  # (H, W, 1)
    if array.ndim != 3 or not 1 <= array.shape[2] <= 4:
        raise ValueError(f"mask arrays must be (H, W) or (H, W, C) with C in 1..4, got shape {array.shape}")
    if array.dtype == bool:
        threshold = 0.5
    elif array.dtype == np.uint8:
        threshold = 127.5
        if array.size and array.max() == 1:
            warnings.warn("this uint8 mask holds only 0 and 1: by the release's rule (hole where > 127.5) it "
                          "has NO hole. If 1 means hole, pass mask.astype(bool) or mask * 255.",
                          UserWarning, stacklevel=3)
    elif np.issubdtype(array.dtype, np.integer):
        if array.size and not np.isin(array, (0, 1)).all():
            raise TypeError(f"integer masks other than uint8 must hold only 0 and 1, got dtype {array.dtype} "
                            "with other values; convert 0..255 masks to uint8, or use floats in [0, 1]")
        threshold = 0.5
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("the mask contains NaN or inf")
        if array.size and (array.min() < -_RANGE_TOL or array.max() > 1 + _RANGE_TOL):
            raise ValueError(f"float masks must be in [0, 1] (hole where > 0.5), got values in "
                             f"[{array.min():.3g}, {array.max():.3g}]; "
                             "for 0..255 values use uint8 or divide by 255")
        threshold = 0.5
    else:
        raise TypeError("masks must be bool, uint8, 0/1 integers or floats in [0, 1], "
                        f"got dtype {array.dtype}")
    channels = array.shape[2]
    if channels in (2, 4):  # grey + alpha, RGB + alpha
        return _holes_from_channels(array[:, :, :-1], threshold, array[:, :, -1])
    return _holes_from_channels(array, threshold, None)


def mask_to_tensor(mask: Union[Image.Image, np.ndarray, torch.Tensor]) -> torch.Tensor:
    """A hole mask from a PIL image, an array or a tensor, as a {0, 1} float32 tensor.

    Accepts a PIL image of any mode; an array (H, W) or (H, W, C) with C in 1..4 (grey, grey +
    alpha, RGB, RGBA); a tensor (H, W), (1, H, W) or (B, 1, H, W). Thresholds and the alpha
    rule are in the module docstring: uint8 ``> 127.5`` (so 127 is known and 128 a hole), float
    ``> 0.5``, bool as is, 0/1 integers as is; RGBA with constant colour uses its alpha.

    Returns (1, 1, H, W) (or (B, 1, H, W) for a batched tensor), float32 on the CPU for PIL and
    arrays, on the tensor's device for tensors; 1 = hole.
    """
    if isinstance(mask, Image.Image):
        holes = _mask_from_pil(mask)  # (H, W)
        return torch.from_numpy(holes.astype(np.float32)).view(1, 1, *holes.shape)  # (1, 1, H, W)
    if isinstance(mask, np.ndarray):
        holes = _mask_from_array(mask)  # (H, W)
        return torch.from_numpy(holes.astype(np.float32)).view(1, 1, *holes.shape)  # (1, 1, H, W)
    if not isinstance(mask, torch.Tensor):
        raise TypeError("expected a mask as a PIL image, a numpy array or a tensor, "
                        f"got {type(mask).__name__}")
    if mask.dim() == 2:
        mask = mask.view(1, 1, *mask.shape)  # (1, 1, H, W)
    elif mask.dim() == 3 and mask.shape[0] == 1:
        mask = mask.unsqueeze(0)  # (1, 1, H, W)
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask tensors must be (H, W), (1, H, W) or (B, 1, H, W), got {tuple(mask.shape)}; "
                         "for an RGB mask use m.amax(dim=-3, keepdim=True), for (B, H, W) use m.unsqueeze(1)")
    if mask.dtype == torch.bool:
        return mask.to(torch.float32)
    if mask.dtype == torch.uint8:
        if mask.numel() and int(mask.max()) == 1:
            warnings.warn("this uint8 mask holds only 0 and 1: by the release's rule (hole where > 127.5) it "
                          "has NO hole. If 1 means hole, pass mask.bool() or mask * 255.",
                          UserWarning, stacklevel=2)
        return (mask > 127.5).to(torch.float32)
    if mask.is_floating_point():
        if not torch.isfinite(mask).all():
            raise ValueError("the mask contains NaN or inf")
        if mask.numel() and (float(mask.min()) < -_RANGE_TOL or float(mask.max()) > 1 + _RANGE_TOL):
            raise ValueError(f"float masks must be in [0, 1] (hole where > 0.5), got values in "
                             f"[{float(mask.min()):.3g}, {float(mask.max()):.3g}]; "
                             "for 0..255 values use uint8 or divide by 255")
        return (mask > 0.5).to(torch.float32)
    if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        raise TypeError(f"integer masks other than uint8 must hold only 0 and 1, got dtype {mask.dtype} with "
                        "other values; use uint8 for 0..255 or floats in [0, 1]")
    return mask.to(torch.float32)
