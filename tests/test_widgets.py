"""The widgets, driven as a student drives them: clicking buttons and typing lines, against a real lab."""

from __future__ import annotations

import html
import re

import pytest

from smtplab import Lab
from smtplab.widgets import Console, StepThrough, render_entries

# The module-scoped `lab` fixture (conftest.py) starts one real lab for this module and stops it at the end.


def click_until(widget: StepThrough, line: str) -> str:
    """Click "Send next command" until `line` has been sent; return the reply shown for it."""
    for _ in range(len(widget.steps) + 1):
        if widget.step >= len(widget.steps):
            break
        sending = widget.steps[widget.step]
        widget.next_button.click()
        if sending == line:
            return widget.reply.value
    raise AssertionError(f"{line!r} is not in the script {widget.steps}")


def type_line(console: Console, line: str, enter: bool = False) -> str:
    """Type `line` in the box and click Send (or press Enter); return the console's text."""
    console.command.value = line
    if enter:  # what the browser sends when Enter is pressed in a Text widget
        console.command._handle_custom_msg({"event": "submit"}, [])
    else:
        console.send_button.click()
    assert console.command.value == "", "the box is cleared after sending"
    return console.text


def since(console: Console, before: str) -> str:
    return console.text[len(before):]


# --- StepThrough ---------------------------------------------------------------


def test_step_through_a_whole_submission(lab):
    before = len(lab.inbox("bob@example.net"))
    w = StepThrough(lab, subject="Stepped through")
    assert w.step == 0
    assert not w.next_button.disabled
    assert "220 smtp.example.org" in w.reply.value, "the greeting is shown before any click"
    assert w.steps[0].startswith("EHLO ")
    assert w.steps[1:3] == ["STARTTLS", w.steps[0]], "587: STARTTLS, then EHLO again"
    assert w.steps[3].startswith("AUTH PLAIN ")
    assert w.steps[-2:] == [".", "QUIT"]

    reply = click_until(w, w.steps[0])
    assert w.step == 1
    assert "250-STARTTLS" in reply and "EHLO" in reply
    assert "Next: <code>STARTTLS</code>" in reply

    reply = click_until(w, "STARTTLS")
    assert "220 " in reply and "TLS established" in reply

    reply = click_until(w, w.steps[3])  # AUTH PLAIN ...
    assert "235 " in reply
    assert "Login succeeded" in reply or "235 2.7.0" in reply

    reply = click_until(w, "DATA")
    assert "354 " in reply

    reply = click_until(w, w.steps[w.step])  # the first header line: the server says nothing yet
    assert "No reply yet" in reply

    reply = click_until(w, ".")
    assert "250 " in reply and "queued as" in reply

    reply = click_until(w, "QUIT")
    assert "221 " in reply
    assert w.step == len(w.steps)
    assert w.next_button.disabled
    assert "Done" in w.next_button.description
    assert w.session is None, "the finished session is closed"

    log = html.unescape(w.log.value)
    for expected in ("220 smtp.example.org", "250-STARTTLS", "235 ", "354 ", "queued as", "221 ", "connection closed"):
        assert expected in log, expected

    w.next_button.click()  # clicking a disabled button does nothing (and raises nothing)
    assert w.step == len(w.steps)

    assert lab.wait_for_queue()
    inbox = lab.inbox("bob@example.net")
    assert len(inbox) == before + 1
    assert inbox[-1]["Subject"] == "Stepped through"


def test_step_through_start_over(lab):
    w = StepThrough(lab)
    w.next_button.click()
    w.next_button.click()
    assert w.step == 2
    first = w.session
    w.reset_button.click()
    assert w.step == 0
    assert w.session is not None and w.session is not first and first.closed
    assert not w.next_button.disabled
    assert "220 " in w.reply.value
    assert "STARTTLS" not in html.unescape(w.log.value).split("220 ", 1)[1], "the log starts afresh"


