"""ipywidgets front-ends for the lab: a step-through session, a telnet-like console, an MX
explorer, a relay-chain explorer and a port explorer.

All five are thin. StepThrough and Console open a hand-typed session with
:meth:`Lab.session`, send lines with :meth:`Session.send`, and draw the entries
the lab recorded (the notes come from the lab's catalogue, :mod:`smtplab.codes`);
they never speak SMTP themselves. MXExplorer calls :meth:`Lab.dig` and
:meth:`Lab.mx`; ChainExplorer sends one message through a relay chain and draws
its trace with :mod:`smtplab.plots`; PortExplorer calls :meth:`Lab.send` with a
network, a port and a TLS mode, and explains the outcome. None of them raises
into the notebook because of something a student did: a refused command, a
closed connection, a stopped lab, a name that is not a domain or a host that
does not exist all become a message inside the widget.

    from smtplab.widgets import StepThrough, Console, MXExplorer, ChainExplorer, PortExplorer
    StepThrough(lab)           # click "Send next command" through a whole submission
    Console(lab, port=25)      # type SMTP commands yourself, like telnet
    MXExplorer(lab)            # ask the lab DNS, and see what a sending server does with the answer
    ChainExplorer()            # send through 0..6 relays (in a lab of its own) and plot the hop times
    PortExplorer(lab)          # from home, a hotel or a campus, to port 25, 465, 587 or 2525: what happens, and why
"""

from __future__ import annotations

import base64
import email.utils
import html
import logging
import re
import time
from typing import Any, Iterable, Sequence

import ipywidgets as widgets

from .transcript import Entry

__all__ = ["StepThrough", "Console", "MXExplorer", "ChainExplorer", "PortExplorer", "render_entries", "mx_verdict"]

#: What the arrows mean, shown above every transcript a widget draws.
LEGEND = (
    "<code>-&gt;</code> the client sent, <code>&lt;-</code> the server replied, "
    "<code>~&gt;</code> / <code>&lt;~</code> the same inside TLS, <code>===</code> something that is not an SMTP line"
)

#: Most rows the console keeps on screen; older ones scroll away.
CONSOLE_ROWS = 400

_ROW_STYLE = {
    "client": "color:#0b4f9c",
    "server": "color:#1b1b1b",
    "event": "color:#777",
    "info": "color:#555;font-style:italic",
    "problem": "color:#a15c00;font-weight:bold",
}
_REPLY_END = ("221", "421")  # replies after which the server closes the connection
_logger = logging.getLogger(__name__)
_LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


class _LogHTML(widgets.HTML):
    """The HTML widget behind ``StepThrough.log``.

    ipywidgets' Widget is a traitlets LoggingConfigurable whose ``log`` trait is
    a Logger; StepThrough's ``log`` is this widget instead, so the few places in
    ipywidgets that call ``self.log.warning(...)`` are passed on to a real logger.
    """

    def __getattr__(self, name: str) -> Any:
        if name in _LOG_METHODS:
            return getattr(_logger, name)
        raise AttributeError(name)


def _row(kind: str, arrow: str, line: str, note: str) -> str:
    style = _ROW_STYLE.get(kind, "")
    return (
        f'<tr class="smtplab-{kind}" style="{style}">'
        f'<td style="white-space:pre;text-align:left;padding:0 6px 0 0">{html.escape(arrow)}</td>'
        f'<td style="white-space:pre;text-align:left;padding:0 12px 0 0">{html.escape(line)}</td>'
        f'<td style="text-align:left;color:#555;font-family:sans-serif">{html.escape(note)}</td></tr>'
    )


def _entry_row(entry: Entry) -> str:
    kind = "event" if entry.kind == "event" else entry.direction
    return _row(kind, entry.arrow(), entry.line, entry.note)


def _message_row(text: str, problem: bool = False) -> str:
    return _row("problem" if problem else "info", "!!! " if problem else "*** ", text, "")


def _table(rows: Iterable[str]) -> str:
    body = "".join(rows)
    return (
        '<table class="smtplab-lines" style="font-family:monospace;border-collapse:collapse;margin:0">'
        f"<tbody>{body}</tbody></table>"
    )


