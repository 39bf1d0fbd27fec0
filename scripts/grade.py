#!/usr/bin/env python
"""Grade students' notebooks: run each one and report every exercise as pass / fail.

For instructors (lessons/instructors.md, "Grading"). Each submitted notebook is executed top
to bottom in a fresh ``python3`` kernel (nbclient, as ``make editions`` does), with one
grading cell put in front of it that replaces ``course_lib.checks.check`` by a recorder.
Every ``check("name", fn)`` the notebook runs is then judged with the exercise's own check
from ``course_lib.checks`` and recorded as

* ``pass``      -- the check accepts the student's function;
* ``fail``      -- the check rejects it (the detail is the check's message and hint), or
                   the function checked is course_lib's own reference;
* ``not done``  -- the function is still the stub (raises ``NotImplementedError``);
* ``error``     -- the check itself broke on the function (an unexpected exception);
* ``not checked`` -- the notebook never ran the check (a cell before it failed, or the
                   check cell was deleted); the errors of the run are listed.

After a failed exercise the recorder hands back course_lib's reference, so one wrong answer
does not break the rest of the notebook, and cells that raise do not stop the run. The
notebook file is not changed. Notebooks run with ``COURSE_LIB_CI=1`` (the tiny sizes that CI
uses) unless ``--full`` is given.

Usage::

    python scripts/grade.py submissions/*/02_spatial_discount.ipynb
    python scripts/grade.py submissions/*.ipynb --csv grades.csv
    python scripts/grade.py renamed.ipynb --as 04_softmax_attention.ipynb

Which course notebook a file is comes from its metadata (``course.generated_from``, written
by make_editions), else from its file name (``02_spatial_discount_jdoe.ipynb``), else from
``--as``. Exit status: 0 when every exercise of every notebook passes, 1 otherwise, 2 when a
file cannot be graded at all (missing, not a notebook, unknown course notebook).

A submission is code: run this where a student's code can do no harm (a container or a
throwaway account), never with access to anything you would not hand to the student.
"""
from __future__ import annotations

import argparse
import copy
import csv
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import nbformat

ROOT = Path(__file__).resolve().parents[1]
STATUSES = ("pass", "fail", "not done", "error", "not checked")


class GradingError(ValueError):
    """A file that cannot be graded at all (names the file and the fix)."""


def judge(name: str, fn: Callable[..., Any]) -> dict[str, str]:
    """Judge one student function with the check of exercise ``name`` from course_lib.checks.

    Returns ``{"exercise", "status", "detail"}`` with a status from :data:`STATUSES` (never
    "not checked", which only the report can know). Runs inside the student's kernel too
    (its source is put into the grading cell), so it imports what it needs itself.
    """
    from course_lib.checks import get_exercise

    exercise = get_exercise(name)
    if fn is exercise.reference:
        return {"exercise": name, "status": "fail",
                "detail": "the function checked is course_lib's own reference, not the student's"}
    if not callable(fn):
        return {"exercise": name, "status": "fail",
                "detail": f"check() was given a {type(fn).__name__}, not a function"}
    try:
        exercise.check(fn)
    except NotImplementedError:
        return {"exercise": name, "status": "not done", "detail": "still the stub (raises NotImplementedError)"}
    except AssertionError as err:
        return {"exercise": name, "status": "fail", "detail": str(err)}
    except Exception as err:  # a check that breaks on odd input is reported, not fatal
        return {"exercise": name, "status": "error", "detail": f"{type(err).__name__}: {err}"}
    return {"exercise": name, "status": "pass", "detail": ""}


def grading_cell(log: Path) -> str:
    """Source of the cell run before the notebook: ``check`` records to ``log`` (JSON lines)."""
    return "\n".join([
        "# Grading cell (scripts/grade.py): check() records its verdict and never stops the notebook.",
        "from __future__ import annotations  # judge's annotations name types this cell does not import",
        "import json as _grade_json",
        "import course_lib.checks as _grade_checks",
        inspect.getsource(judge),
        f"_GRADE_LOG = {json.dumps(str(log))}",
        "",
        "def _grade_check(name, fn):",
        "    verdict = judge(name, fn)",
        "    with open(_GRADE_LOG, 'a', encoding='utf-8') as _file:",
        "        _file.write(_grade_json.dumps(verdict) + '\\n')",
        "    print(f\"[grade] {name}: {verdict['status']}\")",
        "    return fn if verdict['status'] == 'pass' else _grade_checks.get_exercise(name).reference",
        "",
        "_grade_checks.check = _grade_check",
    ])


