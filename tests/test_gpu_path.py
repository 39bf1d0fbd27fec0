"""The GPU path's CPU-side pieces (issue 27): amp choice, time-based checkpoints, CPU checkpoints,
float32 attention under autocast, the FLOP count and the schedule estimates, the prepared GPU check."""
from __future__ import annotations

import importlib.util
import json
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from course_lib import checkpoint as ckpt_io
from course_lib import generator as G
from course_lib.config import TrainConfig, load_config
from course_lib.critics import LocalCritic
from course_lib.precision import choose_amp, resolve_amp
from course_lib.schedule import CARDS, Card, _FlopCount, _meta_values, count_iteration_flops, estimate_minutes
from course_lib.train import Trainer

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- amp by compute capability

@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((6, 0), "fp16"), ((8, 0), "bf16"),
                                                  ((8, 9), "bf16"), ((9, 0), "bf16")])
def test_amp_is_chosen_by_compute_capability(capability, expected):
    assert choose_amp("cuda", capability=capability) == expected


def test_amp_is_off_on_the_cpu_and_auto_resolves():
    assert choose_amp("cpu") == "off"
    assert resolve_amp("auto", "cpu") == "off"
    assert resolve_amp("fp16", "cpu") == "fp16"  # an explicit choice is kept


def test_a_bad_capability_is_one_sentence():
    with pytest.raises(ValueError, match=r"capability must be a \(major, minor\) pair of ints such as \(7, 5\)"):
        choose_amp("cuda", capability=(8,))


def _toy(**extra) -> TrainConfig:
    values = dict(progress="none", tensorboard=False, toy_size=8, batch_size=2, val_images=2,
                  image_every=10**6, val_every=10**6, log_every=10**6, snapshot_every=10**6, device="cpu")
    values.update(extra)
    return load_config("toy_cpu", overrides=values)


def test_a_trainer_with_amp_auto_on_the_cpu_trains_in_float32(tmp_path):
    trainer = Trainer(_toy(amp="auto"), tmp_path / "run")
    assert trainer.amp == "off" and trainer.amp_dtype is None and not trainer.scaler_g.is_enabled()


# ----------------------------------------------------------------------------- time-based checkpoints

def test_snapshot_minutes_writes_checkpoints_by_time_beside_steps(tmp_path):
    # 1e-7 min = 6 microseconds: every step takes longer, so every step is checkpointed (keep_last 10).
    timed = Trainer(_toy(snapshot_minutes=1e-7, keep_last=10), tmp_path / "timed")
    timed.fit(max_iters=3)
    assert len(ckpt_io.list_checkpoints(timed.checkpoint_dir)) == 3
    off = Trainer(_toy(keep_last=10), tmp_path / "off")  # snapshot_minutes 0: only the final one
    off.fit(max_iters=3)
    assert len(ckpt_io.list_checkpoints(off.checkpoint_dir)) == 1


def test_snapshot_minutes_must_not_be_negative():
    with pytest.raises(ValueError, match="snapshot_minutes must be >= 0"):
        TrainConfig(snapshot_minutes=-1)


# ----------------------------------------------------------------------------- checkpoints on the CPU

def test_to_cpu_keeps_the_structure_and_cpu_tensors():
    t = torch.arange(3.0)
    obj = {"a": OrderedDict(w=t), "b": [t, (t, 1)], "c": "x", "d": 2.5}
    out = ckpt_io.to_cpu(obj)
    assert isinstance(out["a"], OrderedDict) and out["a"]["w"] is t
    assert isinstance(out["b"], list) and isinstance(out["b"][1], tuple) and out["b"][1][1] == 1
    assert out["c"] == "x" and out["d"] == 2.5


def test_to_cpu_moves_a_tensor_of_another_device(monkeypatch):
    moved = []

    class Fake(torch.Tensor):  # a CPU tensor that says it lives elsewhere
        @property
        def device(self):  # type: ignore[override]
            return torch.device("meta")

        def cpu(self, *a, **k):  # type: ignore[override]
            moved.append(True)
            return torch.Tensor(self.as_subclass(torch.Tensor)).clone()

    fake = torch.ones(2).as_subclass(Fake)
    out = ckpt_io.to_cpu({"w": fake})
    assert moved and type(out["w"]) is torch.Tensor


