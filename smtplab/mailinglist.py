"""A mailing list's re-sending: what a list server does to a message, and why it breaks SPF and DKIM.

The list takes a message for ``friends@lists.example.com`` and sends a copy to
each member. It keeps the author's From: line (readers want to see who wrote),
sends from its own envelope address (bounces must come back to the list, not
to the author), tags the subject's list with ``List-Id`` and appends a footer.
The new envelope sender makes SPF check the list's domain, not the author's;
the footer changes the body, so the author's DKIM signature no longer
verifies. DMARC for the author's domain then fails, through no fault of
anyone: ARC (RFC 8617) lets the list seal what it saw on arrival, so a
receiver that trusts the list can still accept the message.
"""

from __future__ import annotations

from .topology import MailingList

__all__ = ["list_copy", "list_envelope_sender"]


def list_envelope_sender(mailing_list: MailingList) -> str:
    """Where bounces of the list's copies go: ``friends-bounces@lists.example.com``."""
    local, _, domain = mailing_list.address.partition("@")
    return f"{local}-bounces@{domain}"


def list_copy(mailing_list: MailingList, message: bytes) -> bytes:
    """The message as the list re-sends it: a ``List-Id`` header, and the footer at the end of the body."""
    local, _, domain = mailing_list.address.partition("@")
    list_id = f"List-Id: <{local}.{domain}>\r\nList-Post: <mailto:{mailing_list.address}>\r\n".encode()
    if not mailing_list.footer:
        return list_id + message
    body_end = message if message.endswith(b"\r\n") else message + b"\r\n"
    footer = "".join(f"{line}\r\n" for line in ["--", *mailing_list.footer.splitlines()]).encode()
    return list_id + body_end + footer
