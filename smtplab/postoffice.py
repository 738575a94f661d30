"""The post office: what happens to mail a lab host has accepted, and the rules hosts apply.

It implements :class:`~smtplab.world.MailWorld` for a running lab. Servers,
relays and the HTTP API call it; it never calls them back except through a
host's relay queue. Sending to a next hop is the lab's client machinery
(routing through network links, TLS, watching the server's view), so the lab
hands it in as `send`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from . import relay as relay_mod
from .addresses import AddressBook
from .client import Endpoint, SendPlan
from .connections import Connections
from .dns import LabDNS
from .errorlog import ErrorLog
from .journal import Journal
from .mailboxes import mailbox_problem
from .mailinglist import list_copy, list_envelope_sender
from .mx import MXLookup, lookup_mx
from .result import SendResult
from .senderauth import Answer, Lookup, SigningKey, arc_seal, dig_lookup
from .store import MailStore, new_queue_id
from .topology import Host, MailingList, Topology, User
from .transcript import Transcript

__all__ = ["Fault", "PostOffice"]

RECENT_TRANSCRIPTS = 500


@dataclasses.dataclass
class Fault:
    """A reply planted on a host (scenario ``faults`` or :meth:`Lab.fault`)."""

    command: str  # MAIL, RCPT or DATA
    reply: str
    times: int  # how many more times it answers
    greylist: bool = False  # once per (client, sender, recipient), like real greylisting
    seen: set[tuple[str, ...]] = dataclasses.field(default_factory=set)


class PostOffice:
    """One lab's mail world: stores, queues, journal, faults, quotas and finished sessions."""

    def __init__(self, topology: Topology, store: MailStore, addresses: AddressBook, state_dir: Path, *,
                 send: Callable[[SendPlan], Awaitable[SendResult]], dns: LabDNS,
                 retry_delays: tuple[float, ...], rng: random.Random,
                 signing_keys: dict[tuple[str, str], SigningKey] | None = None) -> None:
        self.topology = topology
        self.store = store
        self.addresses = addresses
        self.state_dir = state_dir
        self.retry_delays = retry_delays
        self.own_addresses = addresses.own_addresses
        self.connections = Connections()
        self.journal_log = Journal()
        self.errors = ErrorLog()
        self.recent: deque[Transcript] = deque(maxlen=RECENT_TRANSCRIPTS)
        self.relays: dict[str, relay_mod.Relay] = {}
        self.faults: dict[str, list[Fault]] = {
            h.name: [Fault(f.get("command", "RCPT").upper(), f["reply"], int(f.get("times", 10**9)),
                           bool(f.get("greylist", False))) for f in h.faults]
            for h in topology.hosts if h.faults}
        self._sent: dict[tuple[str, str], deque[float]] = {}  # (host, user) -> when each message went: quotas
        self.signing_keys = dict(signing_keys or {})  # (host, domain) -> its DKIM key
        self.app_passwords: dict[str, set[str]] = {u.username: set(u.app_passwords) for u in topology.users}
        self._send = send
        self._dns = dns
        self._rng = rng

    # --- mail ----------------------------------------------------------------------
    async def accept(self, host: Host, mail_from: str, rcpts: list[str], message: bytes, queue_id: str,
                     message_id: str = "", trace: bytes = b"", folder: str = "") -> None:
        """Deliver to local Maildirs, or queue for relaying; return only once it is safely stored.

        `trace` is what this hop puts in front of `message` (its Received header): written ahead of
        it, never joined to it in memory. `folder` is the Maildir++ subfolder (``"Junk"``) to deliver into.
        """
        mail_from = "" if mail_from == "<>" else mail_from  # aiosmtpd hands on the null sender as "<>"
        lists = {lst.address: lst for lst in host.lists}
        local = [r for r in rcpts if r.rpartition("@")[2].lower() in host.domains and r.lower() not in lists]
        remote = [r for r in rcpts if r not in local and r.lower() not in lists]
        loop = asyncio.get_running_loop()
        for rcpt in local:
            parts = (f"Return-Path: <{mail_from}>\r\nDelivered-To: {rcpt}\r\n".encode(), trace, message)
            if self.store.durable:  # an fsync takes milliseconds: off the loop, which serves every other session
                await loop.run_in_executor(self.store.io, functools.partial(self.store.deliver, rcpt, *parts,
                                                                            folder=folder))
            else:
                # Unsynced, a create-write-rename costs less than handing it to a thread and
                # taking the GIL back (measured with smtp-source, 10 x 2000: 2.3-2.6 ms of loop CPU
                # a message against 2.9 + 0.3 in the io thread).
                self.store.deliver(rcpt, *parts, folder=folder)
        if local:
            self.journal("delivered", host.name, queue_id, message_id, rcpts=local, **({"folder": folder} if folder else {}))
        for rcpt in dict.fromkeys(r.lower() for r in rcpts if r.lower() in lists):
            await self._resend_to_list(host, lists[rcpt], trace + message, queue_id, message_id)
        if remote:
            await self.relays[host.name].enqueue(mail_from, remote, message, queue_id, message_id, trace)
            self.journal("queued", host.name, queue_id, message_id, rcpts=remote)

    async def _resend_to_list(self, host: Host, mailing_list: MailingList, message: bytes, queue_id: str,
                              message_id: str) -> None:
        """A list's copy for its members: footer, List-Id, the list's own envelope sender, an ARC seal."""
        copy = list_copy(mailing_list, message)
        key = self.signing_key(host, host.name) or next(
            (k for (h, _), k in self.signing_keys.items() if h == host.name), None)
        if mailing_list.arc and key is not None:
            try:
                copy = arc_seal(copy, key, host.name) + copy
            except Exception as err:  # dkimpy wants this host's Authentication-Results: without one, no seal
                self.report("arc", f"{host.name} could not ARC-seal a list copy: {err}")
        sender = list_envelope_sender(mailing_list)
        self.journal("expanded", host.name, queue_id, message_id, to=list(mailing_list.members), sender=sender)
        await self.accept(host, sender, list(mailing_list.members), copy, new_queue_id(), message_id)

    async def bounce(self, host: Host, mail_from: str, failed: dict[str, str], original: bytes) -> None:
        """Tell the sender what could not be delivered; a bounce itself is never bounced."""
        if not mail_from or mail_from == "<>":
            self.report("double bounce", f"double bounce dropped for {', '.join(failed)} (the bounce itself failed)")
            return
        problem = mailbox_problem(mail_from)
        if problem:  # refused at MAIL FROM since; a queue file from an older lab may still hold one
            self.report("bounce", f"bounce for {', '.join(failed)} dropped: the sender {mail_from[:80]!r} {problem}")
            return
        dsn = relay_mod.delivery_status_notification(host.name, mail_from, failed, original)
        await self.accept(host, "", [mail_from], dsn, new_queue_id())

    async def deliver_once(self, client: Host, endpoint: Endpoint, sender: str, rcpts: list[str],
                           raw: bytes) -> SendResult:
        """One relay attempt from `client` to a next hop: STARTTLS when offered, no login."""
        plan = SendPlan(sender, rcpts, raw, endpoint, "opportunistic", None, client.name, 30.0, "", client.name)
        return await self._send(plan)

    def journal(self, event: str, host: str, queue_id: str, message_id: str, **details: Any) -> None:
        self.journal_log.add(event, host, queue_id, message_id, **details)

    def report(self, kind: str, text: str) -> None:
        self.errors.report(kind, text)

    # --- a host's rules ----------------------------------------------------------------
    def add_fault(self, host: str, fault: Fault) -> None:
        self.faults.setdefault(host, []).append(fault)

    def take_fault(self, host: str, command: str, key: tuple[str, ...] = ()) -> str | None:
        """The reply a planted fault gives this command now, if any (and count it down).

        A greylisting fault answers the first try of each (client, sender, recipient) `key` only,
        as real greylisting does: a sender that comes back later gets through.
        """
        for fault in self.faults.get(host, ()):
            if fault.command != command or fault.times <= 0:
                continue
            if fault.greylist:
                if key in fault.seen:
                    continue
                fault.seen.add(key)
            fault.times -= 1
            return fault.reply
        return None

    def quota_left(self, host: Host, user: str) -> bool:
        messages, seconds = host.limit or (0, 0.0)
        sent = self._sent.setdefault((host.name, user), deque())
        now = time.monotonic()
        while sent and sent[0] < now - seconds:
            sent.popleft()
        return len(sent) < messages

    def count_sent(self, host: Host, user: str) -> None:
        self._sent.setdefault((host.name, user), deque()).append(time.monotonic())

    # --- logins and sender authentication ---------------------------------------------------
    def login(self, user: User, password: bytes) -> str:
        """``"ok"``, ``"wrong"``, or ``"app password required"`` (2-step verification on, account password used)."""
        if any(secrets.compare_digest(p.encode(), password) for p in self.app_passwords.get(user.username, ())):
            return "ok"
        if secrets.compare_digest(user.password.encode(), password):
            return "app password required" if user.two_factor else "ok"
        return "wrong"

    def make_app_password(self, user: User) -> str:
        """A new app password for `user`, in the four-groups-of-four style providers show once."""
        letters = "abcdefghijkmnopqrstuvwxyz"
        password = " ".join("".join(secrets.choice(letters) for _ in range(4)) for _ in range(4))
        self.app_passwords.setdefault(user.username, set()).add(password)
        return password

    def signing_key(self, host: Host, domain: str) -> SigningKey | None:
        """The DKIM key `host` signs `domain`'s mail with, if it has one."""
        return self.signing_keys.get((host.name, domain.lower()))

    def dns_lookup(self, listener: Callable[[Answer], None] | None = None) -> Lookup:
        """A DNS lookup for sender-authentication checks: the lab DNS over UDP, telling `listener` each answer."""
        return dig_lookup(self._dns.address, self._dns.port, listener=listener)

    # --- addresses -----------------------------------------------------------------------
    def endpoint(self, host: str, port: int) -> Endpoint:
        return self.addresses.endpoint(host, port)

    def endpoint_at(self, address: str, port: int, name: str = "") -> Endpoint | None:
        return self.addresses.endpoint_at(address, port, name)

    def reverse_name(self, address: str) -> str:
        return self.addresses.reverse_name(address)

    async def lookup_mx(self, domain: str) -> MXLookup:
        """Where mail for `domain` goes, asking the lab DNS."""
        return await lookup_mx(domain, self._dns.address, self._dns.port, rng=self._rng)

    # --- sessions ------------------------------------------------------------------------
    def record_session(self, transcript: Transcript) -> None:
        """Keep a finished session: in memory for lab.transcripts(), on disk for everyone else."""
        self.recent.append(transcript)
        self.store.save_transcript(transcript)
