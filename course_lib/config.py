"""Training configuration: one dataclass holding every hyper-parameter of the release.

The defaults are the official DeepFill v1 release's ``inpaint.yml`` (training setup of
branch v1.0.0): Adam with lr 1e-4 and betas (0.5, 0.9) for the generator and the critics,
5 critic steps per generator step, batch 16, 256x256 images, a 128x128 hole box shrunk by
0..MAX_DELTA/2 = 0..16 px per side, spatial discount gamma 0.9 (the paper says 0.99), loss
weights l1 1.2, ae 1.2, gan 0.001, gradient-penalty lambda 10, global WGAN alpha 1.

Configs are JSON files shipped inside the package (``course_lib/configs/*.json``); every
value can be overridden from the command line::

    python -m course_lib train --config places2 --set batch_size=8 --set lr=2e-4 --out runs/x

Taught in notebook 95 (training on Colab) and used by :mod:`course_lib.train`.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

__all__ = [
    "TrainConfig",
    "available_configs",
    "load_config",
    "apply_overrides",
    "parse_override",
    "AMP_MODES",
    "DATA_NAMES",
    "HOLE_KINDS",
]

AMP_MODES = ("off", "bf16", "fp16", "auto")  # auto: course_lib.precision.choose_amp
# Training hole kinds (course_lib.masks.HOLE_KINDS; repeated here so that reading a config needs no torch).
HOLE_KINDS = ("box", "strokes", "box_or_strokes", "folder", "border")
# Data sets the trainer knows (see course_lib.data): a procedural toy set, the release's
# flist files, a plain image folder, and the three official training sets.
DATA_NAMES = ("toy", "flist", "folder", "celeba", "celebahq", "places2")
PROGRESS_MODES = ("auto", "bar", "print", "none")


@dataclass
class TrainConfig:
    """Every knob of a DeepFill v1 training run (defaults = the official release).

    Sizes: ``image_size`` is the square training crop (release 256); ``hole_size`` is the
    box around the hole (release 128), which is also the local critic's input size;
    ``max_delta`` shrinks the box on each side by a random 0..max_delta/2 (release 32).
    """

    # --- data ---
    data: str = "toy"                 # one of DATA_NAMES
    data_root: str = ""               # folder / flist / data-set root (unused for "toy")
    split: str = "train"              # training split of the data set
    val_split: str = "val"            # split used for validation metrics
    val_flist: str = ""               # validation images: an flist file or an image folder; "" = the
                                      # default (data=flist: <data_root stem>_val.flist when make-flist
                                      # wrote one; else the data set's val_split)
    val_images: int = 16              # number of fixed validation images (seeded masks)
    toy_size: int = 512               # images in the toy training set (data = "toy")
    num_workers: int = 0              # DataLoader workers (0 = in the main process; exact resume)
    flip: bool = False                # mirror training images left-right at random (not in the
                                      # release; doubles a small set of photos)
    # --- model ---
    image_size: int = 256             # release IMG_SHAPES 256x256
    cnum: int = 32                    # generator width (release 32: 3,601,542 parameters)
    critic_cnum: int = 64             # critics' first conv width (release 64)
    # --- holes (release: random_bbox + bbox2mask) ---
    hole_size: int = 128              # release HEIGHT = WIDTH = 128 (box and local critic size)
    max_delta: int = 32               # release MAX_DELTA_HEIGHT = MAX_DELTA_WIDTH = 32
    margin: int = 0                   # release VERTICAL_MARGIN = HORIZONTAL_MARGIN = 0
    hole_kind: str = "box"            # one of HOLE_KINDS (course_lib.masks.training_holes): "box"
                                      # (release), "strokes", "box_or_strokes" (v2), "folder", "border"
    hole_per_sample: bool = False     # "box" only: one box per image instead of one per batch (release)
    mask_folder: str = ""             # hole_kind = "folder": a folder of your mask images (white = hole)
    mask_invert: bool = False         # hole_kind = "folder": black is the hole in those masks
    # --- optimisation (release: Adam, lr 1e-4, beta1 0.5, beta2 0.9 for both nets) ---
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    critic_steps: int = 5             # critic steps per generator step (release: 5)
    batch_size: int = 16              # release BATCH_SIZE 16
    max_iters: int = 1_000_000        # generator steps (release MAX_ITERS 1e6; ~150k is plenty)
    coarse_only: bool = False         # release PRETRAIN_COARSE_NETWORK: train on x_stage1 only
    ema_decay: float = 0.0            # EMA of the generator's weights for evaluation (not in the
                                      # release, 0 = off; course_lib.ema); toy_cpu: 0.995
    # --- losses (release inpaint.yml) ---
    gamma: float = 0.9                # SPATIAL_DISCOUNTING_GAMMA (paper: 0.99)
    l1_loss_alpha: float = 1.2        # L1_LOSS_ALPHA
    ae_loss_alpha: float = 1.2        # AE_LOSS_ALPHA
    gan_loss_alpha: float = 0.001     # GAN_LOSS_ALPHA
    coarse_alpha: float = 1.2         # weight of x_stage1 inside l1/ae (release: the same 1.2)
    wgan_gp_lambda: float = 10.0      # WGAN_GP_LAMBDA
    global_wgan_loss_alpha: float = 1.0  # GLOBAL_WGAN_LOSS_ALPHA
    # --- bookkeeping ---
    snapshot_every: int = 10_000      # checkpoint interval in generator steps (release 10k)
    snapshot_minutes: float = 0.0     # also a checkpoint every N minutes of wall time (0 = off): a
                                      # Colab VM is killed without a signal, so steps alone can lose hours
    keep_last: int = 3                # checkpoints kept on disk
    mirror_dir: str = ""              # also copy the newest checkpoint here (e.g. a Drive folder), one
                                      # file overwritten in place; --resume reads it when out has none
    log_every: int = 100              # printed summary interval (non-TTY / CI)
    image_every: int = 1000           # image grid interval (input, coarse, refined, flow)
    val_every: int = 5000             # validation metrics interval
    progress: str = "auto"            # "auto" | "bar" | "print" | "none"
    tensorboard: bool = True          # write TensorBoard events when tensorboard is importable
    # --- hardware ---
    device: str = "auto"              # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    amp: str = "off"                  # "off" | "bf16" | "fp16" (fp16 uses a GradScaler) | "auto"
                                      # (bf16 from sm_80, fp16 below, off on CPU: course_lib.precision)
    channels_last: bool = False       # NHWC memory format on GPU (faster convs with AMP)
    cudnn_benchmark: bool = True      # let cuDNN pick the fastest conv algorithms
    deterministic: bool = False       # bit-identical runs on CUDA too: deterministic kernels, no cuDNN
                                      # autotuning, CUBLAS_WORKSPACE_CONFIG (course_lib.determinism); slower
    seed: int = 0                     # seeds python, numpy, torch and the data order

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "TrainConfig":
        """Check types and ranges; raise a ValueError/TypeError that says how to fix it."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, _coerce(f.name, value, _field_types()[f.name]))
        if self.data not in DATA_NAMES:
            raise ValueError(f"data must be one of {DATA_NAMES}, got {self.data!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.hole_kind not in HOLE_KINDS:
            raise ValueError(f"hole_kind must be one of {HOLE_KINDS}, got {self.hole_kind!r}")
        if self.hole_kind == "folder" and not self.mask_folder:
            raise ValueError("hole_kind=folder needs your masks: add --set mask_folder=PATH (a folder of "
                             "mask images, white = hole)")
        if self.progress not in PROGRESS_MODES:
            raise ValueError(f"progress must be one of {PROGRESS_MODES}, got {self.progress!r}")
        positive = ("image_size", "cnum", "critic_cnum", "hole_size", "critic_steps", "batch_size",
                    "snapshot_every", "keep_last", "log_every", "image_every", "val_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_iters", "max_delta", "margin", "num_workers", "val_images", "toy_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (the generator's grid), got "
                             f"{self.image_size}; the release trains at 256")
        if self.cnum % 2:
            raise ValueError(f"cnum must be even (conv16 has cnum // 2 channels), got {self.cnum}")
        if self.hole_size + 2 * self.margin > self.image_size:
            raise ValueError(f"hole_size {self.hole_size} (+ 2 * margin {self.margin}) does not fit in "
                             f"image_size {self.image_size}; use hole_size <= image_size // 2 as the "
                             "release (128 in 256)")
        if 2 * (self.max_delta // 2) >= self.hole_size:
            raise ValueError(f"max_delta {self.max_delta} would shrink the {self.hole_size} box to "
                             "nothing; use max_delta <= hole_size // 4 (release: 32 for 128)")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0 (release 1e-4), got {self.lr}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must both be in [0, 1) (release 0.5,0.9), got {self.betas}")
        for name in ("l1_loss_alpha", "ae_loss_alpha", "gan_loss_alpha", "coarse_alpha", "wgan_gp_lambda",
                     "global_wgan_loss_alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (a loss weight; 0 turns that term off), got "
                                 f"{getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1] (release 0.9, paper 0.99; 1 = no discount), got {self.gamma}")
        if self.snapshot_minutes < 0:
            raise ValueError(f"snapshot_minutes must be >= 0 (0 turns time-based checkpoints off), got "
                             f"{self.snapshot_minutes}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns the weight average off; 0.995 averages "
                             f"about the last 200 steps), got {self.ema_decay}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists), for checkpoints and ``config.json``."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Build a config from a dict; unknown keys are an error that lists the valid ones."""
        _check_keys(values.keys())
        return cls(**dict(values))

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the config as pretty JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _field_default(name: str) -> Any:
    """The default value of a config field as ``--set`` takes it (shown in error messages)."""
    default = {f.name: f.default for f in dataclasses.fields(TrainConfig)}.get(name)
    return ",".join(str(v) for v in default) if isinstance(default, tuple) else default


def _valid_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _check_keys(keys: Sequence[str]) -> None:
    valid = _valid_keys()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        guesses = [f"{m[0]!r} for {k!r}" for k in unknown if (m := difflib.get_close_matches(k, valid, n=1))]
        hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
        raise KeyError(
            f"unknown config key(s) {unknown}{hint}; valid keys are: {', '.join(valid)}")


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Convert ``value`` (from JSON or a ``--set`` string) to the field's type, or raise."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        item_types = typing.get_args(kind)
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").replace("[", "")
                     .replace("]", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or len(value) != len(item_types):
            raise TypeError(f"{name} must be {len(item_types)} comma-separated numbers, e.g. "
                            f"--set {name}=0.5,0.9; got {value!r}")
        return tuple(_coerce(name, v, t) for v, t in zip(value, item_types))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise TypeError(f"{name} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, got the bool {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.replace("_", ""))
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(f"{name} must be a number, got the bool {value!r}")
        number = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise TypeError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(number):
            raise ValueError(f"{name} must be a finite number, got {value!r} (NaN and infinity are not "
                             f"values; e.g. --set {name}={_field_default(name)})")
        return number
    if kind is str:
        if isinstance(value, str):
            return value
        raise TypeError(f"{name} must be a string, got {value!r}")
    raise TypeError(f"config field {name} has an unsupported type {kind!r}")  # pragma: no cover


def parse_override(text: str) -> tuple[str, str]:
    """``"batch_size=8"`` -> ``("batch_size", "8")``, with a clear error for malformed input."""
    if "=" not in text:
        raise ValueError(f"--set expects KEY=VALUE (e.g. --set batch_size=8), got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip().replace("-", "_")
    _check_keys([key])
    return key, value.strip()


def apply_overrides(config: TrainConfig, overrides: Union[Mapping[str, Any], Sequence[str]]) -> TrainConfig:
    """A new config with ``overrides`` applied: a dict, or ``["key=value", ...]`` strings.

    Values are type-checked against the field (``"8"`` -> 8 for an int field, ``"0.5,0.9"``
    -> (0.5, 0.9) for ``betas``); an unknown key raises a KeyError listing the valid keys.
    """
    if isinstance(overrides, Mapping):
        items = dict(overrides)
        _check_keys(items.keys())
    else:
        items = dict(parse_override(text) for text in overrides)
    values = config.to_dict()
    values.update(items)
    return TrainConfig.from_dict(values)


def available_configs() -> list[str]:
    """Names of the configs shipped in ``course_lib/configs`` (e.g. ``toy_cpu``, ``places2``)."""
    folder = resources.files("course_lib") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_config(name_or_path: Union[str, os.PathLike, None] = None,
                overrides: Union[Mapping[str, Any], Sequence[str], None] = None) -> TrainConfig:
    """Load a shipped config by name (``"places2"``) or a JSON file by path, then apply overrides.

    ``None`` gives the release defaults. A JSON file may hold a subset of the keys; the
    rest keep the release defaults.
    """
    if name_or_path is None:
        config = TrainConfig()
    else:
        text = str(name_or_path)
        if text.endswith(".json") or os.sep in text or Path(text).is_file():
            path = Path(text)
            if not path.is_file():
                raise FileNotFoundError(f"config file {path} does not exist; shipped configs: "
                                        f"{', '.join(available_configs())}")
            values = json.loads(path.read_text())
        else:
            resource = resources.files("course_lib") / "configs" / f"{text}.json"
            if not resource.is_file():
                raise ValueError(f"no shipped config named {text!r}; choose one of "
                                 f"{', '.join(available_configs())} or pass a path to a .json file")
            values = json.loads(resource.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"config {text} must hold a JSON object of key: value pairs")
        values.pop("_comment", None)
        config = TrainConfig.from_dict(values)
    if overrides:
        config = apply_overrides(config, overrides)
    return config
