"""Training data: flist files, image folders, CelebA, CelebA-HQ and Places365-Standard.

Every dataset returns one image ``x`` of shape ``(3, H, W)``, float32 in [-1, 1], RGB
(``x = pixel / 127.5 - 1`` as the release). The release reads images with OpenCV (BGR);
course_lib works in RGB throughout, see ``deepfill_v1.md``.

Release behaviour mirrored here (``deepfill_v1.md``, "Training setup of the release"):

* data lists are "flist" text files, one image path per line (:func:`read_flist`,
  :func:`write_flist`, ``python -m course_lib make-flist``);
* images are 256x256: a **random crop** for Places2, CelebA and ImageNet, a **resize**
  for CelebA-HQ (``mode='random_crop'`` / ``mode='resize'``).

What course_lib adds: an image smaller than the crop is first resized up (shorter side
to ``size``, aspect kept; aligned CelebA is 178x218); grey, palette, 16-bit and RGBA
images are converted to RGB; an unreadable or corrupt file is skipped, counted and
reported instead of crashing mid-epoch; crops are reproducible: the randomness of item
``index`` in epoch ``epoch`` comes from ``(seed, epoch, index)`` only, so a resumed run
(``set_epoch``) sees exactly the same crops, whatever the number of DataLoader workers.

Validation on your own photos: ``make-flist --val-fraction`` writes a held-out
``<name>_val.flist`` next to the training list (:func:`val_flist_for`), which the 'flist' data
set's validation split reads; :func:`shared_images` finds validation images that are training
images (the trainer warns about them). ``flip=True`` mirrors training images at random.

Used by the trainer (``course_lib.train``) and the Colab training notebook.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import warnings
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "MODES",
    "DATASET_NAMES",
    "read_flist",
    "write_flist",
    "list_images",
    "load_rgb",
    "ImageListDataset",
    "FlistDataset",
    "ImageFolderDataset",
    "CelebADataset",
    "CelebAHQDataset",
    "Places365Dataset",
    "make_dataset",
    "UnreadableImagesError",
    "val_flist_for",
    "shared_images",
    "TINY_DATASET",
    "main",
]

PathLike = Union[str, os.PathLike]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
MODES: tuple[str, ...] = ("random_crop", "resize", "center_crop")
DATASET_NAMES: tuple[str, ...] = ("flist", "folder", "celeba", "celebahq", "places2", "toy")

# How many missing / bad paths an error message or a summary lists before "...".
_SHOW = 5
# Fewer training images than this and the trainer warns (README "Training on your own photos").
TINY_DATASET = 500


class UnreadableImagesError(RuntimeError):
    """No file of a data set can be read as an image: bad input (exit code 2 on the command line)."""

    exit_code = 2  # of every command (course_lib.__main__.run_command)


# ----------------------------------------------------------------------------- flists

def read_flist(path: PathLike, check_exists: bool = True) -> list[str]:
    """Read an flist file: one image path per line, as the release's data lists.

    Blank lines and lines starting with ``#`` are skipped; surrounding whitespace is
    stripped. A relative path is resolved against the folder of the flist file (so an
    flist can travel with its data). With ``check_exists`` every path must exist, else a
    ``FileNotFoundError`` lists the first missing ones.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"flist file {str(path)!r} does not exist; write one with "
            f"`python -m course_lib make-flist <image folder> {path}`"
        )
    base = path.resolve().parent
    paths: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(os.path.expanduser(line))
            paths.append(os.path.normpath(p if p.is_absolute() else base / p))
    if not paths:
        raise ValueError(f"flist {str(path)!r} lists no image paths (only blank lines or # comments)")
    if check_exists:
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            shown = "\n  ".join(missing[:_SHOW]) + ("\n  ..." if len(missing) > _SHOW else "")
            raise FileNotFoundError(
                f"{len(missing)} of {len(paths)} paths listed in {str(path)!r} do not exist, first:\n  "
                f"{shown}\nFix the paths (relative paths are read relative to the flist's folder) "
                f"or regenerate the list with `python -m course_lib make-flist`."
            )
    return paths


