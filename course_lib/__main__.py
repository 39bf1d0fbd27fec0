"""Command line: ``python -m course_lib <command> ...``.

Each command lives in the module that does its job; that module exposes
``main(argv: list[str]) -> int``. This file only dispatches, so importing one command
never pays for the others, and it holds the one error boundary of every command
(:func:`run_command`): the commands themselves catch nothing.
"""
from __future__ import annotations

import errno
import importlib
import os
import sys
import traceback
from typing import Callable, Optional

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("course_lib.convert", "convert an official TF checkpoint to a course_lib .pt file"),
    "train": ("course_lib.train", "train DeepFill v1 (configs: toy_cpu, celeba, celebahq, places2, celeba_128_session, celeba_256_instructor)"),
    "inpaint": ("course_lib.inpaint_cli", "inpaint one image or a folder of images"),
    "evaluate": ("course_lib.evaluate", "Table 1 metrics (L1, L2, PSNR, TV, SSIM) on a data set"),
    "make-flist": ("course_lib.data", "write an flist file (one image path per line) for a folder"),
    "download": ("course_lib.pretrained", "fetch an official model (places2, celeba, celebahq, imagenet) into the cache"),
    "download-data": ("course_lib.datasets_download", "fetch a data set (celeba, places2-val, places2): resumable, md5-checked, unpacked once"),
}

# Exit codes of every command (README "Bad input and faults" lists the same).
EXIT_OK = 0
EXIT_DIVERGED = 1      # train: a loss became NaN/Inf; the last good checkpoint is kept
EXIT_USER = 2          # bad input or environment (file, folder, setting, disk, memory): one line says what
EXIT_BUG = 3           # an unexpected error inside course_lib: the traceback is printed, please report it
EXIT_SIGINT = 130      # Ctrl-C (128 + SIGINT); train saved a checkpoint first
EXIT_SIGTERM = 143     # SIGTERM (128 + SIGTERM: Colab, SLURM, Docker, systemd); train saved a checkpoint first
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done",
    EXIT_DIVERGED: "train stopped on a NaN/Inf loss (the last good checkpoint is kept)",
    EXIT_USER: "bad input or environment: one line on stderr names the problem and the fix",
    EXIT_BUG: "an unexpected error in course_lib (a bug): traceback printed, please report it",
    EXIT_SIGINT: "Ctrl-C (train: after saving a checkpoint)",
    EXIT_SIGTERM: "SIGTERM (train: after saving a checkpoint; continue with --resume)",
}
DEBUG_VARIABLE = "COURSE_LIB_DEBUG"


def usage() -> str:
    lines = ["usage: python -m course_lib <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "python -m course_lib <command> --help shows a command's options.", "", "exit codes:"]
    lines += [f"  {code:<11} {meaning}" for code, meaning in EXIT_CODES.items()]
    lines += [f"  {DEBUG_VARIABLE}=1 shows the traceback of any error (for bug reports)."]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_USER
    module = importlib.import_module(COMMANDS[name][0])
    return run_command(name, module.main, rest)


def _debug() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def run_command(name: str, command: Callable[[list[str]], Optional[int]], argv: list[str]) -> int:
    """Run one command: every error ends as one line on stderr and a documented exit code.

    A user mistake or an environment fault (``OSError``: a missing, unreadable, read-only or
    full-disk file; ``ValueError`` / ``TypeError`` / ``KeyError``: a bad file, setting or
    option; out of memory; an exception class with ``exit_code = 2`` such as
    :class:`~course_lib.runlock.RunLockedError` or :class:`~course_lib.data.UnreadableImagesError`)
    gives exit code 2 and one line that names the problem and the fix. An exception class may
    declare another ``exit_code`` (:class:`~course_lib.train.NonFiniteLossError`: 1). Ctrl-C
    outside training gives 130. Anything else is a bug in course_lib: its traceback is printed
    and the exit code is 3. ``COURSE_LIB_DEBUG=1`` re-raises every error instead (the full
    traceback, for bug reports). The codes are :data:`EXIT_CODES`.
    """
    try:
        return int(command(argv) or 0)
    except KeyboardInterrupt:
        if _debug():
            raise
        print(f"{name}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as err:  # noqa: BLE001 - the one boundary of every command
        if _debug():
            raise
        code, message = describe_error(err)
        if code == EXIT_BUG:
            traceback.print_exc()
            print(f"{name}: internal error (a bug in course_lib, not in your input): {message}; please "
                  "report it with the traceback above", file=sys.stderr)
            return code
        print(f"{name}: error: {message}\n({DEBUG_VARIABLE}=1 shows the traceback)", file=sys.stderr)
        return code


def describe_error(err: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) of an exception, as :func:`run_command` reports it."""
    declared = getattr(type(err), "exit_code", None)
    if isinstance(declared, int):
        return declared, _first_message(err)
    if isinstance(err, OSError):
        return EXIT_USER, _os_error_message(err)
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError
        return EXIT_USER, (f"out of memory ({_first_message(err)[:200]}); lower batch_size or image_size, "
                           "use amp=bf16 on a GPU, or for inpaint a smaller --memory-gb or --mode crop")
    if isinstance(err, KeyError):
        return EXIT_USER, str(err.args[0]) if err.args else repr(err)
    text = str(err)
    if isinstance(err, RuntimeError) and text.startswith("DataLoader worker") and "Original Traceback" not in text:
        return EXIT_USER, (f"{text.strip().rstrip('.')}: the system ended a data-loading process (often because "
                           "memory ran out); lower --set num_workers or batch_size, then continue with --resume")
    if isinstance(err, (ValueError, TypeError)):
        return EXIT_USER, _first_message(err)
    return EXIT_BUG, f"{type(err).__name__}: {_first_message(err)}"


def _first_message(err: BaseException) -> str:
    """The error's own message; for an error re-raised from a DataLoader worker, the original one."""
    text = str(err)
    if "Original Traceback" in text:  # torch's ExceptionWrapper: "Caught X in DataLoader worker ..."
        last = text.strip().splitlines()[-1]  # "course_lib.data.UnreadableImagesError: none of ..."
        head, colon, rest = last.partition(": ")
        text = rest if colon and head.split(".")[-1] == type(err).__name__ else last
    return text


_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _os_error_message(err: OSError) -> str:
    """One sentence for an ``OSError``.

    An error the operating system raised (its ``strerror`` is the system's text) is named by
    its errno: no permission or a read-only file system, a full disk, else the system's text
    and the path. An ``OSError`` that course_lib raised with its own message passes through.
    """
    where = err.filename if err.filename is not None else err.filename2
    from_os = err.errno is not None and err.strerror == os.strerror(err.errno)
    if not from_os:
        message = err.strerror if err.errno is not None and err.strerror else str(err)
        if where is not None and str(where) not in message:
            message = f"{message}: {where}"
        return message
    if err.errno in _READ_ONLY:
        what = "read-only file system" if err.errno == errno.EROFS else "permission denied"
        return (f"{what}: cannot write or read {where if where is not None else 'a file'}; choose a file or "
                "folder you can write (--out / --output / the output path), or fix its permissions")
    if err.errno in _DISK_FULL:
        return (f"the disk is full ({err.strerror}) while writing{f' {where}' if where is not None else ''}; "
                "free some space or write to another disk (--out / --output)")
    return f"{err.strerror}: {where}" if where is not None else err.strerror


if __name__ == "__main__":
    raise SystemExit(main())
