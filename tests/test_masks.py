"""Tests for course_lib.masks: release box masks, local patches, v2 brush strokes."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.masks import (
    BBox,
    bbox_to_mask,
    brush_stroke_mask,
    local_patch,
    random_bbox,
    random_box_mask,
    strokes_to_mask,
)


def _hole_extent(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the hole in a (1, 1, H, W) mask, by scanning rows/cols."""
    m = mask[0, 0] > 0
    rows = m.any(dim=1).nonzero().flatten().tolist()  # rows holding a hole pixel
    cols = m.any(dim=0).nonzero().flatten().tolist()
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_random_bbox_range_is_tf_style_exclusive():
    tops, lefts = set(), set()
    g = torch.Generator().manual_seed(0)
    for _ in range(3000):
        t, l, h, w = random_bbox(20, 30, 8, 10, generator=g)
        assert (h, w) == (8, 10)
        tops.add(t)
        lefts.add(l)
    # maxval exclusive: top in [0, 20 - 8) = 0..11, left in 0..19
    assert tops == set(range(0, 12))
    assert lefts == set(range(0, 20))


def test_random_bbox_margins():
    g = torch.Generator().manual_seed(1)
    for _ in range(500):
        t, l, _, _ = random_bbox(64, 64, 16, 16, margin=(5, 7), generator=g)
        assert 5 <= t < 64 - 5 - 16
        assert 7 <= l < 64 - 7 - 16


def test_random_bbox_full_image_and_too_large():
    assert random_bbox(32, 32, 32, 32, generator=0) == (0, 0, 32, 32)
    assert random_bbox(40, 40, 30, 30, margin=5, generator=0) == (5, 5, 30, 30)
    with pytest.raises(ValueError, match="does not fit"):
        random_bbox(32, 32, 33, 16)
    with pytest.raises(ValueError, match="does not fit"):
        random_bbox(32, 32, 30, 16, margin=(2, 0))


def test_bbox_to_mask_hole_sizes_and_symmetry_many_seeds():
    seen_heights = set()
    for seed in range(300):
        bbox = random_bbox(generator=seed)
        mask = bbox_to_mask(bbox, 256, 256, generator=seed + 1000)
        assert mask.shape == (1, 1, 256, 256)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        top, left, h, w = _hole_extent(mask)
        assert 96 <= h <= 128 and 96 <= w <= 128
        assert h % 2 == 0 and w % 2 == 0  # same delta on both sides
        # the hole is centred in its box: same shrink on top/bottom and left/right
        assert top - bbox.top == bbox.top + bbox.height - (top + h)
        assert left - bbox.left == bbox.left + bbox.width - (left + w)
        assert mask.sum() == h * w  # a filled rectangle
        seen_heights.add(h)
    assert min(seen_heights) == 96 and max(seen_heights) == 128  # both ends of 0..16 reached


def test_bbox_to_mask_exact_when_no_delta():
    mask = bbox_to_mask((3, 4, 5, 6), 10, 12, max_delta=0)
    expected = torch.zeros(1, 1, 10, 12)
    expected[..., 3:8, 4:10] = 1
    assert torch.equal(mask, expected)


def test_bbox_to_mask_bad_inputs():
    with pytest.raises(ValueError, match="inside"):
        bbox_to_mask((200, 0, 128, 128), 256, 256)
    with pytest.raises(ValueError, match="max_delta"):
        bbox_to_mask((0, 0, 8, 8), 16, 16, max_delta=16)


def test_random_box_mask_seeds_repeat_and_shapes():
    m1, b1 = random_box_mask(4, generator=7)
    m2, b2 = random_box_mask(4, generator=7)
    assert m1.shape == (1, 1, 256, 256) and len(b1) == 1  # release: one box per batch
    assert torch.equal(m1, m2) and b1 == b2
    m3, _ = random_box_mask(4, generator=8)
    assert not torch.equal(m1, m3)


def test_random_box_mask_per_sample_differ():
    mask, boxes = random_box_mask(6, per_sample=True, generator=3)
    assert mask.shape == (6, 1, 256, 256) and len(boxes) == 6
    assert len({tuple(b) for b in boxes}) > 1
    assert any(not torch.equal(mask[0], mask[i]) for i in range(1, 6))
    for i, box in enumerate(boxes):  # each hole lies in its own box
        top, left, h, w = _hole_extent(mask[i:i + 1])
        assert box.top <= top and top + h <= box.top + box.height
        assert box.left <= left and left + w <= box.left + box.width


def test_random_box_mask_uses_global_rng_when_none():
    torch.manual_seed(5)
    a, _ = random_box_mask(1)
    torch.manual_seed(5)
    b, _ = random_box_mask(1)
    assert torch.equal(a, b)