def test_step_through_port_465_has_no_starttls(lab):
    w = StepThrough(lab, port=465, to="carol@example.org", subject="stepped 465")
    assert "STARTTLS" not in w.steps
    assert w.steps[1].startswith("AUTH PLAIN ")
    while not w.next_button.disabled:
        w.next_button.click()
    assert "Done" in w.next_button.description
    assert "stepped 465" in [m["Subject"] for m in lab.inbox("carol@example.org")]


def test_step_through_port_25_does_not_log_in(lab):
    w = StepThrough(lab, server="mx1.example.net", port=25, subject="stepped 25")
    assert not any(step.startswith("AUTH") for step in w.steps)
    while not w.next_button.disabled:
        w.next_button.click()
    assert "221 " in w.reply.value
    assert "stepped 25" in [m["Subject"] for m in lab.inbox("bob@example.net")]


def test_step_through_shows_a_refusal_and_carries_on(lab):
    w = StepThrough(lab, login=("alice", "nope"))
    reply = click_until(w, w.steps[3])  # AUTH PLAIN with a wrong password
    assert "535 " in reply and "refused this step" in reply
    assert not w.next_button.disabled, "the student may carry on and see what happens next"


def test_step_through_dot_stuffs_body_lines(lab):
    w = StepThrough(lab, body="Line one\n.starts with a dot")
    assert "..starts with a dot" in w.steps


def test_step_through_unknown_listener_is_a_message_not_an_exception(lab):
    w = StepThrough(lab, port=26)
    assert w.next_button.disabled
    assert "no listener on port 26" in w.reply.value
    w = StepThrough(lab, server="smtp.example.com")
    assert w.next_button.disabled and "no host called" in w.reply.value


# --- Console ---------------------------------------------------------------------


def test_console_ehlo_then_mail_before_auth_then_quit_and_reconnect(lab):
    c = Console(lab)  # smtp.example.org:587
    assert c.target.value == "smtp.example.org:587"
    assert "smtp.example.org:25" in [value for _label, value in c.target.options]
    assert "220 smtp.example.org" in c.text
    assert c.connected

    before = c.text
    type_line(c, "EHLO student.lab")
    out = since(c, before)
    assert " -> EHLO student.lab" in out
    assert "250-STARTTLS" in out
    assert "extensions" in out, "the EHLO reply carries its note"

    before = c.text
    type_line(c, "MAIL FROM:<alice@example.org>")
    out = since(c, before)
    assert "530 " in out
    assert "STARTTLS must come first" in out, out

    before = c.text
    type_line(c, "QUIT", enter=True)
    out = since(c, before)
    assert "221 " in out
    assert "connection closed" in out
    assert "Click Reconnect" in out
    assert not c.connected

    before = c.text
    type_line(c, "NOOP")
    assert "Not connected" in since(c, before)

    before = c.text
    c.reconnect_button.click()
    assert c.connected
    assert "220 smtp.example.org" in since(c, before)
    type_line(c, "QUIT")


def test_console_plain_delivery_on_port_25_typed_by_hand(lab):
    before_count = len(lab.inbox("carol@example.org"))
    c = Console(lab)
    c.target.value = "smtp.example.org:25"
    assert c.connected
    assert "port 25" in c.text
    lines = [
        "EHLO student.lab",
        "MAIL FROM:<alice@example.org>",
        "RCPT TO:<carol@example.org>",
        "DATA",
        "From: alice@example.org",
        "To: carol@example.org",
        "Subject: typed by hand",
        "",
        "Hello Carol, every line of this was typed.",
        "..this line starts with a dot",
        ".",
    ]
    replies = {}
    for i, line in enumerate(lines):
        before = c.text
        type_line(c, line, enter=i % 2 == 0)
        replies[line] = since(c, before)
    assert "250 " in replies["RCPT TO:<carol@example.org>"]
    assert "354 " in replies["DATA"]
    assert "<-" not in replies["Subject: typed by hand"], "no reply inside DATA"
    assert "250 " in replies["."] and "queued as" in replies["."]
    type_line(c, "QUIT")
    assert not c.connected

    inbox = lab.inbox("carol@example.org")
    assert len(inbox) == before_count + 1
    got = inbox[-1]
    assert got["Subject"] == "typed by hand"
    assert ".this line starts with a dot" in got.get_content()


