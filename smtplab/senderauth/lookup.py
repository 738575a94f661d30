"""The one way sender-authentication checks ask DNS: an async function, given to them.

A check never touches dnspython's process-wide resolver (that would move the
whole kernel's DNS to the lab): whoever runs it passes a :data:`Lookup` that
asks a chosen server. :func:`dig_lookup` asks the lab DNS over real UDP, and
can tell a listener about every question and answer, so a transcript shows them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..dns import dig

__all__ = ["Answer", "Lookup", "dig_lookup", "dns_purpose"]


@dataclass(frozen=True)
class Answer:
    """What DNS said: ``NOERROR`` (with records, or none: NODATA), ``NXDOMAIN``, ``SERVFAIL`` or ``TIMEOUT``."""

    name: str
    rdtype: str
    status: str
    records: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """A temporary failure (RFC 7208 temperror): the answer is not known, not empty."""
        return self.status not in ("NOERROR", "NXDOMAIN")

    def texts(self) -> list[str]:
        """TXT records as strings: the quoted pieces of each record joined (RFC 7208 section 3.3)."""
        out = []
        for record in self.records:
            pieces, current, quoted, escaped = [], "", False, False
            for char in record:
                if escaped:
                    current += char
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    if quoted:
                        pieces.append(current)
                        current = ""
                    quoted = not quoted
                elif quoted:
                    current += char
            out.append("".join(pieces) if pieces else record)
        return out

    def __str__(self) -> str:
        shown = "; ".join(self.records) if self.records else ("no records" if self.status == "NOERROR" else self.status)
        return f"{self.name} {self.rdtype}? {shown}"


Lookup = Callable[[str, str], Awaitable[Answer]]
Listener = Callable[[Answer], None]


def dig_lookup(server: str, port: int, *, listener: Listener | None = None, timeout: float = 2.0) -> Lookup:
    """A :data:`Lookup` that asks one DNS server (the lab's) over UDP, telling `listener` each answer."""

    async def lookup(name: str, rdtype: str) -> Answer:
        reply = await dig(name, rdtype, server, port, timeout=timeout)
        status = "TIMEOUT" if reply.response is None else reply.status
        answer = Answer(name.rstrip(".").lower(), rdtype, status, tuple(reply.records()))
        if listener is not None:
            listener(answer)
        return answer

    return lookup


def dns_purpose(name: str, rdtype: str) -> str:
    """Why a sender-authentication check asks for `name` (a note for the transcript)."""
    name = name.rstrip(".").lower()
    if name.startswith("_dmarc."):
        return f"DMARC: the policy {name[7:]} publishes for mail with its name in From: (RFC 7489)."
    if "._domainkey." in name:
        selector, _, domain = name.partition("._domainkey.")
        return f"DKIM: the public key of {domain}, selector {selector}, to check a signature (RFC 6376)."
    if name.startswith("_mta-sts."):
        return f"MTA-STS: does {name[9:]} publish a policy that its MX hosts must be reached over TLS (RFC 8461)?"
    if rdtype == "TXT":
        return f"SPF: the record (TXT v=spf1) listing who may send mail as {name} (RFC 7208)."
    return f"SPF: an address that a mechanism (a, mx, exists) of a record names ({rdtype} of {name})."
