"""The lessons as a course: required sections, working links, and an answer for every question.

Checks, for lessons/00-10 and the bonus lesson after them (11, DeepFill v2):

* each has "## Learning outcomes" (before the first other section), "## Summary" and
  "## Self-check" whose answers sit in a collapsible ``<details>`` block, with as many
  answers as questions (3-5);
* each "## Questions for discussion" is a numbered list, and ``lessons/answers.md`` has
  exactly one heading ``### Lesson NN, question K`` per question, in order;

and that every relative link and image in lessons/*.md and README.md points at a file that
exists (external http(s) links are not fetched).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
NUMBERED = sorted(LESSONS.glob("[0-9][0-9]_*.md"))
ANSWER_HEADING = re.compile(r"^### Lesson (\d\d), question (\d+)$", flags=re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HTML_SRC = re.compile(r"<(?:img|a)\s[^>]*(?:src|href)=\"([^\"]+)\"")


def sections(text: str) -> dict[str, str]:
    """Level-2 headings -> their body (up to the next level-2 heading)."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def without_code(text: str) -> str:
    """Drop fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def question_numbers(text: str) -> list[int]:
    body = sections(text)["Questions for discussion"]
    body = body.split("\nNext: ")[0]
    assert not re.search(r"^- ", body, flags=re.M), "discussion questions must be a numbered list"
    return [int(n) for n in re.findall(r"^(\d+)\. ", body, flags=re.M)]


def test_there_are_twelve_lessons() -> None:
    assert [p.name[:2] for p in NUMBERED] == [f"{i:02d}" for i in range(12)]  # the course, then the bonus (11)


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.name)
def test_lesson_has_outcomes_summary_and_self_check(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    heads = re.findall(r"^## (.+)$", text, flags=re.M)
    assert heads and heads[0] == "Learning outcomes", f"{path.name}: Learning outcomes must come first"
    for name in ("Summary", "Self-check", "Exercises beyond the notebook", "Questions for discussion"):
        assert name in heads, f"{path.name}: no '## {name}' section"
    outcomes = sections(text)["Learning outcomes"]
    assert len(re.findall(r"^- ", outcomes, flags=re.M)) >= 3, f"{path.name}: fewer than 3 outcomes"
    summary = sections(text)["Summary"]
    assert len(re.findall(r"^- ", summary, flags=re.M)) >= 3, f"{path.name}: summary too short"

    check = sections(text)["Self-check"]
    before, sep, after = check.partition("<details>")
    assert sep and "</details>" in after and "<summary>" in after, f"{path.name}: answers not folded"
    questions = re.findall(r"^(\d+)\. ", before, flags=re.M)
    answers = re.findall(r"^(\d+)\. ", after.split("</details>")[0], flags=re.M)
    assert 3 <= len(questions) <= 5, f"{path.name}: {len(questions)} self-check questions"
    assert questions == answers == [str(i) for i in range(1, len(questions) + 1)], path.name


def test_answers_cover_every_discussion_question() -> None:
    expected = []
    for path in NUMBERED:
        numbers = question_numbers(path.read_text(encoding="utf-8"))
        assert numbers == list(range(1, len(numbers) + 1)) and numbers, f"{path.name}: {numbers}"
        expected += [(path.name[:2], n) for n in numbers]
    answers = (LESSONS / "answers.md").read_text(encoding="utf-8")
    found = [(lesson, int(n)) for lesson, n in ANSWER_HEADING.findall(answers)]
    assert found == expected, (
        f"answers.md headings {sorted(set(found) ^ set(expected))} do not match the lessons' questions")
    # every answer has a body, not just a heading
    bodies = ANSWER_HEADING.split(answers)[3::3]
    assert all(len(b.split()) >= 20 for b in bodies), "an answer is shorter than 20 words"


def test_question_counting_reads_numbered_lists() -> None:
    # the counting helper itself, on a made-up lesson
    text = "# x\n\n## Questions for discussion\n\n1. a?\n   more\n2. b?\n\nNext: y\n\n## References\n"
    assert question_numbers(text) == [1, 2]
    with pytest.raises(AssertionError):
        question_numbers("## Questions for discussion\n\n- a?\n\n## References\n")


def markdown_files() -> list[Path]:
    return sorted(LESSONS.glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_relative_links_and_images_resolve(path: Path) -> None:
    text = without_code(path.read_text(encoding="utf-8"))
    targets = LINK.findall(text) + HTML_SRC.findall(text)
    missing = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http(s), mailto, ... and anchors in the same file
        file_part = target.split("#")[0]
        if not (path.parent / file_part).exists():
            missing.append(target)
    assert not missing, f"{path.name}: broken relative links {missing}"


def test_link_finder_sees_links_and_images() -> None:
    text = without_code("see [a](x.md) and ![b](fig/y.png) but not `[c](z.md)`, <img src=\"w.png\">")
    assert LINK.findall(text) + HTML_SRC.findall(text) == ["x.md", "fig/y.png", "w.png"]
