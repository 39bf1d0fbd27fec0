"""scripts/learning_check.py: a tiny run prints the tables and a verdict; its helpers by hand."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("learning_check", ROOT / "scripts" / "learning_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_per_kind_psnr_averages_each_kind(script):
    x = torch.zeros(3, 3, 8, 8)
    filled = x.clone()
    filled[0] += 0.2  # |error| 0.2 on a range of 2: PSNR = 20 log10(2 / 0.2) = 20 dB
    filled[1] += 0.02  # 40 dB
    filled[2] += 0.2  # 20 dB
    mask = torch.ones(3, 1, 8, 8)
    scores = script.per_kind_psnr(x, filled, mask, ["a", "b", "a"])
    assert list(scores) == ["a", "b"]
    assert scores["a"] == pytest.approx(20.0, abs=1e-3) and scores["b"] == pytest.approx(40.0, abs=1e-3)
    p, l1 = script.hole_scores(x, filled, mask)
    assert p == pytest.approx((20 + 40 + 20) / 3, abs=1e-3)


def test_tiny_run_prints_tables_and_verdict(script, tmp_path, capsys):
    code = script.main(["--minutes", "0.01", "--out", str(tmp_path / "run"), "--n-test", "5", "--threads", "1",
                        "--set", "image_size=32", "--set", "hole_size=16", "--set", "max_delta=4",
                        "--set", "cnum=4", "--set", "critic_cnum=4", "--set", "batch_size=2",
                        "--set", "toy_size=20"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert ("PASS" if code == 0 else "FAIL") in out
    for row in ("same network, untrained", "baseline: diffusion fill", "baseline: mean fill", "per kind"):
        assert row in out
    assert "16px box" in out  # the held-out holes follow the config's hole_size


def test_paired_gain_hand_worked(script):
    base = torch.tensor([10.0, 12.0, 14.0, 16.0])
    mean, low, high, wins = script.paired_gain(base + 1.5, base)  # every image gains exactly 1.5 dB
    assert (mean, low, high, wins) == (pytest.approx(1.5), pytest.approx(1.5), pytest.approx(1.5), 4)
    model = base + torch.tensor([2.0, -1.0, 3.0, 0.0])  # gains 2, -1, 3, 0: mean 1, two wins
    mean, low, high, wins = script.paired_gain(model, base)
    assert mean == pytest.approx(1.0) and wins == 2
    assert -1.0 <= low < 1.0 < high <= 3.0  # resampled means stay within the smallest/largest gain
