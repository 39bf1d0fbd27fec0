"""A procedural toy data set: textures and cartoon faces a CPU model can learn to inpaint.

Real photographs need days of GPU training before inpainting looks right. These images
have the two kinds of structure DeepFill v1 is built for, at a scale a CPU can learn in
minutes: repeating **textures** (stripes, checks, dots, bricks), where the hole can be
filled by continuing or copying the pattern around it (what contextual attention does),
and **cartoon faces**, whose missing part (an eye, the mouth) must be *hallucinated* from
the layout learned over the data set (what the dilated branch and the adversarial loss do).

Two design choices make the task learnable in CPU minutes, both chosen by measurement
with ``scripts/learning_check.py`` (a model that cannot learn the task in minutes only
learns to blur, and a blur is what the non-learned baselines already do):

* flat colours from a small crayon box (:data:`PALETTE`, :data:`SKIN_TONES`), so the
  network learns the colours quickly and spends its training on *where* they go;
* coarse patterns and a face template that varies little: at 64 px, stripes repeat every
  8-26 px, checks every 16-37 px, dots every 11-21 px, bricks are 8-14 px high with
  1.5-3 px of mortar, and eyes and mouth sit at nearly fixed places. With 5 px patterns
  and freely varying faces, an 8-minute model lost to the diffusion fill: the phase of a
  fine pattern inside a 32 px hole is hard to get right, and a wrong phase costs more
  PSNR than a blur.

Every image is drawn with torch from a generator seeded by ``(seed, index)``: the same
index always gives the same image, on every machine and in every DataLoader worker.
Edges are anti-aliased (soft over about one pixel). No files, no downloads.

Used by the ``toy_cpu`` training config, the CPU learning check and the training notebooks.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["TOY_KINDS", "PALETTE", "SKIN_TONES", "toy_image", "ToyDataset"]

TOY_KINDS: tuple[str, ...] = ("stripes", "checks", "dots", "bricks", "faces")


# ----------------------------------------------------------------------------- helpers

def _u(g: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    """One uniform float in [low, high)."""
    return low + (high - low) * float(torch.rand((), generator=g))


# A crayon box: every toy colour is one of these (RGB in [0, 1]). A small palette is what
# makes the toy task learnable in CPU minutes: the network can learn the colours themselves
# quickly and spend its training on *where* they go, which is the inpainting problem.
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.86, 0.16, 0.16),  # red
    (0.96, 0.56, 0.10),  # orange
    (0.96, 0.86, 0.22),  # yellow
    (0.22, 0.66, 0.26),  # green
    (0.10, 0.58, 0.60),  # teal
    (0.16, 0.30, 0.80),  # blue
    (0.50, 0.22, 0.70),  # purple
    (0.96, 0.52, 0.72),  # pink
    (0.46, 0.29, 0.15),  # brown
    (0.95, 0.95, 0.92),  # white
    (0.10, 0.10, 0.13),  # black
    (0.56, 0.56, 0.58),  # grey
)
SKIN_TONES: tuple[tuple[float, float, float], ...] = (
    (0.98, 0.85, 0.72), (0.92, 0.72, 0.55), (0.78, 0.55, 0.38), (0.56, 0.38, 0.25), (0.36, 0.24, 0.16),
)


def _pick(g: torch.Generator, colours: Sequence[tuple[float, float, float]], avoid: Sequence[int] = ()) -> tuple[torch.Tensor, int]:
    """A random colour of ``colours`` (not one of the indices ``avoid``) as (3, 1, 1), and its index."""
    choices = [i for i in range(len(colours)) if i not in avoid]
    i = choices[int(torch.randint(len(choices), (), generator=g))]
    return torch.tensor(colours[i]).view(3, 1, 1), i  # (3, 1, 1)


def _colour(g: torch.Generator) -> torch.Tensor:
    """A random palette colour, shape (3, 1, 1)."""
    return _pick(g, PALETTE)[0]


def _two_colours(g: torch.Generator, min_dist: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    """Two palette colours that differ by at least ``min_dist`` (L1 over RGB)."""
    c1, i = _pick(g, PALETTE)
    too_close = [j for j, c in enumerate(PALETTE) if sum(abs(a - b) for a, b in zip(c, PALETTE[i])) < min_dist]
    c2, _ = _pick(g, PALETTE, avoid=too_close)
    return c1, c2


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(yy, xx)``, each (size, size), in pixels."""
    r = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")  # (S, S) each
    return yy, xx


