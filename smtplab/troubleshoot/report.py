"""What a check found: :class:`Step` and :class:`CheckReport`, as plain text and as HTML.

Pure data and its rendering; nothing here touches the network, so the CLI prints
a report and a notebook shows it without knowing how it was made.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass, field

from ..transcript import Transcript

#: The title of each step, in the order a check runs them.
STEP_TITLES = {
    "mx": "Find the mail servers (MX)",
    "resolve": "Resolve the name",
    "connect": "Connect (TCP)",
    "banner": "Read the greeting",
    "ehlo": "Say EHLO",
    "tls": "TLS and the certificate",
    "auth": "Login mechanisms offered",
    "login": "Log in",
    "send": "Send a test message",
}


@dataclass
class Step:
    """One step of the checklist: what happened, what it means, and what to try next."""

    name: str
    ok: bool
    detail: str
    meaning: str = ""
    next_step: str = ""
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.name, self.name)


@dataclass
class CheckReport:
    """The result of :func:`check`: the steps run, in order; ``ok`` only if every one passed."""

    host: str
    port: int
    where: str  # how names, ports and trust were found ("the lab: ..." or "the system's DNS ...")
    timeout: float
    steps: list[Step] = field(default_factory=list)
    transcript: Transcript | None = None
    capabilities: list[str] = field(default_factory=list)  # the last EHLO reply's keywords
    not_run: list[str] = field(default_factory=list)  # the steps a failure left out

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> Step | None:
        """The step that failed (a check stops at the first), or None."""
        return next((s for s in self.steps if not s.ok), None)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def verdict(self) -> str:
        if self.ok:
            return f"All {len(self.steps)} steps passed."
        bad = self.failed
        if bad is None:
            return "Nothing was checked."
        later = (f" Not run, since each step needs the ones before: {', '.join(self.not_run)}."
                 if self.not_run else "")
        return f"Failed at step {self.steps.index(bad) + 1} ({bad.name}): {bad.title}.{later}"

    def text(self, width: int | None = None) -> str:
        """Plain text, one block per step (wrapped to `width` columns if given)."""
        out = [f"Checking {self.host} port {self.port} ({self.where}; timeout {self.timeout:g} s per network wait)"]
        for number, s in enumerate(self.steps, 1):
            mark = "PASS" if s.ok else "FAIL"
            head = f"{mark}  {number}. {s.name:<8} "
            pad = " " * len(head)
            timing = _ms(s.seconds).replace(" ", "\0")  # never split "7.4 ms" across lines
            out.append(wrap(head + f"{s.detail} ({timing})", width, pad).replace("\0", " "))
            if s.meaning:
                out.append(wrap(pad + ("" if s.ok else "What it means: ") + s.meaning, width, pad))
            if s.next_step:
                out.append(wrap(pad + "Try next: " + s.next_step, width, pad))
        out.append(self.verdict)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<CheckReport {self.host} port {self.port}: {self.verdict}>"

    def _repr_html_(self) -> str:
        """A table, one row per step; each cell carries its alignment, since Jupyter's CSS right-aligns cells."""
        rows = []
        for number, s in enumerate(self.steps, 1):
            style = "" if s.ok else ' style="background:#fff5e1"'
            mark = '<span style="color:#1e7b34">&#10004; pass</span>' if s.ok else \
                '<span style="color:#a15c00"><b>&#10008; FAIL</b></span>'
            meaning = html.escape(s.meaning)
            nxt = f"<br><b>Try next:</b> {html.escape(s.next_step)}" if s.next_step else ""
            rows.append(f"<tr{style}><td{_NUMBER}>{number}</td><td{_PROSE}>{mark}</td>"
                        f"<td{_PROSE}><b>{html.escape(s.name)}</b><br><small>{html.escape(s.title)}</small></td>"
                        f"<td{_PROSE}>{html.escape(s.detail)}<br><small>{_ms(s.seconds)}</small></td>"
                        f"<td{_PROSE}>{meaning}{nxt}</td></tr>")
        colour = "#1e7b34" if self.ok else "#a15c00"
        head = "".join(f"<th{_NUMBER if title == '#' else _PROSE}>{title}</th>"
                       for title in ("#", "result", "step", "what happened", "what it means"))
        return (f'<div class="smtplab-check"><p><b>Checking {html.escape(self.host)} port {self.port}</b><br>'
                f"<small>{html.escape(self.where)}; timeout {self.timeout:g} s per network wait</small></p>"
                f"<table><thead><tr>{head}</tr></thead>"
                f'<tbody>{"".join(rows)}</tbody></table>'
                f'<p style="color:{colour}"><b>{html.escape(self.verdict)}</b></p></div>')


#: Cell styles for the HTML table: prose reads from the left, the step number lines up on the right.
_PROSE = ' style="text-align:left;vertical-align:top"'
_NUMBER = ' style="text-align:right;vertical-align:top"'


def _ms(seconds: float) -> str:
    """A duration as people read it: '7.4 ms' below a second, '1.25 s' above."""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def wrap(text: str, width: int | None, indent: str) -> str:
    """`text` filled to `width` columns, later lines indented by `indent`; as it is without a width."""
    if not width:
        return text
    return textwrap.fill(text, width=width, subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=False)
