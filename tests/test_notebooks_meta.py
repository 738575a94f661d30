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
    assert not any(c.cell_type == "code" and c.source.strip() for c in after_summary), (
        f"{path.name}: no code after the summary (the lab keeps running for the widgets: see below)")


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


def test_leaves_its_lab_running_for_the_widgets(notebook):
    """After Run All, every widget must still work: the notebook must not end by stopping its lab.

    A lab stops when a newer ``Lab()`` replaces it (re-running a cell, Run All again),
    and then its widgets carry on with the newer lab (tests/test_widgets.py); the kernel
    stops the last one when it shuts down. A last cell ``lab.stop()`` would leave every
    widget above it saying "this lab has stopped" at the first click.
    """
    path, nb = notebook
    code_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert not re.search(r"\.stop\(\)", code_cells[-1].source), (
        f"{path.name}: the last code cell stops the lab, so every widget above says 'stopped' after Run All")


#: The lab's widgets (smtplab.widgets); the exercise widgets are not checked here.
LAB_WIDGETS = ("StepThrough", "Console", "MXExplorer", "ChainExplorer", "PortExplorer")


def test_saved_widgets_show_one_line_of_text(notebook):
    """Opened without a kernel (on GitHub, or before Run All), a widget output shows its text/plain: one line."""
    path, nb = notebook
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = data.get("text/plain", "")
            if "application/vnd.jupyter.widget-view+json" not in data or not text.startswith(LAB_WIDGETS):
                continue
            assert "\n" not in text.strip() and "children=" not in text, (
                f"{path.name}: a widget saved as {text[:80]!r}... in:\n{cell.source}")
            assert "live notebook" in text, f"{path.name}: {text!r} does not say how to use the widget"


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


# --- the promise, kept in a real kernel: widgets work after Run All, a re-run of the lab cell, and Run All again ---

#: Run in the notebook's kernel: click the StepThrough's and the Console's buttons, as a student would.
CLICK_WIDGETS = '''
import html
from ipywidgets.widgets.widget import _instances
from smtplab.widgets import Console, StepThrough

def latest(cls):
    return [w for w in _instances.values() if isinstance(w, cls)][-1]

widgets_to_click = {"step": WHICH_STEP, "console": WHICH_CONSOLE}
step, console = widgets_to_click["step"], widgets_to_click["console"]
step.next_button.click()
console.command.value = "NOOP"
console.send_button.click()
print(html.unescape(step.reply.value))
print(console.text.splitlines()[-1])
'''


def _run(client, nb, source: str) -> str:
    """Execute `source` as one more cell in the client's kernel; return what it printed."""
    import nbformat.v4

    cell = nbformat.v4.new_code_cell(source)
    nb.cells.append(cell)
    client.execute_cell(cell, len(nb.cells) - 1)
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, "\n".join(errors[0].traceback)
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _click(client, nb, step: str, console: str) -> str:
    return _run(client, nb, CLICK_WIDGETS.replace("WHICH_STEP", step).replace("WHICH_CONSOLE", console))


def test_widgets_keep_working_after_run_all_a_rerun_and_run_all_again():
    """Notebook 01 in a real kernel: Run All, click; re-run the lab cell, click; Run All again, click old and new."""
    from nbclient import NotebookClient

    path = next(p for p in NOTEBOOKS if p.name.startswith("01-"))
    nb = load(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    lab_cell = next(c for c in code if re.search(r"^lab = Lab\(", c.source, re.MULTILINE))
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(list(nb.cells)):  # Run All
            client.execute_cell(cell, index)
        shown = _click(client, nb, "latest(StepThrough)", "latest(Console)")
        assert "250" in shown and "no other lab is running" not in shown, f"after Run All:\n{shown}"

        _run(client, nb, "first = latest(StepThrough), latest(Console)\n" + lab_cell.source)  # re-run the lab cell
        shown = _click(client, nb, "first[0]", "first[1]")
        assert "now uses the notebook's current lab" in shown and "220 " in shown, f"after a re-run:\n{shown}"
        assert re.match(r"<-\s+250 ", shown.splitlines()[-1]), f"the console carries on with the new lab:\n{shown}"

        for cell in code:  # Run All again, in the same kernel
            client.execute_cell(cell, nb.cells.index(cell))
        shown = _click(client, nb, "latest(StepThrough)", "latest(Console)")
        assert "250" in shown and "no other lab is running" not in shown, f"after Run All again:\n{shown}"
        shown = _click(client, nb, "first[0]", "first[1]")
        assert "no other lab is running" not in shown, f"the oldest widgets too:\n{shown}"
        assert re.match(r"<-\s+250 ", shown.splitlines()[-1]), f"the oldest console too:\n{shown}"
