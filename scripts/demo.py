"""``make demo``: inpaint the bundled sample photos and write an image grid, each column labelled.

With the official Places2 weights in the cache (``python -m course_lib download places2``,
:mod:`course_lib.pretrained`) the photos are filled by the real model at 256x256, the size it
was trained at, with the release's hole sizes. Without them, the demo uses the small model this
project trained on a CPU and says so in one sentence, with the command that gets the real
weights. ``--weights PATH`` uses any other weights.

The toy weights ``course_lib/weights/toy_cpu.pt`` come from the course's own command (see the
README, "Demo model")::

    python -m course_lib train --config toy_cpu --out runs/demo_toy --max-minutes 30 \\
        --export course_lib/weights/toy_cpu.pt

That model is tiny (cnum 8) and has only seen 64x64 procedural toy images with 32x32 hole
boxes, so the photos are shown at the scale it was trained for (resized to ``--size``, 64 by
default, holes scaled with them) and each tile is enlarged for viewing. Columns: input with
the hole (white) | DeepFill v1 (toy_cpu) | a non-learned baseline (harmonic 'diffusion'
fill) | the original.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from course_lib.data import make_dataset
from course_lib.evaluate import baseline_fill, complete, evaluation_masks
from course_lib.images import image_to_tensor, load_image, load_mask
from course_lib.inpaint_cli import load_generator
from course_lib.metrics import psnr
from course_lib.pretrained import OFFICIAL_WEIGHTS, TOY_NOTE, cached_weights
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


def label_columns(path: Path, labels: list[str], tile: int, pad: int = 2, height: int = 14) -> Path:
    """Write a white strip with one label above each column of the grid at ``path`` (in place)."""
    grid = Image.open(path).convert("RGB")
    out = Image.new("RGB", (grid.width, grid.height + height), "white")
    out.paste(grid, (0, height))
    draw = ImageDraw.Draw(out)
    for i, label in enumerate(labels):
        draw.text((pad + i * (tile + pad) + 2, 1), label, fill=(0, 0, 0))
    out.save(path)
    return path


def pick_weights(requested: str | None) -> tuple[Path, str, bool]:
    """(weights, column label, official?): ``--weights``, else cached official Places2, else the toy model."""
    if requested:
        return Path(requested), f"DeepFill v1 ({Path(requested).name})", False
    official = cached_weights("places2")
    if official is not None:
        return official, f"DeepFill v1, official {OFFICIAL_WEIGHTS['places2']['name']}", True
    return WEIGHTS, "DeepFill v1 toy (64 px textures)", False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None,
                        help="generator weights (default: the official Places2 model when downloaded, else the toy model)")
    parser.add_argument("--size", type=int, default=None,
                        help="working size of the photos (default 256 with the official model, 64 with the toy one)")
    parser.add_argument("--toy", type=int, default=None, help="held-out toy images to add (default 3 with the toy model, else 0)")
    parser.add_argument("--scale", type=int, default=None, help="enlarge each tile this many times (nearest; default 3 at 64 px)")
    parser.add_argument("--output", default=str(ROOT / "outputs" / "demo.png"))
    args = parser.parse_args(argv)

    weights, label, official = pick_weights(args.weights)
    if not weights.is_file():
        print(f"demo: no weights at {weights}; train them with\n  python -m course_lib train --config "
              f"toy_cpu --out runs/demo_toy --max-minutes 30 --export {WEIGHTS.relative_to(ROOT)}", file=sys.stderr)
        return 1
    size = args.size or (256 if official else 64)
    n_toy = args.toy if args.toy is not None else (0 if official else 3)
    scale = args.scale or (1 if size >= 256 else 3)
    if weights == WEIGHTS:
        print(f"This is {TOY_NOTE}, so on photos it loses to a smooth diffusion fill; python -m course_lib "
              "download places2 fetches the official Places2 weights, which make demo then uses.")
    else:
        print(f"model: {label} ({weights})")
    torch.manual_seed(0)
    generator = load_generator(weights)
    names, x, mask = load_samples(size)
    if n_toy:
        toy = make_dataset("toy", split="test", size=size, n=n_toy)
        x = torch.cat([x, torch.stack([toy[i] for i in range(n_toy)])])
        mask = torch.cat([mask, evaluation_masks(n_toy, size, size, seed=7)])
        names += [f"toy-{toy.kind(i)}" for i in range(n_toy)]
    with torch.no_grad():
        ours = complete(generator, x, mask)  # (N, 3, S, S)
    base = baseline_fill(x, mask, "diffusion")
    p_ours, p_base = psnr(x, ours, mask), psnr(x, base, mask)  # (N,) hole PSNR in dB
    print(f"{'image':<16} {'hole PSNR: model':>17} {'diffusion':>10}")
    for name, a, b in zip(names, p_ours.tolist(), p_base.tolist()):
        print(f"{name:<16} {a:>17.2f} {b:>10.2f}")
    up = (lambda t: F.interpolate(t, scale_factor=scale, mode="nearest")) if scale > 1 else (lambda t: t)
    columns = [x * (1 - mask) + mask, ours, base, x]  # input (hole white) | model | baseline | original
    labels = ["input (hole white)", label, "diffusion (no learning)", "original"]
    path = save_image_grid([up(c) for c in columns], args.output)
    label_columns(path, labels, tile=size * scale)
    print("columns: " + " | ".join(labels))
    print(f"demo grid: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