def test_a_run_folder_on_the_colab_drive_mount_is_named_in_one_warning(tmp_path, monkeypatch, capsys):
    assert ckpt_io.drive_run_folder_note("/content/runs/c128") is None
    assert ckpt_io.drive_run_folder_note("/content/drive2/x") is None  # another folder that starts alike
    note = ckpt_io.drive_run_folder_note("/content/drive/MyDrive/runs/c128")
    assert note.startswith("warning: the run folder /content/drive/MyDrive/runs/c128 is on Google Drive")
    assert "--mirror /content/drive/MyDrive/runs/c128" in note and "\n" not in note
    monkeypatch.setattr(ckpt_io, "COLAB_DRIVE_MOUNT", str(tmp_path / "drive"))  # a stand-in mount
    Trainer(_toy(), tmp_path / "drive" / "MyDrive" / "run")
    assert "is on Google Drive, where every pruned checkpoint goes to Drive's trash" in capsys.readouterr().err
    Trainer(_toy(), tmp_path / "local" / "run")
    assert "Google Drive" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- attention in float32

def test_contextual_attention_runs_in_float32_with_autocast_off_under_bf16(monkeypatch):
    seen = []
    real = G.contextual_attention

    def spy(f, b, mask, *args, **kwargs):
        seen.append((f.dtype, mask.dtype, G._autocast_on(f.device.type)))
        return real(f, b, mask, *args, **kwargs)

    monkeypatch.setattr(G, "contextual_attention", spy)
    torch.manual_seed(0)
    gen = G.Generator(4).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        gen(x * (1 - mask), mask)
    with torch.no_grad():
        gen.double()(x.double() * (1 - mask.double()), mask.double())  # no autocast: the dtype is kept
    assert seen == [(torch.float32, torch.float32, False), (torch.float64, torch.float64, False)]


# ----------------------------------------------------------------------------- FLOPs and estimates

