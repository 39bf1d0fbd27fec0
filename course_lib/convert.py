"""Convert the official DeepFill v1 TensorFlow checkpoints into course_lib state dicts.

``python -m course_lib convert <checkpoint dir or prefix> <out.pt>`` (notebook 90, official
weights). The reader is :mod:`course_lib.tf_checkpoint`; this module only maps names and
layouts, following the release's conventions (reference: "Conv semantics that matter for
loading the official weights"):

* names: ``inpaint_net/<layer>/kernel`` -> ``coarse.<layer>.weight`` or
  ``refine.<layer>.weight`` (course_lib's attributes carry the release's layer names); a
  ``gen_deconv`` nests its conv: ``inpaint_net/conv13_upsample/conv13_upsample_conv/kernel``
  -> ``coarse.conv13_upsample.conv.weight``; critics:
  ``discriminator/discriminator_local/conv1/kernel`` -> ``conv1.weight`` of the
  :class:`~course_lib.critics.LocalCritic`, ``discriminator/dout_local_fc/kernel`` -> ``fc.weight``;
* layouts: conv kernels are HWIO ``[k, k, in, out]`` -> PyTorch OIHW; dense kernels are
  ``[in, out]`` over an NHWC-flattened input. course_lib's critics flatten in NHWC order
  too, so the dense kernel is a plain transpose ``[out, in]``;
* colours: the release reads images with OpenCV, so its checkpoints are **BGR**. The
  converted model is made RGB-native by reversing the 3 image channels of the inputs of
  ``conv1``, ``xconv1``, ``pmconv1`` and both critics' ``conv1`` (channels 0..2 only: the
  generator's input is ``[x, ones, mask]``) and of the outputs of ``conv17``/``allconv17``.
  Since every layer is linear in those channels this is exact, not an approximation;
* ``cnum`` is read from ``conv1``'s kernel, the critics' ``cnum`` and input size from their
  ``conv1`` and dense kernels; optimizer slots (``/Adam``, ``/Adam_1``), ``beta1_power``,
  ``beta2_power`` and ``global_step`` are ignored.

The converted file is a plain dict (``format_version`` 1, a JSON-able ``config``,
``generator`` and optionally ``local_critic`` / ``global_critic`` state dicts) that loads
with ``torch.load(path, weights_only=True)``; :mod:`course_lib.pretrained` builds the models.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.generator import Generator
from course_lib.tf_checkpoint import list_variables, read_checkpoint

__all__ = [
    "ConversionError",
    "FORMAT_VERSION",
    "GENERATOR_SCOPE",
    "is_ignored_variable",
    "generator_name_map",
    "critic_name_map",
    "infer_generator_cnum",
    "infer_critic_config",
    "convert_variables",
    "convert_checkpoint",
    "save_converted",
    "main",
]

FORMAT_VERSION = 1
GENERATOR_SCOPE = "inpaint_net"
CRITIC_SCOPE = "discriminator"
# (state-dict key in the converted file, TF scope of the convs, TF name of the dense layer)
CRITICS = {
    "local_critic": ("discriminator_local", "dout_local_fc"),
    "global_critic": ("discriminator_global", "dout_global_fc"),
}
# image-channel inputs (channels 0..2) and image outputs, in course_lib state-dict keys
_RGB_INPUTS = ("coarse.conv1.weight", "refine.xconv1.weight", "refine.pmconv1.weight")
_RGB_OUTPUTS = ("coarse.conv17", "refine.allconv17")

_SLOT = re.compile(r"/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|ExponentialMovingAverage)$")
_COUNTER = re.compile(r"^(global_step|beta[12]_power(_\d+)?)$")

PathLike = Union[str, Path]


class ConversionError(ValueError):
    """The checkpoint's variables do not fit course_lib's models (missing/extra/mis-shaped)."""


def is_ignored_variable(name: str) -> bool:
    """True for variables that are not model weights: optimizer slots, step and beta
    counters, and anything outside the ``inpaint_net/`` and ``discriminator/`` scopes."""
    if _SLOT.search(name) or _COUNTER.match(name):
        return True
    return name.split("/", 1)[0] not in (GENERATOR_SCOPE, CRITIC_SCOPE)


def _tf_param(param: str) -> str:
    return {"weight": "kernel", "bias": "bias"}[param]


def generator_name_map(generator: nn.Module) -> dict[str, str]:
    """``{course_lib key: official TF name}`` for every parameter of a Generator.

    ``coarse.conv1.weight`` -> ``inpaint_net/conv1/kernel``;
    ``refine.allconv13_upsample.conv.bias`` ->
    ``inpaint_net/allconv13_upsample/allconv13_upsample_conv/bias``.
    """
    names = {}
    for key in generator.state_dict():
        parts = key.split(".")  # [stage, layer, ("conv",) param]
        layer, inner, param = parts[1], parts[2:-1], parts[-1]
        nested = f"/{layer}_conv" if inner == ["conv"] else ""
        if inner not in ([], ["conv"]):
            raise ConversionError(f"course_lib Generator key {key!r} has no official counterpart")
        names[key] = f"{GENERATOR_SCOPE}/{layer}{nested}/{_tf_param(param)}"
    return names


def critic_name_map(critic: nn.Module, scope: str, fc: str) -> dict[str, str]:
    """``{course_lib key: TF name}`` for a critic: ``conv1.weight`` ->
    ``discriminator/<scope>/conv1/kernel``, ``fc.bias`` -> ``discriminator/<fc>/bias``."""
    names = {}
    for key in critic.state_dict():
        layer, param = key.split(".")
        where = fc if layer == "fc" else f"{scope}/{layer}"
        names[key] = f"{CRITIC_SCOPE}/{where}/{_tf_param(param)}"
    return names


def _to_torch_layout(value: np.ndarray) -> np.ndarray:
    """HWIO conv kernel -> OIHW; [in, out] dense kernel -> [out, in]; biases unchanged."""
    if value.ndim == 4:
        return value.transpose(3, 2, 0, 1)  # (k, k, in, out) -> (out, in, k, k)
    if value.ndim == 2:
        return value.T  # (in, out) -> (out, in)
    return value


def infer_generator_cnum(variables: Mapping[str, np.ndarray]) -> int:
    """``cnum`` from ``inpaint_net/conv1/kernel``, shape ``[5, 5, 5, cnum]``."""
    name = f"{GENERATOR_SCOPE}/conv1/kernel"
    if name not in variables:
        found = sorted(n for n in variables if n.startswith(GENERATOR_SCOPE + "/"))[:5]
        raise ConversionError(
            f"no {name!r}: not a DeepFill v1 generator checkpoint (generator variables seen: "
            f"{found or 'none'}). DeepFill v2 checkpoints (gated convs) are not supported.")
    shape = tuple(np.shape(variables[name]))
    if len(shape) != 4 or shape[:3] != (5, 5, 5) or shape[3] < 2 or shape[3] % 2:
        raise ConversionError(
            f"{name!r} has shape {list(shape)}; DeepFill v1 expects [5, 5, 5, cnum] with an "
            "even cnum (32 in the release)")
    return int(shape[3])


def infer_critic_config(variables: Mapping[str, np.ndarray], scope: str, fc: str,
                        width_of_last: int) -> tuple[int, int]:
    """``(cnum, size)`` of a critic from ``conv1`` ``[5, 5, 3, cnum]`` and the dense kernel
    ``[(size/16)**2 * width_of_last * cnum, 1]``."""
    conv1, dense = f"{CRITIC_SCOPE}/{scope}/conv1/kernel", f"{CRITIC_SCOPE}/{fc}/kernel"
    missing = [n for n in (conv1, dense) if n not in variables]
    if missing:
        raise ConversionError(f"critic {scope}: missing variable(s) {', '.join(missing)}")
    c_shape, d_shape = tuple(np.shape(variables[conv1])), tuple(np.shape(variables[dense]))
    if len(c_shape) != 4 or c_shape[:3] != (5, 5, 3):
        raise ConversionError(f"{conv1!r} has shape {list(c_shape)}, expected [5, 5, 3, cnum]")
    cnum = int(c_shape[3])
    cells = d_shape[0] / (width_of_last * cnum) if len(d_shape) == 2 and cnum else -1.0
    side = math.isqrt(int(cells)) if cells >= 1 and cells == int(cells) else 0
    if side < 1 or side * side != cells or d_shape[1] != 1:
        raise ConversionError(
            f"{dense!r} has shape {list(d_shape)}, which is not [side**2 * {width_of_last * cnum}, 1] "
            f"for a critic with cnum {cnum}")
    return cnum, 16 * side


def _assign(module: nn.Module, names: dict[str, str], variables: Mapping[str, np.ndarray],
            problems: list[str]) -> dict[str, torch.Tensor]:
    """Build a state dict for ``module`` from ``variables``; record problems by name."""
    state = {}
    expected = module.state_dict()
    for key, tf_name in names.items():
        if tf_name not in variables:
            problems.append(f"missing {tf_name} (for {key}, shape {list(expected[key].shape)})")
            continue
        value = np.asarray(variables[tf_name])
        if value.dtype.kind != "f":
            problems.append(f"wrong dtype {value.dtype} for {tf_name} (expected floating point)")
            continue
        value = _to_torch_layout(value)
        if tuple(value.shape) != tuple(expected[key].shape):
            problems.append(
                f"mis-shaped {tf_name}: {list(np.shape(variables[tf_name]))} in the checkpoint, "
                f"{list(expected[key].shape)} expected by {key} (after the layout change)")
            continue
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return state


def _flip_rgb(state: dict[str, torch.Tensor], inputs: Sequence[str], outputs: Sequence[str]) -> None:
    """Reverse image channels: input channels 0..2 of ``inputs`` (OIHW, dim 1) and output
    channels of ``outputs`` (weight dim 0 and bias). BGR <-> RGB (the operation is its own inverse)."""
    for key in inputs:
        if key in state:
            w = state[key].clone()
            w[:, 0:3] = w[:, 0:3].flip(1)  # (out, in, k, k): in channels B, G, R -> R, G, B
            state[key] = w
    for prefix in outputs:
        for key in (prefix + ".weight", prefix + ".bias"):
            if key in state:
                state[key] = state[key].flip(0).contiguous()  # (3, ...) output B, G, R -> R, G, B


def _problem_error(problems: list[str], source: str) -> ConversionError:
    shown = problems[:40]
    more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
    return ConversionError(
        f"{source or 'checkpoint'} does not match course_lib's DeepFill v1 models "
        f"({len(problems)} problem(s)):\n  " + "\n  ".join(shown) + more +
        "\nIs it an official DeepFill v1 checkpoint (branch v1.0.0)? DeepFill v2 is a different model.")


def convert_variables(variables: Mapping[str, np.ndarray], source: str = "",
                      critics: Union[bool, str] = "auto", bgr_to_rgb: bool = True) -> dict:
    """Map official TF variables (``{name: array}``) to a converted course_lib dict.

    ``critics``: ``"auto"`` converts the critics when any ``discriminator/`` variable is
    present, ``True`` requires them, ``False`` skips them. ``bgr_to_rgb=False`` keeps the
    release's BGR channel order (only to show what goes wrong without the flip).
    Raises :class:`ConversionError` listing every missing, extra or mis-shaped variable.
    """
    if critics not in (True, False, "auto"):
        raise ValueError(f"critics must be True, False or 'auto', got {critics!r}")
    model_vars = {n: v for n, v in variables.items() if not is_ignored_variable(n)}
    cnum = infer_generator_cnum(model_vars)
    problems: list[str] = []
    generator = Generator(cnum)
    g_names = generator_name_map(generator)
    out: dict = {"format_version": FORMAT_VERSION}
    config: dict = {"cnum": cnum, "colour": "RGB" if bgr_to_rgb else "BGR", "source": str(source)}
    g_state = _assign(generator, g_names, model_vars, problems)
    used = set(g_names.values())
    has_critics = any(n.startswith(CRITIC_SCOPE + "/") for n in model_vars)
    want_critics = has_critics if critics == "auto" else bool(critics)
    critic_states = {}
    if want_critics:
        for key, (scope, fc) in CRITICS.items():
            cls, last = (LocalCritic, 8) if key == "local_critic" else (GlobalCritic, 4)
            try:
                c_cnum, size = infer_critic_config(model_vars, scope, fc, last)
            except ConversionError as exc:
                problems.append(str(exc))
                continue
            critic = cls(c_cnum, size)
            names = critic_name_map(critic, scope, fc)
            critic_states[key] = _assign(critic, names, model_vars, problems)
            used |= set(names.values())
            short = key.split("_")[0]
            config[f"{short}_cnum"], config[f"{short}_size"] = c_cnum, size
    for name in sorted(model_vars):
        if name not in used and (want_critics or not name.startswith(CRITIC_SCOPE + "/")):
            problems.append(f"extra {name} {list(np.shape(model_vars[name]))} (no course_lib parameter)")
    if problems:
        raise _problem_error(problems, source)
    if bgr_to_rgb:
        _flip_rgb(g_state, _RGB_INPUTS, _RGB_OUTPUTS)
        for state in critic_states.values():
            _flip_rgb(state, ("conv1.weight",), ())
    step = variables.get("global_step")
    if step is not None and np.size(step) == 1 and np.asarray(step).dtype.kind in "iu":
        config["global_step"] = int(np.asarray(step).reshape(()))
    out["config"] = config
    out["generator"] = g_state
    out.update(critic_states)
    return out


def convert_checkpoint(path: PathLike, out: Optional[PathLike] = None,
                       critics: Union[bool, str] = "auto", bgr_to_rgb: bool = True) -> dict:
    """Read an official TF checkpoint (folder or prefix) and convert it; save to ``out``
    when given. Optimizer slots are listed but never read (they are 2/3 of the file)."""
    listing = list_variables(path)
    wanted = [n for n in listing if not is_ignored_variable(n) or n == "global_step"]
    variables = read_checkpoint(path, names=wanted)
    converted = convert_variables(variables, source=Path(path).name, critics=critics,
                                  bgr_to_rgb=bgr_to_rgb)
    converted["config"]["ignored_variables"] = sum(is_ignored_variable(n) for n in listing)
    if out is not None:
        save_converted(converted, out)
    return converted


def save_converted(converted: dict, out: PathLike) -> Path:
    """``torch.save`` a converted dict (plain tensors, str/int config: weights_only-safe).

    Written by :func:`course_lib.checkpoint.atomic_save`: a read-only folder or a full disk
    is an ``OSError`` that names ``out``, and an interrupted write leaves no half file.
    """
    from course_lib.checkpoint import atomic_save
    return atomic_save(converted, out)


def _summary(converted: dict, out: Optional[Path]) -> str:
    cfg = converted["config"]
    n_gen = sum(t.numel() for t in converted["generator"].values())
    lines = [f"generator: cnum {cfg['cnum']}, {n_gen:,} parameters"]
    for key in CRITICS:
        short = key.split("_")[0]
        if key in converted:
            n = sum(t.numel() for t in converted[key].values())
            lines.append(f"{short} critic: cnum {cfg[short + '_cnum']}, input {cfg[short + '_size']}x"
                         f"{cfg[short + '_size']}, {n:,} parameters")
        else:
            lines.append(f"{short} critic: not in the checkpoint")
    lines.append(f"colour order: {cfg['colour']} (the release's BGR reversed at conversion)")
    if "global_step" in cfg:
        lines.append(f"training step: {cfg['global_step']:,}")
    lines.append(f"ignored: {cfg.get('ignored_variables', 0)} variable(s) (optimizer slots, counters)")
    if out is not None:
        lines.append(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); load it with "
                     f"course_lib.load_pretrained({str(out)!r})")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m course_lib convert <checkpoint dir or prefix> <out.pt> [--no-critics]``."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib convert",
        description="Convert an official DeepFill v1 TensorFlow checkpoint (a folder with a "
                    "'checkpoint' file, or a prefix such as .../snap-0) into a course_lib .pt file. "
                    "No TensorFlow needed.")
    parser.add_argument("checkpoint", help="checkpoint folder or prefix (path without .index)")
    parser.add_argument("out", help="output file, e.g. data/weights/places2.pt")
    parser.add_argument("--no-critics", action="store_true", help="convert the generator only")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    converted = convert_checkpoint(args.checkpoint, args.out, critics=False if args.no_critics else "auto")
    print(f"converted {args.checkpoint}")
    print(_summary(converted, Path(args.out)))
    return 0


if __name__ == "__main__":
    from course_lib.__main__ import run_command
    raise SystemExit(run_command("convert", main, sys.argv[1:]))
