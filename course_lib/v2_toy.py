"""The bundled toy comparison of notebook 11: v1's coarse network and its gated twin on stroke holes.

Both were trained by ``scripts/train_v2_toy.py`` the same way (same images, stroke holes,
seed, optimiser and steps), so they differ in the convolution alone. This module finds and
loads the bundled weights and scores fills on fixed held-out stroke holes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
import torch.nn as nn

from course_lib.checkpoint import safe_torch_load
from course_lib.data import make_dataset
from course_lib.evaluate import complete
from course_lib.gated import GatedCoarseNetwork
from course_lib.generator import CoarseNetwork
from course_lib.masks import stroke_masks
from course_lib.metrics import l1_error, psnr

__all__ = ["V2_WEIGHTS", "v2_weights", "load_coarse", "held_out_strokes", "fill_scores", "hole_scores"]

# bundled toy weights, trained by scripts/train_v2_toy.py
V2_WEIGHTS = {"v1": "toy_coarse_v1_strokes.pt", "gated": "toy_coarse_gated_strokes.pt"}


def v2_weights(kind: str) -> Path:
    """Path of a bundled toy coarse network: ``kind`` ``'v1'`` (vanilla convs) or ``'gated'``."""
    if kind not in V2_WEIGHTS:
        raise ValueError(f"kind must be one of {sorted(V2_WEIGHTS)}, got {kind!r}")
    path = Path(__file__).resolve().parent / "weights" / V2_WEIGHTS[kind]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall course_lib (pip install -e .) or train it "
                                "with python scripts/train_v2_toy.py")
    return path


def load_coarse(path: Union[Path, str]) -> nn.Module:
    """Build the coarse network a ``scripts/train_v2_toy.py`` file holds, in eval mode (loaded weights_only)."""
    state = safe_torch_load(path, "cpu")  # weights_only, with a clear error for a bad file
    if not isinstance(state, dict) or state.get("kind") not in ("v1", "gated"):
        raise ValueError(f"{path} is not a coarse network written by scripts/train_v2_toy.py")
    net = CoarseNetwork(state["cnum"]) if state["kind"] == "v1" else GatedCoarseNetwork(state["cnum"])
    net.load_state_dict({k: v.float() for k, v in state["weights"].items()})
    return net.eval()


def held_out_strokes(n: int = 40, size: int = 64, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` held-out toy images (the 'test' split, all five kinds in turn) and fixed stroke holes.

    Returns ``x`` (n, 3, size, size) in [-1, 1] and ``mask`` (n, 1, size, size), the same on
    every call: the side by side of notebook 11 and ``scripts/train_v2_toy.py`` use them.
    """
    data = make_dataset("toy", split="test", size=size, seed=0, n=n)
    x = torch.stack([data[i] for i in range(n)])  # (n, 3, S, S)
    return x, stroke_masks(n, size, torch.Generator().manual_seed(seed))


def fill_scores(x: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor,
                max_db: float = 50.0) -> dict[str, torch.Tensor]:
    """Hole PSNR (dB, capped at ``max_db``) and hole L1 (%) per image, (B,) each (:mod:`course_lib.metrics`).

    The cap keeps averages finite when a fill is exact (a flat patch under a stroke: infinite PSNR).
    """
    return {"psnr": psnr(x, filled, mask, max_db=max_db), "l1": l1_error(x, filled, mask)}


@torch.no_grad()
def hole_scores(net: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run a coarse network on ``x * (1 - mask)``; return the completed images and :func:`fill_scores`.

    Completed = the network's pixels in the hole, the known ones elsewhere, (B, 3, H, W).
    """
    done = complete(net, x, mask)  # (B, 3, H, W): the network's pixels in the hole, the known ones elsewhere
    return done, fill_scores(x, done, mask)
