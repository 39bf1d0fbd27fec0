"""The two editions of the course notebooks stay in step, and their stored outputs are real.

* regenerating the student editions from the solution editions changes nothing
  (``scripts/make_editions.py --check``, run in-process);
* no student edition contains solution text;
* kernelspec ``python3`` everywhere (nbval's --nbval-current-env, CI and Colab need it);
* every notebook stores the outputs of one fresh top-to-bottom run (execution counts
  1..n in order), so that nbval has something to compare;
* every registered exercise is posed and checked in the notebook it names;
* every cell that displays a widget also stores a PNG of it, for GitHub and nbviewer;
* every notebook links its lesson, and the lesson links back;
* each edition's Open-in-Colab badge opens that edition's own file from the repository named
  in ``[tool.course]`` of pyproject.toml (the one place), and the install cell installs from
  there on Colab only, or, when it is unset, stops with a message that tells the student what to ask
  for and run (and says nothing about pyproject.toml or make editions).
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import types
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


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _widget_cells(nb):
    """Code cells that stored a widget view (a live widget was displayed when the notebook ran)."""
    return [c for c in nb.cells if c.cell_type == "code"
            and any(WIDGET_VIEW in o.get("data", {}) for o in c.outputs)]


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_every_widget_cell_stores_a_still_picture(path):
    """Without a kernel (GitHub, nbviewer) a widget shows as its text repr; a PNG must stand in."""
    import base64

    for c in _widget_cells(_read(path)):
        pngs = [o.data["image/png"] for o in c.outputs if "image/png" in o.get("data", {})]
        assert pngs, (f"cell [{c.execution_count}] displays a widget but stores no image/png: display it with "
                      "course_lib.plots.display_widget(widget, still=<the figure of its initial value>)")
        assert all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs), "a stored image/png is not a PNG"


def test_the_widget_notebooks_are_found():
    """The check above is not vacuous: notebooks 02 and 04 display widgets (both editions)."""
    names = {p.relative_to(ROOT / "notebooks").as_posix() for p in ALL if _widget_cells(_read(p))}
    assert {"02_spatial_discount.ipynb", "04_softmax_attention.ipynb", "solutions/02_spatial_discount.ipynb",
            "solutions/04_softmax_attention.ipynb"} <= names, names


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


# ----------------------------------------------------------------------------- Colab: badges and install cells

COLAB = "https://colab.research.google.com/github/"
TABLE_TEXT = '''[project]
name = "x"

[tool.course]
# a comment
repository = "jdoe/deepfill-course"   # trailing comment
ref = 'v0.1.0'

[tool.pytest.ini_options]
addopts = "-ra"
'''
JDOE = ("jdoe/deepfill-course", "v0.1.0")


def _configured_in_pyproject() -> tuple[str, str]:
    """(repository, ref) read from pyproject.toml here, with tomllib, not with make_editions."""
    tomllib = pytest.importorskip("tomllib")
    table = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["course"]
    return table.get("repository", "").strip(), table.get("ref", "main").strip()


def test_the_course_table_is_read_with_and_without_tomllib():
    expected = {"repository": "jdoe/deepfill-course", "ref": "v0.1.0"}
    assert me._read_course_table_plain(TABLE_TEXT) == expected  # the Python 3.10 reader
    assert me.read_course_table(TABLE_TEXT) == expected
    assert me.read_course_table('[project]\nname = "x"\n') == {}


def test_course_repository_unset_placeholder_and_valid():
    for unset in ({}, {"repository": ""}, {"repository": "  "}, {"repository": "ORG/REPO"},
                  {"repository": "owner/name", "ref": "TAG"}):
        assert me.course_repository(unset) is None, unset
    repo = me.course_repository({"repository": "jdoe/deepfill-course", "ref": "v0.1.0"})
    assert tuple(repo) == JDOE
    assert me.course_repository({"repository": "jdoe/deepfill-course"}).ref == "main"
    assert repo.pip_url == "git+https://github.com/jdoe/deepfill-course@v0.1.0"
    assert repo.colab_url("notebooks/02_x.ipynb") == \
        "https://colab.research.google.com/github/jdoe/deepfill-course/blob/v0.1.0/notebooks/02_x.ipynb"


@pytest.mark.parametrize("table, phrase", [
    ({"repository": "https://github.com/jdoe/deepfill-course"}, "is a URL; write only"),
    ({"repository": "github.com/jdoe/deepfill-course"}, "is a URL; write only"),
    ({"repository": "jdoe/deepfill-course.git"}, "drop the .git suffix"),
    ({"repository": "jdoe"}, "is not a GitHub \"owner/name\""),
    ({"repository": "jdoe/deep fill"}, "is not a GitHub \"owner/name\""),
    ({"repository": "jdoe/x", "ref": ""}, "name the branch"),
    ({"repository": "jdoe/x", "ref": "TAG"}, "name the branch"),
    ({"repository": "jdoe/x", "ref": "v1..2"}, "is not a git branch or tag name"),
    ({"repository": "jdoe/x", "ref": 3}, "must be strings"),
])
def test_a_malformed_course_table_names_the_fix(table, phrase):
    with pytest.raises(me.EditionError, match=re.escape(phrase)) as err:
        me.course_repository(table)
    assert "[tool.course] in pyproject.toml" in str(err.value)


def _badge_target(nb) -> str:
    (index,) = [i for i, c in enumerate(nb.cells) if me.BADGE_TAG in c.metadata.get("tags", [])]
    links = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)\s]+)\)", nb.cells[index].source)
    assert len(links) == 1, nb.cells[index].source
    return links[0]


def _tiny_notebook():
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 42 · Tiny"),
        nbformat.v4.new_code_cell("def g():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")])


def _tags(nb) -> list:
    return [c.metadata.get("tags") for c in nb.cells]


def test_each_edition_gets_a_badge_to_its_own_file():
    nb = _tiny_notebook()
    me.ensure_colab_cells(nb)
    assert _tags(nb) == [None, [me.INSTALL_TAG], None], "the install cell goes right after the header"
    repo = me.CourseRepository(*JDOE)
    me.apply_colab_cells(nb, "notebooks/solutions/42_tiny.ipynb", repo)
    assert _tags(nb) == [None, [me.BADGE_TAG], [me.INSTALL_TAG], None], "the badge goes right above it"
    student = me.student_edition(nb, "42_tiny.ipynb", repo)
    assert _badge_target(nb) == \
        "https://colab.research.google.com/github/jdoe/deepfill-course/blob/v0.1.0/notebooks/solutions/42_tiny.ipynb"
    assert _badge_target(student) == \
        "https://colab.research.google.com/github/jdoe/deepfill-course/blob/v0.1.0/notebooks/42_tiny.ipynb"
    assert "solution edition" in nb.cells[1].source and "student edition" in student.cells[1].source
    assert student.cells[2].source == nb.cells[2].source  # one install cell for both editions
    assert 'COURSE_REPOSITORY, COURSE_REF = "jdoe/deepfill-course", "v0.1.0"' in student.cells[2].source
    me.ensure_colab_cells(nb)  # idempotent: no second pair
    me.apply_colab_cells(nb, "notebooks/solutions/42_tiny.ipynb", repo)
    assert len(nb.cells) == 4
    nb.cells[3].metadata["tags"] = [me.BADGE_TAG]
    with pytest.raises(me.EditionError, match="keep one"):
        me.ensure_colab_cells(nb)


MAINTAINER_WORDS = ("[tool.course]", "pyproject.toml", "make editions", "publish", "GitHub repository")


def test_unset_repository_leaves_no_badge_and_no_maintainer_text():
    """An unpublished copy: no badge cell, and no Markdown that talks to whoever publishes it."""
    nb = _tiny_notebook()
    repo = me.CourseRepository(*JDOE)
    me.apply_colab_cells(me.ensure_colab_cells(nb), "notebooks/solutions/42_tiny.ipynb", repo)
    assert _tags(nb) == [None, [me.BADGE_TAG], [me.INSTALL_TAG], None]
    me.apply_colab_cells(nb, "notebooks/solutions/42_tiny.ipynb", None)  # repository removed again
    student = me.student_edition(nb, "42_tiny.ipynb", None)
    for edition in (nb, student):
        assert _tags(edition) == [None, [me.INSTALL_TAG], None]
        markdown = "\n".join(c.source for c in edition.cells if c.cell_type == "markdown")
        assert COLAB not in markdown
        for word in MAINTAINER_WORDS:
            assert word not in markdown, word
        install = edition.cells[1].source  # the first code cell a student reads: no publishing steps either
        for word in ("[tool.course]", "pyproject.toml", "make editions", "make_editions", "publish"):
            assert word not in install, word
    assert 'COURSE_REPOSITORY, COURSE_REF = "", "main"' in student.cells[1].source
    me.apply_colab_cells(nb, "notebooks/solutions/42_tiny.ipynb", repo)  # and set once more
    assert _tags(nb) == [None, [me.BADGE_TAG], [me.INSTALL_TAG], None]
    assert _badge_target(nb).endswith("/v0.1.0/notebooks/solutions/42_tiny.ipynb")


def test_the_publishing_steps_are_in_the_instructors_guide():
    """What the notebooks no longer say is written where whoever publishes the course reads."""
    text = (ROOT / "lessons" / "instructors.md").read_text(encoding="utf-8")
    assert "## Publishing the course" in text
    section = text.split("## Publishing the course", 1)[1].split("\n## ", 1)[0]
    for phrase in ("[tool.course]", "pyproject.toml", "repository", "ref", "make editions", "make check-editions"):
        assert phrase in section, phrase


_FIND_SPEC = importlib.util.find_spec  # the real one, before any test patches it


class _Pip:
    """Stands in for subprocess.run: records the command, answers with ``returncode``."""

    def __init__(self, returncode: int = 0):
        self.calls, self.returncode, self.widget_manager = [], returncode, 0

    def __call__(self, command, *args, **kwargs):
        self.calls.append(list(command))
        return types.SimpleNamespace(returncode=self.returncode)


def _run_install_cell(monkeypatch, repo, on_colab: bool, installed: bool, returncode: int = 0) -> _Pip:
    pip = _Pip(returncode)
    monkeypatch.setattr(subprocess, "run", pip)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (_FIND_SPEC(name, *a) if installed or name != "course_lib" else None))
    if on_colab:
        colab, output = types.ModuleType("google.colab"), types.ModuleType("google.colab.output")
        output.enable_custom_widget_manager = lambda: setattr(pip, "widget_manager", pip.widget_manager + 1)
        colab.output = output
        monkeypatch.setitem(sys.modules, "google.colab", colab)
        monkeypatch.setitem(sys.modules, "google.colab.output", output)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(me.install_source(repo), "install_cell", "exec"), {})
    return pip


def test_the_install_cell_does_nothing_off_colab_or_when_installed(monkeypatch):
    for repo in (None, me.CourseRepository(*JDOE)):
        assert _run_install_cell(monkeypatch, repo, on_colab=False, installed=False).calls == []
        installed = _run_install_cell(monkeypatch, repo, on_colab=True, installed=True)
        assert installed.calls == [] and installed.widget_manager == 1


def test_the_install_cell_installs_the_configured_repository_on_colab(monkeypatch):
    pip = _run_install_cell(monkeypatch, me.CourseRepository(*JDOE), on_colab=True, installed=False)
    assert pip.calls == [[sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "git+https://github.com/jdoe/deepfill-course@v0.1.0", "tqdm", "ipycanvas>=0.13,<0.15"]]
    assert pip.widget_manager == 1, "on Colab the install cell must enable third-party widgets (ipycanvas)"
    with pytest.raises(RuntimeError, match=r"pip could not install git\+https://github.com/jdoe/deepfill-course@v0.1.0"):
        _run_install_cell(monkeypatch, me.CourseRepository(*JDOE), on_colab=True, installed=False, returncode=1)


def test_the_install_cell_stops_on_colab_when_the_repository_is_unset(monkeypatch):
    with pytest.raises(RuntimeError) as err:
        _run_install_cell(monkeypatch, None, on_colab=True, installed=False)
    message = str(err.value)
    for phrase in ("does not name its GitHub repository", "Ask whoever gave you the course",
                   "pip install -q --no-deps git+https://github.com/OWNER/NAME@BRANCH"):
        assert phrase in message, phrase
    for word in MAINTAINER_WORDS + ("make_editions",):  # the student cannot act on those
        if word != "GitHub repository":
            assert word not in message, word


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_stored_badge_and_install_cell_follow_pyproject(path):
    repository, ref = _configured_in_pyproject()
    nb = _read(path)
    install = [c for c in nb.cells if me.INSTALL_TAG in c.metadata.get("tags", [])]
    badges = [c for c in nb.cells if me.BADGE_TAG in c.metadata.get("tags", [])]
    assert len(install) == 1 and len(badges) == (1 if repository else 0), \
        "one install cell per notebook, and one badge cell when [tool.course] names a repository"
    assert install[0].cell_type == "code" and install[0].source.startswith("# NBVAL_SKIP")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0] is install[0], "the install cell must be the first code cell"
    assert f'COURSE_REPOSITORY, COURSE_REF = "{repository}", "{ref if repository else "main"}"' in install[0].source
    text = "\n".join(c.source for c in nb.cells)
    assert "ORG/REPO" not in text and "COURSE_GIT" not in text, "a hand-written placeholder is left"
    own = path.relative_to(ROOT).as_posix()
    if repository:
        assert _badge_target(nb) == f"{COLAB}{repository}/blob/{ref}/{own}"
    else:
        assert COLAB not in text, "an unpublished copy has no Colab badge"


def test_check_notices_a_badge_out_of_step_with_pyproject(monkeypatch, tmp_path):
    repository, _ = _configured_in_pyproject()
    other = "someone-else/course" if repository != "someone-else/course" else "jdoe/course"
    (tmp_path / "pyproject.toml").write_text(f'[tool.course]\nrepository = "{other}"\nref = "main"\n')
    monkeypatch.setattr(me, "PYPROJECT", tmp_path / "pyproject.toml")
    stale = me.stale_editions(["00"])
    assert any("solutions/00_setup_and_tour.ipynb: its Colab badge" in line for line in stale), stale
    assert any("notebooks/00_setup_and_tour.ipynb differs" in line for line in stale), stale


# ----------------------------------------------------------------------------- the README's course map

def test_the_readme_course_map_is_the_generated_one():
    """README.md's course map is make_editions.py's, row for row (regenerate: --course-map --write)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert me.readme_course_map(text) == me.course_map(), \
        "README.md's course map is out of step: run python scripts/make_editions.py --course-map --write"
    rows = [line for line in me.readme_course_map(text).splitlines()[2:]]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == \
        [p.name.split("_", 1)[0] for p in sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))]


