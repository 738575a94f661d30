"""The seam below the facade: what servers, relays and the HTTP API may ask of the mail world.

They take a :class:`MailWorld` and nothing else from above: accept a message,
bounce it, hand it to a next hop once, note what happened in the journal,
apply a host's planted faults and quotas, find addresses, and report the
sessions they served. :class:`~smtplab.postoffice.PostOffice` implements it
for a running lab; a test can implement it with a few lines to try one host's
policy without a whole lab.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .connections import Connections
from .store import MailStore
from .topology import Host, Topology
from .transcript import Transcript

if TYPE_CHECKING:  # lower modules only: nothing here reaches up to the lab
    from .client import Endpoint
    from .mx import MXLookup
    from .result import SendResult
    from .senderauth import Answer, Lookup, SigningKey
    from .topology import User

__all__ = ["MailWorld"]


class MailWorld(Protocol):
    """Where accepted mail goes and what the hosts' rules are (one per lab, on the lab's loop)."""

    topology: Topology
    store: MailStore
    connections: Connections
    state_dir: Path
    retry_delays: tuple[float, ...]
    own_addresses: bool  # each host has its own loopback address (so Received headers can name it)

    # --- mail ------------------------------------------------------------------
    async def accept(self, host: Host, mail_from: str, rcpts: list[str], message: bytes, queue_id: str,
                     message_id: str = "", trace: bytes = b"", folder: str = "") -> None:
        """Deliver to local Maildirs (or their `folder`, e.g. Junk) or queue for relaying; return once stored."""

    async def bounce(self, host: Host, mail_from: str, failed: dict[str, str], original: bytes) -> None:
        """Tell the sender what could not be delivered."""

    async def deliver_once(self, client: Host, endpoint: Endpoint, sender: str, rcpts: list[str],
                           raw: bytes) -> SendResult:
        """One relay attempt from `client` to a next hop."""
        ...

    def journal(self, event: str, host: str, queue_id: str, message_id: str, **details: Any) -> None:
        """Note a step of a message's journey (``lab.trace`` reads it)."""

    def report(self, kind: str, text: str) -> None:
        """Keep something that went wrong inside the loop, quietly (``lab.errors``)."""

    # --- a host's rules ---------------------------------------------------------
    def take_fault(self, host: str, command: str, key: tuple[str, ...] = ()) -> str | None:
        """The reply a planted fault gives `command` now, if any."""
        ...

    def quota_left(self, host: Host, user: str) -> bool:
        ...

    def count_sent(self, host: Host, user: str) -> None:
        ...

    # --- logins and sender authentication ----------------------------------------
    def login(self, user: User, password: bytes) -> str:
        """``"ok"``, ``"wrong"`` or ``"app password required"``."""
        ...

    def signing_key(self, host: Host, domain: str) -> SigningKey | None:
        """The DKIM key `host` signs `domain`'s mail with, if any."""
        ...

    def dns_lookup(self, listener: Callable[[Answer], None] | None = None) -> Lookup:
        """How sender-authentication checks ask the lab DNS (never the process-wide resolver)."""
        ...

    # --- addresses -------------------------------------------------------------
    def endpoint(self, host: str, port: int) -> Endpoint:
        ...

    def endpoint_at(self, address: str, port: int, name: str = "") -> Endpoint | None:
        ...

    def reverse_name(self, address: str) -> str:
        ...

    async def lookup_mx(self, domain: str) -> MXLookup:
        ...

    # --- sessions --------------------------------------------------------------
    def record_session(self, transcript: Transcript) -> None:
        """Keep a finished session: in memory for ``lab.transcripts()``, on disk for everyone else."""