def test_console_garbage_and_html_are_shown_not_raised(lab):
    c = Console(lab, port=25)
    type_line(c, "EHLO student.lab")
    before = c.text
    type_line(c, "<script>alert(1)</script>")
    out = since(c, before)
    assert "500 " in out
    assert "<script>" not in c.output.value, "lines are escaped in the HTML"
    assert "&lt;script&gt;" in c.output.value
    before = c.text
    type_line(c, "EHLOO typo")
    assert "500 " in since(c, before)
    before = c.text
    assert c.send("two\nlines") == []
    assert "one line at a time" in since(c, before)
    type_line(c, "QUIT")


def test_console_starttls_switches_to_tls_arrows(lab):
    c = Console(lab, port=587)
    type_line(c, "EHLO student.lab")
    type_line(c, "STARTTLS")
    before = c.text
    type_line(c, "EHLO student.lab")
    out = since(c, before)
    assert "~>" in out and "<~" in out
    assert "AUTH" in out, "after STARTTLS the server offers AUTH"
    type_line(c, "QUIT")


def test_console_unknown_target_is_a_message(lab):
    c = Console(lab, server="smtp.example.com", port=25)
    assert c.target.value is None
    assert "no listener smtp.example.com:25" in c.text
    assert not c.connected
    type_line(c, "EHLO x")
    assert "Not connected" in c.text


