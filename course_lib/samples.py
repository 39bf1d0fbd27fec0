"""The course's sample photos (``data/samples/images/*.jpg``), with a toy-image fallback.

Notebooks and lesson figures need a real photo to inpaint. The repository ships a few
small, freely licensed photos in ``data/samples/images/`` (sources and licences in
``data/samples/SOURCES.md``). When course_lib is installed without the repository (e.g. from a
git URL on Colab) or the folder is missing, :func:`course_image` falls back to a
procedural toy image (:mod:`course_lib.toy`), so every notebook still runs offline.

Set ``COURSE_LIB_SAMPLES=/path/to/folder`` to use other photos.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Union

import torch
import torch.nn.functional as F

from course_lib.images import image_to_tensor, load_image
from course_lib.toy import toy_image

__all__ = ["samples_dir", "sample_paths", "course_image", "toy_weights"]

_EXTENSIONS = (".jpg", ".jpeg", ".png")


def samples_dir() -> Path:
    """``$COURSE_LIB_SAMPLES`` if set, else ``data/samples/images`` of the repository (may not exist)."""
    env = os.environ.get("COURSE_LIB_SAMPLES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "data" / "samples" / "images"


def sample_paths() -> list[Path]:
    """The sample photos, sorted by file name (an empty list when there are none)."""
    folder = samples_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _EXTENSIONS)


def course_image(which: Union[int, str] = 0, size: int = 256) -> torch.Tensor:
    """One course image as (1, 3, size, size) float32 in [-1, 1], RGB.

    ``which`` is an index into :func:`sample_paths` or the start of a file name
    (``"chelsea"``). The photo is centre-cropped to a square and resized (bilinear,
    antialiased) to ``size``. Without sample photos: a toy 'bricks' image of that size
    (deterministic), so notebooks run on a bare install.
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    paths = sample_paths()
    if isinstance(which, str):
        named = [p for p in paths if p.name.startswith(which)]
        if paths and not named:
            raise ValueError(f"no sample photo named {which!r}; there are {[p.stem for p in paths]}")
        paths, index = named, 0
    elif isinstance(which, int) and not isinstance(which, bool):
        index = which
    else:
        raise TypeError(f"which must be an index or a file name, got {which!r}")
    if not paths:
        g = torch.Generator().manual_seed(index)
        return toy_image("bricks", size, generator=g)[None]  # (1, 3, size, size)
    path = paths[index % len(paths)]
    x = image_to_tensor(load_image(path))  # (1, 3, H, W)
    H, W = x.shape[-2:]
    s = min(H, W)
    top, left = (H - s) // 2, (W - s) // 2
    x = x[:, :, top:top + s, left:left + s]  # (1, 3, s, s)
    if s != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(-1, 1).contiguous()  # (1, 3, size, size)


def toy_weights() -> Path:
    """The bundled toy generator (``course_lib/weights/toy_cpu.pt``, cnum 8, 64x64 toy images).

    Trained by the course's own command (README, "the demo model"); load it with
    :func:`course_lib.load_generator`. Raises ``FileNotFoundError`` if the package was
    installed without it.
    """
    path = Path(str(resources.files("course_lib") / "weights" / "toy_cpu.pt"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall course_lib (pip install -e .) or train it with "
                                "python -m course_lib train --config toy_cpu --out runs/demo_toy "
                                "--export course_lib/weights/toy_cpu.pt")
    return path
