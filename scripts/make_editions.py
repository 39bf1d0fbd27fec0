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

Two cells of every notebook are written by this script, in both editions, from the
``[tool.course]`` table of ``pyproject.toml`` (the one place that names the course's GitHub
repository and the branch or tag to use): a Markdown cell tagged ``colab-badge`` with the
Open-in-Colab badge of *that edition's own file*, and a code cell tagged ``colab-install``
that installs course_lib on Colab (and does nothing anywhere else). A notebook that lacks
them gets the install cell after its header cell, and the badge cell right above the install
cell. With ``repository`` unset the notebooks carry no badge cell at all (a student has nothing
to do about it: the publishing steps are in ``lessons/instructors.md``, "Publishing the
course"), and the install cell stops on Colab with a message for the student: ask whoever gave
them the course for its address, and the one pip line to run then. Neither cell says anything
about this script or ``pyproject.toml``: that is for whoever publishes, not for a student.

Usage::

    python scripts/make_editions.py              # regenerate student editions (sources only)
    python scripts/make_editions.py --execute    # ... and run both editions to store fresh outputs
    python scripts/make_editions.py --check      # exit 1 if regenerating would change a source
    python scripts/make_editions.py --course-map # print the README's course map table
    python scripts/make_editions.py --course-map --write  # ... into README.md, between its markers
    python scripts/make_editions.py 02 05        # only the notebooks whose names start so

``--check`` compares cell sources only (outputs differ between runs by design), including the
badge and install cells against ``[tool.course]``, and (without names) the README's course
map, which every regeneration rewrites: its rows come from each notebook's
``metadata.course`` and the "Time on a CPU" row of its header cell.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import posixpath
import re
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional, Sequence

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # Python 3.10: [tool.course] is read by _read_course_table_plain
    tomllib = None

import nbformat
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS_DIR = ROOT / "notebooks" / "solutions"
STUDENT_DIR = ROOT / "notebooks"
NB_VERSION = 4
PYPROJECT = ROOT / "pyproject.toml"

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: write this part yourself, then re-run the check below")'
MARKDOWN_STUB = "*Write your answer here.*"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

_LINK = re.compile(r"(\]\()([^)\s]+)(\))")  # Markdown link target: [text](target)


class EditionError(ValueError):
    """A solution notebook that cannot be turned into a student edition (named cell, reason)."""


# ----------------------------------------------------------------------------- Colab: badge and install cell

BADGE_TAG = "colab-badge"
INSTALL_TAG = "colab-install"
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
# Values that people write in templates; they mean "not set", like "".
PLACEHOLDER_REPOSITORIES = {"org/repo", "owner/name", "owner/repo", "<org>/<repo>", "<owner>/<name>",
                            "<owner>/<repo>", "your-org/your-repo", "user/repo"}
PLACEHOLDER_REFS = {"tag", "<tag>", "branch", "<branch>", "ref", "<ref>"}
_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")  # GitHub's rules
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")
WHERE = "[tool.course] in pyproject.toml"


class CourseRepository(NamedTuple):
    """Where the course lives on GitHub: ``repository`` is ``"owner/name"``, ``ref`` a branch or tag."""

    repository: str
    ref: str

    def colab_url(self, notebook: str) -> str:
        """Colab's URL for one notebook of the repository (``notebook`` relative to its root)."""
        return f"https://colab.research.google.com/github/{self.repository}/blob/{self.ref}/{notebook}"

    @property
    def pip_url(self) -> str:
        """The pip requirement that installs course_lib from the repository at ``ref``."""
        return f"git+https://github.com/{self.repository}@{self.ref}"


def _read_course_table_plain(text: str) -> dict[str, str]:
    """``key = "value"`` lines of the ``[tool.course]`` table (Python 3.10 has no tomllib)."""
    table: dict[str, str] = {}
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.split("#", 1)[0].strip() == "[tool.course]"
        elif inside and stripped and not stripped.startswith("#"):
            match = re.match(r"""^([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')\s*(#.*)?$""", stripped)
            if not match:
                raise EditionError(f"{WHERE}: cannot read {stripped!r}; write key = \"value\"")
            table[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
    return table


def read_course_table(text: str) -> dict[str, Any]:
    """The ``[tool.course]`` table of a pyproject.toml's text ({} when there is none)."""
    if tomllib is None:
        return _read_course_table_plain(text)
    return dict(tomllib.loads(text).get("tool", {}).get("course", {}))


def course_repository(table: Mapping[str, Any]) -> Optional[CourseRepository]:
    """Validate ``[tool.course]``: the course's repository, or None when it is not set.

    ``repository`` missing, empty or a template placeholder (``ORG/REPO``, ``owner/name``)
    means "not published yet" (None). A value that cannot be a GitHub repository (a URL, a
    ``.git`` suffix, spaces) or a bad ``ref`` raises :class:`EditionError` naming the fix.
    ``ref`` defaults to ``main``.
    """
    repository = table.get("repository", "")
    ref = table.get("ref", "main")
    if not isinstance(repository, str) or not isinstance(ref, str):
        raise EditionError(f"{WHERE}: repository and ref must be strings, e.g. repository = \"owner/name\"")
    repository = repository.strip()
    if not repository or repository.lower() in PLACEHOLDER_REPOSITORIES:
        return None
    if "://" in repository or repository.startswith(("github.com", "git@")):
        raise EditionError(f"{WHERE}: repository = {repository!r} is a URL; write only \"owner/name\" "
                           f"(for https://github.com/jdoe/deepfill-course: repository = \"jdoe/deepfill-course\")")
    if repository.endswith(".git"):
        raise EditionError(f"{WHERE}: repository = {repository!r}: drop the .git suffix "
                           f"(repository = \"{repository[:-4]}\")")
    if not _REPOSITORY.match(repository):
        raise EditionError(f"{WHERE}: repository = {repository!r} is not a GitHub \"owner/name\" "
                           f"(one slash; letters, digits, '-', and '.' or '_' in the name)")
    ref = ref.strip()
    if not ref or ref.lower() in PLACEHOLDER_REFS:
        raise EditionError(f"{WHERE}: ref = {ref!r}: name the branch (e.g. \"main\") or the release tag "
                           f"(e.g. \"v0.1.0\") that Colab should open and install")
    if not _REF.match(ref) or ".." in ref or ref.endswith(("/", ".lock", ".")):
        raise EditionError(f"{WHERE}: ref = {ref!r} is not a git branch or tag name")
    return CourseRepository(repository, ref)


def configured_repository(pyproject: Optional[Path] = None) -> Optional[CourseRepository]:
    """The course's repository as ``pyproject.toml`` (default: the repository's) names it, or None."""
    return course_repository(read_course_table((pyproject or PYPROJECT).read_text(encoding="utf-8")))


def badge_source(notebook: str, repository: CourseRepository) -> str:
    """The Markdown of the badge cell for ``notebook`` (its path from the repository root).

    Only written when ``repository`` is set: an unpublished copy has no badge cell (see
    :func:`apply_colab_cells`), so no student reads text meant for whoever publishes it.
    """
    note = "<!-- written by scripts/make_editions.py from [tool.course] in pyproject.toml: edit it there -->"
    edition = "solution" if notebook.startswith("notebooks/solutions/") else "student"
    return (f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({repository.colab_url(notebook)}) "
            f"opens this notebook (the {edition} edition, from `{repository.ref}` of "
            f"[{repository.repository}](https://github.com/{repository.repository})) on Google Colab; "
            "its first code cell installs course_lib there.\n" + note)


_MISSING_MESSAGE = ("This copy of the course does not name its GitHub repository, so this cell cannot install "
                    "course_lib on Colab. Ask whoever gave you the course for the repository's address "
                    "(OWNER/NAME and a branch or tag), then run in a new cell: "
                    "!pip install -q --no-deps git+https://github.com/OWNER/NAME@BRANCH")


# What the install cell pip-installs beside course_lib, also with --no-deps (Colab has their
# dependencies). ipycanvas 0.13 and 0.14 declare ipywidgets >=7.6,<9, so they work with Colab's
# ipywidgets 7.7.1 as with 8; the upper bound keeps a later release that may drop ipywidgets 7
# (which --no-deps would not notice) off Colab until `make test-colab` has tried it.
COLAB_PACKAGES = ("tqdm", "ipycanvas>=0.13,<0.15")


def install_source(repository: Optional[CourseRepository]) -> str:
    """The install cell: on Colab only, pip-installs course_lib from ``repository`` (``--no-deps``).

    Everywhere else (``google.colab`` not imported, or course_lib already importable) it does
    nothing, and nbval skips it. With ``repository`` None it raises, on Colab only, a
    ``RuntimeError`` that tells the student what to ask for and what to run; the cell's text
    speaks to students only (the publishing steps are in ``lessons/instructors.md``).
    """
    name, ref = (repository.repository, repository.ref) if repository else ("", "main")
    message = textwrap.wrap(_MISSING_MESSAGE, 84, drop_whitespace=False)  # pieces that join back exactly
    return "\n".join([
        "# NBVAL_SKIP",
        "# On Colab only: install course_lib (once per session) from the course's GitHub repository, without",
        "# touching Colab's torch, numpy, pillow or ipywidgets. On your own machine the course's set-up",
        "# (README, lesson 00) installed it, and this cell does nothing.",
        "import importlib, importlib.util, subprocess, sys",
        f"COURSE_REPOSITORY, COURSE_REF = {json.dumps(name)}, {json.dumps(ref)}  # GitHub owner/name, branch or tag",
        "if \"google.colab\" in sys.modules and importlib.util.find_spec(\"course_lib\") is None:",
        "    if not COURSE_REPOSITORY:",
        "        raise RuntimeError(",
        *[f"            {json.dumps(piece)}" for piece in message[:-1]],
        f"            {json.dumps(message[-1])})",
        "    url = f\"git+https://github.com/{COURSE_REPOSITORY}@{COURSE_REF}\"",
        "    if subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"--no-deps\", url, "
        + ", ".join(json.dumps(package) for package in COLAB_PACKAGES) + "]).returncode:",
        "        raise RuntimeError(f\"pip could not install {url} (see above): is the repository public, \"",
        "                           f\"with a branch or tag {COURSE_REF!r}?\")",
        "    importlib.invalidate_caches()",
        "if \"google.colab\" in sys.modules:  # Colab renders third-party widgets (ipycanvas) only when asked",
        "    from google.colab import output",
        "    output.enable_custom_widget_manager()",
    ])


def _tagged(nb: NotebookNode, tag: str) -> list[int]:
    return [i for i, cell in enumerate(nb.cells) if tag in cell.get("metadata", {}).get("tags", [])]


def ensure_colab_cells(nb: NotebookNode) -> NotebookNode:
    """Give ``nb`` its install cell (after the header cell) when it lacks one.

    The badge cell is added or removed by :func:`apply_colab_cells`, which also fills in
    both sources. Raises :class:`EditionError` when a tag appears on more than one cell.
    """
    for tag in (BADGE_TAG, INSTALL_TAG):
        if len(_tagged(nb, tag)) > 1:
            raise EditionError(f"cells {_tagged(nb, tag)} are all tagged {tag!r}; keep one")
    if not _tagged(nb, INSTALL_TAG):
        nb.cells.insert(1 if nb.cells else 0, nbformat.v4.new_code_cell("", metadata={"tags": [INSTALL_TAG]}))
    return nb


def apply_colab_cells(nb: NotebookNode, notebook: str, repository: Optional[CourseRepository]) -> NotebookNode:
    """Write the badge (for ``notebook``, its path from the repository root) and install cells in place.

    With ``repository`` set, a notebook with an install cell but no badge cell gets one right
    above the install cell; with ``repository`` None every badge cell is removed (an
    unpublished copy shows no badge and no text about publishing).
    """
    if repository is None:
        nb.cells = [cell for index, cell in enumerate(nb.cells) if index not in _tagged(nb, BADGE_TAG)]
    elif not _tagged(nb, BADGE_TAG) and _tagged(nb, INSTALL_TAG):
        nb.cells.insert(_tagged(nb, INSTALL_TAG)[0], nbformat.v4.new_markdown_cell("", metadata={"tags": [BADGE_TAG]}))
    for index in _tagged(nb, BADGE_TAG):
        nb.cells[index].source = badge_source(notebook, repository)
    for index in _tagged(nb, INSTALL_TAG):
        cell = nb.cells[index]
        source = install_source(repository)
        if cell.cell_type != "code":
            raise EditionError(f"cell {index} is tagged {INSTALL_TAG!r} but is {cell.cell_type}, not code")
        if cell.source != source:
            cell.source, cell.outputs, cell.execution_count = source, [], None
    return nb


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


def student_edition(nb: NotebookNode, name: str = "notebook",
                    repository: Optional[CourseRepository] = None) -> NotebookNode:
    """The student edition of one solution notebook (a new object; ``nb`` is unchanged).

    Solution regions become stubs, the outputs of changed cells are cleared (``--execute``
    fills them in again), Markdown links are re-pointed from ``notebooks/solutions/`` to
    ``notebooks/``, the badge cell opens ``notebooks/<name>`` from ``repository`` (None: not
    set, no badge cell), and the metadata gets ``course.edition = "student"``.
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
    apply_colab_cells(student, f"notebooks/{name}", repository)
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

    Also lists solution notebooks whose Colab install cell is missing, or whose badge or
    install cell differs from ``[tool.course]`` (a badge where none is set counts), student
    editions that have no solution notebook (a renamed/deleted source) and, without
    ``names``, a README course map out of step with :func:`course_map`.
    """
    stale = []
    repository = configured_repository()
    for solution in solution_notebooks(names):
        source = read(solution)
        if not _tagged(source, INSTALL_TAG):
            stale.append(f"{solution.relative_to(ROOT)} lacks its Colab install cell")
        elif sources(apply_colab_cells(copy.deepcopy(source), f"notebooks/solutions/{solution.name}",
                                       repository)) != sources(source):
            stale.append(f"{solution.relative_to(ROOT)}: its Colab badge or install cell differs from {WHERE}")
        target = student_path(solution)
        if not target.exists():
            stale.append(f"{target.relative_to(ROOT)} is missing")
            continue
        fresh = student_edition(source, solution.name, repository)
        if sources(fresh) != sources(read(target)):
            stale.append(f"{target.relative_to(ROOT)} differs from its solution edition")
    if not names:
        try:
            if readme_course_map(README.read_text(encoding="utf-8")) != course_map():
                stale.append("README.md's course map differs from the notebooks' headers and metadata")
        except EditionError as err:
            stale.append(str(err))
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


README = ROOT / "README.md"
COURSE_MAP_BEGIN = ("<!-- course-map: generated by `python scripts/make_editions.py --course-map --write`"
                    " from the notebooks' headers and metadata; edit those, not this table -->")
COURSE_MAP_END = "<!-- /course-map -->"
_TIME_ROW = re.compile(r"^\|\s*Time on a CPU\s*\|\s*(.+?)\s*\|\s*$", re.M)


def header_cpu_time(nb: NotebookNode, name: str = "notebook") -> str:
    """The "Time on a CPU" of a notebook's header cell (its first cell), in short.

    The header's table row ``| Time on a CPU | about 1 minute (2 cores), no GPU needed |``
    gives ``about 1 minute (2 cores)``: the value up to its first ": " (what follows
    explains) and without ", no GPU needed" (the course map has a GPU column). Raises
    :class:`EditionError` when the first cell has no such row.
    """
    match = _TIME_ROW.search(nb.cells[0].source if nb.cells else "")
    if not match:
        raise EditionError(f"{name}: its header (first cell) has no '| Time on a CPU | ... |' row, "
                           "which the course map reads")
    value = match.group(1).split(": ", 1)[0]
    return re.sub(r",?\s*no GPU needed$", "", value).strip()


def course_map(paths: Optional[Sequence[Path]] = None) -> str:
    """The README's course map: one row per notebook from its header's CPU time and ``metadata.course``."""
    rows = ["| # | Notebook | You build | Time on a CPU | GPU | Data | Weights | Lesson |",
            "|---|---|---|---|---|---|---|---|"]
    for path in paths or solution_notebooks():
        nb = read(path)
        meta = nb.metadata.get("course", {})
        number = path.name.split("_", 1)[0]
        lesson = meta.get("lesson", "")
        rows.append("| {n} | [{title}](notebooks/{file}) ([solution](notebooks/solutions/{file})) | {build} "
                    "| {cpu} | {gpu} | {data} | {weights} | {lesson} |".format(
                        n=number, title=meta.get("title", path.stem), file=path.name,
                        build=meta.get("builds", ""), cpu=header_cpu_time(nb, path.name),
                        gpu="optional" if meta.get("gpu") == "optional" else ("yes" if meta.get("gpu") else "no"),
                        data=meta.get("data", "none"), weights=meta.get("weights", "no"),
                        lesson=(f"[{Path(lesson).name}](lessons/{Path(lesson).name})" if lesson
                                else "in the notebook")))
    return "\n".join(rows)


def readme_course_map(text: str) -> str:
    """The course map block of the README's ``text``: the lines between the two markers."""
    if text.count(COURSE_MAP_BEGIN) != 1 or text.count(COURSE_MAP_END) != 1:
        raise EditionError(f"README.md must hold the course map once, between the lines {COURSE_MAP_BEGIN!r} "
                           f"and {COURSE_MAP_END!r}")
    return text.split(COURSE_MAP_BEGIN, 1)[1].split(COURSE_MAP_END, 1)[0].strip("\n")


def with_course_map(text: str, table: str) -> str:
    """The README's ``text`` with the block between the markers replaced by ``table``."""
    readme_course_map(text)  # both markers, once each
    head, rest = text.split(COURSE_MAP_BEGIN, 1)
    return f"{head}{COURSE_MAP_BEGIN}\n{table}\n{COURSE_MAP_END}{rest.split(COURSE_MAP_END, 1)[1]}"


def write_readme_course_map(readme: Optional[Path] = None) -> bool:
    """Regenerate the README's course map in place; True when the file changed."""
    readme = readme or README
    text = readme.read_text(encoding="utf-8")
    new = with_course_map(text, course_map())
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


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
    parser.add_argument("--write", action="store_true",
                        help="with --course-map: write it into README.md between its markers instead")
    args = parser.parse_args(argv)

    if args.write and not args.course_map:
        parser.error("--write goes with --course-map")
    if args.course_map:
        try:
            if args.write:
                changed = write_readme_course_map()
                print(f"README.md: course map {'rewritten' if changed else 'already up to date'}")
            else:
                print(course_map())
        except EditionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    try:
        repository = configured_repository()
    except EditionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if repository is None and not args.check:
        print(f"note: {WHERE} names no repository: the notebooks get no Colab badge, and their install "
              "cell stops on Colab asking the student for the repository's address (publishing: lessons/instructors.md, "
              "\"Publishing the course\")", file=sys.stderr)
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
            apply_colab_cells(ensure_colab_cells(nb), f"notebooks/solutions/{solution.name}", repository)
            student = student_edition(nb, solution.name, repository)
        except EditionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        write(nb, solution)
        write(student, student_path(solution))
        print(f"wrote {student_path(solution).relative_to(ROOT)}")
        to_run += [solution, student_path(solution)]
    try:
        if write_readme_course_map():
            print("rewrote the course map in README.md")
    except EditionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
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
