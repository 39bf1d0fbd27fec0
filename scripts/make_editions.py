#!/usr/bin/env python
"""Make the student editions of the course notebooks from the solution editions.

One source of truth (nbgrader's idea): ``notebooks/solutions/NN_name.ipynb`` holds the
complete notebook. Exercise code sits between two lines::

    def spatial_discount(height, width, gamma=0.9):
        \"\"\"docstring the student keeps\"\"\"
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

and this script writes ``notebooks/NN_name.ipynb`` with each such region replaced by
``raise NotImplementedError("Exercise: ...")`` at the indentation of the ``### BEGIN``
line (in a Markdown cell the region becomes "*Write your answer here.*"). Relative links
in Markdown cells are rewritten so they still point at the same files from
``notebooks/`` (``../../lessons/x.md`` -> ``../lessons/x.md``, ``./02_x.ipynb`` ->
``solutions/02_x.ipynb``), except bare notebook names (``03_x.ipynb``), which mean "the
same edition's notebook". Notebooks without solution regions are copied as they are.

Usage::

    python scripts/make_editions.py              # regenerate student editions (sources only)
    python scripts/make_editions.py --execute    # ... and run both editions to store fresh outputs
    python scripts/make_editions.py --check      # exit 1 if regenerating would change a source
    python scripts/make_editions.py --course-map # print the README's course map table

``--check`` compares cell sources only (outputs differ between runs by design).
"""
from __future__ import annotations

import argparse
import copy
import os
import posixpath
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import nbformat
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS_DIR = ROOT / "notebooks" / "solutions"
STUDENT_DIR = ROOT / "notebooks"
NB_VERSION = 4

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: write this part yourself, then re-run the check below")'
MARKDOWN_STUB = "*Write your answer here.*"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

_LINK = re.compile(r"(\]\()([^)\s]+)(\))")  # Markdown link target: [text](target)


class EditionError(ValueError):
    """A solution notebook that cannot be turned into a student edition (named cell, reason)."""


