"""StepThrough and Console: an SMTP session one command at a time, or typed by hand like telnet."""

from __future__ import annotations

import base64
import email.utils
import html
import re
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from ..transcript import Entry
from .common import (
    _REPLY_END,
    CONSOLE_ROWS,
    LEGEND,
    LabWidget,
    _entry_row,
    _error_text,
    _LogHTML,
    _message_row,
    _not_running_text,
    _notice,
    _replace_options,
    _reply_code,
    _table,
    _tail_box,
    current_lab,
    render_entries,
)


class StepThrough(LabWidget, widgets.VBox):
    """A scripted SMTP submission you send one command at a time.

    Each click of ``next_button`` sends the next line of ``steps`` over a real
    session with the lab and shows, in ``reply``, the line sent, the server's
    reply lines and what each one means; ``log`` shows the whole session so
    far. ``step`` is the index of the next line to send. ``reset_button``
    starts over on a new connection. On port 465 (TLS from the start) the
    script has no STARTTLS; on a port without AUTH (25) it does not log in.

    If its lab stops because a newer ``Lab()`` replaced it (a re-run cell, Run All),
    the next click starts over with the notebook's current lab, and says so.
    """

    about = "an SMTP submission, one command per click, each reply explained"

    def __init__(self, lab: Any, server: str = "smtp.example.org", port: int = 587,
                 sender: str = "alice@example.org", to: str = "bob@example.net",
                 login: tuple[str, str] | None = ("alice", "wonderland"), *, ehlo: str = "student.lab",
                 subject: str = "One step at a time",
                 body: str = "Hello Bob,\nthis message was sent one command at a time.\nAlice") -> None:
        self.lab = lab
        self.server = server
        self.port = port
        self.sender = sender
        self.to = to
        self.login = login
        self.ehlo = ehlo
        self.subject = subject
        self.body = body
        self.session: Any = None
        self.step = 0
        self.steps: list[str] = []
        self.next_button = widgets.Button(description="Send next command", button_style="primary",
                                          icon="play", layout=widgets.Layout(width="auto"))
        self.reset_button = widgets.Button(description="Start over", icon="refresh",
                                           layout=widgets.Layout(width="auto"))
        self.title = widgets.HTML()
        self.reply = widgets.HTML()
        self._log = _LogHTML()
        self.next_button.on_click(self._on_next)
        self.reset_button.on_click(self._on_reset)
        super().__init__(children=[
            self.title,
            widgets.HBox([self.next_button, self.reset_button]),
            self.reply,
            widgets.HTML("<b>The whole session so far</b>"),
            self.log,
        ])
        self.reset()

    @property
    def log(self) -> widgets.HTML:
        """HTML: the whole session so far, every line with its arrow and note."""
        return self._log

    # --- the script -----------------------------------------------------------
    def _script(self, listener: Any) -> list[str]:
        steps = [f"EHLO {self.ehlo}"]
        if listener.tls == "starttls":
            steps += ["STARTTLS", f"EHLO {self.ehlo}"]
        if listener.auth != "none" and self.login:
            user, password = self.login
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
            steps.append(f"AUTH PLAIN {token}")
        steps += [f"MAIL FROM:<{self.sender}>", f"RCPT TO:<{self.to}>", "DATA"]
        steps += [f"From: {self.sender}", f"To: {self.to}", f"Subject: {self.subject}",
                  f"Date: {email.utils.format_datetime(email.utils.localtime())}", ""]
        steps += ["." + line if line.startswith(".") else line for line in self.body.splitlines()]
        steps += [".", "QUIT"]
        return steps

    @property
    def done(self) -> bool:
        """True once every step has been sent (or the session can go no further)."""
        return self.next_button.disabled

    # --- actions --------------------------------------------------------------
    def reset(self) -> None:
        """Close the current session (if any) and open a new one; the script starts again.

        If this widget's lab has stopped, the new session is with the notebook's current lab.
        """
        self._close_session()
        followed = self._follow_current_lab()
        self.step = 0
        self.steps = []
        self.log.value = ""
        self.title.value = (f"<b>Step through a session with {html.escape(self.server)} port {self.port}</b>"
                            f"<br><small>{LEGEND}</small>")
        if not getattr(self.lab, "running", False):
            self._stuck(_not_running_text())
            return
        try:
            endpoint = self.lab.endpoint(self.server, self.port)
            self.steps = self._script(endpoint.listener)
            self.session = self.lab.session(self.server, self.port)
        except Exception as err:  # a wrong host or port, a lab that cannot connect: say so in the widget
            self._stuck(f"Could not open a session: {_error_text(err)}")
            return
        self.next_button.disabled = False
        self.next_button.description = "Send next command"
        greeting = list(self.session.transcript.entries)
        self.reply.value = (
            _notice(followed)
            + f"<p>Connected to {html.escape(self.server)} port {self.port}. The server speaks first:</p>"
            + render_entries(greeting) + self._upcoming())
        self._refresh_log()
        if self.session.closed:
            self._stuck("The server closed the connection straight away.", keep_log=True)

    def next(self) -> list[Entry]:
        """Send the next line of the script; return the entries it produced (empty if nothing was sent).

        If the lab stopped meanwhile and a newer one runs, this starts over with it instead
        (the old session died with the old lab): the next click sends the first command.
        """
        if not getattr(self.lab, "running", False):
            if current_lab(self.lab) is not self.lab:
                self.reset()
            else:
                self._stuck(_not_running_text(), keep_log=True)
            return []
        if self.next_button.disabled or self.session is None or self.step >= len(self.steps):
            return []
        line = self.steps[self.step]
        try:
            entries = self.session.send(line)
        except Exception as err:  # the connection broke, the lab stopped meanwhile, ...
            self._stuck(f"Sending {line!r} failed: {_error_text(err)}", keep_log=True)
            return []
        self.step += 1
        self._show_step(line, entries)
        return entries

    def _show_step(self, line: str, entries: list[Entry]) -> None:
        parts = [f"<p><b>Step {self.step} of {len(self.steps)}</b></p>", render_entries(entries)]
        if not any(e.direction == "server" and e.kind == "line" for e in entries) and not self.session.closed:
            parts.append("<p><i>No reply yet: while the message is being sent, the server stays silent "
                         "until the line holding only a dot.</i></p>")
        code = _reply_code(entries)
        finished = self.step >= len(self.steps) or self.session.closed or code in _REPLY_END
        if code and code[0] in "45" and not finished:
            parts.append('<p style="color:#a15c00"><b>The server refused this step.</b> The next steps will '
                         "probably be refused too: read the note, then click Start over.</p>")
        if finished:
            self._close_session()
            self.next_button.disabled = True
            if self.step >= len(self.steps):
                self.next_button.description = "Done: the session is over"
                parts.append("<p><b>Done.</b> The session is closed. Click <i>Start over</i> to go again.</p>")
            else:
                self.next_button.description = "The connection is closed"
                parts.append('<p style="color:#a15c00"><b>The server closed the connection.</b> '
                             "Click <i>Start over</i> to open a new one.</p>")
        else:
            parts.append(self._upcoming())
        self.reply.value = "".join(parts)
        self._refresh_log()

    def _upcoming(self) -> str:
        if self.step >= len(self.steps):
            return ""
        shown = self.steps[self.step] or "(an empty line)"
        return f"<p>Next: <code>{html.escape(shown)}</code></p>"

    def _refresh_log(self) -> None:
        if self.session is not None:
            self.log.value = _tail_box(render_entries(self.session.transcript.entries))

    def _stuck(self, message: str, keep_log: bool = False) -> None:
        self.next_button.disabled = True
        self.next_button.description = "Cannot go on"
        self.reply.value = f'<p style="color:#a15c00"><b>{html.escape(message)}</b></p>'
        if not keep_log:
            self.log.value = ""

    def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            if getattr(self.lab, "running", False):
                session.close()
        except Exception:  # closing is best effort
            pass
        # keep the finished transcript visible in the log
        self.log.value = _tail_box(render_entries(session.transcript.entries))
        self._last_session = session

    @property
    def transcript(self) -> Any:
        """The transcript of the current (or last) session."""
        session = self.session or getattr(self, "_last_session", None)
        return session.transcript if session is not None else None

    def _on_next(self, _button: Any = None) -> None:
        try:
            self.next()
        except Exception as err:  # never into the notebook
            self._stuck(f"Something went wrong: {_error_text(err)}", keep_log=True)

    def _on_reset(self, _button: Any = None) -> None:
        try:
            self.reset()
        except Exception as err:
            self._stuck(f"Something went wrong: {_error_text(err)}")