def render_entries(entries: Iterable[Entry]) -> str:
    """Transcript entries as an HTML table: arrow, line (escaped, spaces kept), note. No timings."""
    return _table(_entry_row(e) for e in entries)


def _box(inner: str) -> str:
    return f'<div style="max-height:28em;overflow:auto;border:1px solid #ddd;padding:4px 6px">{inner}</div>'


def _reply_code(entries: Sequence[Entry]) -> str | None:
    """The code of the last reply line among `entries` ("250"), or None if the server said nothing."""
    for entry in reversed(entries):
        if entry.kind == "line" and entry.direction == "server":
            code = entry.line[:3]
            return code if code.isdigit() else None
    return None


def _not_running_text() -> str:
    return "This lab has stopped (perhaps a newer Lab() replaced it). Run lab = Lab() and make a new widget with it."


def _error_text(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, (OSError, TimeoutError)) and not str(err):
        text = f"{type(err).__name__}: the connection failed"
    return text


class StepThrough(widgets.VBox):
    """A scripted SMTP submission you send one command at a time.

    Each click of ``next_button`` sends the next line of ``steps`` over a real
    session with the lab and shows, in ``reply``, the line sent, the server's
    reply lines and what each one means; ``log`` shows the whole session so
    far. ``step`` is the index of the next line to send. ``reset_button``
    starts over on a new connection. On port 465 (TLS from the start) the
    script has no STARTTLS; on a port without AUTH (25) it does not log in.
    """

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
    def log(self) -> widgets.HTML:  # type: ignore[override]
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
        """Close the current session (if any) and open a new one; the script starts again."""
        self._close_session()
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
            f"<p>Connected to {html.escape(self.server)} port {self.port}. The server speaks first:</p>"
            + render_entries(greeting) + self._upcoming())
        self._refresh_log()
        if self.session.closed:
            self._stuck("The server closed the connection straight away.", keep_log=True)

    def next(self) -> list[Entry]:
        """Send the next line of the script; return the entries it produced (empty if nothing was sent)."""
        if self.next_button.disabled or self.session is None or self.step >= len(self.steps):
            return []
        if not getattr(self.lab, "running", False):
            self._stuck(_not_running_text(), keep_log=True)
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
            self.log.value = _box(render_entries(self.session.transcript.entries))

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
        self.log.value = _box(render_entries(session.transcript.entries))
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


class Console(widgets.VBox):
    """Type SMTP commands to a lab server, like telnet or ``openssl s_client``.

    ``command`` is the input box (press Enter, or click ``send_button``),
    ``target`` picks the listener ("smtp.example.org:587"), ``reconnect_button``
    opens a new session, and ``output`` shows every line with its arrow and
    note. After QUIT, or when the server drops the connection, the console says
    so and suggests Reconnect.
    """

    def __init__(self, lab: Any, server: str = "smtp.example.org", port: int = 587, *,
                 timeout: float = 3.0) -> None:
        self.lab = lab
        self.timeout = timeout
        self.session: Any = None
        self._rows: list[str] = []
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
        if len(self._rows) > CONSOLE_ROWS:
            del self._rows[: len(self._rows) - CONSOLE_ROWS]
        self.output.value = _box(_table(self._rows))

    def clear(self) -> None:
        """Empty the output (the session stays open)."""
        self._rows.clear()
        self._draw()

    # --- actions --------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.session is not None and not self.session.closed

    def connect(self, target: str | None = None) -> bool:
        """Open a new session with `target` ("host:port"; default: the selected one); True if it worked."""
        self._close_session()
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
        if not getattr(self.lab, "running", False):
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
        if change.get("new"):
            try:
                self._close_session()
            except Exception:
                pass
            self._say(f"Switching to {change['new']}.")
            self._on_reconnect()


# --- DNS and relaying: MXExplorer and ChainExplorer ---------------------------------

#: Record types the MX explorer offers.
RECORD_TYPES = ("MX", "A", "AAAA", "TXT", "CNAME")

_VERDICT_STYLE = {
    "ok": "border-left:4px solid #009E73;background:#eef8f3",
    "temporary": "border-left:4px solid #E69F00;background:#fdf5e6",
    "permanent": "border-left:4px solid #D55E00;background:#fbeee8",
    "info": "border-left:4px solid #999;background:#f5f5f5",
}


