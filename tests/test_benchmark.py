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
from course_lib.bench import (
    RssSampler,
    attention_gflop,
    attention_per_image_loop,
    dense_generator_gflop,
    peak_memory_mb,
    time_alternating,
    time_calls,
)

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("benchmark_script", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--device", "cpu", "--cnum", "4", "--critic-cnum", "4", "--sizes", "32", "64", "--reference-max", "32",
        "--attention-batch", "2", "--attention-size", "16", "--train-batch", "2", "--train-size", "32",
        "--repeats", "1", "--warmup", "0", "--no-steps"]


def _generator_rows(sizes: list[int], reference_max: int) -> list[str]:
    rows = []
    for s in sizes:
        rows.append(f"generator {s}x{s} fast")
        if s <= reference_max:
            rows += [f"generator {s}x{s} reference", f"generator {s}x{s} reference / fast"]
        rows.append(f"generator {s}x{s} fast / its convs' flop time")
    return rows


def _attention_rows(batch: int) -> list[str]:
    impls = ("per-image loop", "batched dense", "fast, all rows", "fast, hole rows")
    return ([f"attention fwd+bwd {name}, B={batch}" for name in impls]
            + [f"attention fwd+bwd per-image loop / {name}, B={batch}" for name in impls[2:]])


def _train_rows(size: int, batch: int) -> list[str]:
    where = f"{size}x{size}, B={batch}"
    return [f"train step (5 critic + 1 generator), {where}", f"train step reference, {where}",
            f"train step reference / current, {where}"]


def _check_result(result: dict, printed: str, expected: list[str], cnum: int) -> None:
    names = [row["name"] for row in result["rows"]]
    assert names == expected
    for name in expected:  # every row is in the printed table too
        assert name in printed
    rate = result["matmul_gflops"]
    assert math.isfinite(rate) and rate > 0 and f"{rate:.1f} GFLOP/s" in printed
    for row in result["rows"]:
        assert math.isfinite(row["median"]) and row["median"] > 0, row
        if row["unit"] == "x":  # ratio rows carry no timing samples, memory or work
            assert row["best"] is None and row["peak_mb"] is None and row["gflop"] is None
            continue
        if row["name"].startswith("inpaint crop"):  # no dense count: the window's size decides
            assert row["gflop"] is None and row["peak_mb"] > 0 and "crop, window" in row["note"]
            continue
        assert row["unit"].startswith("ms/")
        assert row["peak_mb"] is not None and math.isfinite(row["peak_mb"]) and row["peak_mb"] > 0, row
        assert 0 < row["best"] <= row["median"]
        assert all(math.isfinite(s) and s > 0 for s in row["samples"])
        assert row["gflop"] > 0  # the dense work, and its time at the sgemm rate
        assert row["flop_ms"] == pytest.approx(1000 * row["gflop"] / rate)
    env = result["environment"]
    assert env["cnum"] == cnum and env["params_generator"] > 0
    assert env["torch_threads"] >= 1 and env["torch"] == torch.__version__
    for text in ("torch threads", "parameters: generator", torch.__version__, "peak MB", "flop_ms"):
        assert text in printed


