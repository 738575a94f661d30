"""Message rules that a filtering relay or an SMTP proxy applies before passing mail on.

Rules are scenario data (a host's ``filters``), tried in order:

* ``{action = "monitor"}``: note who, to whom, what and how big, in the transcript;
* ``{action = "block", header = "Subject", contains = "lottery", reply = "554 5.7.1 ..."}``:
  refuse the message with that reply (the sender's client sees it at once);
* ``{action = "tag", header = "Subject", prefix = "[EXTERNAL] "}``: change a header;
* ``{action = "add_header", name = "X-Scanned-By", value = "gate.example.net"}``.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FilterOutcome", "apply_filters"]

DEFAULT_BLOCK_REPLY = "554 5.7.1 Message refused by policy"


@dataclass
class FilterOutcome:
    message: bytes
    reply: str | None = None  # set when a rule refused the message
    notes: list[str] = field(default_factory=list)  # what the rules did, for the transcript


def apply_filters(rules: tuple[dict[str, Any], ...], message: bytes) -> FilterOutcome:
    """Apply `rules` to a message (bytes with CRLF line ends); the message is parsed only if a rule needs it."""
    outcome = FilterOutcome(message)
    if not rules:
        return outcome
    msg = email.message_from_bytes(message, policy=email.policy.SMTP)
    changed = False
    for rule in rules:
        action = rule["action"]
        if action == "monitor":
            outcome.notes.append(f"monitored: from {msg.get('From', '?')} to {msg.get('To', '?')}, "
                                 f"subject {msg.get('Subject', '')!r}, {len(message):,} bytes")
        elif action == "block":
            value = str(msg.get(rule.get("header", "Subject"), ""))
            if rule.get("contains", "").lower() in value.lower():
                outcome.reply = rule.get("reply", DEFAULT_BLOCK_REPLY)
                outcome.notes.append(f"blocked: {rule.get('header', 'Subject')} contains {rule.get('contains')!r}")
                return outcome
        elif action == "tag":
            header, prefix = rule.get("header", "Subject"), rule.get("prefix", "")
            value = str(msg.get(header, ""))
            if not value.startswith(prefix):
                del msg[header]
                msg[header] = prefix + value
                changed = True
                outcome.notes.append(f"tagged: {header} now starts with {prefix!r}")
        elif action == "add_header":
            msg[rule["name"]] = rule["value"]
            changed = True
            outcome.notes.append(f"added header {rule['name']}: {rule['value']}")
    if changed:
        outcome.message = msg.as_bytes()
    return outcome
