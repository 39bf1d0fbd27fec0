"""One prepared GPU check: what the course claims about the GPU path, measured in one run (``make gpu-check``).

Runs on one CUDA GPU in at most about 8 minutes and prints a summary and writes JSON
(``--json``, default ``outputs/gpu_check.json``). Sections (each one's result, or its error,
lands in the JSON; one failing section does not stop the others):

1. ``parity``: generator and both critics (release sizes, cnum 32 / 64, 256 px) on CUDA
   against the same weights on the CPU, float32 with TF32 off; tolerance ``PARITY_TOL``
   (max abs difference relative to the CPU output's max abs value).
2. ``precisions``: one release iteration (5 critic + 1 generator step, :meth:`Trainer.train_step`)
   in float32, bf16 and fp16 (with the scaler), with and without channels-last: losses finite,
   weights finite and (float32, bf16) changed by the updates, time of the step; under fp16 the
   scaler's scale after the step (a first iteration may skip updates while the scale settles).
3. ``throughput``: steps/s and peak memory at 256 px, batch 8, 16, 32 and 64, in the amp
   mode :func:`course_lib.precision.choose_amp` picks, channels-last; an out-of-memory error
   is caught and recorded; plus the FLOPs of one iteration
   (:func:`course_lib.schedule.count_iteration_flops`) and the achieved TFLOP/s (what the schedule estimates in README.md should be replaced by).
4. ``resume``: a training run killed with SIGKILL (a child process) after its step-2
   checkpoint, resumed to step 4, against the same run uninterrupted (twice: the second
   uninterrupted run gives the noise floor of the device); it passes within ``RESUME_TOL`` on
   the generator's weights or within twice the noise floor, and when the checkpoint holds
   only CPU tensors. Then the same with ``deterministic=true`` (``train --deterministic``,
   :mod:`course_lib.determinism`), where the claim is bit-identical: difference exactly 0.
   The script sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` before CUDA starts (as a fresh
   ``train --deterministic`` process does) so that this section can run in the same process.
5. ``inference``: :func:`course_lib.bench.bench_generator` (the fast exact path against the
   reference ops with the release's per-image attention, in the same run, float32 with TF32
   off; their composites must agree within ``INFERENCE_TOL``) and
   :func:`course_lib.bench.bench_inpaint_crop` at 512, 1024 and 2048 px. The reference always
   runs at 512 and 1024; at 2048 its dense score matrix (16 GiB, several copies at its peak)
   runs only when :func:`reference_plan` finds the memory on this GPU, else the JSON says why.
6. ``loop``: the training loop's GPU hygiene (issue 27): the reads of device values in one
   release iteration (:func:`course_lib.value_checks.count_value_reads`, and on CUDA the
   warnings of ``torch.cuda.set_sync_debug_mode``): at most 1 (the losses, read together) plus
   one per update under fp16 (the GradScaler's own check); every generator layer keeps
   channels_last under autocast; the critics' scores are float32 under autocast.
7. ``toy_training``: the ``toy_cpu`` config trained on the device for 3 minutes; the hole
   PSNR of held-out toy images must beat the diffusion fill (the learning check's test).

``--dry-run`` runs every section on the CPU at tiny sizes in well under a minute (the test
suite runs it, so the script cannot rot); its pass/fail flags are not meaningful there.
Imports only the standard library, torch, numpy and course_lib (what a bare GPU image has).

    PYTHONPATH=. python3 scripts/gpu_check.py [--json out.json] [--dry-run]

Exit code: 0 when every check passed (dry run: when every section ran), 1 otherwise.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from course_lib import bench
from course_lib import checkpoint as ckpt_io
from course_lib.config import load_config
from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.data import make_dataset
from course_lib.evaluate import baseline_fill, complete, evaluation_masks
from course_lib.generator import Generator
from course_lib.metrics import psnr
from course_lib.precision import choose_amp
from course_lib.schedule import count_iteration_flops
from course_lib.train import Trainer
from course_lib.value_checks import count_value_reads, is_host_side

PARITY_TOL = 1e-3   # max |cuda - cpu| / max |cpu|, float32 with TF32 off
RESUME_TOL = 1e-4   # max |resumed - uninterrupted| of the generator's weights (fp32)
INFERENCE_TOL = 1e-3  # max |fast - reference| of the inpainted composite (values in [-1, 1]), fp32, TF32 off
ALLOWED_MODULES = {"torch", "numpy", "PIL", "matplotlib", "tqdm", "course_lib"}

# Sizes of a real run and of a dry run (CPU, seconds).
FULL = dict(size=256, cnum=32, critic_cnum=64, step_batch=4, batches=(8, 16, 32, 64), timed_steps=3,
            inference=(512, 1024, 2048), reference_always=1024, matmul_n=4096, resume_size=128, resume_cnum=32, train_minutes=3.0, flop_batch=16,
            resume_critic_steps=5)
DRY = dict(size=64, cnum=4, critic_cnum=4, step_batch=2, batches=(2,), timed_steps=1,
           inference=(32, 64), reference_always=32, matmul_n=256, resume_size=64, resume_cnum=4, train_minutes=0.05, flop_batch=2, resume_critic_steps=1)


def _config(size: int, cnum: int, critic_cnum: int, batch: int, device: str, **extra: Any) -> Any:
    """The release's losses and schedule at ``size`` on toy images (the check measures the machine, not the data)."""
    overrides = dict(data="toy", data_root="", toy_size=max(4 * batch, 16), val_images=4, image_size=size,
                     cnum=cnum, critic_cnum=critic_cnum, hole_size=size // 2, max_delta=size // 8,
                     batch_size=batch, device=device, progress="none", tensorboard=False, num_workers=0,
                     image_every=10**6, val_every=10**6, log_every=10**6, snapshot_every=10**6)
    overrides.update(extra)
    return load_config("celeba", overrides={k: v for k, v in overrides.items()})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


