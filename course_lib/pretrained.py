"""Load the official DeepFill v1 weights (converted, or straight from the TF checkpoint).

Taught in notebook 90 (official weights). Two steps for a user::

    python -m course_lib convert data/weights/places2 data/weights/places2.pt
    generator = course_lib.load_pretrained("data/weights/places2.pt")

:func:`load_pretrained` also accepts the TF checkpoint itself (a folder with a
``checkpoint`` file, or a prefix such as ``.../snap-0``) and converts it in memory with
:mod:`course_lib.convert`, which needs no TensorFlow.

The weights are NOT part of course_lib: the authors publish them through the links in the
README of the official repository (JiahuiYu/generative_inpainting, branch v1.0.0),
under CC BY-NC 4.0 (attribution, non-commercial). See :data:`OFFICIAL_WEIGHTS`.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any, Union

import torch

from course_lib.checkpoint import safe_torch_load
from course_lib.convert import FORMAT_VERSION, convert_checkpoint
from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.generator import Generator

__all__ = [
    "OFFICIAL_WEIGHTS",
    "OFFICIAL_WEIGHTS_SOURCE",
    "OFFICIAL_WEIGHTS_LICENSE",
    "load_converted",
    "load_pretrained",
    "load_pretrained_critics",
]

OFFICIAL_WEIGHTS_SOURCE = (
    "the links in the README of the official repository JiahuiYu/generative_inpainting, "
    "branch v1.0.0 (Google Drive folders)"
)
OFFICIAL_WEIGHTS_LICENSE = "CC BY-NC 4.0 (Creative Commons Attribution-NonCommercial 4.0 International)"

# The four official DeepFill v1 models. All: 256x256 training images, rectangular holes
# up to 128x128 (worse on larger or free-form holes), TF checkpoints with a BGR colour order.
OFFICIAL_WEIGHTS: dict[str, dict[str, str]] = {
    "places2": {
        "name": "Places2",
        "content": "scenes (landscapes, buildings, rooms); the model of the paper's Table 1",
        "training": "256x256 random crops",
    },
    "celeba": {
        "name": "CelebA",
        "content": "faces (aligned celebrity photos)",
        "training": "256x256 random crops",
    },
    "celebahq": {
        "name": "CelebA-HQ",
        "content": "faces, high quality",
        "training": "images resized to 256x256",
    },
    "imagenet": {
        "name": "ImageNet",
        "content": "objects, 1000 classes",
        "training": "256x256 random crops",
    },
}
for _entry in OFFICIAL_WEIGHTS.values():
    _entry["published"] = OFFICIAL_WEIGHTS_SOURCE
    _entry["license"] = OFFICIAL_WEIGHTS_LICENSE
    _entry["format"] = "TensorFlow checkpoint: checkpoint, <prefix>.index, <prefix>.data-00000-of-00001"

PathLike = Union[str, Path]
_PREFIXES = ("module.", "_orig_mod.")


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``module.`` (DataParallel) and ``_orig_mod.`` (torch.compile) key prefixes."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def _is_torch_file(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.suffix in (".pt", ".pth", ".ckpt") or zipfile.is_zipfile(path):
        return True
    return False


def load_converted(path: PathLike, map_location: Any = "cpu") -> dict:
    """A converted weights dict: from a ``.pt`` file (``torch.load(weights_only=True)``) or,
    for a TF checkpoint folder/prefix, converted in memory. Raises ValueError with a hint
    when the path is neither."""
    p = Path(path).expanduser()
    if _is_torch_file(p):
        try:
            data = safe_torch_load(p, map_location)  # ValueError that names the problem
        except ValueError as exc:
            raise ValueError(f"{exc} A weights file for an official model is made with: python -m "
                             "course_lib convert <checkpoint folder> <out.pt>") from None
        if not isinstance(data, dict) or "generator" not in data:
            raise ValueError(
                f"{p}: not a course_lib weights file (expected a dict with a 'generator' "
                "state dict, as written by python -m course_lib convert)")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{p}: format_version {version} is not supported by this course_lib "
                f"(it reads {FORMAT_VERSION}); re-convert it with this version")
        return data
    converted = convert_checkpoint(p)
    for key in ("generator", "local_critic", "global_critic"):
        if key in converted:
            converted[key] = {k: v.to(map_location) for k, v in converted[key].items()}
    return converted


def _warn_colour(data: dict, path: PathLike) -> None:
    colour = data.get("config", {}).get("colour", "RGB")
    if colour != "RGB":
        warnings.warn(
            f"{path} holds {colour} weights: feed images with the channels reversed "
            "(x.flip(1)), or re-convert with the default bgr_to_rgb=True", stacklevel=3)


def _load_into(module: torch.nn.Module, state: dict, what: str, path: PathLike) -> None:
    try:
        module.load_state_dict(_strip_prefixes(state), strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the {what} weights do not fit course_lib's {what}: {exc}") from None


def load_pretrained(path: PathLike, map_location: Any = "cpu") -> Generator:
    """The official (or any course_lib) generator, in eval mode, on ``map_location``.

    ``path``: a converted ``.pt`` (``python -m course_lib convert``) or the TF checkpoint
    itself (folder with a ``checkpoint`` file, or a prefix). ``cnum`` comes from the file.
    """
    data = load_converted(path, map_location)
    state = _strip_prefixes(data["generator"])
    cnum = data.get("config", {}).get("cnum")
    if cnum is None:
        if "coarse.conv1.weight" not in state:
            raise ValueError(f"{path}: the generator state dict has no coarse.conv1.weight")
        cnum = int(state["coarse.conv1.weight"].shape[0])  # (cnum, 5, 5, 5)
    generator = Generator(int(cnum))
    _load_into(generator, state, "generator", path)
    _warn_colour(data, path)
    return generator.to(map_location).eval()


def load_pretrained_critics(path: PathLike, map_location: Any = "cpu") -> tuple[LocalCritic, GlobalCritic]:
    """``(LocalCritic, GlobalCritic)`` from a converted file or TF checkpoint, eval mode.

    Sizes and widths come from the file (official: cnum 64; inputs 128 and 256). Raises
    ValueError when the file has no critics (e.g. converted with ``--no-critics``).
    """
    data = load_converted(path, map_location)
    cfg = data.get("config", {})
    missing = [k for k in ("local_critic", "global_critic") if k not in data]
    if missing:
        raise ValueError(
            f"{path} has no {' or '.join(missing)} weights: the checkpoint held the generator "
            "only, or it was converted with --no-critics (re-convert without it)")
    critics = []
    for key, cls in (("local_critic", LocalCritic), ("global_critic", GlobalCritic)):
        short = key.split("_")[0]
        state = _strip_prefixes(data[key])
        cnum = cfg.get(f"{short}_cnum", int(state["conv1.weight"].shape[0]))
        size = cfg.get(f"{short}_size")
        if size is None:
            raise ValueError(f"{path}: config has no {short}_size for the {short} critic")
        critic = cls(int(cnum), int(size))
        _load_into(critic, state, f"{short} critic", path)
        critics.append(critic.to(map_location).eval())
    _warn_colour(data, path)
    return critics[0], critics[1]  # type: ignore[return-value]
