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
its newest ``step_*.pt``), generator-only weights (``course_lib/weights/toy_cpu.pt``, ``--export``
of the trainer), a converted official ``.pt`` (``python -m course_lib convert``) or the
official TF checkpoint itself (folder or prefix). A mask is white (or > 127.5) where the
hole is, as the release's ``test.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Union

import torch

__all__ = ["load_generator", "find_mask", "inpaint_file", "main", "MASK_SUFFIXES"]

PathLike = Union[str, os.PathLike]
MASK_SUFFIXES = ("", "_mask", "-mask", ".mask", "_hole")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def load_generator(path: PathLike, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """A Generator in eval mode from any checkpoint kind course_lib writes or reads.

    Trainer checkpoints and run folders, generator-only files, converted official models and
    official TF checkpoints (folder or ``snap-N`` prefix): one loader,
    :func:`course_lib.evaluate.load_generator_and_config`, does the dispatch; this returns just the model.
    """
    from course_lib.evaluate import load_generator_and_config as _load

    path = Path(path).expanduser()
    if not path.exists() and not Path(str(path) + ".index").is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass a trainer checkpoint, a run "
                                "folder, course_lib/weights/toy_cpu.pt, or an official model")
    generator, _ = _load(path, device=device)
    return generator.eval()


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
                 mode: str = "auto", memory_budget: Optional[int] = None) -> tuple[Path, str]:
    """Inpaint one image file with one mask file and write the result (format from the suffix).

    Returns the written path and what ran (:meth:`course_lib.inpainting.InpaintResult.describe`).
    """
    from course_lib.images import load_image, load_mask
    from course_lib.inpainting import DEFAULT_MEMORY_BUDGET, inpaint
    img = load_image(image)  # PIL RGB
    m = load_mask(mask)  # (1, 1, H, W)
    if tuple(m.shape[-2:]) != (img.height, img.width):
        raise ValueError(f"mask {mask} is {m.shape[-1]}x{m.shape[-2]} (WxH) but image {image} is "
                         f"{img.width}x{img.height}; give a mask of the image's size")
    res = inpaint(generator, img, m, return_stages=True, mode=mode,
                  memory_budget=DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    res.result.save(output)
    return output, res.describe()


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
                        help="trainer checkpoint / run folder, generator weights .pt, or an official model")
    parser.add_argument("--output", required=True, help="output file (one image) or folder (folder mode)")
    parser.add_argument("--device", default="auto", help="auto (GPU if available), cpu, cuda, ...")
    parser.add_argument("--mode", default="auto", choices=("auto", "exact", "crop"),
                        help="exact: the whole image through the model; crop: a window around the hole at the "
                             "model's scale (large photos); auto (default): exact up to 1024 px when it fits --memory-gb, else crop")
    parser.add_argument("--memory-gb", type=float, default=6.0,
                        help="memory budget of --mode auto, in GiB (default 6)")
    return parser


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
    generator = load_generator(args.checkpoint, device)
    for src, m, dst in pairs:
        written, how = inpaint_file(generator, src, m, dst, args.mode, int(args.memory_gb * 2**30))
        print(f"{src} + {m.name} -> {written} ({how})")
    return 0


if __name__ == "__main__":
    from course_lib.__main__ import run_command
    raise SystemExit(run_command("inpaint", main, sys.argv[1:]))
