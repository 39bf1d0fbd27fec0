"""``make demo``: inpaint the bundled sample photos (and held-out toy images) with the small
model this project trained on a CPU, and write an image grid.

The weights ``course_lib/weights/toy_cpu.pt`` come from the course's own command (see the
README, "Demo model")::

    python -m course_lib train --config toy_cpu --out runs/demo_toy --max-minutes 30 \\
        --export course_lib/weights/toy_cpu.pt

That model is tiny (cnum 8) and has only seen 64x64 procedural toy images with 32x32 hole
boxes, so the photos are shown at the scale it was trained for (resized to ``--size``, 64 by
default, holes scaled with them) and each tile is enlarged for viewing. Columns: input with
the hole (white) | DeepFill v1 (toy_cpu) | a non-learned baseline (harmonic 'diffusion'
fill) | the original. For real photos at 256x256, use the official weights (notebook 90).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from course_lib.data import make_dataset
from course_lib.evaluate import baseline_fill, complete, evaluation_masks
from course_lib.images import image_to_tensor, load_image, load_mask
from course_lib.inpaint_cli import load_generator
from course_lib.metrics import psnr
from course_lib.samples import sample_paths, samples_dir
from course_lib.train import save_image_grid

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "course_lib" / "weights" / "toy_cpu.pt"


def load_samples(size: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Sample photos and their box masks, resized to ``size`` (image: antialiased, mask: nearest)."""
    names, images, masks = [], [], []
    mask_dir = samples_dir().parent / "masks" / "box"
    for path in sample_paths():
        mask_path = mask_dir / f"{path.stem}.png"
        if not mask_path.is_file():
            continue
        x = image_to_tensor(load_image(path))  # (1, 3, H, W)
        m = load_mask(mask_path)  # (1, 1, H, W)
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        m = (F.interpolate(m, size=(size, size), mode="area") > 0.5).float()  # (1, 1, size, size)
        names.append(path.stem), images.append(x.clamp(-1, 1)), masks.append(m)
    if not names:
        return [], torch.empty(0, 3, size, size), torch.empty(0, 1, size, size)
    return names, torch.cat(images), torch.cat(masks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(WEIGHTS), help="generator weights (default: the bundled toy model)")
    parser.add_argument("--size", type=int, default=64, help="working size of the photos (default 64, the training size)")
    parser.add_argument("--toy", type=int, default=3, help="held-out toy images to add (default 3)")
    parser.add_argument("--scale", type=int, default=3, help="enlarge each tile this many times (nearest)")
    parser.add_argument("--output", default=str(ROOT / "outputs" / "demo.png"))
    args = parser.parse_args(argv)

    if not Path(args.weights).is_file():
        print(f"demo: no weights at {args.weights}; train them with\n  python -m course_lib train --config "
              f"toy_cpu --out runs/demo_toy --max-minutes 30 --export {WEIGHTS.relative_to(ROOT)}", file=sys.stderr)
        return 1
    torch.manual_seed(0)
    generator = load_generator(args.weights)
    names, x, mask = load_samples(args.size)
    if args.toy:
        toy = make_dataset("toy", split="test", size=args.size, n=args.toy)
        x = torch.cat([x, torch.stack([toy[i] for i in range(args.toy)])])
        mask = torch.cat([mask, evaluation_masks(args.toy, args.size, args.size, seed=7)])
        names += [f"toy-{toy.kind(i)}" for i in range(args.toy)]
    with torch.no_grad():
        ours = complete(generator, x, mask)  # (N, 3, S, S)
    base = baseline_fill(x, mask, "diffusion")
    p_ours, p_base = psnr(x, ours, mask), psnr(x, base, mask)  # (N,) hole PSNR in dB
    print(f"{'image':<16} {'hole PSNR: model':>17} {'diffusion':>10}")
    for name, a, b in zip(names, p_ours.tolist(), p_base.tolist()):
        print(f"{name:<16} {a:>17.2f} {b:>10.2f}")
    up = (lambda t: F.interpolate(t, scale_factor=args.scale, mode="nearest")) if args.scale > 1 else (lambda t: t)
    columns = [x * (1 - mask) + mask, ours, base, x]  # input (hole white) | model | baseline | original
    path = save_image_grid([up(c) for c in columns], args.output)
    print("columns: input | DeepFill v1 (toy_cpu) | diffusion baseline | original")
    print(f"demo grid: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
