"""The official DeepFill v1 weights: fetched by name, cached, converted once; and the one loader.

Taught in notebook 90 (official weights). One command for a user::

    python -m course_lib download places2          # places2 | celeba | celebahq | imagenet
    generator = course_lib.load_pretrained("places2")

:func:`download` lists the authors' Google Drive folder with ``gdown`` (an optional
dependency: ``pip install gdown``, or ``pip install course_lib[weights]``), fetches each
file of the TF checkpoint with :func:`course_lib.fetch.fetch` (resumable, checksummed,
atomic), renames Drive's ``checkpoint.txt`` to ``checkpoint``, converts once to
``<cache>/<name>.pt`` with :mod:`course_lib.convert` (which checks every official variable
name and shape) after checking the official architecture (generator cnum 32, critics cnum
64 on 128x128 and 256x256 inputs), and records the sha256 of every file in
``<cache>/<name>.json``; every later download and every load by name compares against
those. The cache folder is :func:`weights_dir`: ``--dir`` / ``directory=``, else
``$COURSE_LIB_WEIGHTS``, else ``$XDG_CACHE_HOME/course_lib/weights`` (default
``~/.cache/course_lib/weights``).

:func:`load_weights` is the ONE function that decides which weights a checkpoint name or
path gives, for :func:`load_pretrained`, ``inpaint --checkpoint``, ``evaluate
--checkpoint`` and ``train --init``:

* an official name (``places2``, ...) -> its converted file in the cache (a file or folder
  of that name in the current folder is read as a path instead);
* a run folder -> its newest ``checkpoints/step_*.pt``; a trainer checkpoint -> the
  **weight average** of the generator when the run keeps one (``ema_decay > 0``,
  :mod:`course_lib.ema`: what validation and ``train --export`` use), else the trained
  weights; both critics;
* an exported generator (``train --export``) -> its weights (already the average);
* a converted official ``.pt`` or the TF checkpoint itself (folder with a ``checkpoint``
  file, or a prefix such as ``.../snap-0``, converted in memory; no TensorFlow needed);
* a bare generator state dict.

The weights are NOT part of course_lib: the authors publish them through the links in the
README of the official repository (JiahuiYu/generative_inpainting, branch v1.0.0),
under CC BY-NC 4.0 (attribution, non-commercial). See :data:`OFFICIAL_WEIGHTS`.
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch

from course_lib.checkpoint import atomic_save, latest_checkpoint, safe_torch_load
from course_lib.convert import FORMAT_VERSION, ConversionError, convert_checkpoint
from course_lib.critics import GlobalCritic, LocalCritic
from course_lib.fetch import FetchError, SourceRefused, fetch, sha256_file
from course_lib.generator import Generator
from course_lib.tf_checkpoint import CheckpointError

__all__ = [
    "OFFICIAL_WEIGHTS",
    "OFFICIAL_WEIGHTS_SOURCE",
    "OFFICIAL_WEIGHTS_LICENSE",
    "OFFICIAL_ARCHITECTURE",
    "WEIGHTS_ENV",
    "DRIVE_URL_ENV",
    "Weights",
    "WeightsNotFound",
    "weights_dir",
    "cached_weights",
    "download",
    "list_drive_folder",
    "load_weights",
    "load_converted",
    "load_pretrained",
    "load_pretrained_critics",
    "build_generator",
    "init_models",
    "official_or_toy",
]

OFFICIAL_WEIGHTS_SOURCE = (
    "the links in the README of the official repository JiahuiYu/generative_inpainting, "
    "branch v1.0.0 (Google Drive folders)"
)
OFFICIAL_WEIGHTS_LICENSE = "CC BY-NC 4.0 (Creative Commons Attribution-NonCommercial 4.0 International)"

# The four official DeepFill v1 models. All: 256x256 training images, rectangular holes
# up to 128x128 (worse on larger or free-form holes), TF checkpoints with a BGR colour order.
# drive_folder: the Google Drive "model dir" linked from the release's README (v1.0.0).
# Places2 is the data set of the paper's Table 1 (Places2 validation images); nothing in the
# paper or the release says that the released Places2 model is the one that made that table.
OFFICIAL_WEIGHTS: dict[str, dict[str, str]] = {
    "places2": {
        "name": "Places2",
        "content": "scenes (landscapes, buildings, rooms); the data set of the paper's Table 1",
        "training": "256x256 random crops",
        "drive_folder": "1M3AFy7x9DqXaI-fINSynW7FJSXYROfv-",
    },
    "celeba": {
        "name": "CelebA",
        "content": "faces (aligned celebrity photos)",
        "training": "256x256 random crops",
        "drive_folder": "1sP8ViF3mxUMN--xpKqonEeW9d8S8pJEo",
    },
    "celebahq": {
        "name": "CelebA-HQ",
        "content": "faces, high quality",
        "training": "images resized to 256x256",
        "drive_folder": "1lpluFXyWDxTY6wcjixQGWX8jxUUMlyBW",
    },
    "imagenet": {
        "name": "ImageNet",
        "content": "objects, 1000 classes",
        "training": "256x256 random crops",
        "drive_folder": "136APWSdPRAF7-XoS8sMBTLV-X3f-ogE0",
    },
}
for _entry in OFFICIAL_WEIGHTS.values():
    _entry["published"] = OFFICIAL_WEIGHTS_SOURCE
    _entry["license"] = OFFICIAL_WEIGHTS_LICENSE
    _entry["format"] = "TensorFlow checkpoint: checkpoint, <prefix>.index, <prefix>.data-00000-of-00001"

# What every official model must convert to (reference: generator cnum 32, critics 64 wide,
# local critic on the 128x128 hole box, global critic on the 256x256 image).
OFFICIAL_ARCHITECTURE: dict[str, int] = {"cnum": 32, "local_cnum": 64, "local_size": 128,
                                         "global_cnum": 64, "global_size": 256}

WEIGHTS_ENV = "COURSE_LIB_WEIGHTS"  # the cache folder
# The URL of one Drive file; "{id}" is replaced by the file id. Tests point it at 127.0.0.1.
DRIVE_URL_ENV = "COURSE_LIB_DRIVE_URL"
DRIVE_FILE_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
# The files of a TF checkpoint that the converter reads (the .meta graph is not needed).
_WANTED = ("checkpoint", "checkpoint.txt")

PathLike = Union[str, Path]
_PREFIXES = ("module.", "_orig_mod.")
# files course_lib writes itself: trainer checkpoints and exported generator weights
_TRAIN_KIND, _EXPORT_KIND = "course_lib.train", "course_lib.generator"


class WeightsNotFound(CheckpointError, FileNotFoundError):
    """No weights where the name or path points (a ValueError and a FileNotFoundError)."""


# ----------------------------------------------------------------------------- cache + download

def weights_dir(directory: Optional[PathLike] = None) -> Path:
    """The cache folder of the official weights (not created here).

    ``directory`` if given, else ``$COURSE_LIB_WEIGHTS``, else
    ``$XDG_CACHE_HOME/course_lib/weights``, else ``~/.cache/course_lib/weights``.
    """
    if directory is not None and str(directory) != "":
        return Path(directory).expanduser()
    env = os.environ.get(WEIGHTS_ENV, "")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "course_lib" / "weights"


def _official_key(name: str) -> str:
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in OFFICIAL_WEIGHTS:
        raise ValueError(f"unknown official model {name!r}: choose one of {', '.join(OFFICIAL_WEIGHTS)}")
    return key


def _is_official_name(source: Any) -> bool:
    if not isinstance(source, str) or os.sep in source or "/" in source or Path(source).exists():
        return False
    try:
        _official_key(source)
    except ValueError:
        return False
    return True


def _manifest_path(root: Path, key: str) -> Path:
    return root / f"{key}.json"


def _read_manifest(root: Path, key: str) -> dict[str, Any]:
    path = _manifest_path(root, key)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is damaged ({err}); delete it and run python -m course_lib download "
                         f"{key} again") from None
    return data if isinstance(data, dict) else {}


def _write_manifest(root: Path, key: str, data: dict[str, Any]) -> None:
    path = _manifest_path(root, key)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _manual_steps(key: str, root: Path) -> str:
    folder = OFFICIAL_WEIGHTS[key]["drive_folder"]
    return (f"By hand: open https://drive.google.com/drive/folders/{folder} in a browser, download its "
            f"files into {root / key} (rename checkpoint.txt to checkpoint), then run python -m "
            f"course_lib download {key} again (it converts what is there).")


def cached_weights(name: str, directory: Optional[PathLike] = None) -> Optional[Path]:
    """The converted file of official model ``name`` in the cache, or None when not downloaded.

    Raises ValueError when the file's sha256 differs from the one recorded when it was made
    (a changed or damaged file is never used silently).
    """
    key = _official_key(name)
    root = weights_dir(directory)
    path = root / f"{key}.pt"
    if not path.is_file():
        return None
    recorded = _read_manifest(root, key).get("converted", {}).get("sha256")
    if recorded and sha256_file(path) != recorded:
        raise ValueError(f"{path} differs from the file recorded when it was converted (sha256); "
                         f"delete it and run python -m course_lib download {key}")
    return path


def list_drive_folder(folder_id: str) -> list[tuple[str, str]]:
    """``[(file_id, file_name), ...]`` of a public Google Drive folder, through gdown.

    Uses ``gdown.download_folder(id=..., skip_download=True)`` (gdown >= 5.1), which reads
    the folder's page and downloads nothing.
    """
    try:
        import gdown
    except ImportError:
        raise ImportError("listing a Google Drive folder needs gdown: pip install gdown (or pip install "
                          "'course_lib[weights]'), then run the command again") from None
    try:
        files = gdown.download_folder(id=folder_id, skip_download=True, quiet=True)
    except TypeError as err:  # gdown < 5.1 has no skip_download
        raise ImportError(f"this gdown ({getattr(gdown, '__version__', '?')}) cannot list a folder without "
                          f"downloading it ({err}); pip install -U 'gdown>=5.1'") from None
    except Exception as err:  # gdown raises its own errors, requests' and bs4's
        raise SourceRefused(f"Google Drive did not list the folder {folder_id} ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''})") from None
    return [(f.id, Path(f.path).name) for f in files or []]


def _drive_url(file_id: str) -> str:
    return os.environ.get(DRIVE_URL_ENV, "").replace("{id}", file_id) or DRIVE_FILE_URL.format(id=file_id)


def _confirmation_url(page: str) -> Optional[str]:
    """The real download link in a Drive confirmation page (large files), via gdown; None if none."""
    try:
        from gdown.download import get_url_from_gdrive_confirmation
        return get_url_from_gdrive_confirmation(page) or None
    except Exception:  # no gdown, or a page without a link (quota, sign-in)
        return None


def _fetch_drive_file(file_id: str, dest: Path, sha256: Optional[str], opener: urllib.request.OpenerDirector,
                      manual: str, quiet: bool) -> Path:
    """One Drive file through :func:`course_lib.fetch.fetch`; follows one confirmation page (large files)."""
    url = _drive_url(file_id)
    try:
        try:
            return fetch(url, dest, sha256=sha256, what=dest.name, opener=opener, quiet=quiet)
        except SourceRefused as err:
            confirmed = _confirmation_url(err.page) if err.page else None
            if confirmed is None or confirmed == url:
                raise
            return fetch(confirmed, dest, sha256=sha256, what=dest.name, opener=opener, quiet=quiet)
    except SourceRefused as err:
        raise SourceRefused(f"Google Drive did not send {dest.name}: its download quota is probably exceeded "
                            f"for today, or it wants a sign-in ({err}) {manual}", url=url) from None
    except FetchError as err:
        raise type(err)(f"{err} {manual}") from None


def _local_checkpoint_files(tf_dir: Path) -> list[str]:
    """The names of a complete TF checkpoint in ``tf_dir`` (checkpoint, index, data), or [] if incomplete."""
    index = sorted(p.name for p in tf_dir.glob("*.index"))
    data = sorted(p.name for p in tf_dir.glob("*.data-*") if not p.name.endswith(".part"))
    if not (tf_dir / "checkpoint").is_file() or not index or not data:
        return []
    return ["checkpoint", *index, *data]


def _matches(path: Path, entry: Optional[dict[str, Any]]) -> bool:
    """True when ``path`` has the sha256 recorded in ``entry`` (or nothing was recorded yet)."""
    return not entry or not entry.get("sha256") or sha256_file(path) == entry["sha256"]


def _fetch_listed(key: str, tf_dir: Path, recorded: dict[str, Any], lister: Optional[Callable[[str], list[tuple[str, str]]]],
                  manual: str, quiet: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """List the model's Drive folder and fetch each checkpoint file; returns what to record per file."""
    try:
        listing = (lister or list_drive_folder)(OFFICIAL_WEIGHTS[key]["drive_folder"])
    except SourceRefused as err:
        raise SourceRefused(f"{err}. {manual}") from None
    files = [(fid, "checkpoint" if fname == "checkpoint.txt" else fname) for fid, fname in listing
             if fname in _WANTED or ".index" in fname or ".data-" in fname]
    if not any(n == "checkpoint" for _, n in files) or not any(n.endswith(".index") for _, n in files):
        raise SourceRefused(f"the Drive folder of {key} does not list a TF checkpoint (checkpoint, *.index, "
                            f"*.data-*), only: {', '.join(n for _, n in listing) or 'nothing'}. {manual}")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    record: dict[str, Any] = {}
    for file_id, fname in files:
        dest = tf_dir / fname
        say(f"fetching {fname}")
        _fetch_drive_file(file_id, dest, recorded.get(fname, {}).get("sha256"), opener, manual, quiet)
        record[fname] = {"sha256": sha256_file(dest), "size": dest.stat().st_size, "drive_id": file_id}
    return record