# ----------------------------------------------------------------------------- sections

def check_parity(device: torch.device, s: dict) -> dict:
    """Generator and critics: the device against the CPU, float32, TF32 off."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        torch.manual_seed(0)
        size = s["size"]
        models = {"generator": Generator(s["cnum"]).eval(),
                  "local_critic": LocalCritic(s["critic_cnum"], size=size // 2).eval(),
                  "global_critic": GlobalCritic(s["critic_cnum"], size=size).eval()}
        g = torch.Generator().manual_seed(1)
        x = torch.rand(2, 3, size, size, generator=g) * 2 - 1  # (2, 3, H, W)
        mask = torch.zeros(1, 1, size, size)
        mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0  # (1, 1, H, W)
        out: dict[str, Any] = {"tolerance": PARITY_TOL, "dtype": "float32", "tf32": False}
        with torch.no_grad():
            for name, model in models.items():
                twin = copy.deepcopy(model).to(device)
                if name == "generator":
                    ref = model(x * (1 - mask), mask)  # (x1, x2, flow)
                    got = twin(x.to(device) * (1 - mask.to(device)), mask.to(device))
                    # x1 and the composite x2 * mask + x * (1 - mask) (what inpaint returns)
                    diffs = {"x_stage1": _max_rel(got[0], ref[0]),
                             "composite": _max_rel(got[1] * mask.to(device) + x.to(device) * (1 - mask.to(device)),
                                                   ref[1] * mask + x * (1 - mask))}
                else:
                    inp = x[..., : size // 2, : size // 2] if name == "local_critic" else x
                    diffs = {"score": _max_rel(twin(inp.to(device)), model(inp))}
                out[name] = {**diffs, "passed": max(diffs.values()) <= PARITY_TOL}
        out["passed"] = all(out[n]["passed"] for n in models)
        return out
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def check_precisions(device: torch.device, s: dict, work: Path) -> dict:
    """One release iteration in each amp mode, with and without channels-last."""
    rows = []
    for amp in ("off", "bf16", "fp16"):
        for channels_last in (False, True):
            row: dict[str, Any] = {"amp": amp, "channels_last": channels_last}
            try:
                cfg = _config(s["size"], s["cnum"], s["critic_cnum"], s["step_batch"], device.type, amp=amp,
                              channels_last=channels_last, critic_steps=5)
                trainer = Trainer(cfg, work / f"prec_{amp}_{int(channels_last)}")
                start = {name: [p.detach().clone() for p in m.parameters()] for name, m in
                         (("generator", trainer.generator), ("local_critic", trainer.local_critic),
                          ("global_critic", trainer.global_critic))}
                t0 = time.perf_counter()
                losses = trainer.train_step()
                _sync(device)
                row["seconds"] = time.perf_counter() - t0
                row["losses"] = losses
                row["skipped_updates"] = trainer.skipped_updates  # fp16: updates the scaler skipped
                finite_w = all(bool(torch.isfinite(p).all()) for m in trainer.models for p in m.parameters())
                changed = {name: any(not torch.equal(p.detach(), q) for p, q in zip(m.parameters(), start[name]))
                           for name, m in (("generator", trainer.generator), ("local_critic", trainer.local_critic),
                                           ("global_critic", trainer.global_critic))}
                row["weights_changed"] = changed  # fp16: the scaler may skip every update of a first iteration
                if amp == "fp16":
                    row["grad_scale_after"] = {"critics": trainer.scaler_d.get_scale(),
                                               "generator": trainer.scaler_g.get_scale()}
                row["passed"] = (finite_w and all(v == v and abs(v) != float("inf") for v in losses.values())
                                 and (amp == "fp16" or all(changed.values())))
            except Exception as err:  # recorded, the other modes still run
                row.update(passed=False, error=f"{type(err).__name__}: {err}")
            rows.append(row)
    return {"rows": rows, "passed": all(r["passed"] for r in rows)}


def check_throughput(device: torch.device, s: dict, work: Path) -> dict:
    """Steps/s and peak memory at 256 px (dry: 64) for each batch size; OOM caught."""
    amp = choose_amp(device)
    rows = []
    for batch in s["batches"]:
        row: dict[str, Any] = {"batch": batch, "amp": amp, "channels_last": device.type == "cuda"}
        trainer = None
        try:
            cfg = _config(s["size"], s["cnum"], s["critic_cnum"], batch, device.type, amp=amp,
                          channels_last=device.type == "cuda")
            trainer = Trainer(cfg, work / f"tp_{batch}")
            trainer.train_step()  # warm-up (cuDNN autotuning)
            _sync(device)
            bench.reset_peak_memory(device)
            t0 = time.perf_counter()
            for _ in range(s["timed_steps"]):
                trainer.train_step()
            _sync(device)
            seconds = (time.perf_counter() - t0) / s["timed_steps"]
            row.update(seconds_per_step=seconds, steps_per_second=1.0 / seconds,
                       minutes_per_1000_steps=seconds * 1000 / 60, peak_memory_mib=bench.peak_memory_mb(device))
        except torch.cuda.OutOfMemoryError:
            row["oom"] = True
        except RuntimeError as err:
            if "out of memory" not in str(err).lower():
                raise
            row["oom"] = True
        finally:
            del trainer
            if device.type == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
    out: dict[str, Any] = {"size": s["size"], "rows": rows}
    flops = count_iteration_flops(s["cnum"], s["critic_cnum"], s["size"], s["flop_batch"])["total"]
    out["flops_per_iteration"] = {"size": s["size"], "batch": s["flop_batch"], "tflop": flops / 1e12,
                                  "counted_by": "course_lib.schedule.count_iteration_flops (meta device)"}
    timed = [r for r in rows if r["batch"] == s["flop_batch"] and "seconds_per_step" in r]
    if timed:
        out["achieved_tflops"] = flops / 1e12 / timed[0]["seconds_per_step"]
    out["passed"] = any("seconds_per_step" in r for r in rows)
    return out


def _resume_config(s: dict, device: str, deterministic: bool = False) -> Any:
    return _config(s["resume_size"], s["resume_cnum"], s["critic_cnum"], 2, device, amp="off",
                   cudnn_benchmark=False, critic_steps=s["resume_critic_steps"], deterministic=deterministic)


def _train_to(cfg: Any, out: Path, steps: int, resume: Optional[Path] = None) -> dict[str, torch.Tensor]:
    trainer = Trainer(cfg, out, resume=resume)
    trainer.fit(max_iters=steps)
    return {k: v.detach().cpu().clone() for k, v in trainer.generator.state_dict().items()}


def _child_train(out: str, device: str, dry: bool, deterministic: bool = False) -> None:
    """The process that is killed: trains with a checkpoint every 2 steps until it is killed."""
    if device == "cuda":
        torch.backends.cudnn.deterministic = True  # as in the parent's runs
    cfg = _resume_config(DRY if dry else FULL, device, deterministic)
    cfg.snapshot_every = 2
    Trainer(cfg, out).fit(max_iters=10**6)


def check_resume(device: torch.device, s: dict, work: Path, dry: bool) -> dict:
    """The resume check as configured by default (noise floor allowed), then with the deterministic switch
    (bit-identical required)."""
    from course_lib.determinism import set_deterministic
    out = _resume_once(device, s, work / "default", dry, deterministic=False)
    before = set_deterministic(False)
    try:
        det = _resume_once(device, s, work / "deterministic", dry, deterministic=True)
    except Exception as err:  # e.g. an op without a deterministic kernel: recorded, the rest still runs
        det = {"passed": False, "error": f"{type(err).__name__}: {err}"}
    finally:
        before.restore()
    if "error" not in det:
        det["bit_identical"] = det["max_weight_difference"] == 0.0 and det["noise_floor_two_straight_runs"] == 0.0
        det["passed"] = det["bit_identical"] and det["checkpoint_tensor_devices"] == ["cpu"]
    out["deterministic"] = det
    out["passed"] = out["passed"] and det["passed"]
    return out


def _resume_once(device: torch.device, s: dict, work: Path, dry: bool, deterministic: bool) -> dict:
    """SIGKILL after the step-2 checkpoint, resume to step 4, compare with 4 uninterrupted steps."""
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
    cfg = _resume_config(s, device.type, deterministic)
    straight = _train_to(cfg, work / "straight", 4)
    again = _train_to(cfg, work / "straight_again", 4)
    killed = work / "killed"
    cmd = [sys.executable, os.path.abspath(__file__), "--_child-train", str(killed), "--device", device.type]
    if dry:
        cmd.append("--dry-run")
    if deterministic:
        cmd.append("--deterministic")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    step2 = ckpt_io.checkpoint_path(killed / "checkpoints", 2)
    deadline = time.monotonic() + 300
    while not step2.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)  # what Colab does to a VM: no signal handler runs
    child.wait()
    if not step2.exists():
        raise RuntimeError(f"the child run wrote no step-2 checkpoint: {child.stderr.read().decode()[-500:]}")
    child.stderr.close()
    resumed = _train_to(cfg, work / "resumed", 4, resume=step2)
    diff = max(float((resumed[k] - straight[k]).abs().max()) for k in straight)
    floor = max(float((again[k] - straight[k]).abs().max()) for k in straight)
    loaded = torch.load(step2, map_location="cpu", weights_only=False)
    devices = {t.device.type for t in _tensors(loaded)}
    return {"tolerance": RESUME_TOL, "max_weight_difference": diff, "noise_floor_two_straight_runs": floor,
            "checkpoint_tensor_devices": sorted(devices), "killed_with": "SIGKILL",
            # within the tolerance, or within twice what two uninterrupted runs differ by on this device
            "passed": (diff <= RESUME_TOL or diff <= 2 * floor) and devices == {"cpu"}}


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


def check_loop(device: torch.device, s: dict, work: Path) -> dict:
    """Reads of device values per iteration, channels_last through every generator layer, float32 critic scores."""
    import warnings
    amp = choose_amp(device) if device.type == "cuda" else "bf16"  # dry run: CPU autocast, so the path is exercised
    cfg = _config(s["size"], s["cnum"], s["critic_cnum"], s["step_batch"], device.type, amp=amp,
                  channels_last=True, critic_steps=5)
    trainer = Trainer(cfg, work / "loop")
    trainer.train_step()  # warm-up; the first iteration also checks the masks' values
    _sync(device)
    cuda_syncs: Optional[int] = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        try:
            with count_value_reads() as reads:
                trainer.train_step()
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
    if device.type == "cuda":
        cuda_syncs = sum(1 for w in caught if "synchroniz" in str(w.message).lower())
    device_reads = {f"{op} @ {where}": n for (op, where), n in reads.items() if not is_host_side(where)}
    allowed = 1 + (cfg.critic_steps + 1 if amp == "fp16" else 0)  # fp16: GradScaler.step reads found_inf
    out: dict[str, Any] = {"amp": amp, "device_reads_per_iteration": device_reads,
                           "device_reads_total": sum(device_reads.values()), "allowed": allowed,
                           "cuda_sync_warnings": cuda_syncs,
                           "host_side_reads": sum(n for (op, where), n in reads.items() if is_host_side(where))}
    # channels_last through every generator layer, under the run's autocast
    generator = trainer.generator
    lost: list[str] = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: lost.append(n) if isinstance(o, torch.Tensor) and
                                     not o.is_contiguous(memory_format=torch.channels_last) else None)
             for n, m in generator.named_modules() if n.count(".") == 1]
    x = trainer._to_device(trainer.stream.next())
    mask, _ = trainer.sample_hole(x.shape[0])
    with torch.no_grad(), trainer.autocast():
        generator(x * (1 - mask), mask)
        scores = trainer.global_critic(x)
    for h in hooks:
        h.remove()
    out["layers_not_channels_last"] = lost
    out["critic_score_dtype"] = str(scores.dtype)
    out["passed"] = (out["device_reads_total"] <= allowed and not lost and scores.dtype == torch.float32
                     and (cuda_syncs is None or cuda_syncs <= allowed))
    return out


def reference_plan(size: int, always_up_to: int, device_type: str, last_reference: Optional[tuple[int, float]],
                   free_mib: Optional[float]) -> Optional[str]:
    """None when the reference path should run at ``size``, else why not (one phrase, for the JSON).

    Up to ``always_up_to`` px (and always on the CPU) it runs. Above, on CUDA, its dense score
    matrix grows as ``size ** 4``: its need is estimated as the peak of the last size whose
    reference ran (``last_reference = (size, peak MiB)``) times ``(size / that size) ** 4``, and
    it runs only when that is at most 90 % of the device's free memory (``free_mib``).
    """
    if size <= always_up_to or device_type != "cuda":
        return None
    if last_reference is None or free_mib is None:
        return "not run: no smaller size's reference peak to estimate its memory from"
    need = last_reference[1] * (size / last_reference[0]) ** 4
    if need <= 0.9 * free_mib:
        return None
    return (f"not run: its dense score matrix needs about {need / 1024:.0f} GiB ({last_reference[1] / 1024:.1f} GiB "
            f"at {last_reference[0]} px x {(size / last_reference[0]) ** 4:.0f}), this GPU has {free_mib / 1024:.0f} "
            "GiB free")


def check_inference(device: torch.device, s: dict) -> dict:
    """Exact (fast vs reference ops + per-image attention, float32, TF32 off) and crop inference at each size.

    Passes when every size's fast path ran, the reference ran at least up to
    ``s["reference_always"]`` px, and wherever it ran the composites differ by at most
    ``INFERENCE_TOL``. Above that size the reference runs when :func:`reference_plan` says the
    device has the memory (else, or on out-of-memory, the row says why it did not run).
    """
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rows: list[dict] = []
    compared: dict[int, Optional[float]] = {}
    skipped: dict[int, str] = {}
    last_reference: Optional[tuple[int, float]] = None
    try:
        rate = bench.matmul_gflops(device, n=s["matmul_n"])[0]  # fp32 GFLOP/s: the rows' "flop time" column
        for size in s["inference"]:
            free_mib = torch.cuda.mem_get_info(device)[0] / 2**20 if device.type == "cuda" else None
            why_not = reference_plan(size, s["reference_always"], device.type, last_reference, free_mib)
            try:
                out_of_memory = False
                try:
                    gen_rows = bench.bench_generator(s["cnum"], size, device, repeats=2, warmup=1,
                                                     gflops_rate=rate, reference=why_not is None)
                except torch.cuda.OutOfMemoryError:
                    if why_not is not None:
                        raise
                    out_of_memory = True  # retried below, once the failed attempt's tensors are released
                if out_of_memory:
                    torch.cuda.empty_cache()
                    why_not = "not run: out of memory"
                    gen_rows = bench.bench_generator(s["cnum"], size, device, repeats=2, warmup=1,
                                                     gflops_rate=rate, reference=False)
                crop = bench.bench_inpaint_crop(s["cnum"], size, device, repeats=2, warmup=1)
                rows.extend(asdict(r) for r in gen_rows + [crop])
                if why_not is None:
                    compared[size] = next((r.max_abs_diff for r in gen_rows if r.max_abs_diff is not None), None)
                    reference_peak = next((r.peak_mb for r in gen_rows if r.name.endswith(" reference")), None)
                    if reference_peak:
                        last_reference = (size, float(reference_peak))
                else:
                    skipped[size] = why_not
            except (torch.cuda.OutOfMemoryError, RuntimeError) as err:
                rows.append({"name": f"inference {size}", "error": f"{type(err).__name__}: {str(err)[:200]}"})
            if device.type == "cuda":
                torch.cuda.empty_cache()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
    must_compare = [size for size in s["inference"] if size <= s["reference_always"]]
    passed = (all("error" not in r for r in rows) and all(size in compared for size in must_compare)
              and all(d is not None and d <= INFERENCE_TOL for d in compared.values()))
    return {"tolerance": INFERENCE_TOL, "dtype": "float32", "tf32": False, "matmul_gflops": rate,
            "max_abs_diff_fast_vs_reference": {str(k): v for k, v in compared.items()},
            "reference_skipped": {str(k): v for k, v in skipped.items()}, "rows": rows, "passed": passed}


def check_toy_training(device: torch.device, s: dict, work: Path, minutes: float) -> dict:
    """toy_cpu on the device for ``minutes``; hole PSNR on held-out toy images vs the diffusion fill."""
    cfg = load_config("toy_cpu", overrides={"device": device.type, "progress": "none", "tensorboard": False})
    trainer = Trainer(cfg, work / "toy")
    result = trainer.fit(max_iters=10**6, max_minutes=minutes)
    test = make_dataset("toy", split="test", size=cfg.image_size, seed=cfg.seed, n=64)
    x = torch.stack([test[i] for i in range(len(test))])  # (N, 3, H, W)
    mask = evaluation_masks(len(test), cfg.image_size, cfg.image_size, seed=0)  # (N, 1, H, W)
    model = trainer.eval_generator.eval()
    filled = complete(model, x.to(device), mask.to(device)).cpu()
    diffusion = baseline_fill(x, mask, "diffusion")
    model_db = float(psnr(x, filled, mask, max_db=100.0).mean())
    diffusion_db = float(psnr(x, diffusion, mask, max_db=100.0).mean())
    return {"minutes": minutes, "steps": result.step, "hole_psnr_model_db": model_db,
            "hole_psnr_diffusion_db": diffusion_db, "passed": model_db > diffusion_db}


# ----------------------------------------------------------------------------- the run

def _third_party_modules() -> list[str]:
    std = getattr(sys, "stdlib_module_names", set())
    roots = {name.split(".")[0] for name in list(sys.modules)}
    return sorted(r for r in roots if r not in std and not r.startswith("_") and r != "__main__")


def _backend_flags() -> tuple[bool, bool, bool, bool, bool]:
    """The global switches a section may change: cuDNN deterministic / benchmark, deterministic algorithms, TF32."""
    return (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
            torch.are_deterministic_algorithms_enabled(), torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32)


def _restore_backend_flags(flags: tuple[bool, bool, bool, bool, bool]) -> None:
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, algorithms,
     torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) = flags
    torch.use_deterministic_algorithms(algorithms)


def run(args: argparse.Namespace) -> dict:
    dry = args.dry_run
    s = DRY if dry else FULL
    device = torch.device("cpu" if dry else args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = {"name": props.name, "capability": list(torch.cuda.get_device_capability(device)),
               "memory_gib": round(props.total_memory / 2**30, 1)}
    else:
        gpu = None
    result: dict[str, Any] = {
        "dry_run": dry, "device": str(device), "gpu": gpu, "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), "amp_chosen": choose_amp(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sections": {}}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        sections: list[tuple[str, Callable[[], dict]]] = [
            ("parity", lambda: check_parity(device, s)),
            ("precisions", lambda: check_precisions(device, s, work)),
            ("throughput", lambda: check_throughput(device, s, work)),
            ("resume", lambda: check_resume(device, s, work, dry)),
            ("inference", lambda: check_inference(device, s)),
            ("loop", lambda: check_loop(device, s, work)),
        ]
        flags = _backend_flags()  # each section starts from the process's own settings: a Trainer sets
        for name, fn in sections:  # cudnn.benchmark, the resume section cuDNN's deterministic mode
            _restore_backend_flags(flags)
            t0 = time.perf_counter()
            try:
                out = fn()
            except Exception as err:
                out = {"passed": False, "error": f"{type(err).__name__}: {err}",
                       "traceback": traceback.format_exc()[-2000:]}
            out["seconds"] = round(time.perf_counter() - t0, 2)
            result["sections"][name] = out
            print(f"{name:<12} {'ok' if out.get('passed') else 'FAILED'}  ({out['seconds']:.1f} s)"
                  + (f"  {out['error']}" if "error" in out else ""), flush=True)
        _restore_backend_flags(flags)
        # the toy run gets what is left of the budget, at most train_minutes
        left = args.budget_minutes - (time.perf_counter() - t_start) / 60 - 0.5
        minutes = s["train_minutes"] if dry else max(0.5, min(s["train_minutes"], left))
        t0 = time.perf_counter()
        try:
            out = check_toy_training(device, s, work, minutes)
        except Exception as err:
            out = {"passed": False, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
        out["seconds"] = round(time.perf_counter() - t0, 2)
        result["sections"]["toy_training"] = out
        print(f"{'toy_training':<12} {'ok' if out.get('passed') else 'FAILED'}  ({out['seconds']:.1f} s)"
              + (f"  {out['error']}" if "error" in out else ""), flush=True)
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    result["budget_minutes"] = args.budget_minutes
    result["within_budget"] = result["seconds"] <= 60 * args.budget_minutes  # the "at most 8 minutes" claim
    result["third_party_modules"] = _third_party_modules()
    result["passed"] = (all(sec.get("passed") for sec in result["sections"].values())
                        and (dry or result["within_budget"]))
    result["ran_every_section"] = all("error" not in sec for sec in result["sections"].values())
    return result


def summary(result: dict) -> str:
    """A few lines for the console: the throughput table and the headline numbers."""
    lines = [f"gpu check on {result['device']} ({(result['gpu'] or {}).get('name', 'CPU')}), "
             + (f"DRY RUN (pass flags not meaningful at tiny sizes): {'every section ran' if result['ran_every_section'] else 'a section FAILED to run'} "
                if result["dry_run"] else f"full: {'PASSED' if result['passed'] else 'FAILED'} ")
             + f"in {result['seconds']} s"]
    tp = result["sections"].get("throughput", {})
    for row in tp.get("rows", []):
        if row.get("oom"):
            lines.append(f"  {tp['size']} px batch {row['batch']:>3}: out of memory")
        elif "seconds_per_step" in row:
            lines.append(f"  {tp['size']} px batch {row['batch']:>3}: {row['steps_per_second']:.2f} steps/s, "
                         f"{row['minutes_per_1000_steps']:.1f} min/1000 steps, peak {row['peak_memory_mib']:.0f} MiB "
                         f"({row['amp']})")
    inference = result["sections"].get("inference", {})
    for size, diff in inference.get("max_abs_diff_fast_vs_reference", {}).items():
        shown = f"differ by at most {diff:.1e}" if diff is not None else "were not compared (no difference row)"
        lines.append(f"  inference {size} px: fast vs reference {shown} (tolerance {inference['tolerance']:g})")
    for size, why in inference.get("reference_skipped", {}).items():
        lines.append(f"  inference {size} px: reference {why}")
    toy = result["sections"].get("toy_training", {})
    if "hole_psnr_model_db" in toy:
        lines.append(f"  toy run {toy['steps']} steps: hole PSNR {toy['hole_psnr_model_db']:.2f} dB vs diffusion "
                     f"{toy['hole_psnr_diffusion_db']:.2f} dB")
    if not result["dry_run"]:
        lines.append(f"  {result['seconds'] / 60:.1f} min in all: "
                     f"{'within' if result['within_budget'] else 'OVER'} the {result['budget_minutes']:g}-minute budget")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default="outputs/gpu_check.json", help="where to write the result")
    parser.add_argument("--dry-run", action="store_true", help="every section on the CPU at tiny sizes (seconds)")
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--budget-minutes", type=float, default=8.0, help="the toy run gets what is left of it")
    parser.add_argument("--_child-train", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deterministic", action="store_true", help=argparse.SUPPRESS)  # the child's switch
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # before CUDA starts, as a fresh `train --deterministic` process would (the resume section's second half)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if args._child_train:
        _child_train(args._child_train, "cpu" if args.dry_run else (args.device or "cuda"), args.dry_run,
                     args.deterministic)
        return 0
    result = run(args)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(summary(result))
    print(f"wrote {path}")
    return 0 if (result["ran_every_section"] if result["dry_run"] else result["passed"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
