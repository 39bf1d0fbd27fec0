"""The deterministic switch of a training run (``deterministic: true`` / ``train --deterministic``).

On a CPU course_lib's training is bit-reproducible as it stands: a resumed run equals an
uninterrupted one (``tests/test_train.py``). On CUDA it is not by default: cuDNN's autotuner
(``cudnn.benchmark``) may pick other convolution kernels in another process, some kernels sum
with atomics in a varying order, and cuBLAS splits its workspace per stream. The switch turns
all three off, as PyTorch's reproducibility notes describe:

* ``torch.use_deterministic_algorithms(True)`` (``warn_only=False``): an op without a
  deterministic version raises, and :func:`explain_nondeterministic_error` turns that error
  into one sentence naming the op and the way out;
* ``torch.backends.cudnn.deterministic = True`` and ``torch.backends.cudnn.benchmark = False``;
* ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which cuBLAS reads when CUDA starts, so it is set
  before the trainer touches the GPU (a value already in the environment is kept).

It costs speed (no autotuning, deterministic backward kernels). Process-wide state: the
:class:`DeterministicState` returned by :func:`set_deterministic` puts the old one back.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["CUBLAS_WORKSPACE", "DeterministicState", "set_deterministic", "explain_nondeterministic_error"]

CUBLAS_WORKSPACE = ":4096:8"  # one of the two values NVIDIA documents for reproducible cuBLAS


@dataclass(frozen=True)
class DeterministicState:
    """The process-wide settings the switch changes, as they were before (for :meth:`restore`)."""

    algorithms: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    cublas_workspace: Optional[str]

    def restore(self) -> None:
        """Put the saved settings back (the environment variable too)."""
        torch.use_deterministic_algorithms(self.algorithms)
        torch.backends.cudnn.deterministic = self.cudnn_deterministic
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        if self.cublas_workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = self.cublas_workspace


def set_deterministic(enabled: bool = True) -> DeterministicState:
    """Turn the deterministic switch on (or off); return the previous settings.

    On: deterministic algorithms (errors, not warnings), cuDNN deterministic, no cuDNN
    autotuning, and ``CUBLAS_WORKSPACE_CONFIG`` set when it is not set yet. Call it before the
    first CUDA operation of the process (the trainer does, before it picks its device): when
    CUDA already started without the variable, cuBLAS may not honour it, and torch raises at
    the first matrix product instead (explained by :func:`explain_nondeterministic_error`).
    Off: deterministic algorithms and cuDNN's deterministic flag off (autotuning is left to
    the config's ``cudnn_benchmark``).
    """
    before = DeterministicState(torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                                torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    return before


_NONDETERMINISTIC = re.compile(r"does not have a deterministic implementation|CUBLAS_WORKSPACE_CONFIG")


def explain_nondeterministic_error(err: BaseException) -> Optional[str]:
    """One sentence for torch's "no deterministic implementation" errors; None for any other error."""
    text = str(err)
    if not isinstance(err, RuntimeError) or not _NONDETERMINISTIC.search(text):
        return None
    op = re.search(r"^(\S+) does not have a deterministic implementation", text)
    what = (f"the operation {op.group(1)}" if op else
            "a cuBLAS matrix product (CUDA started before CUBLAS_WORKSPACE_CONFIG was set)")
    return (f"deterministic=true, but {what} has no deterministic version on this device; train without "
            "--deterministic (--set deterministic=false), or set CUBLAS_WORKSPACE_CONFIG=:4096:8 in the "
            "environment before Python starts when the message names cuBLAS [torch: "
            + text.strip().splitlines()[0][:200] + "]")
