"""Command line: ``python -m course_lib <command> ...``.

Each command lives in the module that does its job; that module exposes
``main(argv: list[str]) -> int``. This file only dispatches, so importing one command
never pays for the others.
"""
from __future__ import annotations

import importlib
import os
import sys
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


def usage() -> str:
    lines = ["usage: python -m course_lib <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "python -m course_lib <command> --help shows a command's options."]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return run_command(name, module.main, rest)


def run_command(name: str, command: Callable[[list[str]], Optional[int]], argv: list[str]) -> int:
    """Run one command; a user mistake becomes one line on stderr and exit code 2, not a traceback.

    User mistakes are what course_lib raises for bad input: a missing, unreadable or wrong
    file (``OSError``, ``ValueError``), a wrong type or config key (``TypeError``,
    ``KeyError``), a run folder in use (:class:`~course_lib.runlock.RunLockedError`).
    ``COURSE_LIB_DEBUG=1`` shows the full traceback instead (for bug reports).
    """
    from course_lib.runlock import RunLockedError

    try:
        return int(command(argv) or 0)
    except (OSError, ValueError, TypeError, KeyError, RunLockedError) as err:
        if os.environ.get("COURSE_LIB_DEBUG", "") not in ("", "0"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        if isinstance(err, PermissionError):
            message = (f"permission denied: cannot write or read {err.filename or message}; choose a file "
                       "or folder you can write (--out / --output), or fix its permissions")
        elif isinstance(err, OSError) and err.filename and str(err.filename) not in message:
            message = f"{message}: {err.filename}"
        print(f"{name}: error: {message}\n(COURSE_LIB_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
