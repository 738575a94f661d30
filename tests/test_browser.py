"""The course as a student meets it: real JupyterLab, a real browser, a real terminal.

- A JupyterLab terminal, started as `make lab` starts JupyterLab, finds the `smtplab` command.
- For every notebook in notebooks/ (copied to a temp dir, so the repo's notebooks are not touched),
  Chromium (Debian's package, driven by Playwright; never `playwright install`) opens it, runs
  Run > Run All Cells from the menu, waits for the kernel, and checks the page: no traceback, no
  error output, no widget that failed to display or was left as its text repr. Then it clicks one
  widget button, as a student would, and checks that the widget's output changed and shows no error.
  Screenshots go to tests/.screenshots/ (or $SMTPLAB_SCREENSHOTS).

Skips, saying why, where chromium, Playwright, make or websocket-client is missing.
Run just these: .venv/bin/python -m pytest tests/test_browser.py -o addopts="-p no:cacheprovider" -v -s
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labserver import ROOT, RunningLab, allow_root, copy_notebooks, free_port, server_args, start

CHROMIUM = os.environ.get("SMTPLAB_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("SMTPLAB_SCREENSHOTS", ROOT / "tests" / ".screenshots"))
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))

RUN_ALL_TIMEOUT_S = 240  # one notebook, from Run All to an idle kernel
CLICK_TIMEOUT_S = 60

# A widget shown as its Python repr means the page had no widget manager for it.
# A widget shown as text: the old dump of its children, or the one-line text/plain a widget saves
# for viewers without a kernel (which a live page must never show).
WIDGET_REPR = re.compile(r"\b[A-Z]\w*\((children|value|options|description)=|Run this cell in a live notebook")
# A Python exception line, as a traceback ends: "KeyError: 'x'" at the start of a line. (The course prints
# SMTP replies such as "503 5.5.1 Error: send HELO first" on purpose, so a bare "Error" is not a failure.)
EXCEPTION_LINE = re.compile(r"(?m)^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception)\b(?::|$)")


# ---------------------------------------------------------------------------------------------------------
# The terminal: `make lab`'s JupyterLab, a terminal opened through the REST and websocket API
# ---------------------------------------------------------------------------------------------------------


def test_make_lab_terminal_finds_smtplab(tmp_path: Path) -> None:
    websocket = pytest.importorskip("websocket", reason="websocket-client (a jupyter_server dependency) is missing")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port, token = free_port(), secrets.token_hex(16)
    # Exactly `make lab`, with options added through LAB_ARGS; -o: don't reinstall the venv from inside a test.
    extra = " ".join(server_args(port, token))
    command = ["make", "-s", "-o", ".venv/bin/.installed", "lab", f"LAB_ARGS={extra}"]
    if not (ROOT / ".venv" / "bin" / "jupyter").exists():
        pytest.skip("make lab runs .venv/bin/jupyter, and there is no .venv here (run make lab once)")
    lab = start(command, tmp_path, ROOT / "notebooks", port, token)
    try:
        name = lab.api("POST", "/api/terminals")["name"]
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/terminals/websocket/{name}?token={token}", timeout=20)
        try:
            output = _terminal_run(ws, "command -v smtplab; smtplab --help; echo END-OF-$((6*7))", "END-OF-42")
        finally:
            ws.close()
        lab.api("DELETE", f"/api/terminals/{name}")
    finally:
        lab.stop()
    assert "not found" not in output, output
    assert "usage: smtplab" in output and "serve" in output and "explain" in output, output
    print(f"\nterminal said:\n{output}")


def _terminal_run(ws, line: str, until: str, timeout: float = 30) -> str:
    """Type `line` into a terminado terminal and collect its stdout until `until` appears (after the echo)."""
    ws.send(json.dumps(["stdin", line + "\r"]))
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(ws.recv())
        except Exception as err:  # websocket timeout: report what came so far
            raise AssertionError(f"terminal went quiet ({err!r}); so far:\n{text}") from err
        if message[0] == "stdout":
            text += message[1]
            # the typed line echoes back once; wait for the marker printed by echo (on a line of its own)
            if re.search(rf"(?m)^{re.escape(until)}\r?$", text):
                return _strip_ansi(text)
        elif message[0] == "disconnect":
            break
    raise AssertionError(f"no {until!r} from the terminal within {timeout} s:\n{_strip_ansi(text)}")


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", text)


# ---------------------------------------------------------------------------------------------------------
# The notebooks in a real browser
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set SMTPLAB_CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is missing (pip install playwright)")
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir = copy_notebooks(base / "notebooks")
    port, token = free_port(), secrets.token_hex(16)
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", str(root_dir), *allow_root(),
               *server_args(port, token), f"--LabApp.user_settings_dir={base / 'settings'}",
               f"--LabApp.workspaces_dir={base / 'workspaces'}"]
    lab = start(command, base, root_dir, port, token, cwd=root_dir)
    try:
        tracker = lab.api("GET", "/lab/api/settings/@jupyterlab/notebook-extension:tracker")
        assert tracker["settings"].get("windowingMode") == "none", tracker["settings"]
        print(f"\nJupyterLab {lab.base_url} on {root_dir}; log {lab.log_path}; screenshots in {SCREENSHOTS}")
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def browser(jupyterlab: RunningLab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = launched.new_context(viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()
            launched.close()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_in_the_browser(notebook: str, jupyterlab: RunningLab, browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = Path(notebook).stem
    page = browser.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    started = time.monotonic()
    try:
        page.goto(f"{jupyterlab.base_url}/lab/tree/{notebook}?reset&token={jupyterlab.token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
        page.evaluate("() => window.jupyterapp.started")
        page.wait_for_function(_JS_NOTEBOOK_READY, arg=notebook, timeout=90_000)
        before = page.evaluate(_JS_PROMPTS)
        assert before["cells"] > 0, f"{notebook}: no code cells in the page"

        # Run > Run All Cells, from the menu bar, as a student does.
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator('.lm-Menu-content .lm-Menu-item:has(.lm-Menu-itemLabel:text-is("Run All Cells"))').click()
        page.wait_for_function(_JS_RUN_STARTED, timeout=20_000)
        page.wait_for_function(_JS_RUN_FINISHED, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=500)
        page.wait_for_timeout(1500)  # let widget views finish rendering
        ran_s = time.monotonic() - started
        page.screenshot(path=str(SCREENSHOTS / f"{stem}-1-run-all.png"))

        prompts = page.evaluate(_JS_PROMPTS)
        problems = _page_problems(page)
        not_run = [i for i, p in enumerate(prompts["prompts"]) if not re.fullmatch(r"\[\d+\]:?", p)]
        assert not not_run, f"{notebook}: code cells {not_run} did not run (prompts {prompts['prompts']}); {problems}"
        assert not problems, f"{notebook}: after Run All:\n" + "\n---\n".join(problems)

        clicked = _click_one_widget_button(page, notebook, stem)
        print(f"\n{notebook}: {prompts['cells']} code cells ran in {ran_s:.1f} s; "
              f"{'clicked ' + repr(clicked) if clicked else 'no widget button'}; "
              f"{len(page_errors)} page errors {page_errors[:3]}")
    finally:
        try:
            page.screenshot(path=str(SCREENSHOTS / f"{stem}-3-last.png"))
        except Exception:
            pass
        page.close()
        _shut_down_kernels(jupyterlab)


def _click_one_widget_button(page, notebook: str, stem: str) -> str | None:
    """Click the first primary widget button (the explorer's own before any exercise's Check); check its output."""
    buttons = page.locator(".jp-OutputArea-output button.widget-button.mod-primary")
    if buttons.count() == 0:
        buttons = page.locator(".jp-OutputArea-output .jupyter-widgets button, .jp-OutputArea-output .widget-button")
    if buttons.count() == 0:
        return None
    button = buttons.first
    label = button.inner_text().strip() or button.get_attribute("title") or "?"
    area = button.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-OutputArea-output ')][1]")
    button.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / f"{stem}-2a-before-click.png"))
    typed = area.locator("input[type=text]")
    choices = area.locator("select")
    if label == "Send" and typed.count() == 1 and not typed.input_value():
        typed.fill("EHLO student.lab")  # the console: type a command, then Send, as the notebook suggests
    elif choices.count() > 0:
        # As a student does: pick another option (another domain, network, answer) first, so that the
        # click must produce something new (the same lookup twice can give the very same text).
        other = choices.first.evaluate(
            "s => { const o = [...s.options].find(o => !o.selected && !o.text.startsWith('(')); return o ? o.text : null; }")
        if other is not None:
            choices.first.select_option(label=other)
            page.wait_for_timeout(500)
            page.wait_for_function(_JS_KERNEL_IDLE, timeout=CLICK_TIMEOUT_S * 1000)
            page.wait_for_timeout(500)
    text_before = area.inner_text()
    button.click()
    deadline = time.monotonic() + CLICK_TIMEOUT_S
    text_after = text_before
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        text_after = area.inner_text()
        if text_after != text_before and page.evaluate(_JS_KERNEL_IDLE):
            page.wait_for_timeout(700)  # a callback may update in several steps
            text_after = area.inner_text()
            break
    area.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / f"{stem}-2b-after-click.png"))
    assert text_after != text_before, f"{notebook}: clicking {label!r} changed nothing in its output within {CLICK_TIMEOUT_S} s"
    added = text_after[len(text_before):] if text_after.startswith(text_before) else text_after
    assert "This lab has stopped" not in text_after, (
        f"{notebook}: clicking {label!r} after Run All says the lab has stopped:\n{added[-800:]}")
    for bad in ("Traceback", "Error displaying widget"):
        assert bad not in text_after, f"{notebook}: clicking {label!r}: {bad} in the widget:\n{added[-1500:]}"
    assert not EXCEPTION_LINE.search(added), f"{notebook}: clicking {label!r} shows an exception:\n{added[-1500:]}"
    problems = _page_problems(page)
    assert not problems, f"{notebook}: after clicking {label!r}:\n" + "\n---\n".join(problems)
    return label


def _page_problems(page) -> list[str]:
    """What a student would see as broken: tracebacks, stderr, widgets that failed or were left as text."""
    found = page.evaluate(
        """() => {
        const out = [];
        const text = e => (e.innerText || e.textContent || '');
        for (const e of document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
            out.push(['stderr', text(e)]);
        for (const e of document.querySelectorAll('.jp-OutputArea-output .jp-RenderedText'))
            out.push(['text', text(e)]);
        for (const e of document.querySelectorAll('.jp-OutputArea-output'))
            if (/Error displaying widget|Loading widget\\.\\.\\./.test(text(e))) out.push(['widget', text(e)]);
        for (const img of document.querySelectorAll('.jp-OutputArea-output img'))
            if (img.complete && img.naturalWidth === 0)
                out.push(['image', (img.getAttribute('src') || '(no src)').slice(0, 120) + ' alt=' + (img.alt || '')]);
        return out;
        }"""
    )
    problems = []
    for kind, text in found:
        if kind == "stderr":
            problems.append(f"error output (stderr):\n{text[:1500]}")
        elif kind == "image":
            problems.append(f"a broken image (it did not load): {text}")
        elif kind == "widget":
            problems.append(f"a widget did not display:\n{text[:300]}")
        elif "Traceback" in text or EXCEPTION_LINE.search(text):
            problems.append(f"a traceback or exception in the output:\n{text[:1500]}")
        elif WIDGET_REPR.search(text):
            problems.append(f"a widget left as its text repr (no widget manager?):\n{text[:300]}")
    return problems


def _shut_down_kernels(lab: RunningLab) -> None:
    """One notebook's kernel (and its Lab's servers) at a time: 2 cores and a few hundred MB are all CI has."""
    try:
        for session in lab.api("GET", "/api/sessions"):
            lab.api("DELETE", f"/api/sessions/{session['id']}")
    except Exception as err:  # the next test still runs; say so
        print(f"could not shut down kernels: {err!r}")


_JS_PANEL = "window.jupyterapp.shell.currentWidget"

_JS_NOTEBOOK_READY = f"""(name) => {{
    const panel = {_JS_PANEL};
    if (!panel || !panel.context || !panel.context.path.endsWith(name) || !panel.content) return false;
    const kernel = panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return panel.context.isReady && kernel && kernel.status === 'idle'
        && panel.content.widgets.length > 0 && panel.node.querySelectorAll('.jp-CodeCell').length > 0;
}}"""

_JS_PROMPTS = f"""() => {{
    const panel = {_JS_PANEL};
    const prompts = [...panel.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent.trim());
    return {{cells: prompts.length, prompts}};
}}"""

_JS_RUN_STARTED = f"""() => [...{_JS_PANEL}.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .some(e => e.textContent.includes('*'))"""

_JS_KERNEL_IDLE = f"""() => {{
    const s = {_JS_PANEL}.sessionContext; return !!(s.session && s.session.kernel && s.session.kernel.status === 'idle');
}}"""

_JS_RUN_FINISHED = f"""() => {{
    const panel = {_JS_PANEL};
    const busy = [...panel.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].some(e => e.textContent.includes('*'));
    const s = panel.sessionContext;
    return !busy && !!(s.session && s.session.kernel && s.session.kernel.status === 'idle');
}}"""
