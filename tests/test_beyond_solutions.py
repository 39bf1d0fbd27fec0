"""lessons/beyond_solutions.md answers every "Exercises beyond the notebook" item, with checked numbers.

* every numbered exercise of lessons 00-11 has a heading ``### NN.k · Label`` in the solutions
  file, with the exercise's own bold label, and the file has no solution for an exercise that
  does not exist;
* every number that ``scripts/beyond_solutions_check.py`` recomputes (keyed ``"NN.k what"``)
  appears, as written, in that exercise's solution;
* the instructor's kit links to the file, and the file's relative links resolve.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
SOLUTIONS = LESSONS / "beyond_solutions.md"
HEADING = re.compile(r"^### (\d\d)\.(\d+) · (.+)$", flags=re.M)
ITEM = re.compile(r"^(\d+)\. \*\*(.+?)\.\*\*", flags=re.M)


def lesson_exercises() -> dict[tuple[str, int], str]:
    """(lesson number, exercise number) -> the exercise's bold label, from every lesson."""
    found = {}
    for path in sorted(LESSONS.glob("[0-9][0-9]_*.md")):
        text = path.read_text(encoding="utf-8")
        match = re.search(r"^## Exercises beyond the notebook\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
        assert match, f"{path.name} has no '## Exercises beyond the notebook' section"
        items = ITEM.findall(match.group(1))
        numbers = [int(n) for n, _ in items]
        assert numbers == list(range(1, len(items) + 1)), f"{path.name}: exercises numbered {numbers}"
        found.update({(path.name[:2], int(n)): label for n, label in items})
    return found


def solution_sections() -> dict[tuple[str, int], tuple[str, str]]:
    """(lesson, exercise) -> (label, body) of each ``### NN.k · Label`` section of the solutions."""
    text = SOLUTIONS.read_text(encoding="utf-8")
    parts = HEADING.split(text)  # [before, NN, k, label, body, NN, k, label, body, ...]
    out = {}
    for i in range(1, len(parts), 4):
        key = (parts[i], int(parts[i + 1]))
        assert key not in out, f"two solutions for {key[0]}.{key[1]}"
        out[key] = (parts[i + 2].strip(), parts[i + 3].split("\n## ")[0])
    return out


def _numbers() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("beyond_solutions_check",
                                                  ROOT / "scripts" / "beyond_solutions_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.numbers(slow=False)


def test_every_exercise_has_a_solution_and_no_solution_is_orphaned():
    exercises, solutions = lesson_exercises(), solution_sections()
    assert len(exercises) >= 40
    missing = sorted(set(exercises) - set(solutions))
    extra = sorted(set(solutions) - set(exercises))
    assert not missing, f"exercises without a worked solution in lessons/beyond_solutions.md: {missing}"
    assert not extra, f"solutions for exercises that the lessons do not have: {extra}"
    for key, label in exercises.items():
        assert solutions[key][0] == label, \
            f"{key[0]}.{key[1]}: the solution is headed {solutions[key][0]!r}, the exercise is {label!r}"
        assert len(solutions[key][1].split()) >= 40, f"{key[0]}.{key[1]}: the solution is a stub"


def test_the_solutions_follow_the_lessons_order():
    keys = list(solution_sections())
    assert keys == sorted(keys)
    text = SOLUTIONS.read_text(encoding="utf-8")
    lessons = re.findall(r"^## Lesson (\d\d) · ", text, flags=re.M)
    assert lessons == sorted({k[0] for k in keys}), "one '## Lesson NN · Title' heading per lesson, in order"


def test_every_checked_number_is_quoted_in_its_exercise():
    sections = solution_sections()
    for key, value in _numbers().items():
        lesson, number = key.split(" ", 1)[0].split(".")
        body = sections[(lesson, int(number))][1].replace("\u2212", "-")  # a typeset minus is a minus
        assert re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", body), \
            f"{key}: the script computes {value}, which solution {lesson}.{number} does not quote"


def test_the_kit_links_to_the_solutions_and_their_links_resolve():
    kit = (LESSONS / "instructors.md").read_text(encoding="utf-8")
    assert "](beyond_solutions.md)" in kit, "lessons/instructors.md must link to beyond_solutions.md"
    text = re.sub(r"`[^`\n]*`", "", SOLUTIONS.read_text(encoding="utf-8"))
    links = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
    assert links, "the solutions link back to the kit"
    for target in links:
        if not re.match(r"^[a-z]+://", target):
            assert (LESSONS / target).exists(), f"broken link in beyond_solutions.md: {target}"


def test_a_missing_solution_is_reported(tmp_path, monkeypatch):
    text = SOLUTIONS.read_text(encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "SOLUTIONS", tmp_path / "s.md")
    (tmp_path / "s.md").write_text(text.replace("### 04.3 · ", "### 04.9 · "), encoding="utf-8")
    with pytest.raises(AssertionError, match=r"without a worked solution.*'04', 3"):
        test_every_exercise_has_a_solution_and_no_solution_is_orphaned()
