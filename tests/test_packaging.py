"""The install files agree with each other and with the README (CI runs what README says)."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].strip().lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    wanted = {CONDA_NAMES.get(n, n) for n in wanted}
    env = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    items = re.findall(r"^\s+-\s+([A-Za-z][^\n]*)$", env, flags=re.M)
    listed = {_name(m) for m in items if not m.rstrip().endswith(":")} - {"pip", "python"}
    assert wanted == listed, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme.split("\n## ")[0], "README's first lines must give the test command"
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_makefile_pins_the_cpu_torch_build():
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()