def test_local_patch_against_slicing():
    x = torch.randn(3, 2, 20, 24)
    assert torch.equal(local_patch(x, (2, 5, 8, 10)), x[:, :, 2:10, 5:15])
    assert torch.equal(local_patch(x, BBox(0, 0, 20, 24)), x)
    boxes = [(0, 0, 8, 10), (4, 3, 8, 10), (12, 14, 8, 10)]
    out = local_patch(x, boxes)
    assert out.shape == (3, 2, 8, 10)
    for i, (t, l, h, w) in enumerate(boxes):
        assert torch.equal(out[i], x[i, :, t:t + h, l:l + w])
    shared = torch.randn(1, 1, 20, 24)  # a shared mask cropped per sample
    out = local_patch(shared, boxes)
    assert out.shape == (3, 1, 8, 10)
    assert torch.equal(out[2, 0], shared[0, 0, 12:20, 14:24])


def test_local_patch_bad_inputs():
    x = torch.zeros(2, 3, 16, 16)
    with pytest.raises(ValueError, match="inside"):
        local_patch(x, (10, 0, 8, 8))
    with pytest.raises(ValueError, match="one size"):
        local_patch(x, [(0, 0, 8, 8), (0, 0, 4, 4)])
    with pytest.raises(ValueError, match="boxes for a batch"):
        local_patch(x, [(0, 0, 8, 8)] * 3)
    with pytest.raises(ValueError, match="NCHW"):
        local_patch(torch.zeros(3, 16, 16), (0, 0, 8, 8))


def test_strokes_to_mask_dot_and_line():
    # a dot of diameter 5 at (x=5, y=4): pixels whose centre is within 2.5
    dot = strokes_to_mask([[(5, 4)]], 10, 12, width_px=5)
    expected = torch.zeros(10, 12)
    for i in range(10):
        for j in range(12):
            if (j - 5) ** 2 + (i - 4) ** 2 <= 2.5 ** 2:
                expected[i, j] = 1
    assert torch.equal(dot[0, 0], expected)
    # a horizontal segment from x=2 to x=9 at y=5, radius 1.25: rows 4..6 (distance <= 1), plus
    # one pixel beyond each end (distance 1), not its diagonal neighbours (distance sqrt(2))
    line = strokes_to_mask([[(2, 5), (9, 5)]], 11, 12, width_px=2.5)[0, 0]
    assert line[4:7, 2:10].all() and line.sum() == 3 * 8 + 2  # + one end pixel each side
    assert line[5, 1] == 1 and line[5, 10] == 1 and line[4, 1] == 0


def test_strokes_to_mask_round_joint_and_widths():
    # an L-shaped stroke: the corner is covered, the disk around it is round
    m = strokes_to_mask([[(2, 2), (20, 2), (20, 20)]], 24, 24, width_px=4)[0, 0]
    assert m[2, 2:21].all() and m[2:21, 20].all()
    assert m[0, 20] == 1 and m[0, 22] == 0  # (22, 0) is sqrt(8) > 2 from the corner
    two = strokes_to_mask([[(3, 3)], [(15, 15)]], 20, 20, width_px=[2, 6])[0, 0]
    assert two[3, 3] == 1 and two[3, 5] == 0 and two[15, 18] == 1
    with pytest.raises(ValueError, match="widths"):
        strokes_to_mask([[(1, 1)]], 5, 5, width_px=[1, 2])
    assert strokes_to_mask([], 4, 6).shape == (1, 1, 4, 6)


def test_brush_stroke_mask_deterministic_and_plausible():
    a = brush_stroke_mask(64, 80, generator=11)
    b = brush_stroke_mask(64, 80, generator=11)
    c = brush_stroke_mask(64, 80, generator=12)
    assert a.shape == (1, 1, 64, 80)
    assert torch.equal(a, b) and not torch.equal(a, c)
    covers = []
    for seed in range(40):
        m = brush_stroke_mask(generator=seed)
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        covers.append(float(m.mean()))
    # at least one 12 px disk per mask; never the whole image
    assert min(covers) >= math.pi * 6 ** 2 / 256 ** 2 * 0.9
    assert max(covers) < 0.8


def test_brush_stroke_mask_width_bounds():
    # one stroke with one vertex is one disk: its diameter must lie in [min_width, max_width]
    for seed in range(20):
        m = brush_stroke_mask(96, 96, generator=seed, max_strokes=1, min_vertices=1, max_vertices=1,
                              random_flip=False)
        _, _, h, w = _hole_extent(m)
        assert 11 <= max(h, w) <= 41
