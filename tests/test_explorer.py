"""course_lib.explorer and attention.attention_weights: the maps of notebook 10's attention explorer."""
from __future__ import annotations

import pytest
import torch

from course_lib import Generator
from course_lib.attention import attention_weights, contextual_attention
from course_lib.explorer import (CELL, AttentionExplorer, attention_at, attention_maps, explorer_figure,
                                 top_patches)
from course_lib.samples import toy_weights
from course_lib.inpaint_cli import load_generator
from course_lib.toy import toy_image


def _box(size: int, top: int, left: int, h: int, w: int) -> torch.Tensor:
    m = torch.zeros(1, 1, size, size)
    m[..., top:top + h, left:left + w] = 1.0
    return m


def test_attention_weights_of_an_unmasked_map_pick_each_cell_itself():
    # f = b, no hole, a sharp softmax: every cell's best patch is its own (cosine 1), l = i * Wc + j
    torch.manual_seed(0)
    f = torch.randn(1, 6, 8, 12)  # (B, C, H, W) -> a 4 x 6 grid at rate 2
    w = attention_weights(f, f, None, fuse=False, softmax_scale=1000.0)  # (1, 24, 4, 6)
    assert w.shape == (1, 24, 4, 6)
    best = w[0].argmax(dim=0)  # (4, 6)
    expected = torch.arange(24).view(4, 6)
    assert torch.equal(best, expected)


def test_attention_weights_zero_the_patches_that_touch_the_hole_and_sum_to_at_most_one():
    torch.manual_seed(1)
    f = torch.randn(2, 4, 16, 16)
    mask = _box(16, 4, 4, 4, 4)  # hole cells (2, 2)..(3, 3) at rate 2; 3x3 patches touching them: rows/cols 1..4
    w = attention_weights(f, f, mask, softmax_scale=1.0)  # (2, 64, 8, 8), soft: no weight underflows
    grid = w.view(2, 8, 8, 8, 8)  # (B, Hc, Wc, Hf, Wf)
    assert torch.all(grid[:, 1:5, 1:5] == 0)
    assert torch.all(grid[:, 6:, :] > 0)
    sums = w.sum(dim=1)
    assert torch.all(sums <= 1 + 1e-6) and torch.all(sums > 0.5)


def test_contextual_attention_is_reconstruct_of_the_weights_the_explorer_shows():
    torch.manual_seed(2)
    f = torch.randn(1, 4, 16, 16, requires_grad=True)
    mask = _box(16, 4, 6, 6, 4)
    y, _ = contextual_attention(f, f, mask)
    # independent: paste by hand, weight * 4x4 raw patch at stride 2, divided by 4
    w = attention_weights(f, f, mask).detach()[0]  # (64, 8, 8)
    padded = torch.nn.functional.pad(f.detach()[0], (1, 1, 1, 1))  # (C, 18, 18): 'SAME' for 4x4 at stride 2
    out = torch.zeros(4, 18, 18)
    for l in range(64):
        bi, bj = divmod(l, 8)
        patch = padded[:, 2 * bi:2 * bi + 4, 2 * bj:2 * bj + 4]  # (C, 4, 4)
        for i in range(8):
            for j in range(8):
                out[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += w[l, i, j] * patch
    assert torch.allclose(y.detach()[0], out[:, 1:17, 1:17] / 4, atol=1e-5)


@pytest.fixture(scope="module")
def toy():
    return load_generator(toy_weights())


def test_attention_maps_give_the_generators_own_result(toy):
    x = toy_image("bricks", 64, generator=torch.Generator().manual_seed(3))[None]
    m = _box(64, 20, 24, 16, 16)
    maps = attention_maps(toy, x, m)
    assert maps.weights.shape == (1, 64, 8, 8) and maps.grid == (8, 8) and maps.cell == CELL == 8
    with torch.no_grad():
        _, x2, _ = toy(x * (1 - m), m)
    assert torch.allclose(maps.result, x2 * m + x * (1 - m), atol=1e-6)
    assert torch.equal(maps.result * (1 - m), x * (1 - m))
    assert not toy.training


def test_attention_maps_restore_training_mode_and_refuse_other_models(toy):
    toy.train()
    attention_maps(toy, torch.zeros(1, 3, 32, 32), _box(32, 8, 8, 8, 8))
    assert toy.training
    toy.eval()
    with pytest.raises(TypeError, match="course_lib Generator"):
        attention_maps(lambda x, m: (x, x, x), torch.zeros(1, 3, 32, 32), _box(32, 8, 8, 8, 8))


def test_attention_at_by_hand():
    attention = torch.arange(2 * 6 * 2 * 3, dtype=torch.float32).view(2, 6, 2, 3)  # grid (2, 3), Hf 2, Wf 3
    got = attention_at(attention, (2, 3), row=9, col=17)  # cell (1, 2)
    expected = torch.tensor([[5.0, 11.0, 17.0], [23.0, 29.0, 35.0]])  # attention[0, l, 1, 2] = l * 6 + 5
    assert torch.equal(got, expected)
    assert torch.equal(attention_at(attention, (2, 3), row=3, col=5, cell=2), attention[0, :, 1, 2].view(2, 3))
    with pytest.raises(ValueError, match="outside the image of 16x24"):
        attention_at(attention, (2, 3), row=16, col=0)


def test_top_patches_by_hand():
    w = torch.tensor([[0.1, 0.5], [0.0, 0.3]])
    assert top_patches(w, 2) == [(0, 1, pytest.approx(0.5)), (1, 1, pytest.approx(0.3))]
    assert len(top_patches(w, 10)) == 4


def test_explorer_select_click_and_widget(toy):
    x = toy_image("stripes", 64, generator=torch.Generator().manual_seed(4))[None]
    maps = attention_maps(toy, x, _box(64, 16, 16, 24, 24))
    explorer = AttentionExplorer(maps, scale=4)
    assert explorer.pixel == (27, 27)  # the hole's centre
    fig = explorer.select(100, -5)  # clamped into the image
    assert explorer.pixel == (63, 0) and len(fig.axes) >= 2
    box = explorer.widget()
    assert "course-explorer" in box._dom_classes
    explorer._on_click(4 * 30 + 2.0, 4 * 20 + 3.0)  # canvas (x, y) -> image (row 20, col 30)
    assert explorer.pixel == (20, 30)
    with pytest.raises(ValueError, match="scale"):
        AttentionExplorer(maps, scale=0)
    assert explorer_figure(maps, 20, 30).axes