def _verdict_box(kind: str, title: str, text: str) -> str:
    return (f'<div class="smtplab-verdict smtplab-{kind}" style="{_VERDICT_STYLE[kind]};padding:4px 8px;'
            f'margin:6px 0"><b>{html.escape(title)}</b> {text}</div>')


def mx_verdict(lookup: Any) -> tuple[str, str]:
    """(kind, HTML) saying what a sending server does with an :class:`~smtplab.mx.MXLookup`.

    kind is "ok" (deliverable), "temporary" (queue it and retry) or "permanent" (bounce).
    """
    if lookup.ok:
        order = " then ".join(f"<code>{html.escape(h.name)}</code> ({h.preference})" for h in lookup.hosts
                              if h.addresses)
        return "ok", _verdict_box("ok", "Deliverable:", f"a sending server connects to port 25 of {order}, "
                                  "in that order, until one accepts the message.")
    reply = f"<br>The reply it records: <code>{html.escape(lookup.reply)}</code>" if lookup.reply else ""
    error = html.escape(lookup.error[:1].upper() + lookup.error[1:])
    if lookup.permanent:
        return "permanent", _verdict_box(
            "permanent", "Permanent failure: bounce.",
            f"{error}. Retrying cannot help, so the sending server returns the message "
            f"to its sender at once.{reply}")
    return "temporary", _verdict_box(
        "temporary", "Temporary failure: try again later.",
        f"{error}. The answer may be different in a minute, so the sending server keeps "
        f"the message in its queue and retries.{reply}")


def _dig_note(answer: Any) -> str:
    """One plain sentence about a dig answer that is not about MX."""
    if answer.response is None:
        return "No reply at all: the DNS server did not answer in time (a temporary problem)."
    status = answer.status
    if status == "NXDOMAIN":
        return f"NXDOMAIN: the name {answer.name} does not exist at all."
    if status == "SERVFAIL":
        return "SERVFAIL: the DNS server could not answer for now (a temporary problem)."
    if status != "NOERROR":
        return f"The DNS server answered {status}."
    records = answer.records()
    if not records:
        return (f"NOERROR with an empty answer (NODATA): {answer.name} exists, but has no {answer.rdtype} "
                "record.")
    return f"{len(records)} record{'s' if len(records) != 1 else ''}: " + ", ".join(records)


