"""course_lib.ema: the generator weight average, checked against hand-worked recursions."""
import math

import pytest
import torch
import torch.nn as nn

from course_lib.ema import WeightEMA, ema_decay_at


class Scalar(nn.Module):
    """One float weight and one integer buffer: easy to follow by hand."""

    def __init__(self, w: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w]))
        self.register_buffer("seen", torch.tensor(0))


def test_decay_follows_the_tensorflow_warm_up_rule():
    assert ema_decay_at(1, 0.995) == pytest.approx(2 / 11)
    assert ema_decay_at(90, 0.995) == pytest.approx(0.91)
    assert ema_decay_at(1000, 0.995) == pytest.approx(1001 / 1010)  # still warming up
    assert ema_decay_at(10_000, 0.995) == 0.995  # (1 + n) / (10 + n) = 0.9991 > 0.995


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_decay_rejects_an_update_count_below_one(n):
    with pytest.raises(ValueError, match="from 1"):
        ema_decay_at(n, 0.9)


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1, math.nan, True, "0.9"])
def test_bad_decays_say_what_is_allowed(decay):
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        WeightEMA(Scalar(), decay)


def test_updates_match_a_hand_worked_recursion():
    model = Scalar(1.0)
    ema = WeightEMA(model, decay=0.5)
    average = 1.0  # starts at the model's weight
    for n, value in enumerate([3.0, -2.0, 5.0, 0.5], start=1):
        model.w.data.fill_(value)
        model.seen.fill_(n)
        used = ema.update(model)
        d = min(0.5, (1 + n) / (10 + n))  # 2/11, 3/12, 4/13, 5/14: all below 0.5
        average = d * average + (1 - d) * value
        assert used == pytest.approx(d)
        assert ema.module.w.item() == pytest.approx(average, abs=1e-6)
        assert ema.module.seen.item() == n  # integer buffers are copied, not averaged
    assert ema.num_updates == 4


def test_the_decay_caps_the_warm_up():
    model = Scalar(0.0)
    ema = WeightEMA(model, decay=0.1)  # (1 + n) / (10 + n) >= 0.1 always: d = 0.1
    model.w.data.fill_(10.0)
    ema.update(model)
    assert ema.module.w.item() == pytest.approx(0.1 * 0.0 + 0.9 * 10.0)


def test_the_copy_is_frozen_and_leaves_the_model_alone():
    model = Scalar(2.0)
    ema = WeightEMA(model, decay=0.9)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert model.w.requires_grad  # the trained model keeps its gradients
    model.w.data.fill_(4.0)
    ema.update(model)
    assert model.w.item() == 4.0 and ema.module.w.item() != 4.0
    assert ema.module.w is not model.w


def test_state_round_trip_continues_the_same_average():
    model = Scalar(1.0)
    a = WeightEMA(model, decay=0.8)
    for value in (2.0, 3.0):
        model.w.data.fill_(value)
        a.update(model)
    b = WeightEMA(Scalar(-7.0), decay=0.8)
    b.load_state_dict(a.state_dict())
    assert b.num_updates == 2 and b.module.w.item() == a.module.w.item()
    model.w.data.fill_(9.0)
    a.update(model), b.update(model)
    assert b.module.w.item() == a.module.w.item()


def test_reset_starts_again_from_the_model():
    model = Scalar(1.0)
    ema = WeightEMA(model, decay=0.9)
    model.w.data.fill_(5.0)
    ema.update(model)
    ema.reset(model)
    assert ema.num_updates == 0 and ema.module.w.item() == 5.0


def test_bad_state_and_foreign_models_are_refused():
    ema = WeightEMA(Scalar(), decay=0.9)
    with pytest.raises(ValueError, match="state_dict"):
        ema.load_state_dict({"weights": {}})
    with pytest.raises(ValueError, match="do not match"):
        ema.update(nn.Linear(1, 1))


def test_the_functional_update_on_state_dicts_by_hand():
    from course_lib.ema import ema_update_
    average = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    weights = {"w": torch.tensor([3.0, 0.0]), "n": torch.tensor(7)}
    d = ema_update_(average, weights, num_updates=2, decay=0.9)  # warm-up: 3/12 = 0.25
    assert d == pytest.approx(0.25)
    assert average["w"].tolist() == pytest.approx([0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * 0])
    assert average["n"].item() == 7 and weights["w"].tolist() == [3.0, 0.0]
    with pytest.raises(ValueError, match="do not match"):
        ema_update_(average, {"w": weights["w"]}, 3, 0.9)
    with pytest.raises(ValueError, match="from 1"):
        ema_update_(average, weights, 0, 0.9)
