"""One rule for what counts as a mailbox address, at every entrance, and the one way to a Maildir path.

An address becomes a folder name (``STATE_DIR/maildir/<address>/``) and a
line in headers the lab writes, so text straight from a client must never be
either: ``../../x@example.net`` would write outside the state directory, and a
CR in it would start a new header. So RCPT, MAIL FROM, the HTTP API, the
Python API and scenario data all ask :func:`mailbox_problem` first, and
:func:`maildir_folder` checks once more, before anything is written, that the
folder lies inside the Maildir root.

The rule is RFC 5321's Mailbox in its common dot-atom form, a little stricter
where a lab must be: no quoted local parts, no ``/`` or ``\\`` (legal atext in
RFC 5322, but a path separator here), no address literals; at most 64 octets
before the @ and 255 after, and a domain of letters, digits and hyphens.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["MailboxError", "mailbox_problem", "domain_problem", "maildir_folder", "MAX_LOCAL", "MAX_DOMAIN"]

MAX_LOCAL = 64  # RFC 5321 section 4.5.3.1.1
MAX_DOMAIN = 255  # RFC 5321 section 4.5.3.1.2
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-=?^_`{|}~]+")  # RFC 5322 atext, less "/"
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class MailboxError(ValueError):
    """An address the lab will not take; the message says why, in words a student can act on."""


def domain_problem(domain: str) -> str | None:
    """Why `domain` is not a host name mail can be routed to, or None if it is one."""
    if not domain:
        return "nothing after the @"
    if len(domain) > MAX_DOMAIN:
        return f"the domain is {len(domain)} characters long; at most {MAX_DOMAIN} are allowed"
    labels = domain.rstrip(".").split(".")
    if len(labels) < 2:
        return f"{domain!r} has no dot: a mail domain looks like example.net"
    for label in labels:
        if not _LABEL.fullmatch(label):
            return (f"{label!r} is not a valid part of a domain name (letters, digits and inner hyphens, "
                    "1 to 63 of them, between dots)" if label else "the domain has an empty part (two dots in a row)")
    return None


def mailbox_problem(address: str) -> str | None:
    """Why `address` is not a mailbox like bob@example.net, or None if it is one."""
    if not isinstance(address, str):
        return "an address is text, like bob@example.net"
    if not address.isprintable() or any(c in address for c in " \t"):
        return "it contains a space or a control character (CR, LF, NUL...)"
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return "it needs a name before an @ and a domain after it, like bob@example.net"
    if local.startswith('"'):
        return "quoted local parts (\"...\"@) are not accepted here"
    if len(local) > MAX_LOCAL:
        return f"the part before the @ is {len(local)} characters long; at most {MAX_LOCAL} are allowed"
    atoms = local.split(".")
    if any(not atom for atom in atoms):
        return "the part before the @ may not start or end with a dot, or have two dots in a row"
    bad = sorted({c for atom in atoms for c in atom if not _ATOM.fullmatch(c)})
    if bad:
        return f"the part before the @ may not contain {' '.join(repr(c) for c in bad)}"
    return domain_problem(domain)


def check_mailbox(address: str) -> str:
    """`address` itself if it is a mailbox; else :class:`MailboxError` saying why."""
    problem = mailbox_problem(address)
    if problem is not None:
        raise MailboxError(f"{address!r} is not a mailbox address: {problem}.")
    return address


def maildir_folder(root: Path, address: str) -> Path:
    """The Maildir of `address` under `root`, only for a valid address, and only inside `root`."""
    folder = (root / check_mailbox(address).lower()).resolve()
    if folder.parent != root.resolve():
        raise MailboxError(f"{address!r} would be stored outside {root}; refused.")
    return folder