@pytest.mark.parametrize("row, expected", [
    ("| Time on a CPU | about 1 minute (2 cores), no GPU needed |", "about 1 minute (2 cores)"),
    ("| Time on a CPU | 20 seconds (2 cores), no GPU needed |", "20 seconds (2 cores)"),
    ("| Time on a CPU | under a minute: on a CPU this notebook runs a **smoke mode** |", "under a minute"),
    ("|Time on a CPU|a few seconds per photo; longer without weights|",
     "a few seconds per photo; longer without weights"),
])
def test_the_course_map_takes_each_time_from_the_header(row, expected):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# 42 · Tiny\n\n| | |\n|---|---|\n{row}\n")])
    assert me.header_cpu_time(nb) == expected


def test_the_course_map_reads_the_header_and_metadata(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "# 42 · Tiny\n\n| | |\n|---|---|\n| Time on a CPU | 30 seconds (2 cores), no GPU needed |")])
    nb.metadata["course"] = {"title": "Tiny", "builds": "`g`", "gpu": False, "data": "none", "weights": "no",
                             "lesson": "lessons/42_tiny.md"}
    path = tmp_path / "42_tiny.ipynb"
    nbformat.write(nb, str(path))
    table = me.course_map([path]).splitlines()
    assert table[0].startswith("| # | Notebook | You build | Time on a CPU |")
    assert table[2] == ("| 42 | [Tiny](notebooks/42_tiny.ipynb) ([solution](notebooks/solutions/42_tiny.ipynb)) | `g` "
                        "| 30 seconds (2 cores) | no | none | no | [42_tiny.md](lessons/42_tiny.md) |")
    nb.cells[0].source = "# 42 · Tiny\n\nno table"
    nbformat.write(nb, str(path))
    with pytest.raises(me.EditionError, match="42_tiny.ipynb: its header .* no '\\| Time on a CPU"):
        me.course_map([path])


