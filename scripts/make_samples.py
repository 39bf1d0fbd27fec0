"""Regenerate data/samples/: five small public-domain / CC0 photos with two hole masks each.

The photos ship inside the scikit-image wheel (``skimage/data/``); their licences are
stated in the docstrings of ``skimage/data/_fetchers.py`` (scikit-image 0.26.0) and
copied into ``data/samples/SOURCES.md``. scikit-image is NOT a dependency of course_lib:
run this script from a throw-away virtual environment::

    python3 -m venv /tmp/skvenv
    /tmp/skvenv/bin/pip install scikit-image pillow
    /tmp/skvenv/bin/python scripts/make_samples.py            # writes data/samples/

Output (deterministic for a given scikit-image / Pillow version)::

    data/samples/images/<name>.jpg          256x256 JPEG, quality 90 (brick: greyscale)
    data/samples/masks/box/<name>.png       one rectangle, 96..128 px a side
    data/samples/masks/strokes/<name>.png   free-form brush strokes
    (masks: 8-bit greyscale, 255 = hole, 0 = known)
"""
from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

# name -> (file in skimage/data, centre of the square crop as fractions (x, y) of the image)
SOURCES: dict[str, tuple[str, tuple[float, float]]] = {
    "astronaut": ("astronaut.png", (0.5, 0.5)),
    "coffee": ("coffee.png", (0.5, 0.5)),
    "chelsea": ("chelsea.png", (0.42, 0.5)),
    "rocket": ("rocket.jpg", (0.5, 0.5)),
    "brick": ("brick.png", (0.5, 0.5)),
}
SIZE = 256
SEED = 2018


def square_crop(img: Image.Image, centre: tuple[float, float]) -> Image.Image:
    """The largest square around ``centre`` (fractions of width, height), kept inside the image."""
    w, h = img.size
    side = min(w, h)
    left = min(max(int(round(centre[0] * w - side / 2)), 0), w - side)
    top = min(max(int(round(centre[1] * h - side / 2)), 0), h - side)
    return img.crop((left, top, left + side, top + side))


def box_mask(rng: random.Random) -> Image.Image:
    """One rectangle hole, 96..128 px a side, fully inside the image (255 = hole)."""
    mask = Image.new("L", (SIZE, SIZE), 0)
    bh, bw = rng.randint(96, 128), rng.randint(96, 128)
    top, left = rng.randint(16, SIZE - 16 - bh), rng.randint(16, SIZE - 16 - bw)
    ImageDraw.Draw(mask).rectangle([left, top, left + bw - 1, top + bh - 1], fill=255)
    return mask


def strokes_mask(rng: random.Random) -> Image.Image:
    """Two or three zig-zag brush strokes, 12..30 px wide, with round joints (255 = hole)."""
    mask = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(rng.randint(2, 3)):
        width = rng.randint(12, 30)
        x, y = rng.uniform(40, SIZE - 40), rng.uniform(40, SIZE - 40)
        points = [(x, y)]
        for i in range(rng.randint(3, 6)):
            angle = rng.uniform(2 * math.pi / 5 - 0.4, 2 * math.pi / 5 + 0.4)
            angle = 2 * math.pi - angle if i % 2 == 0 else angle
            step = rng.uniform(20, 55)
            x = min(max(x + step * math.cos(angle), 0), SIZE - 1)
            y = min(max(y + step * math.sin(angle), 0), SIZE - 1)
            points.append((x, y))
        draw.line(points, fill=255, width=width)
        r = width / 2
        for px, py in points:
            draw.ellipse([px - r, py - r, px + r, py + r], fill=255)
    return mask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "samples"))
    args = parser.parse_args()
    import skimage  # only in the throw-away venv

    data_dir = Path(skimage.__file__).parent / "data"
    out = Path(args.out)
    for sub in ("images", "masks/box", "masks/strokes"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    for name, (filename, centre) in SOURCES.items():
        with Image.open(data_dir / filename) as img:
            img.load()
            mode = "L" if img.mode == "L" else "RGB"
            img = square_crop(img.convert(mode), centre).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        img.save(out / "images" / f"{name}.jpg", quality=90, optimize=True)
        box_mask(rng).save(out / "masks" / "box" / f"{name}.png", optimize=True)
        strokes_mask(rng).save(out / "masks" / "strokes" / f"{name}.png", optimize=True)
        print(f"wrote {name}: {filename} (scikit-image {skimage.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
