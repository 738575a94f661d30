"""The outbound queue of a host: routing, retries and bounces.

A message for another domain is written to ``STATE_DIR/queue/<host>/`` (the
envelope as JSON beside the message; synced with ``Lab(durable=True)``)
before the server answers 250, so it survives a stop: a new lab on the same
state directory picks the queue up again.

Where it goes: the host's ``forward`` route for the domain if it has one,
otherwise the domain's MX hosts from the lab DNS, best first. A refused
connection or a 4xx reply moves on to the next host and, when none took it,
waits (the scenario's ``retry`` seconds) and tries again; a 5xx reply, a DNS
answer that says the domain takes no mail, or running out of tries, sends a
bounce (a delivery status notification) to the sender. Bounces have the null
sender ``<>`` so that they are never bounced themselves.

Exactly once: a recipient leaves the queue as soon as a next hop has said 250
for it, and only then; the item's file is rewritten with those that remain.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage, Message
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from .mailboxes import domain_problem
from .statefile import private_dir
from .topology import Host

if TYPE_CHECKING:
    from .client import Endpoint
    from .world import MailWorld

__all__ = ["Relay", "delivery_status_notification"]


@dataclass
class QueuedMessage:
    queue_id: str
    mail_from: str
    rcpts: list[str]
    attempts: int = 0
    message_id: str = ""
    history: list[str] = field(default_factory=list)  # what each try found, for the bounce and the trace


class Relay:
    """One host's queue and delivery workers."""

    def __init__(self, world: MailWorld, host: Host) -> None:
        self.world = world
        self.host = host
        self.directory = world.state_dir / "queue" / host.name
        self.tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def pending(self) -> int:
        return len(self.tasks)

    def queued(self) -> list[QueuedMessage]:
        """What waits in this host's queue now (read from disk)."""
        return [QueuedMessage(**json.loads(p.read_text())) for p in sorted(self.directory.glob("*.json"))]

    # --- the queue on disk -----------------------------------------------
    def _paths(self, queue_id: str) -> tuple[Path, Path]:
        return self.directory / f"{queue_id}.json", self.directory / f"{queue_id}.eml"

    def _write(self, item: QueuedMessage, message: tuple[bytes, ...] | None) -> None:
        private_dir(self.directory)
        envelope, body = self._paths(item.queue_id)
        sync = self.world.store.durable
        if message is not None:
            _write_atomically(body, sync, *message)
        _write_atomically(envelope, sync, json.dumps(asdict(item)).encode())  # last: it marks the item complete

    def _handed_on(self, item: QueuedMessage, accepted: list[str]) -> None:
        """A next hop said 250 for `accepted` (or a bounce for them is stored): off the item on disk at once.

        The crash window of a relay is between the next hop's 250 and this write: a crash there
        sends the message again (SMTP is at-least-once, RFC 5321 section 6.1). Writing here, on
        the loop and before anything else happens, keeps that window to one small file write.
        """
        item.rcpts = [r for r in item.rcpts if r not in accepted]
        envelope, _ = self._paths(item.queue_id)
        if item.rcpts:
            _write_atomically(envelope, self.world.store.durable, json.dumps(asdict(item)).encode())
        else:
            envelope.unlink(missing_ok=True)  # the envelope first: without it the body is not an item

    async def enqueue(self, mail_from: str, rcpts: list[str], message: bytes, queue_id: str,
                      message_id: str = "", trace: bytes = b"") -> None:
        """Store the message (after this hop's `trace` headers) safely, then start delivering it.

        Returns once it is on disk.
        """
        item = QueuedMessage(queue_id, mail_from, rcpts, message_id=message_id)
        await asyncio.get_running_loop().run_in_executor(self.world.store.io, self._write, item, (trace, message))
        self._start(item)

    def resume(self) -> None:
        """Pick up what an earlier lab on this state directory left in the queue."""
        for envelope in sorted(self.directory.glob("*.json")):
            try:
                self._start(QueuedMessage(**json.loads(envelope.read_text())))
            except (ValueError, TypeError) as err:
                self.world.report("queue", f"unreadable queue file {envelope}: {err}")

    def _start(self, item: QueuedMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(item), name=f"relay {item.queue_id}")
        qid = item.queue_id
        self.tasks[qid] = task
        task.add_done_callback(lambda _t: self.tasks.pop(qid, None))

    def stop(self) -> None:
        """Stop delivering; what is queued stays on disk for the next lab."""
        for task in self.tasks.values():
            task.cancel()

    # --- delivery ----------------------------------------------------------
    async def _deliver(self, item: QueuedMessage) -> None:
        try:
            await self._deliver_item(item)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug must not lose mail: the item stays queued for the next lab
            self.world.report("relay", f"relay of {item.queue_id} stopped by {err!r}; it stays in {self.directory}")

    async def _deliver_item(self, item: QueuedMessage) -> None:
        envelope, body = self._paths(item.queue_id)
        message = await asyncio.get_running_loop().run_in_executor(self.world.store.io, body.read_bytes)
        delays = self.world.retry_delays
        while item.rcpts:
            failed: dict[str, str] = {}
            later: dict[str, str] = {}
            for domain in sorted({_domain(r) for r in item.rcpts}):
                rcpts = [r for r in item.rcpts if _domain(r) == domain]
                try:
                    bad, retry = await self._deliver_domain(domain, item, rcpts, message)
                except Exception as err:  # a bug must not keep mail forever: it counts as a failed try
                    self.world.report("relay", f"relay of {item.queue_id} to {domain} met {err!r}")
                    bad, retry = {}, {r: f"451 4.3.0 the relay met an internal error ({type(err).__name__})"
                                      for r in rcpts}
                failed.update(bad)
                later.update(retry)
            item.attempts += 1
            if later and item.attempts > len(delays):
                failed.update({r: f"{why} (gave up after {item.attempts} tries)" for r, why in later.items()})
                later = {}
            if failed:
                self.world.journal("bounced", self.host.name, item.queue_id, item.message_id, rcpts=list(failed))
                await self.world.bounce(self.host, item.mail_from, failed, message)
                self._handed_on(item, list(failed))  # the bounce is stored: never bounce twice after a crash
            item.rcpts = list(later)
            if later:
                wait = delays[item.attempts - 1]
                item.history.append(f"try {item.attempts}: " + "; ".join(f"{r}: {why}" for r, why in later.items()))
                self.world.journal("deferred", self.host.name, item.queue_id, item.message_id, rcpts=list(later),
                                  why=list(later.values())[0], retry_in=wait)
                self._write(item, None)
                await asyncio.sleep(wait)
        envelope.unlink(missing_ok=True)
        body.unlink(missing_ok=True)

    async def _deliver_domain(self, domain: str, item: QueuedMessage, rcpts: list[str],
                              message: bytes) -> tuple[dict[str, str], dict[str, str]]:
        """Try each next hop for `domain` in turn: (permanently failed, try again later), each rcpt -> why."""
        problem = domain_problem(domain)
        if problem:  # no DNS name, so no next hop ever: bounce now rather than retry for days
            return {r: f"550 5.1.2 bad destination domain {domain[:80]!r}: {problem}" for r in rcpts}, {}
        hops = await self._next_hops(domain)
        if isinstance(hops, tuple):  # the lookup failed
            reply, permanent = hops
            return ({r: reply for r in rcpts}, {}) if permanent else ({}, {r: reply for r in rcpts})
        pending = list(rcpts)
        failed: dict[str, str] = {}
        why = "no next hop answered"
        for endpoint in hops:
            started = time.time()
            result = await self.world.deliver_once(self.host, endpoint, item.mail_from, pending, message)
            if result.accepted:
                self._handed_on(item, result.accepted)  # first, so a crash from here on cannot send it twice
                self.world.journal("relayed", self.host.name, item.queue_id, item.message_id, started=started,
                                  to=endpoint.host.name, tls=result.tls, rcpts=result.accepted)
            for rcpt, reply in result.refused.items():
                if reply.startswith("5"):
                    failed[rcpt] = reply
            if result.error_code is not None and result.error_code >= 500 and not result.refused:
                failed.update({r: result.last_reply for r in pending if r not in result.accepted})
            pending = [r for r in pending if r not in result.accepted and r not in failed]
            if not pending:
                break
            why = result.last_reply or next(iter(result.refused.values()), "") or result.error or why
        return failed, {r: why for r in pending}

    async def _next_hops(self, domain: str) -> list[Endpoint] | tuple[str, bool]:
        """The endpoints to try for `domain`, best first; or (reply, permanent) when there are none."""
        route = self.host.next_hop(domain)
        if route:
            return [self.world.endpoint(route, 25)]
        lookup = await self.world.lookup_mx(domain)
        if not lookup.ok:
            return lookup.reply, lookup.permanent
        hops = [ep for host in lookup.hosts for address in host.addresses
                if (ep := self.world.endpoint_at(address, 25, host.name)) is not None]
        if not hops:
            return f"451 4.4.1 no MX host of {domain} is a lab host listening on port 25", False
        unique = {(ep.address, ep.bound_port): ep for ep in reversed(hops)}  # one try per endpoint
        return sorted(unique.values(), key=hops.index)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def delivery_status_notification(host: str, sender: str, failed: dict[str, str], original: bytes) -> bytes:
    """A bounce (RFC 3464 multipart/report) quoting each receiving server's reply."""
    report = EmailMessage()
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{host}>"
    report["To"] = sender
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(localtime())
    report["Message-ID"] = make_msgid(domain=host)
    lines = [f"This is the mail system at {host}.", "", "Your message could not be delivered to:", ""]
    lines += [f"  <{rcpt}>: {reply}" for rcpt, reply in failed.items()]
    report.set_content("\n".join(lines) + "\n")
    report.make_mixed()
    # message/delivery-status is a list of header blocks: one for the reporting MTA, one per recipient.
    blocks: list[Message | str] = [_header_block({"Reporting-MTA": f"dns; {host}"})]
    blocks += [_header_block({"Final-Recipient": f"rfc822; {rcpt}", "Action": "failed", "Status": _status(reply),
                              "Diagnostic-Code": f"smtp; {reply}"}) for rcpt, reply in failed.items()]
    status = EmailMessage()
    status["Content-Type"] = "message/delivery-status"
    status.set_payload(blocks)
    report.attach(status)
    end = original.find(b"\r\n\r\n")  # not split(): that would copy the whole body too
    headers = original[:end if end >= 0 else len(original)].decode("utf-8", "replace").replace("\r\n", "\n")
    report.add_attachment(headers + "\n", subtype="rfc822-headers", disposition="inline")
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")
    return report.as_bytes(policy=report.policy.clone(linesep="\r\n"))


def _header_block(fields: dict[str, str]) -> Message:
    block = Message()
    for name, value in fields.items():
        block[name] = value
    return block


def _status(reply: str) -> str:
    parts = reply.split()
    return parts[1] if len(parts) > 1 and parts[1][:1].isdigit() and parts[1].count(".") == 2 else "5.0.0"


def _write_atomically(path: Path, sync: bool, *parts: bytes) -> None:
    """Readers see the old file or the new one, never half of one (and, with `sync`, so does a power cut)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:  # private, as all state
        f.writelines(parts)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