def test_widgets_after_the_lab_stopped(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(Lab, "_current", None)  # no other lab runs: there is nothing to carry on with
    other = Lab(state_dir=tmp_path / "other", replace=False)
    try:
        step = StepThrough(other)
        console = Console(other, port=25)
        step.next_button.click()
        type_line(console, "EHLO student.lab")
    finally:
        other.stop()
    step.next_button.click()
    assert step.next_button.disabled and "lab has stopped" in step.reply.value
    assert "Run lab = Lab() again" in step.reply.value, "it says what to do, not which cell to find"
    type_line(console, "NOOP")
    assert "lab has stopped" in console.text
    console.reconnect_button.click()
    step.reset_button.click()
    assert "lab has stopped" in step.reply.value
    assert StepThrough(other).next_button.disabled
    assert "lab has stopped" in Console(other).text
    assert lab.running, "the module's lab is untouched"


@pytest.fixture
def replaced(tmp_path, monkeypatch):
    """(old, new): a notebook's lab, and the Lab() that replaced it (a re-run cell, Run All); old has stopped.

    Widgets are made on `old` before it is replaced: yield a function that makes them
    and then replaces the lab. The module's lab is left running and current afterwards.
    """
    old = Lab(state_dir=tmp_path / "old", replace=False)
    monkeypatch.setattr(Lab, "_current", old)  # as if the notebook had made it with lab = Lab()
    made = []

    def replace() -> Lab:
        made.append(Lab(state_dir=tmp_path / "new"))  # replaces (stops) old, as a re-run lab = Lab() does
        return made[-1]

    yield old, replace
    for lab in [old, *made]:
        lab.stop()


def test_widgets_carry_on_with_the_lab_that_replaced_theirs(replaced):
    from smtplab.widgets import MXExplorer, PortExplorer

    old, replace = replaced
    step, console = StepThrough(old, subject="after a re-run"), Console(old, port=25)
    mx, ports = MXExplorer(old), PortExplorer(old)
    step.next_button.click()
    type_line(console, "EHLO student.lab")
    new = replace()
    assert not old.running and Lab._current is new

    step.next_button.click()  # the first click after the re-run: a new session with the new lab
    assert step.lab is new and "now uses the notebook's current lab" in html.unescape(step.reply.value)
    assert step.step == 0 and "220 smtp.example.org" in step.reply.value and not step.next_button.disabled
    while not step.next_button.disabled:
        step.next_button.click()
    assert "Done" in step.next_button.description
    assert new.wait_for_queue() and "after a re-run" in [m["Subject"] for m in new.inbox("bob@example.net")]

    before = console.text
    type_line(console, "EHLO student.lab")
    out = since(console, before)
    assert console.lab is new and "now uses the notebook's current lab" in out
    assert "220 smtp.example.org" in out and "250-" in out, "reconnected, and the typed line was sent"
    assert console.target.value == "smtp.example.org:25"
    type_line(console, "QUIT")

    ports.try_button.click()
    assert ports.lab is new and ports.outcome == "ok", ports.text
    assert "now uses the notebook" in ports.text
    mx.lookup_button.click()
    assert mx.lab is new and "mx1.example.net" in mx.text and "Deliverable" in mx.text

    again = replace()  # and once more: each widget follows the newest lab, and says so once per switch
    step.reset_button.click()
    assert step.lab is again and "now uses" in html.unescape(step.reply.value)
    step.next_button.click()
    assert "now uses" not in html.unescape(step.reply.value)


def test_console_shows_the_newest_lines_after_20_commands(lab):
    c = Console(lab, port=25)
    type_line(c, "EHLO student.lab")
    for number in range(1, 20):
        type_line(c, f"NOOP {number}")
    box = c.output.value
    assert "display:flex;flex-direction:column-reverse" in box, "the box opens scrolled to its end, not its top"
    lines = c.text.splitlines()
    assert "-> NOOP 19" in lines[-2] and lines[-1].lstrip("<- ").startswith("250 "), lines[-2:]
    assert lines[0].startswith("==="), "the older lines are still there, above (scroll up to read them)"
    type_line(c, "QUIT")


def test_console_drops_the_oldest_lines_and_says_how_many(lab, monkeypatch):
    from smtplab.widgets import sessions

    monkeypatch.setattr(sessions, "CONSOLE_ROWS", 10)
    c = Console(lab, port=25)
    for number in range(1, 21):
        type_line(c, f"NOOP {number}")
    lines = c.text.splitlines()
    assert len(lines) == 1 + 10
    assert re.match(r"\*\*\* \d+ earlier lines are no longer shown", lines[0]), lines[0]
    assert "-> NOOP 20" in lines[-2] and "250 " in lines[-1]
    type_line(c, "QUIT")


def _text_plain(widget) -> str:
    """What the kernel sends (and a saved notebook keeps) as the text form of a displayed widget."""
    from IPython.core.formatters import DisplayFormatter

    data, _metadata = DisplayFormatter().format(widget)
    assert "application/vnd.jupyter.widget-view+json" in data, "the live widget view is still there"
    return data["text/plain"]


@pytest.mark.parametrize("name", ["StepThrough", "Console", "MXExplorer", "ChainExplorer", "PortExplorer"])
def test_a_widget_saved_without_its_state_shows_one_line(lab, name):
    import smtplab.widgets as lab_widgets

    cls = getattr(lab_widgets, name)
    widget = cls(lambda _n: None) if name == "ChainExplorer" else cls(lab)
    text = _text_plain(widget)
    assert text.startswith(f"{name}: ") and "\n" not in text and "children=" not in text, text
    assert "live notebook" in text and len(text) < 160, text
    assert repr(widget) == text
    if name == "Console":
        widget.send("QUIT")


def test_render_entries_escapes_and_has_no_timings(lab):
    with lab.session("smtp.example.org", 25) as s:
        s.send("EHLO <b>me</b>")
        rendered = render_entries(s.transcript.entries)
    assert "<b>me</b>" not in rendered and "&lt;b&gt;me&lt;/b&gt;" in rendered
    assert " ms<" not in rendered


@pytest.mark.parametrize("cls", [StepThrough, Console])
def test_widgets_have_the_documented_parts(lab, cls):
    w = cls(lab)
    names = {"next_button", "reset_button", "reply", "log", "step", "steps"} if cls is StepThrough else {
        "command", "send_button", "reconnect_button", "target", "output"}
    for name in names:
        assert hasattr(w, name), name
    if cls is Console:
        w.send("QUIT")
