"""What a send returns: the outcome, both sides' transcripts, and a clear error when it failed."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from .transcript import Transcript

__all__ = ["SendResult", "SendError", "LabError"]


class LabError(Exception):
    """A call the lab cannot carry out; the message says what to do instead."""


class SendError(LabError):
    """Raised by :meth:`SendResult.raise_for_status` when a send did not fully succeed."""


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

    @property
    def ok(self) -> bool:
        """True when the message was accepted for every recipient."""
        return self.error is None and not self.refused and bool(self.accepted)

    @property
    def elapsed(self) -> float:
        """Seconds from connecting to the end of the session, as the client saw it."""
        return self.transcript.duration if self.transcript else 0.0

    def raise_for_status(self) -> "SendResult":
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
        return f"Not fully delivered via {where}: " + "; ".join(parts)

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