def test_the_flop_count_of_a_critic_matches_a_hand_count():
    critic = LocalCritic(4, size=32).to("meta")
    x = torch.empty(3, 3, 32, 32, device="meta")
    with _meta_values(), _FlopCount() as counter:
        critic(x)
    expected = 0
    h = 32
    for m in critic.modules():  # by hand: 2 * Cin * Cout * k * k * Hout * Wout per conv, 2 * in * out per linear
        if isinstance(m, nn.Conv2d):
            h = -(-h // m.stride[0])  # 'SAME' padding: ceil(h / stride)
            expected += 2 * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * h * h * 3
        elif isinstance(m, nn.Linear):
            expected += 2 * m.in_features * m.out_features * 3
    assert counter.total == expected


def test_an_iteration_counts_linearly_in_the_batch_and_the_penalty_is_inside():
    one = count_iteration_flops(cnum=4, critic_cnum=4, size=32, batch=1)
    two = count_iteration_flops(cnum=4, critic_cnum=4, size=32, batch=2)
    assert two["gradient_penalty"] == pytest.approx(2 * one["gradient_penalty"], rel=1e-9)
    # the generator's forward (in both steps) holds a few batch-shared ops: those on the (1, 1, H, W)
    # mask and, on the trainer's fast path, the sub-pixel kernels built once from the upsampling
    # convs' weights (course_lib.ops.use_fast_path): nearly linear
    for key in ("critic_step", "generator_step"):
        assert two[key] == pytest.approx(2 * one[key], rel=0.01), key
    assert one["total"] == pytest.approx(5 * one["critic_step"] + one["generator_step"])
    assert 0 < one["gradient_penalty"] < 5 * one["critic_step"]


def test_estimate_minutes_by_hand():
    flops = {"total": 6e12, "gradient_penalty": 1e12, "attention": 1e12}
    card = Card("bf16", 100.0, 50.0, True)
    fast, slow = estimate_minutes(flops, card)
    # 4e12 at 100e12 x 0.15 plus 2e12 at 50e12 x 0.15 seconds per iteration, x 1000 / 60
    assert fast == pytest.approx(1000 * (4 / 15 + 2 / 7.5) / 60)
    assert slow == pytest.approx(1000 * (4 / 10 + 2 / 5) / 60)
    assert set(CARDS) == {"T4", "L4", "A100"} and CARDS["T4"].amp == choose_amp("cuda", capability=(7, 5))


def test_the_colab_configs_load_and_label_their_times_as_estimates():
    for name, size in (("celeba_128_session", 128), ("celeba_256_instructor", 256)):
        config = load_config(name)
        assert config.image_size == size and config.hole_size == size // 2 and config.amp == "auto"
        assert config.snapshot_minutes > 0 and config.critic_steps == 5 and config.batch_size == 16
        comment = json.loads((ROOT / "course_lib" / "configs" / f"{name}.json").read_text())["_comment"]
        assert "ESTIMATES" in comment and "T4" in comment and "L4" in comment and "A100" in comment


@pytest.mark.slow
def test_the_readme_table_and_the_colab_configs_state_the_schedule_estimates():
    from course_lib.schedule import schedule_table

    table = schedule_table({"celeba_128_session": (128, 16), "celeba_256_instructor": (256, 16)})
    assert table in (ROOT / "README.md").read_text()  # python -m course_lib.schedule, pasted as is
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert len(rows) == 6
    for setup, _, card, minutes, iterations in rows:
        comment = json.loads((ROOT / "course_lib" / "configs" / f"{setup.split()[0]}.json").read_text())["_comment"]
        per_session = iterations.split(" / ")[1]  # the 4 h column
        assert f"{card}: {minutes} min per 1,000 steps, {per_session} steps per 4 h session" in comment, (setup, card)
    # one decimal below 10k, so a range never reads "2k-2k" (the T4 at 256 px: 1.6k-2.4k iterations per hour)
    assert "| T4 (fp16) | 25-39 | 1.6k-2.4k / 6.2k-9.8k / 19k-29k |" in table


@pytest.mark.slow
def test_the_readme_per_batch_size_table_is_the_schedule_count():
    from course_lib.schedule import batch_table

    table = batch_table()
    assert table in (ROOT / "README.md").read_text()  # the table the out-of-memory message points to
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == ["8", "16", "32", "64"]


def test_thousands_by_hand():
    from course_lib.schedule import _thousands

    assert [_thousands(n) for n in (1537, 9949, 10_000, 28_400, 132_000)] == ["1.5k", "9.9k", "10k", "28k", "132k"]


# ----------------------------------------------------------------------------- the prepared GPU check

def _gpu_check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_imports_only_what_a_bare_gpu_image_has():
    import ast
    tree = ast.parse((ROOT / "scripts" / "gpu_check.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    third_party = {r for r in roots if r not in sys.stdlib_module_names and r != "__future__"}
    assert third_party <= {"torch", "numpy", "PIL", "matplotlib", "tqdm", "course_lib"}, third_party


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_section_on_the_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    module = _gpu_check_module()
    out = tmp_path / "gpu_check.json"
    assert module.main(["--dry-run", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["device"] == "cpu" and result["ran_every_section"]
    assert set(result["sections"]) == {"parity", "precisions", "throughput", "resume", "inference", "loop",
                                       "toy_training"}
    assert [(r["amp"], r["channels_last"]) for r in result["sections"]["precisions"]["rows"]] == [
        (a, c) for a in ("off", "bf16", "fp16") for c in (False, True)]
    resume = result["sections"]["resume"]
    assert resume["max_weight_difference"] == 0.0 and resume["checkpoint_tensor_devices"] == ["cpu"]
    assert resume["deterministic"]["bit_identical"] and resume["deterministic"]["passed"]
    loop = result["sections"]["loop"]
    assert loop["device_reads_total"] == 1 and loop["passed"], loop  # the losses, read once per iteration
    assert loop["layers_not_channels_last"] == [] and loop["critic_score_dtype"] == "torch.float32"
    assert result["sections"]["throughput"]["flops_per_iteration"]["tflop"] > 0
    for row in result["sections"]["precisions"]["rows"]:  # every update of one iteration changed the weights
        assert set(row["weights_changed"]) == {"generator", "local_critic", "global_critic"}, row
        assert row["amp"] != "fp16" or set(row["grad_scale_after"]) == {"critics", "generator"}
    inference = result["sections"]["inference"]  # both sizes compared with the reference, within the tolerance
    assert set(inference["max_abs_diff_fast_vs_reference"]) == {"32", "64"} and inference["passed"], inference
    assert all(d <= inference["tolerance"] for d in inference["max_abs_diff_fast_vs_reference"].values())
    assert inference["reference_skipped"] == {} and result["within_budget"] and inference["matmul_gflops"] > 0
    assert "NaN" not in out.read_text()  # strict JSON: every rate is measured
    assert "fast vs reference differ by at most" in capsys.readouterr().out


def test_gpu_check_restores_the_backend_switches_a_section_changed():
    module = _gpu_check_module()
    before = module._backend_flags()
    try:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = (not before[0]), (not before[1])
        torch.use_deterministic_algorithms(not before[2])
        assert module._backend_flags()[:3] == tuple(not v for v in before[:3])
        module._restore_backend_flags(before)
        assert module._backend_flags() == before
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[0], before[1]
        torch.use_deterministic_algorithms(before[2])


def test_gpu_check_runs_the_large_reference_only_where_the_memory_is_there():
    plan = _gpu_check_module().reference_plan
    assert plan(1024, 1024, "cuda", None, None) is None  # up to 1024 px always
    assert plan(2048, 1024, "cpu", None, None) is None  # the CPU (dry run) always
    # 1.5 GiB at 1024 px: x16 = 24 GiB at 2048, run on 80 GiB free, not on 20 GiB free (a T4's 15 GiB neither)
    assert plan(2048, 1024, "cuda", (1024, 1536.0), 80 * 1024) is None
    why = plan(2048, 1024, "cuda", (1024, 1536.0), 20 * 1024)
    assert why == "not run: its dense score matrix needs about 24 GiB (1.5 GiB at 1024 px x 16), this GPU has 20 GiB free"
    assert plan(2048, 1024, "cuda", None, 80 * 1024).startswith("not run: no smaller size's reference peak")


def test_gpu_check_inference_falls_back_to_the_fast_path_alone_on_out_of_memory(monkeypatch):
    module = _gpu_check_module()
    from course_lib.bench import Row

    calls = []

    def fake_generator(cnum, size, device, repeats, warmup, gflops_rate, reference=True, seed=0):
        calls.append((size, reference))
        if reference and size == 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (stand-in)")
        rows = [Row(f"generator {size}x{size} fast", 1.0, "ms/image", peak_mb=10.0)]
        if reference:
            rows += [Row(f"generator {size}x{size} reference", 2.0, "ms/image", peak_mb=20.0),
                     Row(f"generator {size}x{size} reference / fast", 2.0, "x", max_abs_diff=3e-7 if size == 32 else 0.5)]
        return rows

    monkeypatch.setattr(module.bench, "bench_generator", fake_generator)
    monkeypatch.setattr(module.bench, "bench_inpaint_crop", lambda *a, **k: Row("crop", 1.0, "ms/image"))
    out = module.check_inference(torch.device("cpu"), dict(module.DRY, inference=(32, 64), reference_always=32))
    assert calls == [(32, True), (64, True), (64, False)]
    assert out["max_abs_diff_fast_vs_reference"] == {"32": 3e-7} and out["passed"]
    assert out["reference_skipped"] == {"64": "not run: out of memory"}
    # a reference that disagrees beyond the tolerance fails the section
    monkeypatch.setattr(module.bench, "bench_generator", lambda *a, **k: fake_generator(*a, **k)[:1] + [
        Row("generator 9x9 reference", 2.0, "ms/image", peak_mb=1.0), Row("r / f", 2.0, "x", max_abs_diff=0.5)])
    assert not module.check_inference(torch.device("cpu"), dict(module.DRY, inference=(32,), reference_always=32))["passed"]
    # and so does a size up to reference_always whose reference did not run
    monkeypatch.setattr(module.bench, "bench_generator", lambda *a, **k: fake_generator(*a, **{**k, "reference": False}))
    assert not module.check_inference(torch.device("cpu"), dict(module.DRY, inference=(32,), reference_always=32))["passed"]


# ----------------------------------------------------------------------------- fp16: skip, count, then stop

def test_fp16_skips_a_non_finite_update_and_stops_only_after_several_in_a_row(tmp_path, monkeypatch):
    from course_lib import train as T

    trainer = Trainer(_toy(amp="fp16", critic_steps=1), tmp_path / "run")
    real = trainer._critic_losses
    bad = {"n": 1}

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        if bad["n"] > 0:
            bad["n"] -= 1
            out["d_total"] = out["d_total"] * float("inf")  # an fp16 overflow
            out["d_loss"] = out["d_total"]
        return out

    monkeypatch.setattr(trainer, "_critic_losses", poisoned)
    before = [p.detach().clone() for p in trainer.local_critic.parameters()]
    trainer.train_step()  # the critic update is skipped by the scaler, the generator one runs
    assert trainer.skipped_updates == 1 and trainer.step == 1
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.local_critic.parameters()))
    bad["n"] = 10**6  # from now on every critic loss is infinite: the run stops after the limit
    with pytest.raises(T.NonFiniteLossError, match="non-finite critic updates in a row under fp16"):
        for _ in range(T.FP16_SKIP_LIMIT):
            trainer.train_step()
    assert trainer.skipped_updates == T.FP16_SKIP_LIMIT - 1  # the limit-th non-finite update in a row stops the run


def test_float32_still_stops_at_the_first_non_finite_loss(tmp_path, monkeypatch):
    from course_lib import train as T

    trainer = Trainer(_toy(critic_steps=1), tmp_path / "run")
    real = trainer._critic_losses
    monkeypatch.setattr(trainer, "_critic_losses",
                        lambda *a, **k: {**(out := real(*a, **k)), "d_total": out["d_total"] * float("nan")})
    with pytest.raises(T.NonFiniteLossError):
        trainer.train_step()
    assert trainer.skipped_updates == 0
