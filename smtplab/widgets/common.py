"""What every widget shares: the transcript table, messages in boxes, the arrows' legend, and the lab it uses.

A widget outlives the cell that made it: a student re-runs ``lab = Lab()`` (which
stops the old lab), or runs the whole notebook again, and then clicks a widget that
was made earlier. :class:`LabWidget` lets such a widget carry on with the
notebook's current lab instead of asking the student to find the cell that made
it; and it gives each widget a one-line text form, which is what a notebook saved
without widget state shows (on GitHub, or opened before it is run).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import ipywidgets as widgets

from ..lab import Lab
from ..transcript import Entry

#: What the arrows mean, shown above every transcript a widget draws.
LEGEND = (
    "<code>-&gt;</code> the client sent, <code>&lt;-</code> the server replied, "
    "<code>~&gt;</code> / <code>&lt;~</code> the same inside TLS, <code>===</code> something that is not an SMTP line"
)

#: Most rows the console keeps; older ones are dropped, and a note says how many.
CONSOLE_ROWS = 400

#: Said once, when a widget's own lab has stopped and it carries on with the notebook's current lab.
FOLLOWED_TEXT = ("The lab this widget was made with has stopped (a newer Lab() replaced it): "
                 "the widget now uses the notebook's current lab.")

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


_BOX_STYLE = "max-height:28em;overflow:auto;border:1px solid #ddd;padding:4px 6px"


def _box(inner: str) -> str:
    """A scrolling box that opens at the top: for a finished transcript, read from its first line."""
    return f'<div class="smtplab-box" style="{_BOX_STYLE}">{inner}</div>'


def _tail_box(inner: str) -> str:
    """A scrolling box that opens at the bottom, so the newest line (last) is the one in view.

    Every update replaces the HTML, and a new box normally starts scrolled to the top, which
    hides the newest replies once there are more lines than fit. With
    ``flex-direction:column-reverse`` the box's scroll origin is its end: browsers open it
    scrolled down, and keep it there as lines are added, without any JavaScript.
    """
    return (f'<div class="smtplab-box smtplab-tail" style="{_BOX_STYLE};display:flex;flex-direction:column-reverse">'
            f"<div>{inner}</div></div>")


def _reply_code(entries: Sequence[Entry]) -> str | None:
    """The code of the last reply line among `entries` ("250"), or None if the server said nothing."""
    for entry in reversed(entries):
        if entry.kind == "line" and entry.direction == "server":
            code = entry.line[:3]
            return code if code.isdigit() else None
    return None


def _not_running_text() -> str:
    return ("This lab has stopped, and no other lab is running. Run lab = Lab() again (any cell that makes one), "
            "then try again here: the widget carries on with the new lab.")


def _notice(text: str) -> str:
    """A quiet paragraph above a widget's output, for something the student did not ask for but should know."""
    return f'<p class="smtplab-notice" style="color:#555"><i>{html.escape(text)}</i></p>' if text else ""


def _replace_options(owner: Any, dropdown: widgets.Dropdown, options: list[tuple[str, Any]]) -> None:
    """Give `dropdown` new options (those of a newer lab), keeping its value when it is still offered.

    ``owner._refreshing`` is set meanwhile, so that the owner's observers can tell this
    from a student's choice.
    """
    if list(dropdown.options) == list(options):
        return
    value = dropdown.value
    owner._refreshing = True
    try:
        dropdown.options = options
        if value in [v for _label, v in options]:
            dropdown.value = value
    finally:
        owner._refreshing = False


def current_lab(lab: Any) -> Any:
    """The lab a widget should use now: its own while that one runs, else the notebook's current lab.

    ``Lab()`` stops the lab it replaces, so a widget made before a re-run would
    otherwise be stuck with a stopped lab. Only a real :class:`Lab` follows (a test's
    stand-in stays as it is), and only to a lab that runs.
    """
    if getattr(lab, "running", False) or not isinstance(lab, Lab):
        return lab
    newer = Lab._current
    return newer if newer is not None and newer.running else lab


class LabWidget:
    """Mixed into every widget: follows the notebook's current lab, and shows itself as one line of text."""

    #: What the widget is for, in the one-line text form.
    about = "an interactive widget"
    #: True while a newer lab's options are being put in place (see :func:`_replace_options`).
    _refreshing = False

    def _follow_current_lab(self) -> str:
        """Switch to the notebook's current lab if this widget's lab stopped; return a note ("" if unchanged)."""
        lab = getattr(self, "lab", None)
        newer = current_lab(lab)
        if newer is lab:
            return ""
        self.lab = newer
        self._on_new_lab()
        return FOLLOWED_TEXT

    def _on_new_lab(self) -> None:
        """Refresh what was read from the old lab (lists of hosts, networks); the default has nothing to refresh."""

    def __repr__(self) -> str:
        """One line: what a notebook saved without widget state shows instead of the widget (its text/plain).

        ipywidgets' own repr lists every child (``StepThrough(children=(HTML(value='<b>...``),
        which is what a reader of the notebook on GitHub would otherwise see.
        """
        return (f"{type(self).__name__}: {self.about}. "
                "Run this cell in a live notebook (with a kernel) to use it.")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        """The live widget view, as ipywidgets makes it, with the whole line above as its text/plain.

        ipywidgets cuts text/plain at 110 characters, which would cut off the advice at its end.
        """
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if bundle:
            bundle["text/plain"] = repr(self)
        return bundle


def _error_text(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, (OSError, TimeoutError)) and not str(err):
        text = f"{type(err).__name__}: the connection failed"
    return text
