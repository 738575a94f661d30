"""What a send returns: the outcome, both sides' transcripts, and a clear error when it failed."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from .transcript import Transcript

__all__ = ["Failure", "SendResult", "SendError", "LabError", "STAGES", "KINDS"]

#: Where in a session a send can fail, in order.
STAGES = ("connect", "greeting", "ehlo", "tls", "auth", "mail", "rcpt", "data", "quit")
#: How it failed: no connection at all ("refused", "timeout"), TLS that did not work, a reply that
#: said no, the server hanging up, or the client stopping because something was not offered.
KINDS = ("refused", "timeout", "tls", "reply", "closed", "not-offered", "error")


class LabError(Exception):
    """A call the lab cannot carry out; the message says what to do instead."""


class SendError(LabError):
    """Raised by :meth:`SendResult.raise_for_status` when a send did not fully succeed."""


@dataclass(frozen=True)
class Failure:
    """Why a send failed, as data: at which `stage`, of which `kind`, and the reply if one caused it.

    Widgets and the troubleshooting checklist read this instead of matching words in
    :attr:`SendResult.error`, which is written for people.
    """

    stage: str  # one of STAGES
    kind: str  # one of KINDS
    code: int | None = None  # the reply code, when kind == "reply"
    reply: str = ""  # that reply ("550 5.1.1 ..."), when kind == "reply"

    def __post_init__(self) -> None:
        if self.stage not in STAGES or self.kind not in KINDS:
            raise ValueError(f"Failure({self.stage!r}, {self.kind!r}): stage in {STAGES}, kind in {KINDS}")

    def __str__(self) -> str:
        return f"{self.kind} at {self.stage}" + (f": {self.reply}" if self.reply else "")


@dataclass
class SendResult:
    """The outcome of one :meth:`Lab.send`.

    A refusal by the server is a normal outcome in a lab (that is often the
    lesson), so it is returned, not raised: check :attr:`ok`, read
    :attr:`error`, or call :meth:`raise_for_status` in a script.
    """

    sender: str
    recipients: list[str]
    server: str
    port: int
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> the server's reply
    reply: str = ""  # the server's last reply to the message (after the final dot), if it got that far
    error: str | None = None
    error_code: int | None = None  # the reply code behind `error`, when a reply caused it
    last_reply: str = ""  # that reply, as the server sent it ("550 5.1.1 ...")
    tls: bool = False  # whether the session was encrypted by the time the message went
    wire: Any = None  # a network.Capture of the bytes on the wire, when the send went through a link
    tls_info: Any = None  # a tls.TLSInfo: version, cipher and the certificate the server showed
    transcript: Transcript | None = None  # the client's view
    server_transcript: Transcript | None = None  # the server's view of the same session
    message_id: str = ""
    failure: Failure | None = None  # why it failed, as data (None when it did not, or only some rcpts were refused)

    @property
    def ok(self) -> bool:
        """True when the message was accepted for every recipient."""
        return self.error is None and not self.refused and bool(self.accepted)

    @property
    def elapsed(self) -> float:
        """Seconds from connecting to the end of the session, as the client saw it."""
        return self.transcript.duration if self.transcript else 0.0

    def raise_for_status(self) -> SendResult:
        if not self.ok:
            raise SendError(self.summary())
        return self

    def summary(self) -> str:
        where = f"{self.server} port {self.port}"
        if self.ok:
            return f"Accepted by {where} for {', '.join(self.accepted)}: {self.reply}"
        parts = [self.error] if self.error else []
        parts += [f"{rcpt} refused: {reply}" for rcpt, reply in self.refused.items()]
        if self.accepted:
            parts.append(f"accepted for {', '.join(self.accepted)}")
        if self.accepted:
            return f"Not fully delivered via {where}: " + "; ".join(parts)
        return f"Not delivered via {where}: " + "; ".join(parts)

    def __repr__(self) -> str:
        return f"<SendResult {'ok' if self.ok else 'FAILED'}: {self.summary()}>"

    def __str__(self) -> str:
        text = self.summary()
        if self.transcript is not None:
            text += "\n\n" + self.transcript.text()
        return text

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#b35900"
        head = f'<p style="color:{colour}"><b>{"✔" if self.ok else "✘"}</b> {html.escape(self.summary())}</p>'
        return head + (self.transcript._repr_html_() if self.transcript is not None else "")
