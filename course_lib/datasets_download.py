"""Fetch a training data set in one command: ``python -m course_lib download-data NAME --root DIR``.

Names: ``celeba`` (the aligned CelebA images and ``list_eval_partition.txt``, the layout
:class:`course_lib.data.CelebADataset` reads), ``places2-val`` (Places365-Standard's file
lists and its 36,500 validation images at 256x256: enough for evaluation and a first
look) and ``places2`` (the same plus the 1.8 M training images at 256x256, a 26 GB archive,
the layout :class:`course_lib.data.Places365Dataset` reads).

Every file goes through :func:`course_lib.fetch.fetch` (the one downloader of course_lib):
resumable (a ``.part`` file and HTTP ranges), checked against the md5 the data set's
loaders publish (torchvision's ``CelebA.file_list`` and ``Places365`` tables) **before** an
archive is unpacked, and never a half file in place. An archive is unpacked once into a
temporary folder inside ``root``, moved into place, and a marker file
(``.<archive>.unpacked``) records it, so a second call does nothing. When a source refuses
(Google Drive's daily quota for CelebA, a moved URL, an HTML page) the error is one
sentence with the manual route: download the archive in a browser, put it in the archives
folder, run the same command again (it checks the md5 and unpacks).

Sources are the official ones: CelebA's own Google Drive files (file ids as listed by
torchvision), Places365 from ``data.csail.mit.edu``. ``base_url`` (or the environment
variable ``COURSE_LIB_DATA_URL``) replaces every source by ``<base_url>/<file name>``: a
mirror you trust, or the tests' local server.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import importlib.util
import json
import os
import shutil
import sys
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from course_lib.fetch import FetchError, SourceRefused, fetch

__all__ = ["DATA_SOURCES", "DataFile", "DataSource", "download_data", "unpack_archive", "DATA_URL_ENV", "main"]

PathLike = Union[str, os.PathLike]
DATA_URL_ENV = "COURSE_LIB_DATA_URL"
PLACES_BASE = "http://data.csail.mit.edu/places/places365/"
CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
PLACES_PAGE = "http://places2.csail.mit.edu/download.html"


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: where it is, its published md5, and whether to unpack it."""

    name: str                      # file name (also its name under base_url)
    md5: str                       # published md5 (torchvision's tables)
    url: str = ""                  # official URL ("" for a Google Drive file)
    drive_id: str = ""             # Google Drive file id (CelebA's official hosting)
    unpack: bool = False           # a .zip / .tar to unpack into root
    approx_gb: float = 0.0         # for the free-disk check and the messages


@dataclass(frozen=True)
class DataSource:
    """A data set: its files, its default folder, where to get it by hand, its terms."""

    files: tuple[DataFile, ...]
    default_root: str
    page: str
    terms: str


_CELEBA_FILES = (
    DataFile("img_align_celeba.zip", "00d2c5bc6d35e252742224ab0c1e8fcb",
             drive_id="0B7EVK8r0v71pZjFTYXZWM3FlRnM", unpack=True, approx_gb=1.4),
    DataFile("list_eval_partition.txt", "d32c9cbf5e040fd4025c592c306e6668",
             drive_id="0B7EVK8r0v71pY0NSMzRuSXJEVkk"),
)
_PLACES_LISTS = DataFile("filelist_places365-standard.tar", "35a0585fee1fa656440f3ab298f8479c",
                         url=PLACES_BASE + "filelist_places365-standard.tar", unpack=True, approx_gb=0.1)
_PLACES_VAL = DataFile("val_256.tar", "e27b17d8d44f4af9a78502beb927f808",
                       url=PLACES_BASE + "val_256.tar", unpack=True, approx_gb=0.5)
_PLACES_TRAIN = DataFile("train_256_places365standard.tar", "53ca1c756c3d1e7809517cc47c5561c5",
                         url=PLACES_BASE + "train_256_places365standard.tar", unpack=True, approx_gb=26.1)
_CELEBA_TERMS = ("CelebA is for non-commercial research purposes only; by downloading it you agree to the "
                 f"terms on {CELEBA_PAGE} (no redistribution, no commercial use of the images).")
_PLACES_TERMS = ("Places365 is for non-commercial research and educational purposes only; by downloading it "
                 f"you agree to the terms on {PLACES_PAGE} (the images belong to their owners).")

DATA_SOURCES: dict[str, DataSource] = {
    "celeba": DataSource(_CELEBA_FILES, "data/celeba", CELEBA_PAGE, _CELEBA_TERMS),
    "places2-val": DataSource((_PLACES_LISTS, _PLACES_VAL), "data/places2", PLACES_PAGE, _PLACES_TERMS),
    "places2": DataSource((_PLACES_LISTS, _PLACES_VAL, _PLACES_TRAIN), "data/places2", PLACES_PAGE, _PLACES_TERMS),
}


