"""The set-up files agree: pyproject.toml, environment.yml and Binder's copy name the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ ]", r.strip(), maxsplit=1)[0].lower() for r in requirements if r.strip()}


def conda_names(text: str) -> set[str]:
    after = text.split("dependencies:", 1)[1]
    deps = [line.strip()[2:] for line in after.splitlines() if line.strip().startswith("- ") and ":" not in line]
    return names(deps) - {"python", "pip"}


def test_binder_environment_is_the_root_environment():
    root = (ROOT / "environment.yml").read_text()
    binder = (ROOT / "binder" / "environment.yml").read_text()
    assert binder.endswith(root), "binder/environment.yml must be environment.yml with a comment on top"


def test_environment_has_every_dependency_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"]) | names(project["optional-dependencies"]["lab"]) | names(
        project["optional-dependencies"]["test"])
    assert conda_names((ROOT / "environment.yml").read_text()) == wanted


def test_the_card_dependencies_are_there():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    everything = names(project["dependencies"]) | names(sum(project["optional-dependencies"].values(), []))
    assert {"jupyterlab", "ipywidgets", "aiosmtpd", "aiosmtplib", "dnspython", "matplotlib", "nbval"} <= everything


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert "\nmake test\n" in ci