def _check_architecture(converted: dict, key: str, expected: dict[str, int]) -> None:
    """Every official model converts to the release's sizes; anything else is not the official file."""
    cfg = converted.get("config", {})
    # the critics are checked when the checkpoint has them (they are not needed for inpainting)
    wanted = {k: v for k, v in expected.items() if k == "cnum" or "local_critic" in converted}
    problems = [f"{k} {cfg.get(k)} (expected {v})" for k, v in wanted.items() if cfg.get(k) != v]
    if problems:
        raise ConversionError(f"the downloaded {key} checkpoint converts, but not to the official model: "
                              f"{', '.join(problems)}; delete {key} in the cache and download it again")


def download(name: str, directory: Optional[PathLike] = None, *, force: bool = False, quiet: bool = False,
             lister: Optional[Callable[[str], list[tuple[str, str]]]] = None,
             expected: Optional[dict[str, int]] = None) -> Path:
    """Fetch official model ``name`` (places2, celeba, celebahq, imagenet), convert it once; its ``.pt`` path.

    Already converted and unchanged (sha256 as recorded): returned at once, nothing is
    fetched. ``force=True`` checks every file against the recorded sha256, fetches again the
    missing or damaged ones (a fetched file must match the recorded sha256 too) and converts
    again. Files already downloaded are kept; an interrupted file resumes. Raises
    :class:`course_lib.fetch.FetchError` (one sentence with the manual steps) when Drive
    refuses, ``ImportError`` without gdown, :class:`course_lib.convert.ConversionError`
    when the files are not the official model. ``lister`` / ``expected`` replace the Drive
    folder listing and the official sizes (tests).
    """
    key = _official_key(name)
    root = weights_dir(directory)
    entry = OFFICIAL_WEIGHTS[key]
    say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))
    say(f"DeepFill v1 {entry['name']} weights by Jiahui Yu et al., licence {OFFICIAL_WEIGHTS_LICENSE}: "
        "attribution, non-commercial use only.")
    pt = root / f"{key}.pt"
    if not force:
        found = cached_weights(key, root)
        if found is not None:
            say(f"already downloaded: {found}")
            return found
    manual = _manual_steps(key, root)
    tf_dir = root / key
    tf_dir.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(root, key)
    recorded = manifest.get("files", {})
    if (tf_dir / "checkpoint.txt").is_file() and not (tf_dir / "checkpoint").exists():
        os.replace(tf_dir / "checkpoint.txt", tf_dir / "checkpoint")  # copied by hand from Drive
    local = _local_checkpoint_files(tf_dir)
    if local and not force and all(_matches(tf_dir / n, recorded.get(n)) for n in local):
        say(f"converting the files already in {tf_dir}")  # e.g. downloaded by hand: no listing needed
        record = {n: {**recorded.get(n, {}), "sha256": sha256_file(tf_dir / n),
                      "size": (tf_dir / n).stat().st_size} for n in local}
    else:
        record = _fetch_listed(key, tf_dir, recorded, lister, manual, quiet, say)
    converted = convert_checkpoint(tf_dir)  # every variable name and shape, or ConversionError
    _check_architecture(converted, key, OFFICIAL_ARCHITECTURE if expected is None else expected)
    converted["config"]["source"] = f"{entry['name']} (official DeepFill v1, {OFFICIAL_WEIGHTS_LICENSE})"
    atomic_save(converted, pt)
    manifest.update({"name": entry["name"], "license": OFFICIAL_WEIGHTS_LICENSE, "published": OFFICIAL_WEIGHTS_SOURCE,
                     "drive_folder": entry["drive_folder"], "files": record,
                     "converted": {"file": pt.name, "sha256": sha256_file(pt), "size": pt.stat().st_size},
                     "first_downloaded": manifest.get("first_downloaded")
                     or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    _write_manifest(root, key, manifest)
    n_gen = sum(t.numel() for t in converted["generator"].values())
    say(f"converted: generator cnum {converted['config']['cnum']}, {n_gen:,} parameters"
        + (", with both critics" if "local_critic" in converted else ""))
    say(f"saved {pt}; use it with course_lib.load_pretrained({key!r}) or --checkpoint {key}")
    return pt


# ----------------------------------------------------------------------------- the one loader

@dataclass
class Weights:
    """What :func:`load_weights` read: state dicts (CPU or ``map_location``) and where they came from.

    ``kind``: ``"official"`` (converted or TF), ``"train"`` (trainer checkpoint),
    ``"export"`` (``train --export``), ``"state_dict"`` (a bare generator state dict).
    ``which``: one line saying which weights these are (e.g. the weight average of a step).
    """
    generator: dict[str, torch.Tensor]
    config: dict[str, Any]
    kind: str
    path: Path
    which: str
    local_critic: Optional[dict[str, torch.Tensor]] = None
    global_critic: Optional[dict[str, torch.Tensor]] = None
    step: Optional[int] = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cnum(self) -> int:
        """Generator width: the config's ``cnum``, else read from ``coarse.conv1.weight`` (cnum, 5, 5, 5)."""
        if self.config.get("cnum"):
            return int(self.config["cnum"])
        for key, value in self.generator.items():
            if key.startswith("coarse") and key.endswith("conv1.weight") and value.dim() == 4:
                return int(value.shape[0])
        raise ValueError(f"{self.path}: cannot find coarse.conv1.weight in the generator's weights: is this a "
                         "DeepFill v1 generator? (official TF checkpoints: python -m course_lib convert)")


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
    for a TF checkpoint folder/prefix, converted in memory. An official name (``"places2"``)
    reads the cached file (:func:`download`). Raises ValueError with a hint when the path is neither."""
    if _is_official_name(path):
        path = _require_cached(str(path))
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


def _require_cached(name: str) -> Path:
    key = _official_key(name)
    found = cached_weights(key)
    if found is None:
        raise WeightsNotFound(f"the official {OFFICIAL_WEIGHTS[key]['name']} weights are not downloaded yet "
                              f"(looked in {weights_dir()}); run: python -m course_lib download {key}")
    return found


def _tensor_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values())


def load_weights(source: PathLike, map_location: Any = "cpu") -> Weights:
    """Decide which weights ``source`` gives (module docstring) and read them, without building models.

    Trainer checkpoints give the generator's **weight average** when the run keeps one
    (``generator_ema``), else the trained weights, plus both critics. Raises
    :class:`WeightsNotFound` for a missing path or a name not downloaded, ValueError for a
    file that holds no DeepFill v1 weights (e.g. a DeepFill v2 toy network).
    """
    if _is_official_name(source):
        path = _require_cached(str(source))
        weights = _from_torch_file(path, map_location)
        weights.which = f"the official {OFFICIAL_WEIGHTS[_official_key(str(source))]['name']} weights ({path})"
        return weights
    path = Path(source).expanduser()
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is not None:
            return _from_torch_file(found, map_location)
        if not (path / "checkpoint").is_file() and not any(path.glob("*.index")):
            raise WeightsNotFound(f"{path} holds no step_*.pt checkpoint and no TF checkpoint (a 'checkpoint' "
                                  "file); pass a run folder, a .pt file or an official model name "
                                  f"({', '.join(OFFICIAL_WEIGHTS)})")
        return _from_tf(path, map_location)
    if not path.is_file():
        if Path(str(path) + ".index").is_file():  # a TF prefix such as .../snap-0
            return _from_tf(path, map_location)
        raise WeightsNotFound(f"checkpoint {str(path)!r} does not exist; pass a trainer checkpoint or run folder, "
                              f"generator weights (.pt), or an official model name ({', '.join(OFFICIAL_WEIGHTS)}: "
                              "python -m course_lib download NAME)")
    if path.name.endswith(".index") or ".data-" in path.name or path.name == "checkpoint":
        return _from_tf(path, map_location)
    return _from_torch_file(path, map_location)


def _from_tf(path: Path, map_location: Any) -> Weights:
    data = load_converted(path, map_location)
    return Weights(generator=data["generator"], config=dict(data["config"]), kind="official", path=path,
                   which=f"the official weights converted from the TF checkpoint {path}",
                   local_critic=data.get("local_critic"), global_critic=data.get("global_critic"))


def _from_torch_file(path: Path, map_location: Any) -> Weights:
    try:
        obj = safe_torch_load(path, map_location)  # weights_only; ValueError naming the problem
    except ValueError as exc:
        raise ValueError(f"{exc} (An official model's weights file is made with python -m course_lib download "
                         "NAME, or python -m course_lib convert <checkpoint folder> <out.pt>.)") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__}, not a checkpoint dict or state dict")
    kind = obj.get("kind")
    if kind in ("v1", "gated"):  # scripts/train_v2_toy.py: a coarse network only
        raise ValueError(f"{path} is a toy coarse network ({'DeepFill v2, gated' if kind == 'gated' else 'v1'}) "
                         "of scripts/train_v2_toy.py, not a full DeepFill v1 generator; load it with "
                         "course_lib.v2_toy.load_coarse")
    config = dict(obj["config"]) if isinstance(obj.get("config"), dict) else {}
    if kind == _TRAIN_KIND:
        from course_lib.checkpoint import FORMAT_VERSION as CKPT_FORMAT
        if obj.get("format_version") != CKPT_FORMAT:
            raise ValueError(f"{path} has checkpoint format {obj.get('format_version')}, this course_lib reads "
                             f"format {CKPT_FORMAT}; use the course_lib version that wrote it")
        average = obj.get("generator_ema")
        step = int(obj.get("step", 0))
        if isinstance(average, dict) and _tensor_dict(average.get("weights")):
            generator, which = average["weights"], f"the weight average (ema) of {path.name}, step {step}"
        else:
            generator, which = obj["generator"], f"the trained weights of {path.name}, step {step} (no weight average)"
        return Weights(generator=_strip_prefixes(generator), config=config, kind="train", path=path, which=which,
                       local_critic=_maybe_state(obj.get("local_critic")),
                       global_critic=_maybe_state(obj.get("global_critic")), step=step)
    if kind == _EXPORT_KIND:
        step = obj.get("step")
        return Weights(generator=_strip_prefixes(obj["generator"]), config=config, kind="export", path=path,
                       which=f"the exported generator {path.name} (step {step}; the run's weight average "
                             "when it kept one)", step=None if step is None else int(step))
    if "generator" in obj:  # a converted official model (python -m course_lib convert / download)
        data = load_converted(path, map_location)
        return Weights(generator=_strip_prefixes(data["generator"]), config=dict(data.get("config", {})),
                       kind="official", path=path, which=f"the converted official weights {path.name}",
                       local_critic=_maybe_state(data.get("local_critic")),
                       global_critic=_maybe_state(data.get("global_critic")))
    if _tensor_dict(obj):
        return Weights(generator=_strip_prefixes(obj), config={}, kind="state_dict", path=path,
                       which=f"the generator state dict {path.name}")
    raise ValueError(f"{path}: not a course_lib checkpoint, exported generator or converted official model "
                     "(no 'generator' weights)")


def _maybe_state(value: Any) -> Optional[dict[str, torch.Tensor]]:
    return _strip_prefixes(value) if _tensor_dict(value) else None


def _warn_colour(config: dict, path: PathLike) -> None:
    colour = config.get("colour", "RGB")
    if colour != "RGB":
        warnings.warn(
            f"{path} holds {colour} weights: feed images with the channels reversed "
            "(x.flip(1)), or re-convert with the default bgr_to_rgb=True", stacklevel=3)


def _load_into(module: torch.nn.Module, state: dict, what: str, path: PathLike) -> None:
    try:
        module.load_state_dict(_strip_prefixes(state), strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the {what} weights do not fit course_lib's {what}: {exc}") from None


def build_generator(weights: Weights, cnum: Optional[int] = None) -> Generator:
    """A :class:`~course_lib.generator.Generator` holding ``weights.generator`` (float32, train mode)."""
    generator = Generator(int(cnum or weights.cnum))
    _load_into(generator, {k: v.float() if v.is_floating_point() else v for k, v in weights.generator.items()},
               "generator", weights.path)
    return generator


def load_pretrained(path: PathLike, map_location: Any = "cpu") -> Generator:
    """A DeepFill v1 generator in eval mode on ``map_location``, from any source :func:`load_weights` reads.

    ``path``: an official name (``"places2"``, after ``python -m course_lib download
    places2``), a converted ``.pt``, the TF checkpoint itself (folder with a ``checkpoint``
    file, or a prefix), a trainer checkpoint or run folder (the weight average when the run
    keeps one), or exported generator weights. ``cnum`` comes from the file.
    """
    weights = load_weights(path, map_location)
    generator = build_generator(weights)
    _warn_colour(weights.config, path)
    return generator.to(map_location).eval()


def load_pretrained_critics(path: PathLike, map_location: Any = "cpu") -> tuple[LocalCritic, GlobalCritic]:
    """``(LocalCritic, GlobalCritic)`` from a converted file, TF checkpoint or official name, eval mode.

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
    _warn_colour(cfg, path)
    return critics[0], critics[1]  # type: ignore[return-value]


# ----------------------------------------------------------------------------- notebooks and the demo

TOY_NOTE = ("the bundled toy model (cnum 8, trained on a CPU on 64 px procedural textures, never on a photo)")


def _on_colab() -> bool:
    return "google.colab" in sys.modules


def official_or_toy(name: str = "places2", download_now: Optional[bool] = None, quiet: bool = False) -> Any:
    """The model a notebook uses: ``HandsOnModel(generator, size, name)`` (:mod:`course_lib.painter`).

    The official ``name`` model when it is in the cache (:func:`weights_dir`) or in the
    repository's ``data/weights/``; else, when ``download_now`` is True, or None and running on
    Colab, :func:`download` fetches it first; otherwise the toy model, with a one-line note
    saying which command gets the real weights. Under ``COURSE_LIB_CI=1`` (nbval) it is
    always the toy model, so stored outputs never depend on a machine's cache.
    """
    from course_lib.painter import HandsOnModel
    from course_lib.samples import toy_weights

    key = _official_key(name)
    label = OFFICIAL_WEIGHTS[key]["name"]
    in_ci = os.environ.get("COURSE_LIB_CI", "") not in ("", "0")
    if not in_ci:
        found: Optional[Path] = cached_weights(key)
        repo = Path(__file__).resolve().parents[1] / "data" / "weights"
        for candidate in (repo / f"{key}.pt", repo / key):
            if found is None and candidate.exists():
                found = candidate
        if found is None and (download_now or (download_now is None and _on_colab())):
            try:
                found = download(key, quiet=quiet)
            except (FetchError, ImportError, ConversionError) as err:
                print(f"note: the download failed ({err}); using the toy model instead")
        if found is not None:
            return HandsOnModel(load_pretrained(found).eval(), 256, f"the official {label} weights ({found.name})")
    print(f"note: using {TOY_NOTE}; for the official {label} weights run python -m course_lib download {key} "
          "(or set DOWNLOAD = True here)")
    return HandsOnModel(load_pretrained(toy_weights()).eval(), 64, "the bundled toy model (cnum 8, 64x64 toy images)")


# ----------------------------------------------------------------------------- train --init

def init_models(source: PathLike, config: Any, generator: torch.nn.Module, local_critic: torch.nn.Module,
                global_critic: torch.nn.Module, fresh_critics: bool = False) -> str:
    """Copy the weights of ``source`` into a new run's models (``train --init``); returns one line saying what.

    ``source``: anything :func:`load_weights` reads (an official name, a converted or TF
    checkpoint, a trainer checkpoint or run folder, an exported generator). The generator
    gets the weights :func:`load_weights` chooses (a run's weight average when it kept one);
    both critics get the file's critics when it has them, unless ``fresh_critics``. The
    optimisers and the step are not touched here: the run starts at step 0 with fresh Adam
    state. Raises ValueError, one sentence, on an architecture mismatch: another ``cnum``
    or ``critic_cnum``, critics for other image or hole sizes, a DeepFill v2 network, or no
    critics when the run trains them (``gan_loss_alpha > 0``) and ``fresh_critics`` is off.
    """
    weights = load_weights(source, "cpu")
    if weights.cnum != int(config.cnum):
        hint = "--config places2 (the release's sizes)" if weights.cnum == 32 else f"--set cnum={weights.cnum}"
        raise ValueError(f"--init {source}: its generator has cnum {weights.cnum} but the run's config has cnum "
                         f"{config.cnum}; use {hint}")
    _load_into(generator, {k: v.float() for k, v in weights.generator.items()}, "generator", source)
    what = f"generator from {weights.which}"
    has_critics = weights.local_critic is not None and weights.global_critic is not None
    needs_critics = float(config.gan_loss_alpha) > 0 and not bool(getattr(config, "coarse_only", False))
    if fresh_critics or not has_critics:
        if not has_critics and needs_critics and not fresh_critics:
            raise ValueError(f"--init {source} holds no critics (an exported generator, or converted with "
                             "--no-critics) but this run trains them (gan_loss_alpha > 0); pass --fresh-critics to "
                             "start them from random weights, or --init a file with critics (a run folder, or an "
                             "official model from python -m course_lib download)")
        return what + "; critics from random weights"
    for state, critic, short, size_key in ((weights.local_critic, local_critic, "local", "hole_size"),
                                           (weights.global_critic, global_critic, "global", "image_size")):
        width = int(state["conv1.weight"].shape[0]) if "conv1.weight" in state else -1  # (cnum, 3, 5, 5)
        if width != int(config.critic_cnum):
            raise ValueError(f"--init {source}: its {short} critic has cnum {width} but the run's config has "
                             f"critic_cnum {config.critic_cnum}; use --set critic_cnum={width}, or --fresh-critics")
        try:
            critic.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except RuntimeError:
            size = weights.config.get(f"{short}_size") or weights.config.get(size_key)
            raise ValueError(f"--init {source}: its {short} critic was trained on {size or 'other'}"
                             f"{'x' + str(size) if size else ''} inputs but the run's {size_key} is "
                             f"{getattr(config, size_key)}; use --set {size_key}={size or '...'}, or "
                             "--fresh-critics") from None
    return what + "; both critics from the same file"


# ----------------------------------------------------------------------------- CLI

def main(argv: Optional[list[str]] = None) -> int:
    """``python -m course_lib download NAME [--dir DIR] [--force]``."""
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m course_lib download",
        description="Fetch an official DeepFill v1 model from the authors' Google Drive (links in the "
                    "release's README, v1.0.0), convert it once to .pt and cache it. Needs gdown "
                    f"(pip install gdown). Licence of the weights: {OFFICIAL_WEIGHTS_LICENSE}.")
    parser.add_argument("name", choices=sorted(OFFICIAL_WEIGHTS), help="which official model")
    parser.add_argument("--dir", default=None,
                        help=f"cache folder (default: ${WEIGHTS_ENV}, else $XDG_CACHE_HOME/course_lib/weights, "
                             "i.e. ~/.cache/course_lib/weights)")
    parser.add_argument("--force", action="store_true", help="check every file against the recorded sha256, fetch the missing or damaged ones, convert again")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        path = download(args.name, args.dir, force=args.force)
    except (FetchError, ImportError, CheckpointError, ConversionError) as err:
        print(f"download: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
