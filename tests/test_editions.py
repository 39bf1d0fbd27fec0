"""The two editions of the course notebooks stay in step, and their stored outputs are real.

* regenerating the student editions from the solution editions changes nothing
  (``scripts/make_editions.py --check``, run in-process);
* no student edition contains solution text;
* kernelspec ``python3`` everywhere (nbval's --nbval-current-env, CI and Colab need it);
* every notebook stores the outputs of one fresh top-to-bottom run (execution counts
  1..n in order), so that nbval has something to compare;
* every registered exercise is posed and checked in the notebook it names;
* every notebook links its lesson, and the lesson links back.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.checks import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
STUDENTS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALL = SOLUTIONS + STUDENTS


def _load_script():
    spec = importlib.util.spec_from_file_location("make_editions", ROOT / "scripts" / "make_editions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


me = _load_script()


def _read(path: Path):
    return nbformat.read(str(path), as_version=4)


def _ids(paths):
    return [str(p.relative_to(ROOT / "notebooks")) for p in paths]


# ----------------------------------------------------------------------------- the tool

def test_strip_keeps_the_signature_and_indents_the_stub():
    source = ("def f(x):\n"
              "    \"\"\"doc\"\"\"\n"
              "    ### BEGIN SOLUTION\n"
              "    y = x + 1\n"
              "    return y\n"
              "    ### END SOLUTION\n"
              "\n"
              "print(f)")
    expected = ("def f(x):\n"
                "    \"\"\"doc\"\"\"\n"
                f"    {me.STUB}\n"
                "\n"
                "print(f)")
    assert me.strip_solutions(source) == expected
    assert me.solution_regions(source) == ["    y = x + 1\n    return y"]


def test_strip_markdown_and_unbalanced_regions():
    assert me.strip_solutions("Q?\n### BEGIN SOLUTION\nA.\n### END SOLUTION", markdown=True) == \
        f"Q?\n{me.MARKDOWN_STUB}"
    with pytest.raises(me.EditionError, match="never closed"):
        me.strip_solutions("### BEGIN SOLUTION\nx = 1")
    with pytest.raises(me.EditionError, match="without a"):
        me.strip_solutions("x = 1\n### END SOLUTION")
    with pytest.raises(me.EditionError, match="inside another region"):
        me.strip_solutions("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION")


def test_links_are_rewritten_from_solutions_to_notebooks():
    text = ("[lesson](../../lessons/02_x.md) [student](../02_x.ipynb) [me](./02_x.ipynb#top) "
            "[next](03_y.ipynb) [web](https://example.org/a.md) [anchor](#sec)")
    out = me.rewrite_links(text, me.SOLUTIONS_DIR, me.STUDENT_DIR)
    assert out == ("[lesson](../lessons/02_x.md) [student](02_x.ipynb) [me](solutions/02_x.ipynb#top) "
                   "[next](03_y.ipynb) [web](https://example.org/a.md) [anchor](#sec)")


def test_student_edition_of_a_tiny_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def g():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                                  outputs=[nbformat.v4.new_output("stream", text="1\n")], execution_count=1),
        nbformat.v4.new_code_cell("print(2)", outputs=[nbformat.v4.new_output("stream", text="2\n")],
                                  execution_count=2)])
    student = me.student_edition(nb, "99_tiny.ipynb")
    assert student.cells[0].source == f"def g():\n    {me.STUB}"
    assert student.cells[0].outputs == [] and student.cells[0].execution_count is None
    assert student.cells[1].outputs == nb.cells[1].outputs  # unchanged cells keep theirs
    assert student.metadata["course"]["edition"] == "student"
    assert "BEGIN SOLUTION" in nb.cells[0].source  # the source notebook is untouched


# ----------------------------------------------------------------------------- the notebooks

def test_there_are_notebooks():
    assert len(SOLUTIONS) >= 3, "notebooks/solutions/ should hold the course's solution editions"


def test_regenerating_the_student_editions_changes_nothing():
    stale = me.stale_editions()
    assert stale == [], ("student editions out of step with notebooks/solutions/ "
                         "(run `make editions`):\n" + "\n".join(stale))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_student_edition_has_no_solution_text(solution):
    student_path = ROOT / "notebooks" / solution.name
    if not student_path.exists():
        pytest.fail(f"{student_path.relative_to(ROOT)} is missing: run `make editions`")
    sol, stu = _read(solution), _read(student_path)
    assert len(sol.cells) == len(stu.cells)
    for index, (a, b) in enumerate(zip(sol.cells, stu.cells)):
        assert me.BEGIN not in b.source and me.END not in b.source, f"cell {index} keeps a solution marker"
        outside = set(me.strip_solutions(a.source, markdown=a.cell_type == "markdown").split("\n"))
        for region in me.solution_regions(a.source):
            for line in region.split("\n"):
                if line.strip() and line not in outside:
                    assert line not in b.source.split("\n"), f"cell {index} leaks solution line {line.strip()!r}"


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_kernelspec_is_python3(path):
    assert _read(path).metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_outputs_are_stored_from_one_fresh_run(path):
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, "a notebook without code cells"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"execution counts {counts} are not 1..{len(code)}: store the outputs of one fresh top-to-bottom "
        "run (`make editions`); a notebook saved without outputs checks nothing under nbval")
    assert any(c.outputs for c in code), "no stored outputs at all"
    for c in code:
        errors = [o for o in c.outputs if o.output_type == "error"]
        if errors and "NBVAL_RAISES_EXCEPTION" not in c.source and "raises-exception" not in c.metadata.get("tags", []):
            pytest.fail(f"a stored error output ({errors[0].ename}) in cell [{c.execution_count}]")


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_checked_cells_have_outputs(path):
    nb = _read(path)
    for c in nb.cells:
        if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source:
            assert c.outputs, f"cell [{c.execution_count}] is marked NBVAL_CHECK_OUTPUT but stores no output"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_exercise_appears_in_its_notebook(name):
    ex = REGISTRY[name]
    path = ROOT / "notebooks" / "solutions" / ex.notebook
    assert path.exists(), f"exercise {name!r} names {ex.notebook}, which is not in notebooks/solutions/"
    sources = "\n".join(c.source for c in _read(path).cells)
    assert re.search(rf"check\(\s*['\"]{re.escape(name)}['\"]", sources), \
        f"{ex.notebook} never runs check({name!r}, ...)"
    assert me.BEGIN in sources, f"{ex.notebook} has no exercise region"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_notebook_and_lesson_link_each_other(solution):
    nb = _read(solution)
    lesson = nb.metadata.get("course", {}).get("lesson")
    if not lesson:
        pytest.skip("this notebook declares no lesson (metadata.course.lesson)")
    lesson_path = ROOT / lesson
    assert lesson_path.exists(), f"{solution.name} names the lesson {lesson}, which does not exist"
    header = nb.cells[0].source
    assert f"../../{lesson}" in header, f"the header cell of {solution.name} should link ../../{lesson}"
    text = lesson_path.read_text(encoding="utf-8")
    assert f"../notebooks/{solution.name}" in text, f"{lesson} should link ../notebooks/{solution.name}"


# ----------------------------------------------------------------------------- lessons and figures

LESSONS = sorted((ROOT / "lessons").glob("*.md"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_links_and_figures_exist(lesson):
    text = lesson.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        path = (lesson.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{lesson.name} links {target}, which does not exist"


def test_every_registered_figure_is_drawn_and_used_by_a_lesson():
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "scripts" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.discover()
    used = "\n".join(p.read_text(encoding="utf-8") for p in LESSONS)
    for name in figures:
        assert (ROOT / "lessons" / "figures" / name).exists(), f"{name} is not drawn: run `make figures`"
        assert f"figures/{name}" in used, f"no lesson shows figures/{name}"


def _checked_text(nb) -> dict[str, str]:
    """source -> stored stream text of every NBVAL_CHECK_OUTPUT cell."""
    out = {}
    for c in nb.cells:
        if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source:
            out[c.source] = "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
    return out


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_both_editions_store_the_same_checked_numbers(solution):
    """`make test` checks the solution editions at the lowest CPU kernels on 1 thread and the
    student editions at this machine's kernels on 2 threads, both against the stored outputs:
    that proves the numbers portable only if a cell shared by both editions stores one text."""
    ours = _checked_text(_read(solution))
    theirs = _checked_text(_read(ROOT / "notebooks" / solution.name))
    shared = sorted(set(ours) & set(theirs))
    assert shared or not ours, f"{solution.name}: no checked cell is shared by both editions"
    for source in shared:
        assert ours[source] == theirs[source], (
            f"{solution.name}: the two editions store different outputs for the checked cell starting "
            f"{source.splitlines()[0]!r}; run `make editions` on one machine")
