"""The fast training path (course_lib.ops.use_fast_path) against the step-by-step path the notebooks teach.

Generator: x_stage1, x_stage2 over the whole image (the trainer's losses read both everywhere) and
the gradients of a loss on them w.r.t. every weight; critics: the WGAN-GP critic loss (masked
gradient penalties, their double backward) and its gradients. Equal to 1e-5 of the largest
value in float32 (another summation order), here and, in subprocesses, under AVX2 and the
default (no-SIMD) kernels; to 1e-12 in float64.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.generator import Generator
from course_lib.losses import critic_loss
from course_lib.masks import random_box_mask
from course_lib.ops import use_fast_path

HERE = Path(__file__).resolve()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to max(1e-30, max |b|)."""
    return float((a.detach() - b.detach()).abs().max()) / max(float(b.detach().abs().max()), 1e-30)


def _rel_all(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    """:func:`_rel` of all the gradients as one vector: relative to the largest gradient of the model.

    (A single bias gradient is a sum over B x H x W terms that mostly cancel; in float32 its
    rounding is ~1e-5 of its own size but ~1e-7 of the model's largest gradient; in float64
    the two paths agree to ~1e-14, so it is rounding.)
    """
    return _rel(torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b]))


def fast_path_differences(dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """Largest relative differences, fast path vs step-by-step: generator outputs and gradients, critic loss and gradients."""
    torch.manual_seed(0)
    B, S = 3, 64
    gen = Generator(4).to(dtype).train()
    local, glob = LocalCritic(4, size=S // 2).to(dtype), GlobalCritic(4, size=S).to(dtype)
    fast = [copy.deepcopy(m) for m in (gen, local, glob)]
    use_fast_path(*fast)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(B, 3, S, S, generator=g) * 2 - 1).to(dtype)  # (B, 3, H, W)
    mask, boxes = random_box_mask(B, S, S, S // 2, S // 2, max_delta=S // 8, generator=g)
    mask = mask.to(dtype)
    weight = torch.randn(B, 3, S, S, generator=g).to(dtype)  # a loss that reads every pixel

    def generator_run(model: Generator) -> tuple[torch.Tensor, ...]:
        x1, x2, _ = model(x * (1 - mask), mask)
        loss = (x1 * weight).sum() + (x2 * weight).square().sum()
        return (x1, x2, *torch.autograd.grad(loss, list(model.parameters())))

    def critic_run(lc: LocalCritic, gc: GlobalCritic, x2: torch.Tensor) -> tuple[torch.Tensor, ...]:
        total = critic_loss(x, x2, mask, boxes[0], lc, gc, generator=7)["total"]
        return (total, *torch.autograd.grad(total, list(lc.parameters()) + list(gc.parameters())))

    ref, got = generator_run(gen), generator_run(fast[0])
    out = {"x_stage1": _rel(got[0], ref[0]), "x_stage2": _rel(got[1], ref[1]),
           "generator_grads": _rel_all(got[2:], ref[2:])}
    x2 = ref[1].detach()
    ref, got = critic_run(local, glob, x2), critic_run(fast[1], fast[2], x2)
    out.update(critic_loss=_rel(got[0], ref[0]), critic_grads=_rel_all(got[1:], ref[1:]))
    return out


def test_fast_path_equals_the_step_by_step_path():
    diffs = fast_path_differences()
    assert all(v <= 1e-5 for v in diffs.values()), diffs


@pytest.mark.slow
def test_fast_path_is_exact_in_float64():
    diffs = fast_path_differences(torch.float64)
    assert all(v <= 1e-12 for v in diffs.values()), diffs


@pytest.mark.slow
@pytest.mark.parametrize("capability, isa", [("avx2", "AVX2"), ("default", "SSE41")])
def test_fast_path_equals_the_step_by_step_path_under_other_kernels(capability, isa):
    """The same check in a fresh process with ATen's AVX2 / no-SIMD kernels and oneDNN limited to that ISA."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATEN_", "ONEDNN_", "OMP_", "MKL_"))}
    env.update(ATEN_CPU_CAPABILITY=capability, ONEDNN_MAX_CPU_ISA=isa, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    code = ("import json, runpy, sys; m = runpy.run_path(sys.argv[1]); "
            "print(json.dumps(m['fast_path_differences']()))")
    proc = subprocess.run([sys.executable, "-c", code, str(HERE)], env=env, cwd=HERE.parent, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    diffs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(diffs) == {"x_stage1", "x_stage2", "generator_grads", "critic_loss", "critic_grads"}
    assert all(v <= 1e-5 for v in diffs.values()), (capability, diffs)