def _rotate(yy: torch.Tensor, xx: torch.Tensor, angle: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates rotated by ``angle`` (radians) about the origin."""
    c, s = math.cos(angle), math.sin(angle)
    return xx * c + yy * s, -xx * s + yy * c


def _paint(img: torch.Tensor, weight: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Alpha-blend ``colour`` (3, 1, 1) over ``img`` (3, S, S) with ``weight`` (S, S) in [0, 1]."""
    return img * (1 - weight) + colour * weight  # (3, S, S)


def _ellipse(yy: torch.Tensor, xx: torch.Tensor, cy: float, cx: float, ry: float, rx: float) -> torch.Tensor:
    """Anti-aliased filled ellipse: 1 inside, 0 outside, a one-pixel soft edge. (S, S)."""
    r = torch.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return ((1 - r) * min(ry, rx) + 0.5).clamp(0, 1)  # (S, S), ~signed distance in pixels


# ----------------------------------------------------------------------------- kinds

def _stripes(size: int, g: torch.Generator) -> torch.Tensor:
    """Parallel stripes: random orientation, period, duty cycle and edge sharpness."""
    yy, xx = _grid(size)
    u, _ = _rotate(yy, xx, _u(g, 0, math.pi))
    period = _u(g, size / 8, size / 2.5)
    phase = _u(g, 0, 2 * math.pi)
    duty = _u(g, -0.5, 0.5)
    sharp = _u(g, 2.0, 30.0)
    w = torch.sigmoid(sharp * (torch.sin(2 * math.pi * u / period + phase) + duty))  # (S, S)
    c1, c2 = _two_colours(g)
    return _paint(c2.expand(3, size, size), w, c1)


def _checks(size: int, g: torch.Generator) -> torch.Tensor:
    """A checkerboard: random cell size, rotation and colours."""
    yy, xx = _grid(size)
    u, v = _rotate(yy, xx, _u(g, 0, math.pi / 2))
    cell = _u(g, size / 8, size / 3.5)
    su = torch.sin(math.pi * u / cell + _u(g, 0, math.pi))
    sv = torch.sin(math.pi * v / cell + _u(g, 0, math.pi))
    w = torch.sigmoid(_u(g, 6.0, 30.0) * su * sv)  # (S, S)
    c1, c2 = _two_colours(g)
    return _paint(c2.expand(3, size, size), w, c1)


def _dots(size: int, g: torch.Generator) -> torch.Tensor:
    """A lattice of discs (square or hexagonal), random spacing, radius and rotation."""
    yy, xx = _grid(size)
    u, v = _rotate(yy, xx, _u(g, 0, math.pi / 2))
    spacing = _u(g, size / 6, size / 3)
    radius = _u(g, 0.25, 0.45) * spacing
    u = u + _u(g, 0, spacing)
    v = v + _u(g, 0, spacing)
    if _u(g) < 0.5:  # hexagonal: every other row shifted by half a spacing
        u = u + (torch.floor(v / spacing) % 2) * spacing / 2
    du = torch.remainder(u, spacing) - spacing / 2
    dv = torch.remainder(v, spacing) - spacing / 2
    w = (radius - torch.sqrt(du**2 + dv**2) + 0.5).clamp(0, 1)  # (S, S)
    c1, c2 = _two_colours(g)
    return _paint(c2.expand(3, size, size), w, c1)


def _bricks(size: int, g: torch.Generator) -> torch.Tensor:
    """A running-bond brick wall: each brick's shade varies a little, mortar lines between."""
    yy, xx = _grid(size)
    if _u(g) < 0.25:  # some walls are vertical
        yy, xx = xx, yy
    height = _u(g, size / 8, size / 4.5)
    width = height * _u(g, 1.6, 3.0)
    mortar = max(1.5, height * _u(g, 0.12, 0.22))
    y = yy + _u(g, 0, height)
    row = torch.floor(y / height)
    x = xx + _u(g, 0, width) + (row % 2) * width / 2
    col = torch.floor(x / width)
    fy, fx = torch.remainder(y, height), torch.remainder(x, width)
    # distance (pixels) to the nearest mortar line, soft over one pixel
    edge = torch.minimum(torch.minimum(fy, height - fy), torch.minimum(fx, width - fx))
    w_brick = (edge - mortar / 2 + 0.5).clamp(0, 1)  # (S, S)
    brick, mortar_c = _two_colours(g, min_dist=0.5)
    rows, cols = int(size / height) + 3, int(size / width) + 4
    jitter = 1 + 0.12 * (torch.rand(rows, cols, generator=g) - 0.5)  # (rows, cols) +-6 % shade
    shade = jitter[row.long().clamp(0, rows - 1), col.long().clamp(0, cols - 1)]  # (S, S)
    img = mortar_c.expand(3, size, size)
    return _paint(img, w_brick, (brick * shade).clamp(0, 1))


def _faces(size: int, g: torch.Generator) -> torch.Tensor:
    """A cartoon face in flat colours: background, hair, head ellipse, two eyes, nose, mouth.

    The layout varies within narrow ranges (head centre +-3 px, eyes and mouth at nearly
    fixed places, 85 % smiles), so what hides under the hole can be learned from the data
    set, as a face model learns where eyes go. The two eyes share size, colour and gaze:
    the visible one tells what the hidden one looks like.
    """
    yy, xx = _grid(size)
    s = float(size)
    img = _colour(g).expand(3, size, size)  # (3, S, S) flat background
    cy, cx = s * _u(g, 0.48, 0.54), s * _u(g, 0.45, 0.55)
    ry = s * _u(g, 0.34, 0.40)
    rx = ry * _u(g, 0.78, 0.88)
    skin, _ = _pick(g, SKIN_TONES)
    if _u(g) < 0.8:  # hair: a larger ellipse behind the head, only its upper part
        hair = _colour(g)
        top = _ellipse(yy, xx, cy - 0.12 * ry, cx, ry * 1.08, rx * 1.15)
        top = top * ((cy + 0.1 * ry - yy) / 2 + 0.5).clamp(0, 1)
        img = _paint(img, top, hair)
    img = _paint(img, _ellipse(yy, xx, cy, cx, ry, rx), skin)
    eye_y = cy - ry * _u(g, 0.15, 0.22)
    eye_dx = rx * _u(g, 0.38, 0.46)
    eye_r = ry * _u(g, 0.15, 0.19)
    iris = _colour(g) * 0.6  # darker than the whites
    look_x, look_y = _u(g, -0.4, 0.4) * eye_r, _u(g, -0.3, 0.3) * eye_r
    white = torch.tensor([0.96, 0.96, 0.94]).view(3, 1, 1)
    for side in (-1.0, 1.0):
        ex = cx + side * eye_dx
        img = _paint(img, _ellipse(yy, xx, eye_y, ex, eye_r * 0.8, eye_r), white)
        img = _paint(img, _ellipse(yy, xx, eye_y + look_y, ex + look_x, eye_r * 0.5, eye_r * 0.5), iris)
    nose = _ellipse(yy, xx, cy + ry * 0.12, cx, ry * 0.07, rx * 0.06)
    img = _paint(img, nose, skin * 0.75)
    # mouth: the lower half of an ellipse (a smile) or the upper half (a frown), as a thick arc
    my, mw, mh = cy + ry * _u(g, 0.40, 0.48), rx * _u(g, 0.32, 0.42), ry * _u(g, 0.10, 0.16)
    outer = _ellipse(yy, xx, my, cx, mh, mw)
    sign = 1.0 if _u(g) < 0.85 else -1.0  # +1: smile (lower arc), -1: frown (upper arc)
    inner = _ellipse(yy, xx, my - sign * mh * 0.45, cx, mh * 0.9, mw * 0.95)
    half = (sign * (yy - my) + 0.5).clamp(0, 1)  # (S, S) the lower (or upper) half-plane
    lips = torch.tensor(PALETTE[0]).view(3, 1, 1)  # red
    img = _paint(img, outer * (1 - inner) * half, lips)
    return img


_DRAW = {"stripes": _stripes, "checks": _checks, "dots": _dots, "bricks": _bricks, "faces": _faces}


# ----------------------------------------------------------------------------- public API

def toy_image(kind: str, size: int = 64, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One toy image of ``kind`` ('stripes', 'checks', 'dots', 'bricks', 'faces').

    Returns ``(3, size, size)`` float32 in [-1, 1] (RGB). Colours, orientation, frequency
    and (for faces) the layout are drawn from ``generator`` (a torch.Generator; None
    draws from a fresh generator with seed 0).
    """
    if kind not in _DRAW:
        raise ValueError(f"unknown toy kind {kind!r}; choose one of {TOY_KINDS}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ValueError(f"toy image size must be an int >= 8, got {size!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    img = _DRAW[kind](size, generator)  # (3, S, S) in [0, 1]
    return (img.clamp(0, 1) * 2 - 1).to(torch.float32).contiguous()  # (3, S, S) in [-1, 1]


class ToyDataset(Dataset):
    """``n`` procedural toy images of ``size x size``, deterministic per index.

    Item ``i`` is of kind ``kinds[i % len(kinds)]`` (every batch of consecutive items
    mixes all kinds) and is drawn from a generator seeded by ``(seed, i)``. Returns
    ``(3, size, size)`` float32 in [-1, 1]. Use different seeds for training and
    held-out images (``make_dataset('toy', split='val')`` does).
    """

    def __init__(self, n: int = 10_000, size: int = 64, kinds: Sequence[str] = TOY_KINDS, seed: int = 0) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n (number of toy images) must be a positive int, got {n!r}")
        kinds = tuple(kinds)
        bad = [k for k in kinds if k not in _DRAW]
        if bad or not kinds:
            raise ValueError(f"unknown toy kinds {bad or kinds}; choose from {TOY_KINDS}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        toy_image(kinds[0], size)  # validates size early
        self.n, self.size, self.kinds, self.seed = n, size, kinds, seed
        self.epoch = 0
        self.skipped = 0  # same interface as the file datasets: nothing is ever skipped

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        """Kept for the trainer's uniform interface; toy images do not change per epoch."""
        self.epoch = epoch

    def generator(self, index: int) -> torch.Generator:
        """The torch generator that draws item ``index``."""
        state = np.random.SeedSequence([self.seed, index]).generate_state(2, np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))

    def kind(self, index: int) -> str:
        return self.kinds[index % len(self.kinds)]

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for a toy dataset of {self.n} images")
        index = index % self.n
        return toy_image(self.kind(index), self.size, self.generator(index))  # (3, S, S)

    def __repr__(self) -> str:
        return f"ToyDataset(n={self.n}, size={self.size}, kinds={self.kinds}, seed={self.seed})"
