"""Authentication-Results (RFC 8601): how a receiver writes down what it checked, and reading one back.

Only the receiver's own header can be believed: anyone can write
``Authentication-Results: mx1.example.net; dmarc=pass`` into a message before
sending it. So a receiver removes headers that claim to be its own before
adding one (section 5), and a reader trusts only the one its own provider added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..replycodes import explain_auth_result

__all__ = ["AuthPart", "authentication_results", "parse_authentication_results", "strip_claims_of"]


@dataclass(frozen=True)
class AuthPart:
    """One ``method=result (comment) property=value`` clause."""

    method: str
    result: str
    comment: str = ""
    properties: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        out = f"{self.method}={self.result}"
        if self.comment:
            out += f" ({_comment(self.comment)})"
        out += "".join(f" {name}={value}" for name, value in self.properties)
        return out

    @property
    def meaning(self) -> str:
        try:
            return explain_auth_result(self.method, self.result)
        except ValueError:
            return f"{self.method}={self.result}: a method the lab does not explain"


def _comment(text: str) -> str:
    return re.sub(r"[()\\\r\n]", "", text)[:200]


def authentication_results(authserv_id: str, parts: list[AuthPart]) -> bytes:
    """The header, folded one clause a line, ending in CRLF."""
    body = ";\r\n\t".join([authserv_id] + [p.text() for p in parts])
    return f"Authentication-Results: {body}\r\n".encode()


_HEADER = re.compile(rb"^authentication-results:[ \t]*([^;\s]+)", re.IGNORECASE)


def strip_claims_of(message: bytes, authserv_id: str) -> tuple[bytes, int]:
    """`message` without Authentication-Results headers claiming to come from `authserv_id`; and how many went."""
    end = message.find(b"\r\n\r\n")
    head = message[:end + 2] if end >= 0 else message
    if b"uthentication-" not in head and b"UTHENTICATION-" not in head:
        return message, 0  # the usual case: nothing to strip, nothing copied
    lines = head.split(b"\r\n")
    kept, dropping, dropped = [], False, 0
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        match = _HEADER.match(line)
        dropping = bool(match and match.group(1).decode("ascii", "replace").lower() == authserv_id.lower())
        dropped += dropping
        if not dropping:
            kept.append(line)
    if not dropped:
        return message, 0
    return b"\r\n".join(kept) + (message[end + 2:] if end >= 0 else b""), dropped


def parse_authentication_results(value: str) -> tuple[str, list[AuthPart]]:
    """(authserv-id, clauses) of one header value; tolerant, for explaining headers to a student."""
    unfolded = re.sub(r"\s+", " ", value).strip()
    chunks = [c.strip() for c in unfolded.split(";")]
    authserv_id, parts = chunks[0].split(" ")[0], []
    for chunk in chunks[1:]:
        match = re.match(r"([\w.-]+)\s*=\s*([\w-]+)\s*(?:\(([^)]*)\))?\s*(.*)", chunk)
        if not match:
            continue
        props = tuple((n, v) for n, v in re.findall(r"([\w.-]+)=(\S+)", match.group(4)))
        parts.append(AuthPart(match.group(1).lower(), match.group(2).lower(), match.group(3) or "", props))
    return authserv_id, parts
