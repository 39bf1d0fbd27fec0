"""Procedural toy data set: deterministic per index, in range, varied."""
from __future__ import annotations

import pytest
import torch

from course_lib.toy import TOY_KINDS, ToyDataset, toy_image


def test_toy_dataset_is_deterministic_per_index():
    a = ToyDataset(n=10, size=32, seed=3)
    b = ToyDataset(n=10, size=32, seed=3)
    for i in (0, 4, 9, 7):  # any access order
        assert torch.equal(a[i], b[i])
    assert torch.equal(a[-1], a[9])
    c = ToyDataset(n=10, size=32, seed=4)
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[5])  # same kind (stripes), different image


def test_toy_values_shapes_and_kinds():
    ds = ToyDataset(n=10, size=48, seed=0)
    assert len(ds) == 10
    assert [ds.kind(i) for i in range(6)] == list(TOY_KINDS) + [TOY_KINDS[0]]
    for i in range(10):
        x = ds[i]
        assert x.shape == (3, 48, 48) and x.dtype == torch.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert x.std() > 0.05, f"item {i} ({ds.kind(i)}) is nearly flat"
        assert torch.isfinite(x).all()
    with pytest.raises(IndexError):
        ds[10]


def test_toy_image_uses_its_generator():
    for kind in TOY_KINDS:
        x1 = toy_image(kind, 32, torch.Generator().manual_seed(11))
        x2 = toy_image(kind, 32, torch.Generator().manual_seed(11))
        x3 = toy_image(kind, 32, torch.Generator().manual_seed(12))
        assert torch.equal(x1, x2) and not torch.equal(x1, x3), kind
    assert toy_image("faces", 64).shape == (3, 64, 64)


def test_faces_have_a_head_in_the_middle():
    # the head ellipse covers the centre of the image; the corners are background
    for i in range(4, 40, 5):
        x = ToyDataset(n=40, size=64, seed=1)[i]
        centre = x[:, 28:36, 28:36].mean(dim=(1, 2))
        corner = x[:, :4, :4].mean(dim=(1, 2))
        assert (centre - corner).abs().sum() > 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown toy kind"):
        toy_image("clouds")
    with pytest.raises(ValueError, match="unknown toy kinds"):
        ToyDataset(kinds=("stripes", "clouds"))
    with pytest.raises(ValueError, match="size"):
        ToyDataset(size=4)
    with pytest.raises(ValueError, match="positive"):
        ToyDataset(n=0)


def _is_palette_colour(rgb: torch.Tensor, colours) -> bool:
    """Whether an RGB value in [-1, 1] is one of ``colours`` (RGB in [0, 1])."""
    return any(torch.allclose((rgb + 1) / 2, torch.tensor(c), atol=1e-5) for c in colours)


def test_palette_is_distinct_and_in_range():
    from course_lib.toy import PALETTE, SKIN_TONES
    for colours in (PALETTE, SKIN_TONES):
        t = torch.tensor(colours)
        assert t.min() >= 0 and t.max() <= 1
        dist = (t[:, None] - t[None]).abs().sum(-1) + 9 * torch.eye(len(colours))
        assert dist.min() > 0.2  # no two crayons look alike


def test_flat_areas_use_palette_colours():
    from course_lib.toy import PALETTE
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        face = toy_image("faces", 64, g)
        assert _is_palette_colour(face[:, 63, 0], PALETTE)  # background (bottom-left corner)
        for kind in ("checks", "dots"):
            x = (toy_image(kind, 64, torch.Generator().manual_seed(seed)) + 1) / 2  # (3, 64, 64) in [0, 1]
            crayons = torch.tensor(PALETTE)  # (K, 3)
            # distance of every pixel to its nearest crayon (max over RGB): the insides of
            # cells and the background are crayons, only the anti-aliased edges are mixes
            dist = (x.reshape(3, -1).T[:, None] - crayons[None]).abs().amax(-1).amin(-1)  # (64*64,)
            assert (dist < 0.03).float().mean() > 0.3, (kind, seed)
