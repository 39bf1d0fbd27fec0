"""course_lib.tour: notebook 00's whole game (one run of the model) and the model's map."""
from __future__ import annotations

import pytest
import torch

from course_lib.painter import HandsOnModel
from course_lib.tour import NOTEBOOK_BOXES, architecture_figure, default_inputs, whole_game, whole_game_figure


class _Halves(torch.nn.Module):
    """A stand-in generator: stage 1 returns 0.5 everywhere, stage 2 the truth it was given (x_incomplete + m)."""

    def forward(self, x_incomplete, mask):
        x1 = torch.full_like(x_incomplete, 0.5)
        x2 = x_incomplete + mask  # 1 in the hole (its inputs there are 0)
        flow = torch.zeros(x_incomplete.shape[0], 3, x_incomplete.shape[-2] // 4, x_incomplete.shape[-1] // 4)
        return x1, x2, flow


def test_default_inputs_for_both_sizes():
    x, mask = default_inputs(64)
    assert x.shape == (2, 3, 64, 64) and mask.shape == (1, 1, 64, 64)
    assert int(mask.sum()) == 24 * 24 and mask[0, 0, 20:44, 20:44].all()
    x, mask = default_inputs(256)
    assert x.shape == (2, 3, 256, 256) and int(mask.sum()) == 96 * 96 and mask[0, 0, 80:176, 80:176].all()
    assert x.min() >= -1 and x.max() <= 1


def test_whole_game_runs_the_generator_on_the_incomplete_image_only():
    seen = {}

    class Spy(_Halves):
        def forward(self, x_incomplete, mask):
            seen["x"], seen["mask"] = x_incomplete.clone(), mask.clone()
            return super().forward(x_incomplete, mask)

    x = torch.full((1, 3, 8, 8), 0.25)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1.0
    game = whole_game(HandsOnModel(Spy(), 8, "spy"), x, mask)
    assert torch.equal(seen["x"], x * (1 - mask)) and torch.equal(seen["mask"], mask)
    # hole PSNR by hand: stage 1 puts 0.5 where the truth is 0.25 -> on [0, 1] an error of 0.125
    assert game.psnr1.item() == pytest.approx(10 * torch.log10(torch.tensor(1 / 0.125 ** 2)).item(), abs=1e-4)
    # stage 2 puts 1.0 -> an error of 0.375
    assert game.psnr2.item() == pytest.approx(10 * torch.log10(torch.tensor(1 / 0.375 ** 2)).item(), abs=1e-4)
    assert game.stage1.shape == x.shape and game.flow.shape == (1, 3, 2, 2)


def test_whole_game_with_the_toy_model_improves_in_stage_2():
    from course_lib.pretrained import load_pretrained
    from course_lib.samples import toy_weights

    toy = HandsOnModel(load_pretrained(toy_weights()).eval(), 64, "toy")
    game = whole_game(toy)
    assert game.stage2.shape == (2, 3, 64, 64) and torch.isfinite(game.stage2).all()
    assert (game.psnr2 > game.psnr1).all()  # what notebook 00 and lesson 00 say about the toy model
    fig = whole_game_figure(game)
    assert len(fig.axes) == 10 and fig.axes[1].get_title() == "stage 1 (coarse)"


def test_whole_game_rejects_what_is_not_a_model():
    with pytest.raises(TypeError, match="official_or_toy"):
        whole_game(torch.nn.Identity())
    with pytest.raises(ValueError, match="same H, W"):
        whole_game(HandsOnModel(_Halves(), 8, "x"), torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 4, 4))


def test_architecture_figure_labels_every_box_with_its_notebook():
    texts = [t.get_text() for t in architecture_figure().axes[0].texts]
    labels = [t for t in texts if "build" in t and "this box" in t]
    assert len(labels) == len(NOTEBOOK_BOXES)
    covered = " ".join(labels)
    for number in ("00", "01", "02", "03–06", "07", "08", "09", "10", "11", "90", "95"):
        assert number in covered, f"notebook {number} builds no box of the map"
