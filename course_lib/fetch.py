"""Download one file: resumable, checksummed, never a half file in place.

The one way course_lib fetches anything over HTTP (the official weights in
:mod:`course_lib.pretrained`; data sets later). :func:`fetch` takes a URL, a destination
and what the file must be (a sha256 and/or a size) and guarantees:

* **resumable**: bytes arrive in ``<dest>.part``; a later call sends ``Range: bytes=N-``
  and appends when the server answers ``206 Partial Content`` with the matching
  ``Content-Range`` (a server that ignores the range answers ``200``: the part is
  restarted from byte 0, never appended to);
* **never a half file used**: ``dest`` appears only by an atomic ``os.replace`` of a
  complete, verified ``.part`` (fsync'ed first), so a crash or Ctrl-C leaves either no
  ``dest`` or the previous good one;
* **checked**: the length against ``Content-Length``/``Content-Range`` and ``size``,
  the sha256 against ``sha256``; a wrong file is deleted and reported, a short one is
  kept as ``.part`` for the next call to resume;
* **one sentence when the source refuses**: an HTML page where a file was expected (a
  sign-in, quota or virus-scan page), HTTP 403/404/429, a network error, each becomes a
  :class:`FetchError` (a subclass of ``OSError``) whose message says what happened and what
  to do. :class:`SourceRefused` keeps the start of the page (``.page``) so a caller that
  knows the site (Google Drive in :mod:`course_lib.pretrained`) can read a confirmation link.

Only the standard library (``urllib``); a shared opener with a cookie jar can be passed in.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

__all__ = ["FetchError", "SourceRefused", "ChecksumMismatch", "fetch", "sha256_file", "part_path",
           "looks_like_html", "CHUNK"]

PathLike = Union[str, os.PathLike]
CHUNK = 1 << 20  # bytes read per call (1 MiB)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<?xml", b"<body")


class FetchError(OSError):
    """A download that did not give the expected file; the message is one sentence for the user."""


class SourceRefused(FetchError):
    """The server answered with something other than the file (an HTML page, 403, 429, ...)."""

    def __init__(self, message: str, page: str = "", url: str = "") -> None:
        super().__init__(message)
        self.page = page  # the first 256 KiB of an HTML answer, "" otherwise
        self.url = url


class ChecksumMismatch(FetchError):
    """The complete file's sha256 or size is not the expected one (it was deleted)."""


@dataclass
class _Progress:
    total: Optional[int]
    done: int
    last: float = 0.0


def sha256_file(path: PathLike, chunk: int = CHUNK) -> str:
    """The hex sha256 of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def part_path(dest: PathLike) -> Path:
    """Where :func:`fetch` keeps the bytes of ``dest`` until they are complete and checked."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def looks_like_html(head: bytes) -> bool:
    """True when the first bytes of a body are an HTML/XML page rather than a binary file."""
    text = head.lstrip()[:64].lower()
    return any(text.startswith(s) for s in _HTML_STARTS)


