"""``python -m course_lib inpaint``: fill the holes of one image or of a folder of images.

One image::

    python -m course_lib inpaint --image photo.jpg --mask hole.png --checkpoint runs/p2 --output out.png

A folder (each image takes the mask with the same file stem from ``--mask DIR``, e.g.
``cat.jpg`` <- ``cat.png`` or ``cat_mask.png``; or one mask FILE for every image)::

    python -m course_lib inpaint --image photos/ --mask masks/ --checkpoint model.pt --output results/

Any image size works (:func:`course_lib.inpainting.inpaint` pads to a multiple of 8 and crops
back). ``--mode exact`` runs the whole image through the model, ``--mode crop`` only a window
around the hole at the model's scale (large photos), ``--mode auto`` (default) exact when it
fits ``--memory-gb`` and the image is at most 1024 px, else crop; each written image's line
says which ran and where. ``--checkpoint`` takes a trainer checkpoint (file, or a run folder:
its newest ``step_*.pt``; the weight average when the run keeps one), an official model
name (``places2``, ``celeba``, ``celebahq``, ``imagenet``, after ``python -m course_lib download
NAME``), generator-only weights (``course_lib/weights/toy_cpu.pt``, ``--export``
of the trainer), a converted official ``.pt`` (``python -m course_lib convert``) or the
official TF checkpoint itself (folder or prefix). A mask is white (or > 127.5) where the
hole is, as the release's ``test.py``; a PNG holding only 0 and 1 (saved from a NumPy 0/1
array) is read with 1 = hole and the line says so; ``--invert-mask`` reads black as the hole
(the convention of many other inpainting projects). A mask that makes more than 90 % of the
image a hole stops with a message (usually an inverted mask) unless ``--allow-mostly-hole``.

The model's training sizes (``image_size``, ``hole_size``, ``hole_kind`` of a course_lib
checkpoint; 256 / 128 / box for the official weights) decide when a hole is larger than it
was trained for, or free-form for a box-trained model: a warning line says so,
``--no-hole-warning`` silences it. ``--feather PX`` blends the fill into its surroundings
(exact mode: off by default, as the release). A grey photo comes back grey
(:func:`course_lib.inpainting.restore_mode`).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

__all__ = ["load_generator", "load_generator_and_training", "training_sizes", "read_mask", "find_mask",
           "inpaint_file", "main", "MASK_SUFFIXES"]

PathLike = Union[str, os.PathLike]
MASK_SUFFIXES = ("", "_mask", "-mask", ".mask", "_hole")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def load_generator(path: PathLike, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """A Generator in eval mode from any checkpoint kind course_lib writes or reads, or an official name.

    Trainer checkpoints and run folders (the weight average when the run keeps one),
    generator-only files, official names (``places2``, ... after ``python -m course_lib
    download``), converted official models and official TF checkpoints (folder or
    ``snap-N`` prefix): one function, :func:`course_lib.pretrained.load_weights`, decides
    which weights; this returns just the model, with the sizes it was trained at as its
    ``training_sizes`` attribute (:func:`training_sizes`), which
    :func:`course_lib.inpainting.inpaint` reads for its hole warnings.
    """
    return load_generator_and_training(path, device)[0]


def training_sizes(config: Mapping[str, Any]) -> dict[str, Any]:
    """The training image size, hole size and hole kind of a model, as ``inpaint()`` keywords.

    From a course_lib checkpoint's config (``image_size``, ``hole_size``, ``hole_kind``); the
    official DeepFill v1 weights carry none, so the release's 256 / 128 / "box" fill the gaps.
    """
    return {"train_size": int(config.get("image_size") or 256),
            "train_hole": int(config.get("hole_size") or 128),
            "train_holes": str(config.get("hole_kind") or "box")}


def load_generator_and_training(path: PathLike, device: Union[str, torch.device] = "cpu"
                                ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """:func:`load_generator` plus the model's :func:`training_sizes` (from its checkpoint's config)."""
    from course_lib.evaluate import load_generator_and_config as _load

    generator, config = _load(path, device=device)
    sizes = training_sizes(config or {})
    generator.training_sizes = dict(sizes)  # read by inpaint() (a plain attribute: not in the state dict)
    return generator.eval(), sizes


def read_mask(path: PathLike, invert: bool = False) -> tuple[torch.Tensor, list[str]]:
    """A mask file as a (1, 1, H, W) {0, 1} tensor (1 = hole) and notes on how it was read.

    White (> 127.5) is the hole (:func:`course_lib.images.mask_to_tensor`). A grey, RGB or 16-bit
    mask whose pixels are all 0 or 1 (a NumPy 0/1 array saved as PNG: black to the eye, no hole
    by the release's rule) is read with 1 = hole, and a note says so. ``invert=True``
    (``--invert-mask``) swaps hole and known: black is the hole.
    """
    from course_lib.images import _open, mask_to_tensor

    pil = _open(path)
    notes = []
    values = np.asarray(pil) if pil.mode in ("L", "RGB", "I;16", "I;16B", "I;16L", "I") else None
    if values is not None and values.size and int(values.max()) == 1 and np.isin(values, (0, 1)).all():
        holes = values == 1 if values.ndim == 2 else (values == 1).any(axis=-1)  # (H, W)
        mask = torch.from_numpy(holes.astype(np.float32)).view(1, 1, *holes.shape)  # (1, 1, H, W)
        notes.append("0/1 mask: 1 read as hole")
    else:
        mask = mask_to_tensor(pil)  # (1, 1, H, W)
    if invert:
        mask = 1.0 - mask
        notes.append("inverted: black is the hole")
    return mask, notes


def find_mask(image: Path, masks: Path) -> Path:
    """The mask of ``image``: ``masks`` itself if it is a file, else a file in the folder
    ``masks`` named like the image (same stem, optionally + ``_mask``), any image extension."""
    if masks.is_file():
        return masks
    for suffix in MASK_SUFFIXES:
        for ext in _IMAGE_EXTENSIONS:
            candidate = masks / f"{image.stem}{suffix}{ext}"
            if candidate.is_file() and candidate.resolve() != image.resolve():
                return candidate
    raise FileNotFoundError(f"no mask for {image.name} in {masks}: name it {image.stem}.png or "
                            f"{image.stem}_mask.png (white = hole), or pass one mask file for all images")


def inpaint_file(generator: torch.nn.Module, image: PathLike, mask: PathLike, output: PathLike,
                 mode: str = "auto", memory_budget: Optional[int] = None, *, invert_mask: bool = False,
                 allow_mostly_hole: bool = False, hole_warning: bool = True, feather: Optional[int] = None,
                 trained: Optional[Mapping[str, Any]] = None) -> tuple[Path, str]:
    """Inpaint one image file with one mask file and write the result (format from the suffix).

    ``invert_mask``: black is the hole. A mask that is more than 90 % hole
    (:data:`course_lib.inpainting.MOSTLY_HOLE`) is a ValueError naming ``--invert-mask`` and
    ``--allow-mostly-hole`` unless ``allow_mostly_hole``. ``trained``: the model's
    :func:`training_sizes` (``train_size``, ``train_hole``, ``train_holes``; default: the release's); its warnings (hole larger than trained
    for, free-form on a box-trained model) are printed as ``inpaint: warning: ...`` lines unless
    ``hole_warning=False``. ``feather``: seam blending in px (:func:`course_lib.inpainting.inpaint`).
    The image keeps its mode (a grey photo comes back grey).

    Returns the written path and what ran (:meth:`course_lib.inpainting.InpaintResult.describe`,
    plus how the mask was read).
    """
    from course_lib.images import _open
    from course_lib.inpainting import DEFAULT_MEMORY_BUDGET, MOSTLY_HOLE, hole_fraction, inpaint
    img = _open(image)  # PIL, in its own mode: inpaint() reads any mode and gives the mode back
    m, notes = read_mask(mask, invert=invert_mask)  # (1, 1, H, W)
    if tuple(m.shape[-2:]) != (img.height, img.width):
        raise ValueError(f"mask {mask} is {m.shape[-1]}x{m.shape[-2]} (WxH) but image {image} is "
                         f"{img.width}x{img.height}; give a mask of the image's size")
    share = hole_fraction(m)
    if share > MOSTLY_HOLE and not allow_mostly_hole:
        fix = ("you passed --invert-mask: drop it if white marks the hole in this mask" if invert_mask else
               "if black marks the hole in your mask (the opposite convention, common in other inpainting "
               "projects), add --invert-mask")
        raise ValueError(f"mask {mask} makes {100 * share:.0f} % of the {img.width}x{img.height} (WxH) image {image} "
                         f"a hole, so almost nothing is known to fill it from; {fix}; if you mean it, add "
                         "--allow-mostly-hole")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = inpaint(generator, img, m, return_stages=True, mode=mode, warn_large_hole=hole_warning,
                      memory_budget=DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget,
                      feather=feather, **(dict(trained) if trained else training_sizes({})))
    for w in caught:
        print(f"inpaint: warning: {image}: {w.message}", file=sys.stderr)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    result = res.result
    if result.mode in ("RGBA", "LA") and output.suffix.lower() in (".jpg", ".jpeg"):
        result = result.convert(result.mode[:-1])  # JPEG has no alpha channel
    result.save(output)
    return output, ", ".join([res.describe(), *notes])


def _is_mask_file(path: Path) -> bool:
    return any(path.stem.endswith(s) for s in MASK_SUFFIXES if s)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib inpaint",
        description="Fill the holes (white in the mask) of an image, or of every image in a folder.")
    parser.add_argument("--image", required=True, help="an image file, or a folder of images")
    parser.add_argument("--mask", required=True,
                        help="a mask file (white = hole), or a folder with one mask per image (same name)")
    parser.add_argument("--checkpoint", required=True,
                        help="official model name (places2, celeba, celebahq, imagenet; after python -m course_lib "
                             "download NAME), trainer checkpoint / run folder, generator weights .pt, or a TF checkpoint")
    parser.add_argument("--output", required=True, help="output file (one image) or folder (folder mode)")
    parser.add_argument("--device", default="auto", help="auto (GPU if available), cpu, cuda, ...")
    parser.add_argument("--mode", default="auto", choices=("auto", "exact", "crop"),
                        help="exact: the whole image through the model; crop: a window around the hole at the "
                             "model's scale (large photos); auto (default): exact up to 1024 px when it fits --memory-gb, else crop")
    parser.add_argument("--memory-gb", type=float, default=6.0,
                        help="memory budget of --mode auto, in GiB (default 6)")
    _add_mask_options(parser)
    return parser


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("masks and seams")
    group.add_argument("--invert-mask", action="store_true",
                       help="black is the hole in the mask(s) (the convention of many other inpainting projects)")
    group.add_argument("--allow-mostly-hole", action="store_true",
                       help="fill a mask that is more than 90 %% hole (otherwise an error: usually an inverted mask)")
    group.add_argument("--no-hole-warning", action="store_true",
                       help="no warning when the hole is larger than the model was trained for, or free-form "
                            "for a model trained on boxes")
    group.add_argument("--feather", type=int, default=None, metavar="PX",
                       help="blend the fill into the pixels around the hole over PX pixels (exact mode: off by "
                            "default, as the release; crop mode: default = its downscaling factor)")


def _mask_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`inpaint_file` that the mask options give (checked here)."""
    if args.feather is not None and args.feather < 0:
        raise ValueError(f"--feather must be 0 or more pixels, got {args.feather}")
    return {"invert_mask": args.invert_mask, "allow_mostly_hole": args.allow_mostly_hole,
            "hole_warning": not args.no_hole_warning, "feather": args.feather}


def main(argv: Optional[list[str]] = None) -> int:
    """Exit code 0 on success; errors (bad input: 2) are reported by ``course_lib.__main__.run_command``."""
    args = build_parser().parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    image, mask, output = Path(args.image), Path(args.mask), Path(args.output)
    if not image.exists():
        raise FileNotFoundError(f"--image {image} does not exist")
    if not mask.exists():
        raise FileNotFoundError(f"--mask {mask} does not exist")
    if image.is_dir():
        images = sorted(p for p in image.iterdir()
                        if p.suffix.lower() in _IMAGE_EXTENSIONS and not (mask.is_dir() and mask.resolve() == image.resolve() and _is_mask_file(p)))
        if not images:
            raise FileNotFoundError(f"--image {image} holds no images ({', '.join(_IMAGE_EXTENSIONS)})")
        if output.exists() and not output.is_dir():
            raise ValueError(f"--output {output} must be a folder when --image is a folder")
        pairs = [(p, find_mask(p, mask), output / f"{p.stem}.png") for p in images]
    else:
        if mask.is_dir():
            raise ValueError(f"--mask {mask} is a folder but --image is one file; pass the mask file")
        target = output / f"{image.stem}.png" if output.is_dir() else output
        pairs = [(image, mask, target)]
    if not args.memory_gb > 0:
        raise ValueError(f"--memory-gb must be positive, got {args.memory_gb}")
    options = _mask_options(args)
    generator, trained = load_generator_and_training(args.checkpoint, device)
    for src, m, dst in pairs:
        written, how = inpaint_file(generator, src, m, dst, args.mode, int(args.memory_gb * 2**30),
                                    trained=trained, **options)
        print(f"{src} + {m.name} -> {written} ({how})")
    return 0


if __name__ == "__main__":
    from course_lib.__main__ import run_command
    raise SystemExit(run_command("inpaint", main, sys.argv[1:]))
