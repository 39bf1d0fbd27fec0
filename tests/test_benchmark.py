"""scripts/benchmark.py and course_lib.bench: every row is produced, numbers are finite and positive.

No timing thresholds: speed is read from the printed table, never asserted. The runs use
tiny models (cnum 2-4, 32 px images) so the whole file stays well under 10 s on CPU.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from course_lib.attention import contextual_attention
from course_lib.bench import attention_per_image_loop, peak_memory_mb, time_calls

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("benchmark_script", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _attention_rows(batch: int) -> list[str]:
    rows = []
    for kind in ("fwd", "fwd+bwd"):
        rows += [f"attention {kind} batched, B={batch}", f"attention {kind} per-image loop, B={batch}",
                 f"attention {kind} loop / batched, B={batch}"]
    return rows


def _expected_rows(size: int, quick: bool) -> list[str]:
    sizes = [size] if quick else [size, 2 * size]
    big = sizes[-1]
    return ([f"generator {s}x{s} inference, B=1" for s in sizes]
            + [f"generator {big} / paper 512, CPU Xeon E5-2697 v3 1.5 s",
               f"generator {big} / paper 512, GPU GTX 1080 Ti 0.2 s"]
            + _attention_rows(1) + _attention_rows(4)
            + [f"train critic update, {size}x{size}, B=1",
               f"train generator update, {size}x{size}, B=1",
               f"train step (5 critic + 1 generator), {size}x{size}, B=1"])


def _check_result(result: dict, printed: str, expected: list[str], cnum: int) -> None:
    names = [row["name"] for row in result["rows"]]
    assert names == expected
    for name in expected:  # every row is in the printed table too
        assert name in printed
    for row in result["rows"]:
        assert math.isfinite(row["median"]) and row["median"] > 0, row
        if row["unit"] == "x":  # ratio rows carry no timing samples or memory
            assert row["best"] is None and row["peak_mb"] is None
            continue
        assert row["unit"].startswith("ms/")
        assert row["peak_mb"] is not None and math.isfinite(row["peak_mb"]) and row["peak_mb"] > 0, row
        if row["best"] is not None:  # None only for the --quick sum of the training parts
            assert 0 < row["best"] <= row["median"]
            assert all(math.isfinite(s) and s > 0 for s in row["samples"])
    env = result["environment"]
    assert env["cnum"] == cnum and env["params_generator"] > 0
    assert env["params_local_critic"] > 0 and env["params_global_critic"] > 0
    assert env["torch_threads"] >= 1 and env["torch"] == torch.__version__
    for text in ("torch threads", "parameters: generator", torch.__version__, "peak MB"):
        assert text in printed


def test_full_run_in_process_prints_every_row(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = _load_script().main(["--device", "cpu", "--cnum", "4", "--critic-cnum", "4", "--size", "32",
                                  "--repeats", "1", "--train-repeats", "1", "--warmup", "0",
                                  "--json", str(out)])
    assert status == 0
    result = json.loads(out.read_text())
    assert result["settings"]["sizes"] == [32, 64] and not result["settings"]["quick"]
    _check_result(result, capsys.readouterr().out, _expected_rows(32, quick=False), cnum=4)
    step = result["rows"][-1]
    assert step["samples"] and "timed as a whole" in step["note"]


def test_quick_run_sums_the_training_parts(tmp_path, capsys):
    out = tmp_path / "quick.json"
    status = _load_script().main(["--device", "cpu", "--quick", "--cnum", "2", "--critic-cnum", "2",
                                  "--size", "32", "--repeats", "1", "--json", str(out)])
    assert status == 0
    result = json.loads(out.read_text())
    assert result["settings"]["sizes"] == [32] and result["settings"]["quick"]
    _check_result(result, capsys.readouterr().out, _expected_rows(32, quick=True), cnum=2)
    critic, gen, step = result["rows"][-3:]
    assert step["best"] is None and "--quick" in step["note"]
    assert step["median"] == pytest.approx(5 * critic["median"] + gen["median"])


def test_vs_reference_rows_alternate_and_report_identical_outputs(tmp_path, capsys):
    out = tmp_path / "ref.json"
    status = _load_script().main(["--device", "cpu", "--cnum", "4", "--size", "32", "--repeats", "3",
                                  "--warmup", "0", "--vs-reference", "--only-generator", "--json", str(out)])
    assert status == 0
    result = json.loads(out.read_text())
    names = [row["name"] for row in result["rows"]]
    printed = capsys.readouterr().out
    for s in (32, 64):
        for kind in ("reference", "fast"):
            name = f"generator {s}x{s} inference, {kind} ops, B=1"
            assert name in names and name in printed
    rows = {row["name"]: row for row in result["rows"]}
    for s in (32, 64):
        ref, fast = rows[f"generator {s}x{s} inference, reference ops, B=1"], rows[f"generator {s}x{s} inference, fast ops, B=1"]
        assert len(ref["samples"]) == len(fast["samples"]) == 3
        ratio = rows[f"generator {s}x{s} reference / fast ops"]
        assert ratio["median"] == pytest.approx(ref["median"] / fast["median"])
        assert ratio["note"].endswith("outputs torch.equal: yes")
    assert not any(name.startswith(("attention", "train")) for name in names)  # --only-generator


@pytest.mark.parametrize("argv, message", [
    (["--size", "60"], "--size must be a multiple of 8"),
    (["--batch", "0"], "--batch must be >= 1"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert _load_script().main(["--device", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(capsys):
    assert _load_script().main(["--device", "cuda"]) == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def test_time_calls_counts_warmup_and_repeats():
    calls = []
    seconds = time_calls(lambda: calls.append(1), repeats=3, warmup=2, device=torch.device("cpu"))
    assert len(calls) == 5 and len(seconds) == 3 and all(s >= 0 for s in seconds)
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_calls(lambda: None, repeats=0, warmup=0, device=torch.device("cpu"))


def test_peak_memory_on_cpu_is_at_least_a_live_buffer():
    buffer = torch.ones(8 * 2**20, dtype=torch.uint8)  # 8 MiB, touched so that it is resident
    assert peak_memory_mb(torch.device("cpu")) >= 8
    del buffer


@pytest.mark.parametrize("shared_mask", [True, False])
def test_per_image_loop_baseline_computes_the_same_layer(shared_mask):
    """The baseline must do the same work as the batched call, or the ratio means nothing.

    Reference: each image on its own through contextual_attention, written out here.
    """
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(3, 4, 8, 8, generator=g)  # (B, C, H, W)
    mask = torch.zeros(1 if shared_mask else 3, 1, 8, 8)  # (1 or B, 1, H, W)
    mask[..., 2:6, 2:6] = 1.0
    if not shared_mask:
        mask[1] = 0.0
        mask[2, :, 0:4, 0:4] = 1.0
    y, flow = attention_per_image_loop(feat, feat, mask)
    for i in range(3):
        m = mask if shared_mask else mask[i:i + 1]
        y_i, flow_i = contextual_attention(feat[i:i + 1], feat[i:i + 1], m)
        torch.testing.assert_close(y[i:i + 1], y_i)
        torch.testing.assert_close(flow[i:i + 1], flow_i)