def _manual(name: str, item: DataFile, archives: Path) -> str:
    """The manual route for one file (appended to a refusal)."""
    mirror = (" (the page links CelebA's Google Drive folder and its Baidu mirror; if Drive says the quota "
              "is exceeded, wait a day or use 'Add shortcut to Drive' and copy the file from your own Drive)"
              if name == "celeba" else
              " (if the page asks you to request access with a form first, do so)")
    return (f"By hand: download {item.name} from {DATA_SOURCES[name].page}{mirror}, put it in {archives}, "
            f"and run the same command again (it checks md5 {item.md5} and unpacks).")


def _url(item: DataFile, base_url: str) -> str:
    if base_url:
        return base_url.rstrip("/") + "/" + item.name
    if item.drive_id:
        from course_lib.pretrained import _drive_url
        return _drive_url(item.drive_id)
    return item.url


def _fetch_item(item: DataFile, url: str, dest: Path, manual: str, opener: urllib.request.OpenerDirector,
                quiet: bool, drive: bool) -> Path:
    """:func:`course_lib.fetch.fetch` with the md5; from Google Drive (``drive``) follows one confirmation page.

    A ``dest`` that is already there but fails the md5 (e.g. a copy put in by hand from another
    source) is replaced by a good download; when the download fails, the error says so too.
    """
    try:
        try:
            return fetch(url, dest, md5=item.md5, what=item.name, manual=manual, opener=opener, quiet=quiet)
        except SourceRefused as err:
            if not drive or not err.page:
                raise
            from course_lib.pretrained import _confirmation_url  # gdown reads Drive's large-file page
            confirmed = _confirmation_url(err.page)
            if confirmed is None and importlib.util.find_spec("gdown") is None:
                raise SourceRefused(f"Google Drive answered with a page instead of {item.name}: a large-file "
                                    "confirmation page, which course_lib follows with gdown (not installed: pip "
                                    f"install gdown, then run the same command again), or its daily quota, or a "
                                    f"sign-in. {manual}", url=url) from None
            if confirmed is None or confirmed == url:
                raise SourceRefused(f"Google Drive did not send {item.name}: its daily download quota is probably "
                                    f"exceeded, or it wants a sign-in. {manual}", url=url) from None
            return fetch(confirmed, dest, md5=item.md5, what=item.name, manual=manual, opener=opener, quiet=quiet)
    except FetchError as err:
        if not dest.is_file():
            raise
        # fetch returns an existing dest at once when it passes the md5: this one did not
        raise type(err)(f"{err} (The {item.name} already in {dest.parent} does not have the published md5 "
                        f"{item.md5}: a different or damaged copy; a good download replaces it.)") from None


def _safe_members(names: Sequence[str], archive: Path) -> None:
    for name in names:
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise FetchError(f"{archive} holds the unsafe path {name!r} (absolute or with '..'); it was not "
                             "unpacked. Delete it and download it again from the official source.")