def _verify(path: Path, sha256: Optional[str], size: Optional[int]) -> Optional[str]:
    """None when ``path`` is the expected file, else what is wrong (a phrase)."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"is {actual_size} bytes, expected {size}"
    if sha256 is not None:
        actual = sha256_file(path)
        if actual.lower() != sha256.lower():
            return f"has sha256 {actual[:16]}..., expected {sha256.lower()[:16]}..."
    return None


def _content_range_start(value: Optional[str]) -> Optional[int]:
    """The first byte of ``Content-Range: bytes START-END/TOTAL`` (None when absent or malformed)."""
    if not value or not value.strip().startswith("bytes "):
        return None
    try:
        return int(value.strip()[6:].split("-", 1)[0])
    except ValueError:
        return None


def _total_from_headers(headers, start: int) -> Optional[int]:  # type: ignore[no-untyped-def]
    """The full file size from ``Content-Range`` (206) or ``start + Content-Length``."""
    content_range = headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    length = headers.get("Content-Length")
    if length and length.strip().isdigit():
        return start + int(length)
    return None


def _say_progress(state: _Progress, name: str, quiet: bool) -> None:
    now = time.monotonic()
    if quiet or now - state.last < 1.0:
        return
    state.last = now
    total = f" of {state.total / 1e6:.1f} MB" if state.total else ""
    print(f"\r  {name}: {state.done / 1e6:.1f} MB{total}", end="", file=sys.stderr, flush=True)


def fetch(url: str, dest: PathLike, *, sha256: Optional[str] = None, size: Optional[int] = None,
          what: str = "", manual: str = "", timeout: float = 60.0, resume: bool = True,
          opener: Optional[urllib.request.OpenerDirector] = None, quiet: bool = True,
          on_response: Optional[Callable[[int, dict], None]] = None) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring); returns ``dest``.

    ``sha256`` / ``size``: what the file must be (either may be None: unchecked). When
    ``dest`` already exists and matches them it is returned without any request (with
    neither given, an existing ``dest`` is trusted). ``what`` names the file in messages
    (default: its file name); ``manual`` is appended to a refusal message (how to get the
    file by hand). ``resume=False`` discards an existing ``.part``. Raises
    :class:`SourceRefused`, :class:`ChecksumMismatch` or :class:`FetchError`.
    """
    dest = Path(dest)
    what = what or dest.name
    tail = f" {manual}" if manual else ""
    if dest.is_file() and _verify(dest, sha256, size) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    if not resume and part.exists():
        part.unlink()
    start = part.stat().st_size if part.is_file() else 0
    if start and size is not None and start > size:  # longer than the file can be: start over
        part.unlink()
        start = 0
    request = urllib.request.Request(url, headers={"User-Agent": "course_lib-fetch/1",
                                                   "Accept-Encoding": "identity"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    open_url = opener.open if opener is not None else urllib.request.urlopen
    try:
        response = open_url(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # the part already holds every byte: check it below
            response = None
        else:
            body = err.read(256 * 1024) if err.fp is not None else b""
            reason = {403: "refused access (403: private, or its download quota is exceeded)",
                      404: "has no such file (404)",
                      429: "is refusing more downloads for now (429: too many requests; try later)"}
            raise SourceRefused(f"the server {reason.get(err.code, f'answered HTTP {err.code} {err.reason}')} "
                                f"for {what} ({url}).{tail}",
                                page=body.decode("utf-8", "replace"), url=url) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        why = getattr(err, "reason", err)
        raise FetchError(f"could not reach {url} for {what} ({why}); check the connection and run the "
                         f"same command again (it resumes).{tail}") from None
    if response is not None:
        with response:
            status = getattr(response, "status", 200)
            headers = response.headers
            if on_response is not None:
                on_response(status, dict(headers.items()))
            first = response.read(min(CHUNK, 4096))
            content_type = (headers.get("Content-Type") or "").lower()
            if "text/html" in content_type or looks_like_html(first):
                page = (first + response.read(256 * 1024)).decode("utf-8", "replace")
                raise SourceRefused(
                    f"the server sent a web page instead of {what} (a sign-in, quota-exceeded or "
                    f"confirmation page) from {url}; nothing was saved.{tail}", page=page, url=url)
            if status == 206 and _content_range_start(headers.get("Content-Range")) == start:
                mode = "ab"
            elif status == 206:  # bytes from another offset: appending them would corrupt the part
                part.unlink(missing_ok=True)
                raise FetchError(f"the server answered the resume request for {what} with another byte range "
                                 f"({headers.get('Content-Range')}); the partial file was deleted, run the same "
                                 "command again to start it over.")
            else:  # 200 (range ignored or no part yet): the body is the whole file
                mode, start = "wb", 0
            total = _total_from_headers(headers, start)
            if size is not None and total is not None and total != size:
                raise ChecksumMismatch(f"the server offers {what} with {total} bytes, but it must be {size} "
                                       f"bytes ({url}); nothing was saved.{tail}")
            state = _Progress(total, start)
            try:
                with open(part, mode) as f:
                    block = first
                    while block:
                        f.write(block)
                        state.done += len(block)
                        _say_progress(state, what, quiet)
                        block = response.read(CHUNK)
                    f.flush()
                    os.fsync(f.fileno())
            except (OSError, ValueError, http.client.HTTPException) as err:  # reset, IncompleteRead, ...
                raise FetchError(f"the download of {what} stopped at {part.stat().st_size} bytes ({err}); "
                                 "run the same command again: it resumes from there.") from None
            if not quiet:
                print(file=sys.stderr)
            if total is not None and state.done < total:
                raise FetchError(f"the download of {what} stopped at {state.done} of {total} bytes; run the same "
                                 "command again: it resumes from there.")
    problem = _verify(part, sha256, size)
    if problem is not None:
        part.unlink()
        raise ChecksumMismatch(f"the downloaded {what} {problem} (a different or corrupted file); it was "
                               f"deleted, nothing was used.{tail}")
    os.replace(part, dest)  # atomic: dest is complete or absent
    _fsync_folder(dest.parent)
    return dest


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
