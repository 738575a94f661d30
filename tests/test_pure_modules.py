"""The catalogue, the annotator and the timing maths stay pure: what each may import, checked on its source.

Every import statement counts, at module level, inside functions and under
``TYPE_CHECKING``. (``tests/test_layers.py`` checks the whole package for circles.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smtplab"


def imports_of(module: str) -> set[str]:
    """Every module that ``smtplab.<module>`` names in an import statement, relative ones made absolute."""
    source = PACKAGE / f"{module.removeprefix('smtplab.').replace('.', '/')}.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level <= 1, "these modules sit directly in the package"
            target = ".".join(part for part in ("smtplab" if node.level else "", node.module) if part)
            for alias in node.names:  # `from . import replycodes` imports the module smtplab.replycodes
                if target == "smtplab" and (PACKAGE / f"{alias.name}.py").exists():
                    found.add(f"smtplab.{alias.name}")
                else:
                    found.add(target)
    return found


def smtplab_imports(module: str) -> set[str]:
    return {m for m in imports_of(module) if m.startswith("smtplab.")}


def reachable(module: str) -> set[str]:
    """The smtplab modules ``module`` imports, directly or through one another."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for nxt in smtplab_imports(todo.pop()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_reader_finds_imports():
    assert imports_of("smtplab.annotate") >= {"smtplab.replycodes", "binascii"}
    assert "matplotlib.figure" in imports_of("smtplab.plots")


def test_the_catalogue_imports_nothing_from_the_lab():
    assert smtplab_imports("smtplab.replycodes") == set()


def test_the_annotator_reads_only_the_catalogue():
    assert smtplab_imports("smtplab.annotate") == {"smtplab.replycodes"}


def test_timing_imports_neither_matplotlib_nor_the_lab():
    assert smtplab_imports("smtplab.timing") == set()
    assert not {m for m in imports_of("smtplab.timing") if m.split(".")[0] == "matplotlib"}


@pytest.mark.parametrize("module", ["smtplab.replycodes", "smtplab.annotate", "smtplab.codes", "smtplab.timing",
                                    "smtplab.plots"])
def test_none_reaches_the_lab_or_itself(module):
    found = reachable(module)
    assert "smtplab.lab" not in found
    assert module not in found, f"{module} imports itself through a circle"


def test_importing_timing_leaves_matplotlib_unloaded():
    code = "import sys, smtplab.timing; assert 'matplotlib' not in sys.modules, sorted(sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