def test_the_course_map_block_is_replaced_between_its_markers(tmp_path):
    text = f"# Course\n\nintro\n\n{me.COURSE_MAP_BEGIN}\n| old | table |\n{me.COURSE_MAP_END}\n\nafter\n"
    new = me.with_course_map(text, "| new |\n|---|")
    assert new == f"# Course\n\nintro\n\n{me.COURSE_MAP_BEGIN}\n| new |\n|---|\n{me.COURSE_MAP_END}\n\nafter\n"
    assert me.readme_course_map(new) == "| new |\n|---|"
    for broken in ("no markers at all", text.replace(me.COURSE_MAP_END, ""), text + me.COURSE_MAP_BEGIN):
        with pytest.raises(me.EditionError, match="between the lines"):
            me.readme_course_map(broken)
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    assert me.write_readme_course_map(readme) is True
    assert me.readme_course_map(readme.read_text(encoding="utf-8")) == me.course_map()
    assert me.write_readme_course_map(readme) is False  # idempotent


def test_check_notices_a_hand_edited_course_map(monkeypatch, tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(text.replace("| 00 | [Setup and tour]", "| 00 | [Set-up and tour]"), encoding="utf-8")
    monkeypatch.setattr(me, "README", readme)
    assert any("README.md's course map differs" in line for line in me.stale_editions())
