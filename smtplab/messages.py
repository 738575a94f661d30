"""The one way the lab writes a message: From, To, Subject, Date and Message-ID, then a text body.

Every sender in the lab (``lab.send``, ``smtplab send``, the HTTP API, ``smtplab check``) builds
its message here, so they all carry the headers RFC 5322 asks for in the same form, and go on
the wire with CRLF line ends as SMTP wants.
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from email.message import EmailMessage

__all__ = ["compose", "wire_bytes"]


def compose(sender: str, recipients: Sequence[str], subject: str, body: str) -> EmailMessage:
    """A plain-text message from `sender` to `recipients`, dated now, with a fresh Message-ID.

    A header value with a line break (header injection) raises ValueError, from the email module.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = email.utils.localtime()
    msg["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or "smtplab.invalid")
    msg.set_content(body)
    return msg


def wire_bytes(msg: EmailMessage) -> bytes:
    """`msg` as SMTP carries it: CRLF line ends."""
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