def strip_solutions(source: str, markdown: bool = False, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION region of one cell's source by the stub.

    The stub takes the indentation of the ``### BEGIN SOLUTION`` line. Raises
    :class:`EditionError` on a BEGIN without END, an END without BEGIN, or nested regions.
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise EditionError(f"{where}, line {number}: '{BEGIN}' inside another region; "
                                   f"close the first one with '{END}'")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + (MARKDOWN_STUB if markdown else STUB))
        elif marker == END:
            if not inside:
                raise EditionError(f"{where}, line {number}: '{END}' without a '{BEGIN}' above it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise EditionError(f"{where}: '{BEGIN}' is never closed; add a '{END}' line")
    return "\n".join(out)


def has_solution_regions(nb: NotebookNode) -> bool:
    """True when any cell of ``nb`` contains a ``### BEGIN SOLUTION`` line."""
    return any(line.strip() == BEGIN for cell in nb.cells for line in cell.source.split("\n"))


def solution_regions(source: str) -> list[str]:
    """The texts between BEGIN and END SOLUTION lines of one cell (for tests)."""
    regions, current = [], None
    for line in source.split("\n"):
        if line.strip() == BEGIN:
            current = []
        elif line.strip() == END and current is not None:
            regions.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return regions


def rewrite_links(markdown: str, from_dir: Path, to_dir: Path) -> str:
    """Rewrite relative Markdown link targets written for ``from_dir`` so they work from ``to_dir``.

    A bare notebook name (``01_inpainting_problem.ipynb``) is left alone: it means "that
    notebook in this edition" (students are sent to student editions). Any target with a
    folder part (``../../lessons/01.md``, ``./02.ipynb``, ``../02.ipynb``) keeps pointing at
    the same file. URLs, anchors and absolute paths are unchanged.
    """
    rel = os.path.relpath(from_dir, to_dir)

    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return match.group(0)  # URL, anchor or absolute path: unchanged
        path, sep, anchor = target.partition("#")
        if "/" not in path and path.endswith(".ipynb"):
            return match.group(0)  # a bare notebook name: the same edition's sibling, on purpose
        new = posixpath.normpath(posixpath.join(Path(rel).as_posix(), path)) if path else path
        return f"{match.group(1)}{new}{sep}{anchor}{match.group(3)}"

    return _LINK.sub(fix, markdown)


def student_edition(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The student edition of one solution notebook (a new object; ``nb`` is unchanged).

    Solution regions become stubs, the outputs of changed cells are cleared (``--execute``
    fills them in again), Markdown links are re-pointed from ``notebooks/solutions/`` to
    ``notebooks/``, and the metadata gets ``course.edition = "student"``.
    """
    student = copy.deepcopy(nb)
    for index, cell in enumerate(student.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(strip_solutions(cell.source, markdown=True, where=where),
                                        SOLUTIONS_DIR, STUDENT_DIR)
        elif cell.cell_type == "code":
            stripped = strip_solutions(cell.source, where=where)
            if stripped != cell.source:
                cell.source = stripped
                cell.outputs = []
                cell.execution_count = None
    course = dict(student.metadata.get("course", {}))
    course["edition"] = "student"
    course["generated_from"] = f"solutions/{name}"
    student.metadata["course"] = course
    return student


def normalise_metadata(nb: NotebookNode) -> NotebookNode:
    """Keep the kernelspec at python3 (nbval's --nbval-current-env, CI and Colab need it)."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def solution_notebooks(names: Optional[Sequence[str]] = None) -> list[Path]:
    """The solution notebooks, sorted; ``names`` (e.g. ``["02"]``) keeps those whose file name starts so."""
    paths = sorted(SOLUTIONS_DIR.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
    return paths


def student_path(solution: Path) -> Path:
    return STUDENT_DIR / solution.name


def read(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=NB_VERSION)


def write(nb: NotebookNode, path: Path) -> None:
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


def sources(nb: NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def stale_editions(names: Optional[Sequence[str]] = None) -> list[str]:
    """Student editions whose cell sources differ from a fresh regeneration (or are missing).

    Also lists student editions that have no solution notebook (a renamed/deleted source).
    """
    stale = []
    for solution in solution_notebooks(names):
        target = student_path(solution)
        if not target.exists():
            stale.append(f"{target.relative_to(ROOT)} is missing")
            continue
        fresh = student_edition(read(solution), solution.name)
        if sources(fresh) != sources(read(target)):
            stale.append(f"{target.relative_to(ROOT)} differs from its solution edition")
    if not names:
        known = {p.name for p in solution_notebooks()}
        stale += [f"{p.relative_to(ROOT)} has no solution edition in notebooks/solutions/"
                  for p in sorted(STUDENT_DIR.glob("*.ipynb")) if p.name not in known]
    return stale


def execute(path: Path, timeout: int = 600) -> float:
    """Run one notebook top to bottom in a fresh python3 kernel and store its outputs in place.

    Execution counts come out 1..n; no per-cell timing metadata is written. Returns seconds.
    """
    import time

    from nbclient import NotebookClient

    nb = read(path)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    write(normalise_metadata(nb), path)
    return time.perf_counter() - start


def _execute_job(job: tuple[str, int]) -> tuple[str, float]:
    path, timeout = job
    return path, execute(Path(path), timeout)


def course_map(paths: Optional[Sequence[Path]] = None) -> str:
    """The README's course map: one row per notebook from its ``metadata.course``."""
    rows = ["| # | Notebook | You build | CPU minutes | GPU | Data | Weights | Lesson |",
            "|---|---|---|---|---|---|---|---|"]
    for path in paths or solution_notebooks():
        meta = read(path).metadata.get("course", {})
        number = path.name.split("_", 1)[0]
        lesson = meta.get("lesson", "")
        rows.append("| {n} | [{title}](notebooks/{file}) ([solution](notebooks/solutions/{file})) | {build} "
                    "| {cpu} | {gpu} | {data} | {weights} | {lesson} |".format(
                        n=number, title=meta.get("title", path.stem), file=path.name,
                        build=meta.get("builds", ""), cpu=meta.get("cpu_minutes", "?"),
                        gpu="optional" if meta.get("gpu") == "optional" else ("yes" if meta.get("gpu") else "no"),
                        data=meta.get("data", "none"), weights=meta.get("weights", "no"),
                        lesson=f"[{Path(lesson).name}](lessons/{Path(lesson).name})" if lesson else ""))
    return "\n".join(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="only notebooks whose file name starts with these (e.g. 02)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a student edition's sources are out of date")
    parser.add_argument("--execute", action="store_true",
                        help="also run both editions top to bottom and store their outputs")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell when executing")
    parser.add_argument("-j", "--jobs", type=int, default=1,
                        help="notebooks executed in parallel (default 1; `make editions` pins each kernel to "
                             "NB_THREADS=2 threads, so more jobs than cores/2 only oversubscribe: measured on "
                             "2 cores, --jobs 2 made a 20 s notebook take 3 minutes)")
    parser.add_argument("--course-map", action="store_true", help="print the README's course map table")
    args = parser.parse_args(argv)

    if args.course_map:
        print(course_map())
        return 0
    if args.check:
        stale = stale_editions(args.names)
        for line in stale:
            print(f"out of date: {line}", file=sys.stderr)
        if stale:
            print("run `make editions` (python scripts/make_editions.py --execute) and commit the result",
                  file=sys.stderr)
            return 1
        print(f"student editions are up to date ({len(solution_notebooks(args.names))} notebooks)")
        return 0

    solutions = solution_notebooks(args.names)
    if not solutions:
        print(f"no solution notebooks in {SOLUTIONS_DIR.relative_to(ROOT)}/ match {args.names}", file=sys.stderr)
        return 1
    to_run: list[Path] = []
    for solution in solutions:
        nb = normalise_metadata(read(solution))
        course = dict(nb.metadata.get("course", {}))
        course["edition"] = "solution"
        nb.metadata["course"] = course
        try:  # notebooks without exercises are copied, with their links re-pointed all the same
            student = student_edition(nb, solution.name)
        except EditionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        write(nb, solution)
        write(student, student_path(solution))
        print(f"wrote {student_path(solution).relative_to(ROOT)}")
        to_run += [solution, student_path(solution)]
    if args.execute:
        jobs = [(str(p), args.timeout) for p in to_run]
        failed = []
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(_execute_job, job): job[0] for job in jobs}
            for future, path in futures.items():
                try:
                    _, seconds = future.result()
                    print(f"executed {Path(path).relative_to(ROOT)} in {seconds:.1f} s")
                except Exception as err:  # report every failing notebook, not just the first
                    failed.append(path)
                    print(f"FAILED {Path(path).relative_to(ROOT)}:\n{err}", file=sys.stderr)
        if failed:
            print(f"{len(failed)} notebook(s) failed to execute; their outputs were not written",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
