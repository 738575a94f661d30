"""What every widget shares: the transcript table, messages in boxes, the arrows' legend."""

from __future__ import annotations

import html
import logging
from typing import Any, Iterable, Sequence

import ipywidgets as widgets

from ..transcript import Entry

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