class MXExplorer(widgets.VBox):
    """Ask the lab DNS about a domain, and see what a sending server would do with the answer.

    Pick a domain in ``choices`` (the lab's domains) or type any name in ``domain``,
    choose a record type in ``rdtype`` and click ``lookup_button`` (or press Enter
    in the box). ``output`` (HTML) shows the dig-style answer and, for MX, the
    lookup's steps, the hosts in the order they will be tried, and the verdict:
    deliverable, temporary failure (queue and retry) or permanent failure (bounce,
    with the reply code). ``last_dig`` and ``last_mx`` keep the last answers. The
    starting ``domain`` is looked up as soon as the widget is made.
    """

    def __init__(self, lab: Any, domain: str = "example.net", rdtype: str = "MX") -> None:
        self.lab = lab
        self.last_dig: Any = None
        self.last_mx: Any = None
        options = [("(type a name below)", "")]
        try:
            options += [(f"{d.name}: {d.about}" if d.about else d.name, d.name) for d in lab.topology.domains]
        except Exception:
            pass
        values = [v for _label, v in options]
        self.choices = widgets.Dropdown(options=options, value=domain if domain in values else "",
                                        description="Domain:", layout=widgets.Layout(width="36em"))
        self.domain = widgets.Text(value=domain, description="Name:",
                                   placeholder="any name, e.g. nowhere.example or mx1.example.net",
                                   layout=widgets.Layout(width="28em"))
        self.rdtype = widgets.Dropdown(options=list(RECORD_TYPES), value=rdtype if rdtype in RECORD_TYPES else "MX",
                                       description="Type:", layout=widgets.Layout(width="12em"))
        self.lookup_button = widgets.Button(description="Look up", button_style="primary", icon="search",
                                            layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML()
        self.choices.observe(self._on_choice, names="value")
        self.domain.on_msg(self._on_domain_msg)  # Enter in the box (the Text widget's "submit" message)
        self.lookup_button.on_click(self._on_lookup)
        super().__init__(children=[
            self.choices,
            widgets.HBox([self.domain, self.rdtype, self.lookup_button]),
            self.output,
        ])
        self._on_lookup()  # show the starting domain's answer straight away

    def lookup(self, name: str | None = None, rdtype: str | None = None) -> str:
        """Look up `name` (default: the box) and show it; returns the HTML shown."""
        name = (self.domain.value if name is None else name).strip().rstrip(".")
        rdtype = rdtype or self.rdtype.value
        if not name:
            self.output.value = _verdict_box("info", "Nothing to look up:", "type a domain name first.")
            return self.output.value
        if " " in name or ".." in name or "@" in name:
            hint = " (a domain, not an address: the part after the @)" if "@" in name else ""
            self.output.value = _verdict_box("info", "Not a domain name:", html.escape(name) + hint)
            return self.output.value
        if not getattr(self.lab, "running", False):
            self.output.value = _verdict_box("info", "The lab is not running:", html.escape(_not_running_text()))
            return self.output.value
        self.output.value = f"<p><i>Asking the lab DNS about {html.escape(name)} {html.escape(rdtype)}...</i></p>"
        parts = []
        try:
            self.last_dig = answer = self.lab.dig(name, rdtype)
            parts.append(f"<p><b>The DNS answer</b> (as <code>dig</code> shows it)</p><pre style='margin:0'>"
                         f"{html.escape(str(answer))}</pre>")
            if rdtype == "MX":
                self.last_mx = found = self.lab.mx(name)
                steps = "".join(f"<li>{html.escape(s)}</li>" for s in found.steps)
                parts.append(f"<p><b>What a sending server does with it</b></p><ol>{steps}</ol>")
                if found.hosts:
                    rows = "".join(
                        f"<tr><td>{i}</td><td>{h.preference}</td><td><code>{html.escape(h.name)}</code></td>"
                        f"<td>{html.escape(', '.join(h.addresses) or '(no address)')}</td></tr>"
                        for i, h in enumerate(found.hosts, 1))
                    parts.append("<table class='smtplab-mx-hosts'><thead><tr><th>try</th><th>preference</th>"
                                 f"<th>host</th><th>address</th></tr></thead><tbody>{rows}</tbody></table>")
                parts.append(mx_verdict(found)[1])
            else:
                self.last_mx = None
                parts.append(_verdict_box("info", f"{rdtype}:", html.escape(_dig_note(answer))))
        except Exception as err:  # a name dnspython refuses, a stopped lab, ...: say so in the widget
            parts.append(_verdict_box("info", "Could not look that up:", html.escape(_error_text(err))))
        self.output.value = "".join(parts)
        return self.output.value

    @property
    def text(self) -> str:
        """The output as plain text (tags removed), for tests and for copying."""
        return html.unescape(re.sub(r"<[^>]+>", " ", self.output.value))

    def _on_choice(self, change: dict) -> None:
        if change.get("new"):
            self.domain.value = change["new"]

    def _on_domain_msg(self, _widget: Any, content: dict, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self._on_lookup()

    def _on_lookup(self, _button: Any = None) -> None:
        try:
            self.lookup()
        except Exception as err:  # never into the notebook
            self.output.value = _verdict_box("info", "Something went wrong:", html.escape(_error_text(err)))


def _side_lab(relays: int) -> Any:
    """A chain lab that runs beside the notebook's lab without replacing it (ChainExplorer's default)."""
    from .lab import Lab
    from .topology import relay_chain

    return Lab(relay_chain(relays), replace=False)  # not "current": the notebook's next Lab() replaces its own


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


class ChainExplorer(widgets.VBox):
    """Send one message through a chain of 0 to 6 relays and see how long each hop took.

    Set ``relays`` (an IntSlider) and click ``send_button``. The widget starts its own
    lab, ``Lab(relay_chain(n))``, *beside* the notebook's lab (which keeps running and
    is not replaced), sends Alice's message to Bob, waits for it to be delivered, reads
    its trace and stops that lab again. ``output`` (HTML) shows the trace table,
    ``plot`` (an Image) the hop-by-hop times, and ``comparison`` (an Image) the
    end-to-end time of the latest run of each chain length tried so far.
    ``last_trace`` is the last run's trace and ``runs`` maps a length to its trace.

    ``factory(n)`` makes the lab for n relays (default: a side lab as described); the
    widget stops each lab it made once it has read the trace.
    """

    def __init__(self, factory: Any = None, relays: int = 2, max_relays: int = 6) -> None:
        self.factory = factory or _side_lab
        self.last_trace: Any = None
        self.last_result: Any = None
        self.runs: dict[int, Any] = {}
        self.relays = widgets.IntSlider(value=max(0, min(relays, max_relays)), min=0, max=max_relays,
                                        description="Relays:", continuous_update=False)
        self.send_button = widgets.Button(description="Send through the chain", button_style="primary",
                                          icon="paper-plane", layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML("<p>Choose a number of relays and click <i>Send through the chain</i>.</p>")
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.comparison = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.send_button.on_click(self._on_send)
        super().__init__(children=[widgets.HBox([self.relays, self.send_button]), self.output, self.plot,
                                   self.comparison])

    def send(self, relays: int | None = None) -> Any:
        """Run the chain with `relays` relays (default: the slider); return the trace (None if it failed)."""
        from .plots import chain_lengths, hop_times

        n = self.relays.value if relays is None else int(relays)
        self.output.value = f"<p><i>Starting a lab with {n} relay{'s' if n != 1 else ''} and sending...</i></p>"
        lab = None
        try:
            lab = self.factory(n)
            result = lab.send("alice@example.org", "bob@example.net", subject=f"Through {n} relays",
                              body=f"This message went through a chain of {n} relays.\n")
            if not result.ok:
                raise RuntimeError(f"smtp.example.org did not accept the message: {result.summary()}")
            delivered = lab.wait_for_queue(timeout=10)
            trace = lab.trace(result)
        except Exception as err:
            self.output.value = _verdict_box("info", "The chain did not run:", html.escape(_error_text(err)))
            return None
        finally:
            if lab is not None:
                try:
                    lab.stop()
                except Exception:
                    pass
        self.last_result, self.last_trace = result, trace
        self.runs[n] = trace
        total = trace.total or 0.0
        path = " &rarr; ".join(f"<code>{html.escape(h.host)}</code>" for h in trace.hops)
        note = "" if delivered else "<p style='color:#a15c00'><b>Not delivered within 10 s.</b></p>"
        self.output.value = (f"<p><b>{n} relay{'s' if n != 1 else ''}: {len(trace.hops)} hops</b>, "
                             f"{total * 1000:.1f} ms from the first acceptance to delivery.<br>{path}</p>"
                             + note + trace.table_html())
        self.plot.value = _png(hop_times(trace))
        if len(self.runs) >= 2:
            lengths = sorted(self.runs)
            self.comparison.value = _png(chain_lengths(lengths, [self.runs[k] for k in lengths]))
        return trace

    def _on_send(self, _button: Any = None) -> None:
        self.send_button.disabled = True
        try:
            self.send()
        except Exception as err:  # never into the notebook
            self.output.value = _verdict_box("info", "Something went wrong:", html.escape(_error_text(err)))
        finally:
            self.send_button.disabled = False


# --- ports, networks and TLS modes: PortExplorer -------------------------------------

#: The ports the explorer offers: a short label, and what each one is for.
PORT_ROLES = {
    25: ("relay between servers", "the relay port (RFC 5321), where mail servers hand mail to each other, "
         "without a login"),
    465: ("submission, implicit TLS", "the submission port with implicit TLS (RFC 8314), where mail programs hand "
          "new mail to their own server, encrypted from the first byte"),
    587: ("submission, STARTTLS", "the submission port (RFC 6409), where mail programs hand new mail to their own "
          "server, with a login"),
    2525: ("unofficial spare submission", "not an official port, but many providers accept submission there too, "
           "for networks that block 587"),
}

#: The TLS modes the explorer offers ("auto" is whatever the port expects).
TLS_MODES = (
    ("what the port expects", "auto"),
    ("STARTTLS, required", "starttls"),
    ("implicit TLS (from the first byte)", "implicit"),
    ("none (plain text)", "none"),
    ("opportunistic (STARTTLS only if offered)", "opportunistic"),
)

#: A blocked port, as a client meets it.
_BLOCK_HOW = {
    "timeout": ("its firewall silently drops the packets, so nothing ever answers: the client waits for its whole "
                "timeout ({timeout:g} s here; real mail programs often wait a minute) and gives up"),
    "refuse": "its firewall answers with a reset, so the client hears \"connection refused\" at once",
}


def _port_list(ports: Iterable[int], conjunction: str = "or") -> str:
    ports = list(ports)
    if len(ports) <= 1:
        return "".join(str(p) for p in ports)
    return ", ".join(str(p) for p in ports[:-1]) + f" {conjunction} {ports[-1]}"


class PortExplorer(widgets.VBox):
    """Pick where you send from, which port and which TLS mode; click; read what happened and why.

    ``network`` (a Dropdown of ``lab.places()``), ``port`` (25, 465, 587, 2525) and
    ``tls`` ("auto" = what the port expects, "starttls", "implicit", "none",
    "opportunistic") choose the attempt; ``try_button`` sends one message from
    ``sender`` to ``to`` through ``server`` with :meth:`Lab.send` (a short
    ``timeout``, 1 s, so a blocked port answers fast). ``output`` (HTML) shows the
    outcome, a plain-English explanation and the client's transcript.
    ``last_result`` is the :class:`~smtplab.result.SendResult`, ``outcome`` one of
    "ok", "timeout", "refused" (connection refused), "server" (the server refused
    something), "tls" (the two sides disagreed about TLS), "stopped" (a client that
    requires TLS gave up: no STARTTLS was offered) or "error", and ``explanation``
    the explanation as plain text. It never raises into the notebook.
    """

    def __init__(self, lab: Any, *, network: str = "student", port: int = 587, tls: str = "auto",
                 sender: str = "alice@example.org", to: str = "carol@example.org",
                 server: str = "smtp.example.org", timeout: float = 1.0) -> None:
        self.lab = lab
        self.sender = sender
        self.to = to
        self.server = server
        self.timeout = timeout
        self.last_result: Any = None
        self.outcome = ""
        self.explanation = ""
        self.elapsed = 0.0
        try:
            places = dict(lab.places())
        except Exception:
            places = {}
        self._places = places
        net_options = [(f"{name}: {p.about}" if getattr(p, "about", "") else name, name) for name, p in places.items()]
        if not net_options:
            net_options = [("student", "student")]
        values = [v for _label, v in net_options]
        self.network = widgets.Dropdown(options=net_options, value=network if network in values else values[0],
                                        description="From:", layout=widgets.Layout(width="44em"))
        port_options = [(f"{p}: {label}", p) for p, (label, _role) in PORT_ROLES.items()]
        self.port = widgets.Dropdown(options=port_options, value=port if port in PORT_ROLES else 587,
                                     description="Port:", layout=widgets.Layout(width="28em"))
        modes = [v for _label, v in TLS_MODES]
        self.tls = widgets.Dropdown(options=list(TLS_MODES), value=tls if tls in modes else "auto",
                                    description="TLS:", layout=widgets.Layout(width="28em"))
        self.try_button = widgets.Button(description="Try it", button_style="primary", icon="paper-plane",
                                         layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML(
            f"<p>Choose where you are, a port and a TLS mode, then click <i>Try it</i>: the lab sends one message "
            f"from {html.escape(sender)} to {html.escape(to)} through {html.escape(server)}.</p>")
        self.try_button.on_click(self._on_try)
        super().__init__(children=[self.network, widgets.HBox([self.port, self.tls, self.try_button]), self.output])

    # --- trying ----------------------------------------------------------------
    def try_it(self) -> Any:
        """Send with the chosen settings, show what happened; returns the SendResult (None if none was made)."""
        place, port, mode = self.network.value, int(self.port.value), self.tls.value
        self.last_result, self.outcome, self.explanation = None, "", ""
        if not getattr(self.lab, "running", False):
            self.outcome, self.explanation = "error", _not_running_text()
            self.output.value = _verdict_box("info", "The lab is not running:", html.escape(self.explanation))
            return None
        self.output.value = (f"<p><i>Sending from {html.escape(place)} to {html.escape(self.server)} port {port}"
                             "...</i></p>")
        started = time.perf_counter()
        try:
            result = self.lab.send(self.sender, self.to, subject=f"Through port {port}",
                                   body=f"Sent from the {place} network to port {port}.\n", server=self.server,
                                   port=port, tls=None if mode == "auto" else mode, network=place,
                                   timeout=self.timeout)
        except Exception as err:  # no such listener, a stopped lab, ...: say so in the widget
            self.outcome, self.explanation = "error", f"The lab could not try this: {_error_text(err)}"
            self.output.value = _verdict_box("info", "Could not try it:", html.escape(self.explanation))
            return None
        self.elapsed = time.perf_counter() - started
        self.last_result = result
        self.outcome = self._classify(result)
        self.explanation = self._explain(result, place, port, mode)
        self.output.value = self._render(result, place, port)
        return result

    def _expected_tls(self, port: int) -> str:
        try:
            return self.lab.endpoint(self.server, port).listener.tls
        except Exception:
            return {25: "starttls", 465: "implicit"}.get(port, "starttls")

    @staticmethod
    def _classify(result: Any) -> str:
        error = result.error or ""
        if result.ok:
            return "ok"
        if error.startswith("Could not connect"):
            return "timeout" if "timed out" in error else "refused" if "refused" in error else "error"
        if "not supported by server" in error:
            return "stopped"
        if result.error_code or result.refused:
            return "server"
        if "SSL" in error or "TimeoutError" in error or "Timed out" in error:
            return "tls"
        return "error"

    def _explain(self, result: Any, place_name: str, port: int, mode: str) -> str:
        """Plain English: why it worked or failed, and what to try instead."""
        place = self._places.get(place_name)
        expected = self._expected_tls(port)
        mode = expected if mode == "auto" else mode
        role = PORT_ROLES.get(port, ("", ""))[1]
        parts = [f"Port {port} is {role}." if role else ""]
        outcome = self.outcome
        stripped = (place is not None and getattr(place, "attack", "") == "strip-starttls"
                    and expected == "starttls" and mode in ("starttls", "opportunistic"))
        if outcome in ("timeout", "refused") and place is not None and not place.lets_out(port):
            open_ports = [p for p in (587, 465, 2525) if place.lets_out(p)]
            how = _BLOCK_HOW.get(place.how, "").format(timeout=self.timeout)
            if place.allowed is not None:
                parts.append(f"The {place_name} network only lets ports {_port_list(sorted(place.allowed), 'and')} "
                             f"out, not {port}: {how}.")
            else:
                parts.append(f"The {place_name} network blocks port {port}: {how}.")
            if open_ports:
                parts.append(f"Try {_port_list(open_ports)}: a mail program submits there anyway."
                             if port == 25 else f"Try {_port_list(open_ports)}.")
            if port == 25:
                parts.append("Networks block port 25 so that infected computers cannot send spam straight to other "
                             "people's mail servers; mail programs submit on 587 or 465, with a login.")
            return " ".join(p for p in parts if p)
        if outcome == "timeout":
            parts.append("Nothing answered at all before the timeout: a firewall may be dropping the packets, "
                         "or the server is down.")
        elif outcome == "refused":
            parts.append("The connection was refused at once: nothing listens there, or a firewall rejects the port.")
        elif outcome == "tls" or (outcome != "ok" and mode != expected and "implicit" in (mode, expected)):
            if expected == "implicit":
                parts.append(f"{port} is TLS from the first byte: the server waits for the client's TLS hello, "
                             "while a client that expects plain text waits for the server's 220 greeting. "
                             "Nobody speaks, and the client gives up. STARTTLS on 465 makes no sense: choose "
                             "implicit TLS there (or use 587 with STARTTLS).")
            else:
                parts.append(f"{port} starts in plain text: the server's first line is a readable 220 greeting, "
                             "which a client speaking TLS from the first byte cannot understand (\"wrong version "
                             "number\"). STARTTLS is how this port gets encrypted; implicit TLS belongs on 465.")
        elif outcome == "stopped":
            parts.append("The client stopped by itself: it requires TLS, but the EHLO reply it received did not "
                         "offer STARTTLS. Either the server has no TLS, or someone on the path deleted the offer "
                         "(STARTTLS stripping). Stopping is the safe choice: no password was sent.")
        elif outcome == "server":
            reply = result.last_reply or next(iter(result.refused.values()), "") or result.error or ""
            parts.append(f"The connection worked, but the server refused: {reply.strip()}.")
            if stripped and mode == "opportunistic":
                parts.append("The attacker on this network deleted STARTTLS from the EHLO reply, so this "
                             "opportunistic client carried on in plain text. This server takes nothing but "
                             "STARTTLS before TLS and offers no AUTH there, so no password was sent.")
            elif "STARTTLS" in reply and mode in ("none", "opportunistic"):
                parts.append(f"Port {port} starts in plain text, and this server insists on STARTTLS before "
                             "anything else: without TLS it does not even offer AUTH, so no password is ever "
                             "sent in clear.")
            elif reply.startswith("554") and "5.7.1" in reply:
                parts.append("Port 25 takes mail only for the server's own domains when nobody logs in: "
                             "anything else would make it an open relay. Mail programs submit on 587 or 465.")
            elif "5.4.5" in reply:
                parts.append("A sending limit: the provider caps how many messages one user may send.")
        elif outcome == "ok":
            if port == 465:
                parts.append("No STARTTLS, and not one readable byte on the wire. "
                             "RFC 8314 (2018) recommends this for submission: \"465 is obsolete\" is out of date.")
            elif not result.tls:
                logged_in = result.transcript is not None and any(
                    line.startswith("AUTH") for line in result.transcript.commands())
                parts.append("Delivered in plain text all the way: anyone on the path could read (or change) "
                             f"every line{', the login included' if logged_in else ''}.")
                if port == 25:
                    parts.append("Port 25 offers STARTTLS but cannot insist, because servers must still reach "
                                 "servers that have no TLS.")
            elif port in (587, 2525):
                parts.append(f"{port} starts in plain text: STARTTLS is how it gets encrypted. Only after the "
                             "upgrade does the server offer AUTH, and the client logs in.")
                if mode == "opportunistic":
                    parts.append("An opportunistic client upgrades only because STARTTLS was offered: if an "
                                 "attacker deleted that line, it would carry on in plain text (notebook 06).")
            elif port == 25:
                parts.append(f"Accepted without a login because {self.to} lives on this server; mail for "
                             "anyone elsewhere would be refused (no open relay). The session was upgraded with "
                             "STARTTLS." if result.tls else
                             f"Accepted without a login because {self.to} lives on this server.")
        else:
            parts.append(f"It failed: {result.error}.")
        if stripped and outcome == "ok" and not result.tls:
            parts.append(f"Why: the attacker on the {place_name} network deleted STARTTLS from the EHLO reply, and "
                         "this client carries on without it. A client that requires TLS would have stopped.")
        return " ".join(p for p in parts if p)

    def _render(self, result: Any, place: str, port: int) -> str:
        kind, title = {
            "ok": ("ok", "Accepted."),
            "timeout": ("temporary", "Timed out: no answer at all."),
            "refused": ("permanent", "Connection refused."),
            "server": ("permanent", "Refused by the server."),
            "tls": ("permanent", "The two sides disagree about TLS."),
            "stopped": ("permanent", "The client stopped: no STARTTLS on offer."),
        }.get(self.outcome, ("info", "It did not work."))
        head = (f"<p><b>From {html.escape(place)} to {html.escape(self.server)} port {port}</b>: answered after "
                f"{self.elapsed * 1000:.0f} ms. {html.escape(result.summary())}</p>")
        parts = [head, _verdict_box(kind, title, html.escape(self.explanation))]
        if result.transcript is not None:
            parts.append(f"<p><b>The client's transcript</b><br><small>{LEGEND}</small></p>")
            parts.append(_box(render_entries(result.transcript.entries)))
        return "".join(parts)

    @property
    def text(self) -> str:
        """The output as plain text (tags removed), for tests and for copying."""
        return html.unescape(re.sub(r"<[^>]+>", " ", self.output.value))

    def _on_try(self, _button: Any = None) -> None:
        self.try_button.disabled = True
        try:
            self.try_it()
        except Exception as err:  # never into the notebook
            self.outcome = "error"
            self.output.value = _verdict_box("info", "Something went wrong:", html.escape(_error_text(err)))
        finally:
            self.try_button.disabled = False
