"""Every course notebook keeps the course's shape: goals first, exercises and a summary last, stored outputs.

nbval (run over notebooks/ by the default pytest options) checks that the stored
outputs still come out; these tests check what nbval does not: that each
notebook is written for students the way DESIGN.md asks, and is saved clean.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$", re.MULTILINE)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb files"


def load(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def headings(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(level, text) of every markdown heading, in order (not those inside ``` fences)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"```.*?```", "", cell.source, flags=re.DOTALL)
        found += [(len(m.group(1)), m.group(2)) for m in HEADING.finditer(text)]
    return found


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request: pytest.FixtureRequest) -> tuple[Path, nbformat.NotebookNode]:
    return request.param, load(request.param)


def test_opens_with_a_title_and_goals(notebook):
    path, nb = notebook
    first = nb.cells[:2]
    assert nb.cells and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("# "), (
        f"{path.name}: the first cell should be a markdown title ('# ...')")
    assert any(c.cell_type == "markdown" and re.search(r"goal|you will", c.source, re.IGNORECASE) for c in first), (
        f"{path.name}: one of the first two cells should say what the student will be able to do (goals)")
    opening = " ".join(c.source for c in first if c.cell_type == "markdown")
    assert re.search(r"\b\d+\s*(minutes|min)\b|\bhours?\b", opening, re.IGNORECASE), (
        f"{path.name}: the opening should say how long the notebook takes")


def test_ends_with_exercises_then_a_summary(notebook):
    path, nb = notebook
    top = [(level, text) for level, text in headings(nb) if level <= 2]
    names = [text.lower() for _level, text in top]
    exercises = [i for i, name in enumerate(names) if "exercise" in name]
    assert exercises, f"{path.name}: no '## Exercises' heading"
    assert names and "summary" in names[-1], (
        f"{path.name}: the last top-level heading should be the summary, not {top[-1][1]!r}" if top else "no headings")
    assert exercises[-1] < len(names) - 1, f"{path.name}: the exercises should come before the summary"
    after_summary = nb.cells[max(i for i, c in enumerate(nb.cells)
                                 if c.cell_type == "markdown" and re.search(r"^#{1,2}\s+.*summary", c.source,
                                                                          re.IGNORECASE | re.MULTILINE)):]
    assert sum(c.cell_type == "code" for c in after_summary) <= 1, (
        f"{path.name}: after the summary, at most one code cell (stopping the lab)")


def test_uses_the_exercise_checks(notebook):
    path, nb = notebook
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.search(r"\b(check|ask)\(", code), f"{path.name}: the exercises should use smtplab.exercises check()/ask()"


def test_was_run_top_to_bottom_with_outputs_stored(notebook):
    path, nb = notebook
    code_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code_cells, f"{path.name}: no code cells"
    counts = [c.execution_count for c in code_cells]
    assert all(isinstance(n, int) for n in counts), (
        f"{path.name}: some code cells were never run (execution_count is empty); execute the notebook before saving")
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: cells were not run once, top to bottom, on a fresh kernel (execution counts {counts})")
    assert sum(bool(c.outputs) for c in code_cells) >= len(code_cells) // 2, (
        f"{path.name}: most code cells should show their stored output")
    for cell in code_cells:
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name}: a stored error output in:\n{cell.source}"
            if output.output_type == "stream":
                assert output.name != "stderr", f"{path.name}: stray stderr output ({output.text[:200]!r}) in:\n{cell.source}"


def test_no_widget_state_is_stored(notebook):
    path, nb = notebook
    assert "widgets" not in nb.metadata, f"{path.name}: strip metadata.widgets (saved widget state) before committing"
    for cell in nb.cells:
        assert "widgets" not in cell.metadata, f"{path.name}: widget state stored in a cell's metadata"


def test_kernel_is_python3(notebook):
    path, nb = notebook
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec.name should be python3"


def test_stops_its_lab_at_the_end(notebook):
    path, nb = notebook
    code_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    uses_lab = any(re.search(r"\bLab\(", c.source) for c in code_cells)
    if uses_lab:
        assert re.search(r"\.stop\(\)", code_cells[-1].source), f"{path.name}: the last code cell should stop the lab"


def test_widget_cells_ignore_their_output(notebook):
    """Widget views hold random model ids: their cells must carry # NBVAL_IGNORE_OUTPUT (or SKIP)."""
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        shows_widget = any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell.outputs)
        if shows_widget:
            assert re.search(r"#\s*NBVAL_(IGNORE_OUTPUT|SKIP)", cell.source), (
                f"{path.name}: a cell showing a widget lacks # NBVAL_IGNORE_OUTPUT:\n{cell.source}")
