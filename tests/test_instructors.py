"""lessons/instructors.md stays in step with the course it describes.

Every course notebook has a syllabus row, learning goals and at least two exam questions
with solutions; every registered exercise is listed; the grading command it gives exists.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from course_lib.checks import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "lessons" / "instructors.md"
NUMBERS = sorted(p.name.split("_", 1)[0] for p in (ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"lessons/instructors.md has no '## {heading}' section"
    return match.group(1)


def test_there_are_course_notebooks():
    assert len(NUMBERS) >= 10


@pytest.mark.parametrize("number", NUMBERS)
def test_every_notebook_has_goals_and_two_exam_questions_with_solutions(number):
    text = KIT.read_text(encoding="utf-8")
    assert re.search(rf"^- \*\*{number} · ", _section(text, "Learning goals per notebook"), re.M), \
        f"no learning goals for notebook {number}"
    assert re.search(rf"\b{number}\b", _section(text, "Syllabus")), f"the syllabus never schedules notebook {number}"
    exams = _section(text, "Exam-style questions with worked solutions")
    block = re.search(rf"^### {number} · .*?(?=^### |\Z)", exams, re.S | re.M)
    assert block, f"no exam questions for notebook {number}"
    questions = re.findall(rf"^\*\*{number}\.\d+\*\*", block.group(0), re.M)
    solutions = re.findall(r"^\*Solution\.\*", block.group(0), re.M)
    assert len(questions) >= 2 and len(solutions) == len(questions), \
        f"notebook {number}: {len(questions)} questions, {len(solutions)} solutions"


def test_every_exercise_is_listed_with_its_notebook():
    table = _section(KIT.read_text(encoding="utf-8"), "The exercises and their checks")
    for name, exercise in REGISTRY.items():
        number = exercise.notebook.split("_", 1)[0]
        row = re.search(rf"^\| {number} \|.*$", table, re.M)
        assert row and f"`{name}`" in row.group(0), f"exercise {name} is not in the row of notebook {number}"


def test_the_grading_command_exists():
    text = KIT.read_text(encoding="utf-8")
    assert "scripts/grade.py" in text and (ROOT / "scripts" / "grade.py").exists()
