"""The code is lint- and type-clean: ruff and mypy, configured in pyproject.toml, run as part of the tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINTED = ["smtplab", "tests", "benchmarks", "tools"]  # mypy's files are in [tool.mypy]: smtplab


def run_tool(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m module args` with this interpreter, from the project root (where pyproject.toml is)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed in this environment (it is in the test extras: pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_ruff_finds_nothing():
    run = run_tool("ruff", "check", "--no-cache", "--output-format", "concise", *LINTED, timeout=120)
    if run.returncode != 0:
        pytest.fail(f"ruff check {' '.join(LINTED)} (exit {run.returncode}):\n{run.stdout}{run.stderr}", pytrace=False)


def test_mypy_finds_nothing():
    run = run_tool("mypy", "--config-file", "pyproject.toml", timeout=600)
    if run.returncode != 0:
        pytest.fail(f"mypy (exit {run.returncode}):\n{run.stdout}{run.stderr}", pytrace=False)