class Console(LabWidget, widgets.VBox):
    """Type SMTP commands to a lab server, like telnet or ``openssl s_client``.

    ``command`` is the input box (press Enter, or click ``send_button``),
    ``target`` picks the listener ("smtp.example.org:587"), ``reconnect_button``
    opens a new session, and ``output`` shows every line with its arrow and
    note, the newest last and in view (the box opens scrolled to the bottom).
    After QUIT, or when the server drops the connection, the console says
    so and suggests Reconnect. If its lab stops because a newer ``Lab()``
    replaced it, the next line typed goes to the same listener in the
    notebook's current lab (the console reconnects, and says so).
    """

    about = "type SMTP commands to a lab server, like telnet"

    def __init__(self, lab: Any, server: str = "smtp.example.org", port: int = 587, *,
                 timeout: float = 3.0) -> None:
        self.lab = lab
        self.timeout = timeout
        self.session: Any = None
        self._rows: list[str] = []
        self._dropped = 0  # rows dropped from the top (past CONSOLE_ROWS)
        options = self._targets()
        wanted = f"{server.lower().rstrip('.')}:{port}"
        values = [value for _label, value in options]
        self.target = widgets.Dropdown(options=options, value=wanted if wanted in values else None,
                                       description="Server:", layout=widgets.Layout(width="auto"))
        self.command = widgets.Text(placeholder="Type an SMTP command, e.g. EHLO student.lab, and press Enter",
                                    layout=widgets.Layout(width="40em"))
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane",
                                          layout=widgets.Layout(width="auto"))
        self.reconnect_button = widgets.Button(description="Reconnect", icon="refresh",
                                               layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML()
        self.send_button.on_click(self._on_send)
        self.reconnect_button.on_click(self._on_reconnect)
        # Enter in the box: the Text widget's "submit" message (what the deprecated on_submit listened to).
        self.command.on_msg(self._on_command_msg)
        self.target.observe(self._on_target, names="value")
        super().__init__(children=[
            widgets.HBox([self.target, self.reconnect_button]),
            widgets.HBox([self.command, self.send_button]),
            widgets.HTML(f"<small>{LEGEND}</small>"),
            self.output,
        ])
        if wanted not in values:
            self._say(f"There is no listener {wanted} in this lab; pick one from the list.", problem=True)
        else:
            self.connect()

    def _targets(self) -> list[tuple[str, str]]:
        try:
            endpoints = list(self.lab.endpoints.values())
        except Exception:
            return []
        options = []
        for ep in endpoints:
            value = f"{ep.host.name}:{ep.listener.port}"
            tls = {"starttls": "STARTTLS", "implicit": "TLS from the start", "none": "no TLS"}.get(
                ep.listener.tls, ep.listener.tls)
            auth = {"required": "login required", "optional": "login optional", "none": "no login"}.get(
                ep.listener.auth, ep.listener.auth)
            options.append((f"{value} ({ep.listener.role}, {tls}, {auth})", value))
        return options

    # --- output ---------------------------------------------------------------
    def _say(self, text: str, problem: bool = False) -> None:
        self._rows.append(_message_row(text, problem))
        self._draw()

    def _show(self, entries: Iterable[Entry]) -> None:
        self._rows.extend(_entry_row(e) for e in entries)
        self._draw()

    def _draw(self) -> None:
        """Show the rows, newest last, in a box that opens scrolled to the bottom (see ``_tail_box``)."""
        if len(self._rows) > CONSOLE_ROWS:
            extra = len(self._rows) - CONSOLE_ROWS
            del self._rows[:extra]
            self._dropped += extra
        rows = self._rows
        if self._dropped:
            rows = [_message_row(f"{self._dropped} earlier lines are no longer shown."), *rows]
        self.output.value = _tail_box(_table(rows))

    def clear(self) -> None:
        """Empty the output (the session stays open)."""
        self._rows.clear()
        self._dropped = 0
        self._draw()

    # --- actions --------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.session is not None and not self.session.closed

    def connect(self, target: str | None = None) -> bool:
        """Open a new session with `target` ("host:port"; default: the selected one); True if it worked.

        If this console's lab has stopped, the session is with the notebook's current lab.
        """
        self._close_session()
        followed = self._follow_current_lab()
        if followed:
            self._say(followed)
        target = target or self.target.value
        if not target:
            self._say("Pick a server from the list first.", problem=True)
            return False
        if not getattr(self.lab, "running", False):
            self._say(_not_running_text(), problem=True)
            return False
        host, _, port = target.rpartition(":")
        try:
            self.session = self.lab.session(host, int(port), timeout=self.timeout)
        except Exception as err:
            self._say(f"Could not connect to {target}: {_error_text(err)}", problem=True)
            return False
        self._show(self.session.transcript.entries)
        if self.session.closed:
            self._closed_notice()
        return True

    def send(self, line: str | None = None) -> list[Entry]:
        """Send `line` (default: what is typed in the box, which is then cleared); return the new entries."""
        if line is None:
            line = self.command.value
            self.command.value = ""
        if "\n" in line or "\r" in line:
            self._say("Type one line at a time: each Send sends exactly one line.", problem=True)
            return []
        if not getattr(self.lab, "running", False) and not self._reconnect_on_current_lab():
            self._say(_not_running_text(), problem=True)
            return []
        if not self.connected:
            self._say("Not connected: click Reconnect to open a new session.", problem=True)
            return []
        try:
            entries = self.session.send(line)
        except Exception as err:  # a broken connection, a lab stopped meanwhile, ...
            self._say(f"Sending {line!r} failed: {_error_text(err)}", problem=True)
            self._close_session()
            return []
        self._show(entries)
        if self.session.closed or _reply_code(entries) in _REPLY_END:
            self._close_session()
            self._closed_notice()
        return entries

    def _reconnect_on_current_lab(self) -> bool:
        """This console's lab stopped: reconnect to the same listener in the notebook's current lab, if one runs."""
        if current_lab(self.lab) is self.lab:
            return False
        return self.connect()

    def _on_new_lab(self) -> None:
        """A newer lab may have other listeners (another scenario): offer its list, keeping the choice if it can."""
        _replace_options(self, self.target, self._targets())

    def submit(self) -> list[Entry]:
        """What pressing Enter in the box does: send what is typed."""
        return self.send()

    def _closed_notice(self) -> None:
        self._say("The connection is closed. Click Reconnect to open a new session.")

    def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        seen = len(session.transcript.entries)
        try:
            if getattr(self.lab, "running", False):
                session.close()
        except Exception:  # closing is best effort
            pass
        self._show(session.transcript.entries[seen:])  # "=== connection closed"

    @property
    def text(self) -> str:
        """The output as plain text, swaks style (`` -> EHLO x  # note``), for tests and for copying."""
        out = []
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", self.output.value):
            arrow, line, note = (html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row))
            out.append(f"{arrow}{line}  # {note}" if note else f"{arrow}{line}")
        return "\n".join(out)

    # --- callbacks: never raise into the notebook ------------------------------
    def _on_send(self, _button: Any = None) -> None:
        try:
            self.send()
        except Exception as err:
            self._say(f"Something went wrong: {_error_text(err)}", problem=True)

    def _on_command_msg(self, _widget: Any, content: dict, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self._on_send()

    def _on_reconnect(self, _button: Any = None) -> None:
        try:
            self.connect()
        except Exception as err:
            self._say(f"Something went wrong: {_error_text(err)}", problem=True)

    def _on_target(self, change: dict) -> None:
        if change.get("new") and not self._refreshing:
            try:
                self._close_session()
            except Exception:
                pass
            self._say(f"Switching to {change['new']}.")
            self._on_reconnect()


