"""Seeding: one call makes a notebook or a training run repeat its numbers on the CPU."""
from __future__ import annotations

import os
import random
from typing import Optional, Union

import numpy as np
import torch

__all__ = ["seed_everything", "make_generator"]


def seed_everything(seed: int = 0, deterministic: bool = False) -> torch.Generator:
    """Seed Python's ``random``, NumPy, torch (CPU and every CUDA device).

    ``deterministic=True`` also asks torch for deterministic kernels (slower on GPU).
    Returns a seeded CPU ``torch.Generator`` for DataLoaders and mask sampling.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return make_generator(seed)


def make_generator(seed: Optional[Union[int, torch.Generator]] = None) -> torch.Generator:
    """A CPU ``torch.Generator``: pass an int seed, an existing generator, or None (seed 0)."""
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None:
        seed = 0
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
    g = torch.Generator()
    g.manual_seed(seed)
    return g
