"""The set-up without `make` (README and lesson 00) stays in step with the Makefile.

Students without `make` (most Windows laptops) follow a block of plain commands: `python -m
venv`, `python -m pip install torch==...`, `python -m pip install -e ".[dev]"`, `python -m pytest
...`, `jupyter lab`. This test reads the Makefile's `TORCH_PIN` and its `install` (the
`.installed` stamp), `test-lib` and `lab` recipes, and each document's block, and compares what
matters: the torch pin, the extras of the editable install, the test command and what JupyterLab
opens.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "lessons" / "00_setup_and_tour.md"]
OPTIONS = {"-q", "--quiet"}  # output noise, not what is installed or tested


def makefile_variables(text: str) -> dict[str, str]:
    """``NAME ?= value`` and ``NAME := value`` lines (continuations joined)."""
    text = text.replace("\\\n", " ")
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Z_]+)\s*[?:]?=\s*(.*)$", text, re.M)}


def recipe(text: str, target: str) -> list[str]:
    """The command lines of ``target``'s recipe (tab-indented lines after ``target:``)."""
    match = re.search(rf"^{re.escape(target)}\s*:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M)
    assert match, f"the Makefile has no recipe for {target!r}"
    return [line.strip() for line in match.group(1).splitlines()]


def expand(line: str, variables: dict[str, str]) -> str:
    """Replace ``$(NAME)`` by the Makefile's value, repeatedly."""
    for _ in range(5):
        line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), line)
    return line


def plain_commands(text: str, where: str) -> list[list[str]]:
    """The commands of the one fenced block that starts with ``python -m venv``, split like a shell."""
    blocks = [b for b in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, re.S) if "python -m venv" in b]
    assert len(blocks) == 1, f"{where}: expected one code block with the plain `python -m venv` set-up, found {len(blocks)}"
    lines = [line.strip() for line in blocks[0].splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def _after(tokens: list[str], *head: str) -> list[str] | None:
    """The tokens after ``head`` (e.g. ``-m pip install``) when the command starts with it, else None."""
    for i in range(len(tokens) - len(head) + 1):
        if tuple(tokens[i:i + len(head)]) == head:
            return [t for t in tokens[i + len(head):] if t not in OPTIONS]
    return None


def what_matters(commands: list[list[str]]) -> dict[str, object]:
    """From one list of commands: the torch requirement, the editable install's target, pytest's arguments, lab's."""
    found: dict[str, object] = {"torch": [], "editable": [], "pytest": [], "lab": []}
    for tokens in commands:
        pip = _after(tokens, "-m", "pip", "install")
        if pip is not None:
            if "-e" in pip:
                found["editable"].append(pip[pip.index("-e") + 1])
            found["torch"] += [t for t in pip if re.match(r"torch\b", t)]
        tests = _after(tokens, "-m", "pytest")
        if tests is not None:
            found["pytest"].append(tests)
        for i, token in enumerate(tokens[:-1]):  # jupyter lab, or .venv/bin/jupyter lab
            if token.split("/")[-1] == "jupyter" and tokens[i + 1] == "lab":
                found["lab"].append([t for t in tokens[i + 2:] if t not in OPTIONS])
    return found


def normalised(found: dict[str, object]) -> dict[str, object]:
    """``what_matters`` with each editable target read as (path, set of extras): ``.[a,b]`` = ``.[b, a]``."""
    return {**found, "editable": [extras(t) for t in found["editable"]]}


def extras(target: str) -> tuple[str, set[str]]:
    """``.[dev,docs]`` -> ('.', {'dev', 'docs'})."""
    match = re.fullmatch(r"([^\[]+)(?:\[([^\]]*)\])?", target)
    assert match, f"cannot read the editable install target {target!r}"
    return match.group(1), {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}


@pytest.fixture(scope="module")
def make() -> dict[str, object]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    variables = makefile_variables(text)
    lines = recipe(text, "$(VENV)/.installed") + recipe(text, "test-lib") + recipe(text, "lab")
    return what_matters([shlex.split(expand(line, variables)) for line in lines])


def test_the_makefile_is_read(make):
    assert make["torch"] and make["torch"][0].startswith("torch==")
    assert make["editable"] == [".[dev]"]
    assert make["pytest"] == [["tests"]]
    assert make["lab"] == [["notebooks/"]]


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_plain_commands_match_the_makefile(doc, make):
    plain = what_matters(plain_commands(doc.read_text(encoding="utf-8"), doc.name))
    assert plain["torch"] == make["torch"], f"{doc.name}: torch pin {plain['torch']} but the Makefile installs {make['torch']}"
    assert [extras(t) for t in plain["editable"]] == [extras(t) for t in make["editable"]], \
        f"{doc.name}: editable install {plain['editable']} but the Makefile's is {make['editable']}"
    assert plain["pytest"] == make["pytest"], f"{doc.name}: pytest {plain['pytest']} but `make test-lib` runs {make['pytest']}"
    assert plain["lab"] == make["lab"], f"{doc.name}: jupyter lab {plain['lab']} but `make lab` opens {make['lab']}"


def test_both_documents_give_the_same_block():
    blocks = [plain_commands(doc.read_text(encoding="utf-8"), doc.name) for doc in DOCS]
    assert blocks[0] == blocks[1], "README.md and lesson 00 give different plain set-up commands"


def test_the_plain_block_starts_with_a_venv_and_uses_python_m():
    for doc in DOCS:
        commands = plain_commands(doc.read_text(encoding="utf-8"), doc.name)
        assert commands[0][:3] == ["python", "-m", "venv"], doc.name
        for tokens in commands:
            if tokens[0] != "jupyter":
                assert tokens[:2] == ["python", "-m"], f"{doc.name}: {' '.join(tokens)} should run as `python -m ...`"


def test_the_comparison_notices_a_drifted_pin_extra_or_test_command(make):
    good = "```bash\npython -m venv .venv\npython -m pip install {torch}\npython -m pip install -e \"{target}\"\n" \
           "python -m pytest {tests} -q\njupyter lab notebooks/\n```\n"
    pin = make["torch"][0]
    same = what_matters(plain_commands(good.format(torch=pin, target=".[dev]", tests="tests"), "x"))
    assert normalised(same) == normalised(make)
    for torch_, target, tests in (("torch==2.1.0", ".[dev]", "tests"), (pin, ".", "tests"),
                                  (pin, ".[dev,docs]", "tests"), (pin, ".[dev]", "tests/test_ops.py")):
        drifted = what_matters(plain_commands(good.format(torch=torch_, target=target, tests=tests), "x"))
        assert normalised(drifted) != normalised(make), (torch_, target, tests)
