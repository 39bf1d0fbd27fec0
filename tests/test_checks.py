"""The exercise checks, tested in both directions (nbgrader's --invert idea).

For EVERY registered exercise (notebooks 00-09, whoever wrote them): the reference passes
its own check; a stub raising NotImplementedError falls back to the reference with the
loud message; each planted mistake FAILS with an AssertionError whose message contains
the hint phrase it was registered with; and each exercise has at least two mistakes.
"""
from __future__ import annotations

import math

import pytest
import torch

import course_lib.checks as checks
from course_lib.checks import REGISTRY, check, list_exercises

NAMES = list_exercises()
MISTAKES = [(name, phrase) for name in NAMES for phrase in REGISTRY[name].mistakes]


def _stub(*args, **kwargs):
    raise NotImplementedError("Exercise: write this part yourself")


def test_submodules_import_cleanly():
    assert checks.IMPORT_ERRORS == {}, f"a checks submodule failed to import: {checks.IMPORT_ERRORS}"


def test_the_course_has_exercises():
    assert {"to_signed_range", "box_mask", "psnr", "spatial_discount"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_its_own_check(name, capsys):
    ex = REGISTRY[name]
    assert check(name, ex.reference) is ex.reference
    assert f"[ok] {name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_stub_falls_back_to_the_reference_loudly(name, capsys):
    ex = REGISTRY[name]
    assert check(name, _stub) is ex.reference
    out = capsys.readouterr().out
    assert f"{name} is not implemented yet: using course_lib's reference" in out
    assert "so the rest of the notebook runs" in out


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_plants_at_least_two_mistakes(name):
    ex = REGISTRY[name]
    assert len(ex.mistakes) >= 2, f"{name} registers {len(ex.mistakes)} planted mistakes, need >= 2"
    assert ex.notebook.endswith(".ipynb") and ex.hint


@pytest.mark.parametrize("name,phrase", MISTAKES, ids=[f"{n}:{p}" for n, p in MISTAKES])
def test_planted_mistake_fails_with_its_hint(name, phrase):
    ex = REGISTRY[name]
    with pytest.raises(AssertionError) as info:
        check(name, ex.mistakes[phrase])
    message = str(info.value)
    assert phrase.lower() in message.lower(), f"expected the hint {phrase!r} in:\n{message}"
    assert message.startswith(f"{name}:") and "Hint:" in message


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match="known exercises: .*spatial_discount"):
        check("spatial_discunt", _stub)


def test_check_rejects_a_result_instead_of_a_function():
    with pytest.raises(TypeError, match="not its result"):
        check("spatial_discount", torch.ones(2, 2))


def test_a_crashing_function_becomes_a_failed_check_with_the_call_shown():
    def broken(height, width, gamma=0.9):
        return torch.ones(height, width) @ torch.ones(3, 3)

    with pytest.raises(AssertionError, match=r"calling it with \(5, 8, 0.5\) raised RuntimeError"):
        check("spatial_discount", broken)


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        checks.register("psnr", reference=_stub, notebook="x.ipynb")(lambda fn: None)


def test_a_numpy_answer_is_told_to_return_a_tensor():
    def as_numpy(height, width, gamma=0.9):
        return REGISTRY["spatial_discount"].reference(height, width, gamma).numpy()

    with pytest.raises(AssertionError, match="expected a torch.Tensor"):
        check("spatial_discount", as_numpy)


# ---- the references of notebooks 00-02 against values worked out by hand ----------------

def test_spatial_discount_reference_by_hand():
    # release: w[i, j] = max(g ** min(i, H - i), g ** min(j, W - j)); H = 3, W = 4, g = 0.5
    # rows: min(i, 3 - i) = 0, 1, 1 -> 1, .5, .5; cols: min(j, 4 - j) = 0, 1, 2, 1 -> 1, .5, .25, .5
    expected = torch.tensor([[1.0, 1.0, 1.0, 1.0],
                             [1.0, 0.5, 0.5, 0.5],
                             [1.0, 0.5, 0.5, 0.5]])
    assert torch.allclose(REGISTRY["spatial_discount"].reference(3, 4, 0.5), expected)
    centre = REGISTRY["spatial_discount"].reference(128, 128, 0.9)[64, 64].item()
    assert math.isclose(centre, 0.9 ** 64, rel_tol=1e-5) and 1.1e-3 < centre < 1.3e-3


def test_psnr_and_box_mask_references_by_hand():
    grey, white = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    # on [0, 1]: 0.5 vs 1.0 -> mse 0.25 -> 10 log10(4) = 6.0206 dB
    assert math.isclose(REGISTRY["psnr"].reference(grey, white).item(), 6.0206, abs_tol=1e-3)
    mask = REGISTRY["box_mask"].reference((1, 2, 2, 3), 4, 6)
    expected = torch.zeros(1, 1, 4, 6)
    for i in (1, 2):
        for j in (2, 3, 4):
            expected[0, 0, i, j] = 1.0
    assert torch.equal(mask, expected)
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(REGISTRY["to_signed_range"].reference(pixels), torch.tensor([-1.0, -0.6, 1.0]))


def test_hinted_mistakes_and_require_phrases():
    from course_lib.checks import hinted_mistakes, require_phrases
    hints = {"sign": "the sign is flipped: ...", "no log": "a WGAN critic has no log ...", "mean": "use the mean ..."}
    pos, neg = torch.tensor([[2.0], [4.0]]), torch.tensor([[1.0], [0.0]])
    outs = hinted_mistakes("wgan_critic_loss", hints, pos, neg)
    assert set(outs) == set(hints.values())
    assert outs[hints["sign"]].item() == 2.5 and outs[hints["mean"]].item() == -5.0  # by hand
    require_phrases(hints, {"sign": None, "mean": None})
    with pytest.raises(AssertionError, match="'sum'"):
        require_phrases(hints, {"sum": None})