def list_images(folder: PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[str]:
    """All image files under ``folder`` (recursive), sorted, as absolute paths.

    The order is the sorted order of the paths relative to ``folder`` (deterministic on
    every file system); hidden files and folders (name starting with '.') are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} does not exist or is not a folder")
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(exts):
                found.append(os.path.relpath(os.path.join(dirpath, name), folder))
    found.sort()
    root = folder.resolve()
    return [str(root / rel) for rel in found]


def write_flist(folder: PathLike, out: PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                shuffle: bool = False, seed: int = 0, val_fraction: float = 0.0,
                relative: bool = False) -> dict[str, int]:
    """Write an flist of every image under ``folder`` (the file the release trains from).

    Sorted (deterministic); ``shuffle=True`` shuffles with ``random.Random(seed)`` (the
    release trains from ``train_shuffled.flist``). ``val_fraction > 0`` moves that share
    of the (shuffled) list to a second file next to ``out`` named ``<stem>_val<suffix>``
    (e.g. ``train.flist`` -> ``train_val.flist``). ``relative=True`` writes paths relative
    to the flist's folder. Returns the number of lines written per file.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    paths = list_images(folder, extensions)
    if not paths:
        raise ValueError(f"no images with extensions {tuple(extensions)} under {str(folder)!r}")
    if shuffle:
        random.Random(seed).shuffle(paths)
    n_val = int(round(len(paths) * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= len(paths):
        raise ValueError(f"val_fraction={val_fraction} leaves no training images out of {len(paths)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    val_out = out.with_name(f"{out.stem}_val{out.suffix or '.flist'}")
    splits = [(out, paths[n_val:])] + ([(val_out, paths[:n_val])] if n_val else [])
    counts: dict[str, int] = {}
    base = out.resolve().parent
    for target, items in splits:
        lines = [os.path.relpath(p, base) if relative else p for p in items]
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, target)
        counts[str(target)] = len(lines)
    return counts


def val_flist_for(train_flist: PathLike) -> Path:
    """The validation list that ``make-flist --val-fraction`` writes next to ``train_flist``.

    ``data/train.flist`` -> ``data/train_val.flist`` (the name :func:`write_flist` gives it),
    whether or not it exists.
    """
    path = Path(train_flist)
    return path.with_name(f"{path.stem}_val{path.suffix or '.flist'}")


def shared_images(train: Sequence[PathLike], val: Sequence[PathLike]) -> list[str]:
    """The validation paths that are also training paths (same file after resolving links), in ``val`` order.

    Validation on training images measures how well the model remembers them, not how well it
    fills holes in photos it never saw; the trainer warns loudly when this list is not empty.
    """
    seen = {os.path.realpath(p) for p in train}
    return [os.fspath(p) for p in val if os.path.realpath(p) in seen]


# ----------------------------------------------------------------------------- images

def load_rgb(path: PathLike) -> Image.Image:
    """Open an image file fully (decode errors surface here) and convert it to RGB.

    The EXIF orientation is applied (as OpenCV's ``imread`` does). Grey and palette
    images are expanded, 16-bit grey is scaled to 8 bits, and the alpha channel of RGBA /
    LA images is dropped (the colour under it is kept).
    """
    with Image.open(path) as img:
        img.load()  # decode now: a truncated or corrupt file raises here
        img = ImageOps.exif_transpose(img)
        mode = img.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            a = np.asarray(img, dtype=np.float64)  # (H, W)
            a = a / 257.0 if a.max() > 255 else a
            img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
        elif mode == "F":
            a = np.asarray(img, dtype=np.float64)  # (H, W)
            a = a * 255.0 if a.max() <= 1.0 else a
            img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
        elif mode == "P":
            img = img.convert("RGBA")
        return img.convert("RGB")


def _to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> (3, H, W) float32 in [-1, 1] (``x / 127.5 - 1`` as the release)."""
    a = np.asarray(img, dtype=np.uint8)  # (H, W, 3)
    x = torch.from_numpy(a.copy()).permute(2, 0, 1)  # (3, H, W)
    return x.to(torch.float32) / 127.5 - 1.0


def _resize_up(img: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side is at least ``size`` (aspect kept); bigger images unchanged."""
    w, h = img.size
    if min(w, h) >= size:
        return img
    scale = size / min(w, h)
    new = (max(size, int(round(w * scale))), max(size, int(round(h * scale))))
    return img.resize(new, Image.Resampling.BICUBIC)


# ----------------------------------------------------------------------------- datasets

class ImageListDataset(Dataset):
    """Images from a list of paths, as ``(3, size, size)`` float32 in [-1, 1], RGB.

    ``mode``:
      * ``'random_crop'`` (release: Places2, CelebA, ImageNet): a uniformly random
        ``size x size`` crop; an image smaller than ``size`` is first resized up so its
        shorter side is ``size``.
      * ``'resize'`` (release: CelebA-HQ): resize to ``size x size`` (aspect not kept, as
        the release's ``cv2.resize``; PIL's bilinear filter is antialiased when it shrinks).
      * ``'center_crop'``: resize up if needed, then the central crop (validation).

    Randomness: item ``index`` in epoch ``epoch`` (``set_epoch``) uses a NumPy generator
    seeded with ``(seed, epoch, index)``: the same crops on every run, on resume, with
    any number of workers. ``seed`` may also be a ``torch.Generator`` (one int is drawn
    from it once).

    ``flip=True`` mirrors each item left-right with probability 1/2 (drawn from the same
    per-item generator, so it is reproducible too): not in the release (its data sets are
    large); it doubles the variety of a small set of photos.

    Bad files: an unreadable or corrupt file is skipped and the next readable file
    (index + 1, + 2, ... wrapping) is returned instead, deterministically. ``skipped``
    counts the distinct bad files seen so far (shared with DataLoader workers), the first
    one raises a warning, and :meth:`summary` / :meth:`set_epoch` report them. If no file
    can be read, a ``RuntimeError`` says so.
    """

    def __init__(self, paths: Sequence[PathLike], size: int = 256, mode: str = "random_crop",
                 seed: Union[int, torch.Generator, None] = 0,
                 generator: Optional[torch.Generator] = None, flip: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive int (e.g. 256), got {size!r}")
        paths = [os.fspath(p) for p in paths]
        if not paths:
            raise ValueError("the dataset has no image paths: check the folder / flist / split you gave")
        if generator is not None:
            seed = generator
        if isinstance(seed, torch.Generator):
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=seed))
        if seed is None:
            seed = 0
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int or a torch.Generator, got {seed!r}")
        self.size = size
        self.mode = mode
        self.seed = seed
        self.flip = bool(flip)
        self.epoch = 0
        # Paths as one fixed-width byte array, not a list of Python strings: DataLoader
        # workers share it without copy-on-write blow-up (1.8M Places2 paths).
        self._paths = np.array([p.encode("utf-8") for p in paths])  # (N,) bytes
        self._bad = torch.zeros(len(paths), dtype=torch.uint8)  # (N,) 1 = unreadable
        try:
            self._bad.share_memory_()
        except (RuntimeError, OSError):  # no shared memory (some sandboxes): per-process counts
            pass
        self._warned = False
        self._reported = 0

    # -- list access
    def __len__(self) -> int:
        return len(self._paths)

    def path(self, index: int) -> str:
        """The file path of item ``index``."""
        return self._paths[index].decode("utf-8")

    @property
    def paths(self) -> list[str]:
        return [p.decode("utf-8") for p in self._paths]

    # -- reproducibility
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops ``__getitem__`` returns (call once per epoch).

        Also prints a summary of the files skipped so far when there are new ones.
        """
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch
        if self.skipped > self._reported:
            warnings.warn(self.summary(), RuntimeWarning, stacklevel=2)
            self._reported = self.skipped

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of item ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index])

    # -- bad files
    @property
    def skipped(self) -> int:
        """How many distinct unreadable files were skipped so far."""
        return int(self._bad.sum())

    @property
    def skipped_files(self) -> list[str]:
        return [self.path(i) for i in torch.nonzero(self._bad).flatten().tolist()]

    def summary(self) -> str:
        """One line (plus the first bad paths) on the files skipped so far."""
        bad = self.skipped_files
        if not bad:
            return f"{type(self).__name__}: {len(self)} images, none skipped"
        shown = ", ".join(bad[:_SHOW]) + (", ..." if len(bad) > _SHOW else "")
        return (f"{type(self).__name__}: skipped {len(bad)} unreadable of {len(self)} files "
                f"({shown}); remove them from the list to silence this")

    def _mark_bad(self, index: int, err: BaseException) -> None:
        self._bad[index] = 1
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"skipping unreadable image {self.path(index)!r} ({type(err).__name__}: {err}); "
                f"the next readable file is used instead. Further bad files are counted "
                f"silently: see dataset.skipped / dataset.summary().",
                RuntimeWarning, stacklevel=3,
            )

    def _load(self, start: int) -> Image.Image:
        n = len(self)
        for k in range(n):
            j = (start + k) % n
            if self._bad[j]:
                continue
            try:
                return load_rgb(self.path(j))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                self._mark_bad(j, err)
        raise UnreadableImagesError(
            f"none of the {n} image files of this dataset could be read (first: "
            f"{', '.join(self.skipped_files[:_SHOW])}): they are corrupt or not images; replace "
            "them, or point the data set (data_root, --data) at a folder of readable images"
        )

    # -- items
    def transform(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """Crop or resize a PIL RGB image to ``size x size`` as ``mode`` says."""
        s = self.size
        if self.mode == "resize":
            return img.resize((s, s), Image.Resampling.BILINEAR)
        img = _resize_up(img, s)
        w, h = img.size
        if self.mode == "center_crop":
            top, left = (h - s) // 2, (w - s) // 2
        else:
            top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        return img.crop((left, top, left + s, top + s))

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        index = index % len(self)
        img = self._load(index)
        rng = self.rng(index)
        x = _to_tensor(self.transform(img, rng))  # (3, size, size)
        if self.flip and rng.random() < 0.5:  # drawn after the crop: flip=False keeps the same crops
            x = x.flip(-1)
        return x

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={len(self)}, size={self.size}, mode={self.mode!r}, "
                f"seed={self.seed}, epoch={self.epoch}, skipped={self.skipped}"
                + (", flip=True)" if self.flip else ")"))


class FlistDataset(ImageListDataset):
    """The images listed in an flist file (see :func:`read_flist`)."""

    def __init__(self, flist: PathLike, size: int = 256, mode: str = "random_crop",
                 seed: Union[int, torch.Generator, None] = 0, check_exists: bool = True,
                 flip: bool = False) -> None:
        self.flist = str(flist)
        super().__init__(read_flist(flist, check_exists=check_exists), size=size, mode=mode, seed=seed,
                         flip=flip)


class ImageFolderDataset(ImageListDataset):
    """Every image under a folder (recursive, sorted, see :func:`list_images`)."""

    def __init__(self, folder: PathLike, size: int = 256, mode: str = "random_crop",
                 seed: Union[int, torch.Generator, None] = 0,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS) -> None:
        self.folder = str(folder)
        paths = list_images(folder, extensions)
        if not paths:
            raise ValueError(f"no images with extensions {tuple(extensions)} under {str(folder)!r}")
        super().__init__(paths, size=size, mode=mode, seed=seed)


# ----------------------------------------------------------------------------- CelebA

CELEBA_SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}


def _find(root: Path, candidates: Iterable[str]) -> Optional[Path]:
    for c in candidates:
        if (root / c).exists():
            return root / c
    return None


def read_celeba_partition(path: PathLike) -> dict[str, int]:
    """``list_eval_partition.txt`` (``000001.jpg 0`` per line) or Kaggle's ``.csv``
    (``image_id,partition`` header) -> {file name: 0 train / 1 val / 2 test}."""
    parts: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#") or line.lower().startswith("image_id"):
                continue
            fields = line.replace(",", " ").split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}:{n}: expected '<file name> <0|1|2>', got {line!r}")
            parts[fields[0]] = int(fields[1])
    if not parts:
        raise ValueError(f"CelebA partition file {path} is empty")
    return parts


class CelebADataset(ImageListDataset):
    """CelebA aligned faces (178x218) with the official train / val / test partition.

    Layout under ``root``: ``img_align_celeba/000001.jpg ...`` (Kaggle's doubly nested
    ``img_align_celeba/img_align_celeba/`` also works) and ``list_eval_partition.txt``
    (or ``Eval/list_eval_partition.txt``, or Kaggle's ``list_eval_partition.csv``).
    Partition 0 = train (162,770), 1 = val (19,867), 2 = test (19,962).
    Release preprocessing: random 256x256 crop (the faces are resized up first).
    """

    def __init__(self, root: PathLike, split: str = "train", size: int = 256,
                 mode: Optional[str] = None, seed: Union[int, torch.Generator, None] = 0) -> None:
        if split not in CELEBA_SPLITS:
            raise ValueError(f"CelebA split must be one of {tuple(CELEBA_SPLITS)}, got {split!r}")
        root = Path(root)
        images = _find(root, ["img_align_celeba/img_align_celeba", "img_align_celeba"])
        listing = _find(root, ["list_eval_partition.txt", "Eval/list_eval_partition.txt",
                               "list_eval_partition.csv"])
        if images is None or listing is None:
            raise FileNotFoundError(
                f"CelebA not found under {str(root)!r}: expected img_align_celeba/ and "
                f"list_eval_partition.txt there (see data/README.md for the download)"
            )
        wanted = CELEBA_SPLITS[split]
        names = sorted(name for name, part in read_celeba_partition(listing).items() if part == wanted)
        self.root, self.split = str(root), split
        mode = mode or ("random_crop" if split == "train" else "center_crop")
        super().__init__([str(images / name) for name in names], size=size, mode=mode, seed=seed)


class CelebAHQDataset(ImageFolderDataset):
    """CelebA-HQ: a folder of face images (e.g. 1024x1024), resized to ``size`` as the release."""

    def __init__(self, folder: PathLike, size: int = 256, mode: str = "resize",
                 seed: Union[int, torch.Generator, None] = 0) -> None:
        super().__init__(folder, size=size, mode=mode, seed=seed)


# ----------------------------------------------------------------------------- Places365

PLACES_SPLITS: dict[str, tuple[str, str]] = {
    # split -> (list file, image folder prefix; "{res}" is "256" or "large")
    "train": ("places365_train_standard.txt", "data_{res}"),
    "val": ("places365_val.txt", "val_{res}"),
}


def read_places_list(path: PathLike) -> list[str]:
    """An official Places365 list file -> the relative image paths, in file order.

    Lines look like ``/a/abbey/00000001.jpg 0`` (train, with the class index) or
    ``Places365_val_00000001.jpg 165`` (val); the label, if any, is dropped and the
    leading '/' removed.
    """
    rel: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rel.append(line.split()[0].lstrip("/"))
    if not rel:
        raise ValueError(f"Places365 list file {path} is empty")
    return rel


class Places365Dataset(ImageListDataset):
    """Places365-Standard (the paper's "Places2"), from the official archives.

    Layout under ``root`` (``resolution='256'``, the default if ``data_256`` exists, else
    ``'large'``)::

        root/data_256/a/abbey/00000001.jpg ...   (train_256_places365standard.tar)
        root/val_256/Places365_val_00000001.jpg  (val_256.tar)
        root/places365_train_standard.txt        (filelist_places365-standard.tar; also
        root/places365_val.txt                    found in root/filelist_places365-standard/)

    ``data_large`` / ``val_large`` hold the high-resolution images (shorter side 512).
    Release preprocessing: random 256x256 crop (train); val defaults to a centre crop.
    """

    def __init__(self, root: PathLike, split: str = "train", size: int = 256,
                 mode: Optional[str] = None, seed: Union[int, torch.Generator, None] = 0,
                 resolution: Optional[str] = None) -> None:
        if split not in PLACES_SPLITS:
            raise ValueError(f"Places365 split must be one of {tuple(PLACES_SPLITS)}, got {split!r} "
                             f"(the official test images have no public list with labels; use val)")
        root = Path(root)
        if resolution is None:
            resolution = "256" if (root / "data_256").is_dir() or (root / "val_256").is_dir() else "large"
        if resolution not in ("256", "large"):
            raise ValueError(f"resolution must be '256' or 'large', got {resolution!r}")
        list_name, folder = PLACES_SPLITS[split]
        folder = folder.format(res=resolution)
        listing = _find(root, [list_name, f"filelist_places365-standard/{list_name}"])
        if listing is None:
            raise FileNotFoundError(
                f"{list_name} not found under {str(root)!r} (nor in filelist_places365-standard/); "
                f"unpack filelist_places365-standard.tar there (see data/README.md)"
            )
        if not (root / folder).is_dir():
            raise FileNotFoundError(
                f"image folder {str(root / folder)!r} not found: unpack the Places365-Standard "
                f"{'train' if split == 'train' else 'val'} archive ({resolution}) into {str(root)!r}"
            )
        self.root, self.split, self.resolution = str(root), split, resolution
        mode = mode or ("random_crop" if split == "train" else "center_crop")
        paths = [str(root / folder / rel) for rel in read_places_list(listing)]
        super().__init__(paths, size=size, mode=mode, seed=seed)


# ----------------------------------------------------------------------------- factory

def make_dataset(name: str, root: Optional[PathLike] = None, split: str = "train", size: int = 256,
                 seed: Union[int, torch.Generator, None] = 0, mode: Optional[str] = None,
                 n: int = 10_000, flip: bool = False) -> Dataset:
    """Build a dataset by name: 'flist', 'folder', 'celeba', 'celebahq', 'places2', 'toy'.

    ``root`` is the flist file ('flist'), the image folder ('folder', 'celebahq'; a
    ``root/<split>`` sub-folder is used when it exists), or the data set's root folder
    ('celeba', 'places2'); 'toy' needs no root and uses ``n`` images (the val/test
    splits use other seeds, so they are held out). ``mode`` overrides the release's
    crop / resize choice (random crop for training, centre crop for val/test, resize
    for CelebA-HQ). ``flip`` mirrors training items at random (:class:`ImageListDataset`).

    'flist' with a split other than 'train': the list ``make-flist --val-fraction`` wrote next
    to ``root`` (:func:`val_flist_for`: ``train.flist`` -> ``train_val.flist``) when it exists;
    else ``root`` itself, with a warning that these are the training images.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASET_NAMES}")
    if name == "toy":
        from .toy import ToyDataset
        offset = {"train": 0, "val": 1, "test": 2}.get(split)
        if offset is None:
            raise ValueError(f"toy split must be 'train', 'val' or 'test', got {split!r}")
        base = seed if isinstance(seed, int) else 0
        return ToyDataset(n=n, size=size, seed=base + 1_000_003 * offset)
    if root is None:
        raise ValueError(f"dataset {name!r} needs root= (a folder or an flist file)")
    crop = mode or ("random_crop" if split == "train" else "center_crop")
    if name == "flist":
        if split != "train":
            held_out = val_flist_for(root)
            if held_out.is_file():
                return FlistDataset(held_out, size=size, mode=crop, seed=seed)
            warnings.warn(f"no validation list {str(held_out)!r} next to {str(root)!r}: the {split!r} split "
                          f"uses the TRAINING images; write a held-out list with `python -m course_lib "
                          f"make-flist <folder> {root} --val-fraction 0.1`", RuntimeWarning, stacklevel=2)
        return FlistDataset(root, size=size, mode=crop, seed=seed, flip=flip)
    if name in ("folder", "celebahq"):
        folder = Path(root)
        if (folder / split).is_dir():
            folder = folder / split
        elif split != "train":
            warnings.warn(f"{str(root)!r} has no {split!r} sub-folder: using all its images for "
                          f"the {split!r} split", RuntimeWarning, stacklevel=2)
        if name == "celebahq":
            ds: ImageListDataset = CelebAHQDataset(folder, size=size, mode=mode or "resize", seed=seed)
        else:
            ds = ImageFolderDataset(folder, size=size, mode=crop, seed=seed)
    elif name == "celeba":
        ds = CelebADataset(root, split=split, size=size, mode=mode, seed=seed)
    else:
        ds = Places365Dataset(root, split=split, size=size, mode=mode, seed=seed)
    ds.flip = bool(flip)
    return ds


# ----------------------------------------------------------------------------- CLI

def main(argv: Optional[list[str]] = None) -> int:
    """``python -m course_lib make-flist <folder> <out.flist> [--shuffle --seed N --val-fraction F]``."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib make-flist",
        description="Write an flist (one image path per line, sorted) of every image under a folder.",
    )
    parser.add_argument("folder", help="folder to scan (recursively) for images")
    parser.add_argument("out", help="flist file to write, e.g. data/train.flist")
    parser.add_argument("--shuffle", action="store_true", help="shuffle the lines (seeded)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --shuffle (default 0)")
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="move this share of the images to <out stem>_val.flist (default 0)")
    parser.add_argument("--relative", action="store_true",
                        help="write paths relative to the flist's folder instead of absolute ones")
    parser.add_argument("--ext", nargs="+", default=list(IMAGE_EXTENSIONS),
                        help="file extensions to include (default: common image types)")
    args = parser.parse_args(argv)
    counts = write_flist(args.folder, args.out, extensions=args.ext, shuffle=args.shuffle,
                         seed=args.seed, val_fraction=args.val_fraction, relative=args.relative)
    for path, count in counts.items():
        print(f"wrote {count} paths to {path}")
    return 0


if __name__ == "__main__":
    from course_lib.__main__ import run_command
    raise SystemExit(run_command("make-flist", main, sys.argv[1:]))
