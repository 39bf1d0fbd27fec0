"""One writer per run folder: ``train.lock``, held while a :class:`~course_lib.train.Trainer` trains.

Two ``python -m course_lib train --out runs/x`` started by mistake (two terminals, a notebook
cell run twice, two Colab tabs) would both write ``runs/x/checkpoints`` and interleave their
steps; the second must refuse instead. Not in the release (it writes wherever it is told).

How: the lock file holds an OS lock (``fcntl.flock``) for as long as the trainer runs; the
kernel drops it when the process ends in any way, ``kill -9`` included, so a lock left behind
by a dead run is never mistaken for a live one. Where ``flock`` does not exist (Windows) or the
file system refuses it (some network mounts), the file's ``pid`` and ``host`` decide: the lock
is live while that pid runs on this host. The file stays after a run (an empty file is a free
lock): deleting it while another process waits could let two processes lock two files.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Optional, Union

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "train.lock"


class RunLockedError(RuntimeError):
    """Another live training run holds the run folder's lock."""

    exit_code = 2  # of every command (course_lib.__main__.run_command)


def _owner() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _read_owner(path: Path) -> Optional[dict]:
    try:
        text = path.read_text().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _refusal(folder: Path, path: Path, owner: Optional[dict]) -> RunLockedError:
    who = (f"pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('since')}"
           if owner else "another process")
    return RunLockedError(
        f"{folder} is in use by another training run ({who}): wait for it to finish, or train "
        f"into another folder (--out). If no run uses it any more, delete {path}")


class RunLock:
    """``with RunLock(folder):`` or ``acquire()`` / ``release()``; re-entrant within one object."""

    def __init__(self, folder: Union[str, os.PathLike]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _held_by_other(self, fd: int) -> bool:
        """True when a live process other than this one holds the lock (fd: the open lock file)."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:  # the file system has no flock: fall back to the pid
                pass
            else:
                return False  # the caller keeps (acquire) or drops (check) the OS lock
        owner = _read_owner(self.path)
        if not owner:
            return False
        same_host = owner.get("host") == socket.gethostname()
        pid = int(owner.get("pid", -1))
        if same_host:
            return pid != os.getpid() and pid > 0 and _pid_alive(pid)
        return True  # another machine: cannot tell, so refuse (the message says how to override)

    def check(self) -> None:
        """Raise :class:`RunLockedError` if another live run holds the lock; take nothing."""
        if self.held or not self.path.is_file():
            return
        fd = os.open(self.path, os.O_RDWR)
        try:
            if self._held_by_other(fd):
                raise _refusal(self.folder, self.path, _read_owner(self.path))
        finally:
            os.close(fd)  # closing drops the OS lock that the probe may have taken

    def acquire(self) -> "RunLock":
        """Take the lock (creating the folder) or raise :class:`RunLockedError`."""
        if self.held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if self._held_by_other(fd):
                raise _refusal(self.folder, self.path, _read_owner(self.path))
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(_owner()) + "\n").encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Free the lock: empty the file and close it (the OS lock goes with the descriptor)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