def course_notebooks() -> list[str]:
    """File names of the course's notebooks (notebooks/solutions/), e.g. ``02_spatial_discount.ipynb``."""
    return sorted(p.name for p in (ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def course_notebook(path: Path, nb: nbformat.NotebookNode, given: Optional[str] = None) -> str:
    """Which course notebook ``path`` is: ``given``, else its metadata, else its file name."""
    known = course_notebooks()
    if given:
        name = given if given.endswith(".ipynb") else given + ".ipynb"
        if name not in known:
            raise GradingError(f"--as {given}: not a course notebook; use one of {', '.join(known)}")
        return name
    generated_from = nb.metadata.get("course", {}).get("generated_from", "")
    if Path(generated_from).name in known:
        return Path(generated_from).name
    matches = [k for k in known if path.name.startswith(k[: -len(".ipynb")])]
    if len(matches) == 1:
        return matches[0]
    raise GradingError(f"{path}: cannot tell which course notebook this is (no metadata.course.generated_from, "
                       f"and the file name does not start with a course notebook's name); pass --as NAME")


def run_notebook(nb: nbformat.NotebookNode, folder: Path, log: Path, timeout: int) -> list[str]:
    """Execute a copy of ``nb`` in ``folder`` with the grading cell first; the errors of its cells."""
    from nbclient import NotebookClient

    run = copy.deepcopy(nb)
    run.cells.insert(0, nbformat.v4.new_code_cell(grading_cell(log)))
    client = NotebookClient(run, timeout=timeout, kernel_name="python3", allow_errors=True,
                            record_timing=False, resources={"metadata": {"path": str(folder)}})
    client.execute()
    errors = []
    for index, cell in enumerate(run.cells[1:], start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index}: {output.get('ename')}: {output.get('evalue', '')}".strip())
    failed = [o for o in run.cells[0].get("outputs", []) if o.get("output_type") == "error"]
    if failed:
        raise RuntimeError(f"the grading cell failed in the kernel ({failed[0].get('ename')}: "
                           f"{failed[0].get('evalue')}): is course_lib installed for the python3 kernel?")
    return errors


def report(exercises: Sequence[str], verdicts: Sequence[dict[str, str]], errors: Sequence[str]) -> list[dict[str, str]]:
    """One row per exercise: the first verdict recorded for it, or "not checked" (with the run's errors)."""
    first: dict[str, dict[str, str]] = {}
    for verdict in verdicts:
        first.setdefault(verdict["exercise"], verdict)
    rows = []
    for name in list(exercises) + [n for n in first if n not in exercises]:
        if name in first:
            rows.append(dict(first[name]))
        else:
            detail = "the notebook never ran check(" + repr(name) + ")"
            if errors:
                detail += "; errors in the run: " + "; ".join(errors)
            rows.append({"exercise": name, "status": "not checked", "detail": detail})
    return rows


def grade(path: Path, given: Optional[str] = None, timeout: int = 600) -> tuple[str, list[dict[str, str]]]:
    """Grade one submission: (course notebook name, rows of :func:`report`)."""
    from course_lib.checks import list_exercises

    if not path.is_file():
        raise GradingError(f"{path}: no such file")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as err:
        raise GradingError(f"{path}: not a readable notebook ({type(err).__name__}: {err})") from None
    name = course_notebook(path, nb, given)
    exercises = list_exercises(name)
    if not exercises:
        return name, []
    with tempfile.TemporaryDirectory(prefix="grade_") as tmp:
        log = Path(tmp) / "verdicts.jsonl"
        log.touch()
        errors = run_notebook(nb, path.resolve().parent, log, timeout)
        verdicts = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    return name, report(exercises, verdicts, errors)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path, help="students' notebooks (.ipynb)")
    parser.add_argument("--as", dest="as_name", help="grade every file as this course notebook (e.g. 02_spatial_discount)")
    parser.add_argument("--csv", type=Path, help="also write one row per (submission, exercise) to this CSV file")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--full", action="store_true", help="run at the notebooks' full sizes (default: COURSE_LIB_CI=1)")
    args = parser.parse_args(argv)

    if not args.full:
        os.environ["COURSE_LIB_CI"] = "1"  # the kernel inherits it
    rows, status = [], 0
    for path in args.notebooks:
        try:
            name, graded = grade(path, args.as_name, args.timeout)
        except GradingError as err:
            print(f"cannot grade: {err}", file=sys.stderr)
            status = 2
            continue
        passed = sum(r["status"] == "pass" for r in graded)
        print(f"{path} (as {name}): {passed}/{len(graded)} exercises pass" if graded
              else f"{path} (as {name}): no exercises to grade")
        width = max([len(r["exercise"]) for r in graded] + [8])
        for r in graded:
            detail = r["detail"].splitlines()
            print(f"  {r['exercise']:<{width}}  {r['status']:<11}  {' / '.join(detail)[:160]}".rstrip())
        if passed < len(graded) and status == 0:
            status = 1
        rows += [{"submission": str(path), "notebook": name, **r} for r in graded]
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=["submission", "notebook", "exercise", "status", "detail"])
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