def unpack_archive(archive: PathLike, root: PathLike) -> list[str]:
    """Unpack a .zip or .tar into ``root`` once; returns the top-level names it placed.

    The archive is unpacked into ``root/.unpacking-<name>/`` first and its top-level
    entries are then moved into ``root`` (replacing older ones of the same name), so an
    interrupted unpack never leaves half a folder where the loader looks; the marker
    ``root/.<name>.unpacked`` is written last. Paths leaving ``root`` are refused.
    """
    archive, root = Path(archive), Path(root)
    marker = root / f".{archive.name}.unpacked"
    if marker.is_file():
        return json.loads(marker.read_text()).get("entries", [])
    tmp = root / f".unpacking-{archive.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                _safe_members(z.namelist(), archive)
                z.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                members = t.getmembers()
                _safe_members([m.name for m in members], archive)
                bad = [m.name for m in members if not (m.isfile() or m.isdir())]
                if bad:
                    raise FetchError(f"{archive} holds links or devices ({bad[0]!r}); it was not unpacked. Delete "
                                     "it and download it again from the official source.")
                t.extractall(tmp)
        else:
            raise FetchError(f"{archive} is neither a zip nor a tar archive; delete it and run the command again.")
        entries = sorted(p.name for p in tmp.iterdir())
        for entry in entries:
            target = root / entry
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(tmp / entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    marker.write_text(json.dumps({"archive": archive.name, "entries": entries}) + "\n")
    return entries


def _same_disk(a: Path, b: Path) -> bool:
    """True when two existing folders are on one file system (their free space is shared)."""
    return a.stat().st_dev == b.stat().st_dev


def _check_free_disk(name: str, source: DataSource, root: Path, archive_dir: Path) -> None:
    """Refuse before any download when ``root`` (images) or ``archive_dir`` (archives) lacks the space.

    Each archive not yet unpacked needs its size in ``archive_dir`` (unless it is already there)
    and about its size again in ``root`` once unpacked; on one file system the two add up. The
    archives folder may be another disk (a Google Drive mount, whose free space is the quota).
    """
    todo = [f for f in source.files if not (root / f".{f.name}.unpacked").is_file()]
    archives_gb = sum(f.approx_gb for f in todo if f.unpack and not (archive_dir / f.name).is_file())
    images_gb = sum(f.approx_gb for f in todo if f.unpack) + sum(
        f.approx_gb for f in todo if not f.unpack and not (root / f.name).is_file())
    same_disk = _same_disk(root, archive_dir)
    needs = [(root, images_gb + archives_gb, "--root / --archives", "archives and images")] if same_disk else [
        (archive_dir, archives_gb, "--archives", "archives"), (root, images_gb, "--root", "images")]
    for folder, need_gb, option, what in needs:
        free_gb = shutil.disk_usage(folder).free / 1e9
        if need_gb > free_gb:
            raise FetchError(f"{name} needs about {need_gb:.1f} GB free under {folder} ({what}), but only "
                             f"{free_gb:.1f} GB are free; free some space or choose another {option}.")


def download_data(name: str, root: Optional[PathLike] = None, *, archives: Optional[PathLike] = None,
                  base_url: Optional[str] = None, keep_archives: bool = True, quiet: bool = False) -> Path:
    """Fetch, check and unpack data set ``name`` (see the module docstring) into ``root``; returns ``root``.

    ``root``: the data set's folder, what a config's ``data_root`` points at (default
    ``data/celeba`` or ``data/places2``). ``archives``: where the archives are kept
    (default ``root/archives``; e.g. a Google Drive folder on Colab, so the next session
    only unpacks). ``keep_archives=False`` deletes each archive once it is unpacked.
    Raises :class:`course_lib.fetch.FetchError` (one sentence with the manual route).
    """
    if name not in DATA_SOURCES:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATA_SOURCES)}")
    source = DATA_SOURCES[name]
    root = Path(root if root is not None else source.default_root).expanduser()
    archive_dir = Path(archives).expanduser() if archives is not None else root / "archives"
    base = base_url if base_url is not None else os.environ.get(DATA_URL_ENV, "")
    root.mkdir(parents=True, exist_ok=True)
    archive_dir.mkdir(parents=True, exist_ok=True)
    say = (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    say(source.terms)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    _check_free_disk(name, source, root, archive_dir)
    for item in source.files:
        manual = _manual(name, item, archive_dir)
        url = _url(item, base)
        drive = bool(item.drive_id) and not base
        if not item.unpack:
            say(f"{item.name}: fetching {url}")
            _fetch_item(item, url, root / item.name, manual, opener, quiet, drive)
            continue
        if (root / f".{item.name}.unpacked").is_file():
            say(f"{item.name}: already unpacked in {root}")
            continue
        say(f"{item.name}: fetching {url} (about {item.approx_gb:g} GB) into {archive_dir}")
        archive = _fetch_item(item, url, archive_dir / item.name, manual, opener, quiet, drive)
        say(f"{item.name}: md5 checked, unpacking into {root}")
        unpack_archive(archive, root)
        if not keep_archives:
            archive.unlink()
    say(f"{name} is ready in {root}: train with --set data_root={root}")
    return root


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m course_lib download-data NAME [--root DIR] [--archives DIR] [--delete-archives]``."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib download-data",
        description="Fetch a training data set from its official source (resumable, md5-checked before "
                    "unpacking, unpacked once). Terms: CelebA and Places365 are for non-commercial research "
                    "and education only (see data/README.md).")
    parser.add_argument("name", choices=sorted(DATA_SOURCES), help="which data set")
    parser.add_argument("--root", default=None, help="the data set's folder (a config's data_root; default "
                                                     "data/celeba or data/places2)")
    parser.add_argument("--archives", default=None, help="where to keep the archives (default ROOT/archives; "
                                                         "on Colab e.g. a Drive folder, reused next session)")
    parser.add_argument("--delete-archives", action="store_true", help="delete each archive once unpacked")
    parser.add_argument("--base-url", default=None, help=f"fetch every file from BASE_URL/<file name> instead "
                                                         f"(a mirror; default ${DATA_URL_ENV} or the official sources)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        root = download_data(args.name, args.root, archives=args.archives, base_url=args.base_url,
                             keep_archives=not args.delete_archives, quiet=args.quiet)
    except FetchError as err:
        print(f"download-data: error: {err}", file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