def test_full_run_in_process_prints_every_row(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert _load_script().main([*TINY, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["sizes"] == [32, 64] and result["settings"]["train"]
    expected = (["sgemm 2048x2048x2048 float32"] + _generator_rows([32, 64], 32)
                + ["inpaint crop mode 64x64, 10% hole"] + _attention_rows(2) + _train_rows(32, 2))
    _check_result(result, capsys.readouterr().out, expected, cnum=4)
    rows = {row["name"]: row for row in result["rows"]}
    assert "composites differ by at most" in rows["generator 32x32 reference / fast"]["note"]
    assert "reference not run" in rows["generator 64x64 fast"]["note"]
    for size in (32, 64):  # against the dense convs' time at the run's sgemm rate, counted independently here
        from course_lib.bench import conv_gflop
        from course_lib.generator import Generator
        g = Generator(4).eval()
        x, mask = torch.zeros(1, 3, size, size), torch.zeros(1, 1, size, size)
        mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0
        with torch.no_grad():
            convs = conv_gflop(g, lambda: g(x, mask))
        convs_ms = 1000.0 * convs / result["matmul_gflops"]
        assert rows[f"generator {size}x{size} fast / its convs' flop time"]["median"] == pytest.approx(
            rows[f"generator {size}x{size} fast"]["median"] / convs_ms, rel=1e-6)
        assert rows[f"generator {size}x{size} fast"]["cpu_ms"] > 0
    ratio = rows["attention fwd+bwd per-image loop / fast, hole rows, B=2"]
    assert ratio["median"] == pytest.approx(rows["attention fwd+bwd per-image loop, B=2"]["median"]
                                            / rows["attention fwd+bwd fast, hole rows, B=2"]["median"])


def test_quick_run_skips_the_train_step(tmp_path, capsys):
    out = tmp_path / "quick.json"
    argv = [a for a in TINY if a not in ("64",)] + ["--quick", "--json", str(out)]
    assert _load_script().main(argv) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["quick"] and not result["settings"]["train"]
    expected = (["sgemm 2048x2048x2048 float32"] + _generator_rows([32], 32)
                + ["inpaint crop mode 32x32, 10% hole"] + _attention_rows(2))
    _check_result(result, capsys.readouterr().out, expected, cnum=4)


def test_only_generator(tmp_path, capsys):
    out = tmp_path / "gen.json"
    assert _load_script().main([*TINY, "--only-generator", "--json", str(out)]) == 0
    names = [row["name"] for row in json.loads(out.read_text())["rows"]]
    assert names == ["sgemm 2048x2048x2048 float32"] + _generator_rows([32, 64], 32) + ["inpaint crop mode 64x64, 10% hole"]


def test_dense_work_by_hand():
    """The conv count against a table of the release's layers written out here; attention by formula."""
    c, S = 32, 512
    # (in, out, kernel, divisor of the map's side) of every conv, coarse then refine
    layers = ([(5, c, 5, 1), (c, 2 * c, 3, 2), (2 * c, 2 * c, 3, 2), (2 * c, 4 * c, 3, 4)]
              + [(4 * c, 4 * c, 3, 4)] * 8
              + [(4 * c, 2 * c, 3, 2), (2 * c, 2 * c, 3, 2), (2 * c, c, 3, 1), (c, c // 2, 3, 1), (c // 2, 3, 3, 1)]
              + [(5, c, 5, 1), (c, c, 3, 2), (c, 2 * c, 3, 2), (2 * c, 2 * c, 3, 4), (2 * c, 4 * c, 3, 4)]
              + [(4 * c, 4 * c, 3, 4)] * 5
              + [(5, c, 5, 1), (c, c, 3, 2), (c, 2 * c, 3, 2), (2 * c, 4 * c, 3, 4), (4 * c, 4 * c, 3, 4),
                 (4 * c, 4 * c, 3, 4), (4 * c, 4 * c, 3, 4), (4 * c, 4 * c, 3, 4)]
              + [(8 * c, 4 * c, 3, 4), (4 * c, 4 * c, 3, 4), (4 * c, 2 * c, 3, 2), (2 * c, 2 * c, 3, 2),
                 (2 * c, c, 3, 1), (c, c // 2, 3, 1), (c // 2, 3, 3, 1)])
    convs = sum(2 * (S // d) ** 2 * cout * cin * k * k for cin, cout, k, d in layers) / 1e9
    work = dense_generator_gflop(c, S)
    assert work["convs"] == pytest.approx(convs, rel=1e-9)
    n = (S // 8) ** 2  # attention grid 64x64 at 512
    matching, pasting, fusing = 2 * n * n * 4 * c * 9, 2 * n * n * 4 * c * 16, 2 * 2 * n * n * 9
    assert work["attention"] == pytest.approx((matching + pasting + fusing) / 1e9)
    assert attention_gflop(1, 128, 64, 64) == pytest.approx((2 * 1024**2 * 128 * 25 + 4 * 1024**2 * 9) / 1e9)


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "60"], "sizes must be multiples of 8"),
    (["--train-batch", "0"], "--train-batch must be >= 1"),
    (["--attention-size", "15"], "--attention-size must be even"),
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


def test_time_alternating_rotates_the_order_and_counts():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b"), "c": lambda: calls.append("c")}
    memory: dict = {}
    seconds = time_alternating(fns, repeats=2, warmup=1, device=torch.device("cpu"), memory=memory)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {k: len(v) for k, v in seconds.items()} == {"a": 2, "b": 2, "c": 2}
    assert set(memory) == {"a", "b", "c"} and all(v > 0 for v in memory.values())


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="samples Linux's /proc/self/statm")
def test_rss_sampler_sees_a_buffer_allocated_inside_the_block():
    with RssSampler(torch.device("cpu")) as before:
        pass
    with RssSampler(torch.device("cpu")) as during:
        buffer = torch.ones(64 * 2**20, dtype=torch.uint8)  # 64 MiB, touched
        import time
        time.sleep(0.05)
        del buffer
    assert during.peak_mb >= before.peak_mb + 48


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


def test_step_rows_against_the_port(tmp_path, capsys):
    """--only-steps: every path of both steps, the port ratios, the counted work; tiny sizes, no toy config."""
    out = tmp_path / "steps.json"
    argv = ["--device", "cpu", "--cnum", "2", "--critic-cnum", "3", "--only-steps", "--step-size", "16",
            "--step-repeats", "1", "--toy-config", "none", "--threads", "1", "--json", str(out)]
    threads = torch.get_num_threads()
    assert _load_script().main(argv) == 0
    assert torch.get_num_threads() == threads  # --threads is restored after the run
    assert result_threads(out) == 1
    result = json.loads(out.read_text())
    rows = {row["name"]: row for row in result["rows"]}
    names = []
    for kind, where in (("generator", "16x16, B=4"), ("generator", "32x32, B=2"), ("critic", "32x32, B=8")):
        name = f"{kind} step {where}, " + ("cnum 2" if kind == "generator" else "critic cnum 3")  # each its width
        names += [f"{name}: {path}" for path in ("fast", "step-by-step", "port")]
        names += [f"{name}: port / fast", f"{name}: port / step-by-step"]
        assert rows[f"{name}: fast"]["gflop"] > 0 and rows[f"{name}: fast"]["flop_ms"] > 0
        assert all(rows[f"{name}: {path}"]["cpu_ms"] > 0 for path in ("fast", "step-by-step", "port"))
        assert "in process CPU time" in rows[f"{name}: port / fast"]["note"]
        assert rows[f"{name}: port / fast"]["median"] == pytest.approx(
            rows[f"{name}: port"]["median"] / rows[f"{name}: fast"]["median"])
    assert [r["name"] for r in result["rows"]] == ["sgemm 2048x2048x2048 float32"] + names
    assert "port / fast" in capsys.readouterr().out


def result_threads(path: Path) -> int:
    """The thread count a saved run reports in its environment."""
    return json.loads(path.read_text())["environment"]["torch_threads"]


def test_threads_below_one_is_a_clear_error(capsys):
    assert _load_script().main(["--threads", "0", "--only-steps"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err


def test_port_generator_runs_the_same_weights_with_symmetric_padding():
    """The port is a different model only at the stride-2 convs' padding and the resizes: same shapes, close values."""
    from course_lib.bench import PortCritic, PortGenerator, _port_conv
    from course_lib.critics import GlobalCritic
    from course_lib.generator import Generator
    from course_lib.ops import SameConv2d

    torch.manual_seed(0)
    gen = Generator(2)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 10:22] = 1
    x1, x2, flow = PortGenerator(gen)(x, mask)
    assert x1.shape == x2.shape == x.shape and flow is None
    conv = SameConv2d(2, 3, 3)
    h = torch.randn(1, 2, 8, 8)
    assert torch.allclose(_port_conv(conv, h), conv(h), atol=1e-6)  # stride 1: the same conv
    down = SameConv2d(2, 3, 3, stride=2)
    assert not torch.allclose(_port_conv(down, h), down(h))  # stride 2: half a pixel apart, not TF 'SAME'
    critic = GlobalCritic(2, size=32)
    assert PortCritic(critic)(x).shape == (2, 1)
