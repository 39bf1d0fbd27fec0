"""scripts/grade.py: per-exercise verdicts from course_lib.checks, on functions and on a real run.

The verdicts are checked against what each function is by construction (a right one, the
stub, a known mistake, the reference itself); the end-to-end test executes a tiny generated
notebook in a kernel, as the script does with a student's.
"""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import nbformat
import pytest
import torch

from course_lib.checks import get_exercise

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("grade", ROOT / "scripts" / "grade.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


grade = _load_script()


def right_to_signed_range(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.to(torch.float32) / 127.5 - 1


def stub_to_signed_range(pixels: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("Exercise: write this part yourself, then re-run the check below")


def unit_range_to_signed_range(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.to(torch.float32) / 255.0  # [0, 1], the classic mistake


def test_judge_gives_each_kind_of_function_its_verdict():
    assert grade.judge("to_signed_range", right_to_signed_range) == \
        {"exercise": "to_signed_range", "status": "pass", "detail": ""}
    assert grade.judge("to_signed_range", stub_to_signed_range)["status"] == "not done"
    wrong = grade.judge("to_signed_range", unit_range_to_signed_range)
    assert wrong["status"] == "fail" and wrong["detail"].startswith("to_signed_range:") and "Hint:" in wrong["detail"]
    copied = grade.judge("to_signed_range", get_exercise("to_signed_range").reference)
    assert copied["status"] == "fail" and "reference" in copied["detail"]
    with pytest.raises(KeyError, match="no exercise named"):
        grade.judge("no_such_exercise", right_to_signed_range)


def test_which_course_notebook_a_file_is(tmp_path):
    nb = nbformat.v4.new_notebook()
    assert grade.course_notebook(tmp_path / "02_spatial_discount_jdoe.ipynb", nb) == "02_spatial_discount.ipynb"
    nb.metadata["course"] = {"generated_from": "solutions/04_softmax_attention.ipynb"}
    assert grade.course_notebook(tmp_path / "homework.ipynb", nb) == "04_softmax_attention.ipynb"
    assert grade.course_notebook(tmp_path / "homework.ipynb", nb, "08_wgan_gp") == "08_wgan_gp.ipynb"
    with pytest.raises(grade.GradingError, match="--as"):
        grade.course_notebook(tmp_path / "homework.ipynb", nbformat.v4.new_notebook())
    with pytest.raises(grade.GradingError, match="not a course notebook"):
        grade.course_notebook(tmp_path / "homework.ipynb", nb, "42_nothing")


def test_report_keeps_the_first_verdict_and_names_unchecked_exercises():
    verdicts = [{"exercise": "a", "status": "fail", "detail": "a: wrong"},
                {"exercise": "a", "status": "pass", "detail": ""}]
    rows = grade.report(["a", "b"], verdicts, ["cell 3: NameError: name 'b' is not defined"])
    assert rows[0] == {"exercise": "a", "status": "fail", "detail": "a: wrong"}
    assert rows[1]["status"] == "not checked" and "NameError" in rows[1]["detail"]


TINY_CELLS = [
    "import torch\nfrom course_lib import attention as A\nfrom course_lib.checks import check",
    # right (it forwards to the library, but it is the student's function object)
    "def valid_patches(mask, ksize, stride=1):\n    return A.valid_patches(mask, ksize, stride)\n"
    "valid_patches = check('valid_patches', valid_patches)",
    # wrong: no masking at all
    "def masked_softmax(scores, mm, softmax_scale=10.0):\n    return torch.softmax(scores * softmax_scale, dim=1)\n"
    "masked_softmax = check('masked_softmax', masked_softmax)",
    # a broken cell does not stop the run...
    "1 / 0",
    # ...and a check whose function was never defined is "not checked"
    "fuse_scores = check('fuse_scores', fuse_score)",
    "print('the notebook ran to the end')",
]


@pytest.mark.slow
def test_grading_a_tiny_notebook_end_to_end(tmp_path, monkeypatch, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in TINY_CELLS])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path = tmp_path / "04_softmax_attention_jdoe.ipynb"
    nbformat.write(nb, str(path))
    before = path.read_bytes()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    status = grade.main([str(path), "--csv", str(tmp_path / "grades.csv")])
    assert status == 1  # not everything passes
    assert path.read_bytes() == before  # the submission is not modified
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as file:
        rows = {r["exercise"]: r for r in csv.DictReader(file)}
    assert set(rows) == {"valid_patches", "masked_softmax", "masked_softmax_neg_inf", "fuse_scores"}
    assert {r["notebook"] for r in rows.values()} == {"04_softmax_attention.ipynb"}
    assert rows["valid_patches"]["status"] == "pass"
    assert rows["masked_softmax"]["status"] == "fail"
    assert rows["masked_softmax"]["detail"].startswith("masked_softmax:")
    assert rows["fuse_scores"]["status"] == "not checked"
    assert "ZeroDivisionError" in rows["fuse_scores"]["detail"] and "NameError" in rows["fuse_scores"]["detail"]
    assert rows["masked_softmax_neg_inf"]["status"] == "not checked"  # the open variant was never attempted
    out = capsys.readouterr().out
    assert "1/4 exercises pass" in out


def test_a_missing_file_cannot_be_graded(tmp_path, capsys):
    assert grade.main([str(tmp_path / "nothing.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err
