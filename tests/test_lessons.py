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

import math
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


# ----------------------------------------------------------------------------- worked examples
# The hand-worked examples of lessons 05 and 06 state numbers; these tests recompute each one
# twice, with course_lib and with plain Python loops, and find it in the lesson's text.

def _lesson(prefix: str) -> str:
    return next(LESSONS.glob(f"{prefix}_*.md")).read_text(encoding="utf-8")


def test_lesson_05_one_dimensional_paste_by_hand_and_with_course_lib() -> None:
    torch = pytest.importorskip("torch")
    from course_lib.attention import reconstruct

    P, Q = [4.0, 8.0, 12.0, 16.0], [8.0, 16.0, 24.0, 32.0]
    full = [0.0] * 6  # pixels -1 .. 4: position x pastes on 2x - 1 .. 2x + 2
    for x, (weight, patch) in enumerate(((1.0, P), (0.5, Q))):
        for t in range(4):
            full[2 * x + t] += weight * patch[t]
    cropped = full[1:5]  # 'SAME': pixels 0 .. 3
    two_d_inner = [2 * v / 4 for v in cropped]  # two rows of pastes cover an inner row, then / 4
    assert full == [4, 8, 16, 24, 12, 16] and cropped == [8, 16, 24, 12] and two_d_inner == [4, 8, 12, 6]

    raw = torch.stack([torch.tensor(P).expand(4, 4), torch.tensor(Q).expand(4, 4)])[None, :, None]  # (1, 2, 1, 4, 4)
    attention = torch.zeros(1, 2, 2, 2)  # (1, L, h, w)
    attention[0, 0, :, 0] = 1.0
    attention[0, 1, :, 1] = 0.5
    y = reconstruct(attention, raw.contiguous(), 2, (4, 4))[0, 0]  # (4, 4)
    assert y[1].tolist() == y[2].tolist() == two_d_inner
    text = _lesson("05")
    for stated in ("P = [4, 8, 12, 16]", "Q = [8, 16, 24, 32]", "| sum | 4 | 8 | 16 | 24 | 12 | 16 |",
                   "[8, 16, 24, 12]", "[16, 32, 48, 24]", "[4, 8, 12, 6]", "(12 + 4) / 2 = 8"):
        assert stated in text, f"lesson 05 no longer states {stated!r}"


def test_lesson_06_four_by_four_example_by_hand_and_with_course_lib() -> None:
    torch = pytest.importorskip("torch")
    from course_lib import attention as A

    x = [[0.0] * 4 for _ in range(4)]
    x[1][1], x[2][3], x[3][3] = 0.4, 0.2, 0.1
    hole = [[1 if (r == 3 or c >= 2) else 0 for c in range(4)] for r in range(4)]

    def window(img, r, c):  # 3x3 'SAME' window, zero outside
        return [img[i][j] if 0 <= i < 4 and 0 <= j < 4 else 0.0 for i in (r - 1, r, r + 1) for j in (c - 1, c, c + 1)]

    valid = [(r, c) for r in range(4) for c in range(4) if not any(window(hole, r, c))]
    assert valid == [(0, 0), (1, 0)]
    query = window(x, 2, 2)
    scores = {}
    for q in valid:
        key = window(x, *q)
        norm = max(sum(v * v for v in key) ** 0.5, 1e-4)
        scores[q] = sum(a * b / norm for a, b in zip(query, key))
    assert abs(scores[(0, 0)] - 0.1) < 1e-9 and abs(scores[(1, 0)] - 0.2) < 1e-9
    denominator = sum(math.exp(10 * scores[q]) for q in valid) + 14 * math.exp(0.0)
    weights = {q: math.exp(10 * scores[q]) / denominator for q in valid}
    kept = sum(weights.values())
    neg_inf = {q: math.exp(10 * scores[q]) / sum(math.exp(10 * s) for s in scores.values()) for q in valid}
    paste_23 = weights[(1, 0)] * x[1][1] / 4  # key (1, 0)'s raw 2x2 patch has the 0.4 at its top right
    paste_33 = weights[(0, 0)] * x[1][1] / 4  # key (0, 0)'s at its bottom right

    xt = torch.tensor(x)[None, None]  # (1, 1, 4, 4)
    mask = torch.tensor(hole, dtype=torch.float32)[None, None]
    att = A.attention_weights(xt, xt, mask, rate=1, fuse=False)  # (1, 16, 4, 4)
    at_p = att[0, :, 2, 2]  # (16,)
    assert abs(float(at_p[0]) - weights[(0, 0)]) < 1e-6 and abs(float(at_p[4]) - weights[(1, 0)]) < 1e-6
    assert abs(float(at_p.sum()) - kept) < 1e-6
    only_p = torch.zeros_like(att)
    only_p[0, :, 2, 2] = at_p
    pasted = A.reconstruct(only_p, A.extract_patches(xt, 2, 1), 1, (4, 4))[0, 0]  # (4, 4)
    assert abs(float(pasted[2, 3]) - paste_23) < 1e-6 and abs(float(pasted[3, 3]) - paste_33) < 1e-6
    others = pasted.clone()
    others[2, 3] = others[3, 3] = 0.0
    assert float(others.abs().max()) == 0.0  # position (2, 2) pastes on no other pixel

    text = _lesson("06")
    stated = {"2.7183": math.e, "7.3891": math.e ** 2, "24.1073": denominator, "0.1128": weights[(0, 0)],
              "0.3065": weights[(1, 0)], "0.0415": 1 / denominator, "0.4193": kept, "0.2689": neg_inf[(0, 0)],
              "0.7311": neg_inf[(1, 0)], "0.0307": paste_23, "0.0113": paste_33}
    for shown, value in stated.items():
        assert f"{value:.4f}" == shown, (shown, value)
        assert shown in text, f"lesson 06 no longer states {shown}"
