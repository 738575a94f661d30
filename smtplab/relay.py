"""The outbound queue of a host that relays: MX routing, retries and bounces.

A message for another domain is written to ``STATE_DIR/queue/<host>/`` (the
envelope as JSON beside the message; synced with ``Lab(durable=True)``) before the server answers
250, so it survives a stop: a new lab on the same state directory picks the
queue up again. Delivery follows the MX records in the lab DNS, best first;
a refused connection or a 4xx reply moves on to the next MX and, when none
took it, waits and tries again; a 5xx reply, or running out of tries, sends a
bounce (a delivery status notification) to the sender. Bounces have the null
sender ``<>`` so that they are never bounced themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import asdict, dataclass
from email.message import EmailMessage, Message
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from .dns import DNSFailure, resolve_mx
from .result import LabError
from .topology import Host

if TYPE_CHECKING:
    from .lab import Lab

__all__ = ["Relay"]

#: Seconds between tries; a lab scales time down so a notebook can watch a retry.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)


@dataclass
class QueuedMessage:
    queue_id: str
    mail_from: str
    rcpts: list[str]
    attempts: int = 0


class Relay:
    """One relaying host's queue and delivery workers."""

    def __init__(self, lab: "Lab", host: Host) -> None:
        self.lab = lab
        self.host = host
        self.directory = lab.state_dir / "queue" / host.name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def pending(self) -> int:
        return len(self.tasks)

    # --- the queue on disk -----------------------------------------------
    def _paths(self, queue_id: str) -> tuple[Path, Path]:
        return self.directory / f"{queue_id}.json", self.directory / f"{queue_id}.eml"

    def _write(self, item: QueuedMessage, message: bytes | None) -> None:
        envelope, body = self._paths(item.queue_id)
        sync = self.lab.store.durable
        if message is not None:
            _write_atomically(body, message, sync)
        _write_atomically(envelope, json.dumps(asdict(item)).encode(), sync)  # last: it marks the item complete

    async def enqueue(self, mail_from: str, rcpts: list[str], message: bytes, queue_id: str) -> None:
        """Store the message safely, then start delivering it. Returns once it is on disk."""
        item = QueuedMessage(queue_id, mail_from, rcpts)
        await asyncio.get_running_loop().run_in_executor(self.lab.store.io, self._write, item, message)
        self._start(item)

    def resume(self) -> None:
        """Pick up what an earlier lab on this state directory left in the queue."""
        for envelope in sorted(self.directory.glob("*.json")):
            try:
                self._start(QueuedMessage(**json.loads(envelope.read_text())))
            except (ValueError, TypeError) as err:
                self.lab.errors.append(f"unreadable queue file {envelope}: {err}")

    def _start(self, item: QueuedMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(item), name=f"relay {item.queue_id}")
        self.tasks[item.queue_id] = task
        task.add_done_callback(lambda _t, qid=item.queue_id: self.tasks.pop(qid, None))

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
            self.lab.errors.append(f"relay of {item.queue_id} stopped by {err!r}; it stays in {self.directory}")

    async def _deliver_item(self, item: QueuedMessage) -> None:
        envelope, body = self._paths(item.queue_id)
        message = await asyncio.get_running_loop().run_in_executor(self.lab.store.io, body.read_bytes)
        while item.rcpts:
            failed: dict[str, str] = {}
            retry: list[str] = []
            for domain in sorted({r.rpartition("@")[2].lower() for r in item.rcpts}):
                rcpts = [r for r in item.rcpts if r.rpartition("@")[2].lower() == domain]
                done, bad, later = await self._deliver_domain(domain, item, rcpts, message)
                failed.update(bad)
                retry += later
            item.attempts += 1
            if retry and item.attempts > len(RETRY_DELAYS):
                failed.update({r: "retries exhausted: the receiving servers kept answering 'try later'" for r in retry})
                retry = []
            if failed:
                await self._bounce(item, failed, message)
            item.rcpts = retry
            if retry:
                self._write(item, None)
                await asyncio.sleep(RETRY_DELAYS[item.attempts - 1])
        envelope.unlink(missing_ok=True)
        body.unlink(missing_ok=True)

    async def _deliver_domain(self, domain: str, item: QueuedMessage, rcpts: list[str],
                              message: bytes) -> tuple[list[str], dict[str, str], list[str]]:
        """Try each MX of `domain` in turn: (delivered, permanently failed, try again later)."""
        try:
            hosts = await resolve_mx(domain, self.lab.dns.address, self.lab.dns.port)
        except DNSFailure as err:
            return ([], {r: err.reply for r in rcpts}, []) if err.permanent else ([], {}, rcpts)
        pending = list(rcpts)
        delivered: list[str] = []
        failed: dict[str, str] = {}
        for mx in hosts:
            try:
                endpoint = self.lab.endpoint(mx, 25)
            except LabError:
                continue  # a name the lab serves nothing on: like a host that does not answer
            result = await self.lab._deliver_once(self.host, endpoint, item.mail_from, pending, message)
            if result.error_code is not None and result.error_code >= 500 and not result.refused:
                return delivered, {r: f"{result.error_code} {result.error}" for r in pending}, []
            delivered += result.accepted
            for rcpt, reply in result.refused.items():
                if reply.startswith("5"):
                    failed[rcpt] = reply
            pending = [r for r in pending if r not in result.accepted and r not in failed]
            if not pending:
                break
        return delivered, failed, pending

    async def _bounce(self, item: QueuedMessage, failed: dict[str, str], original: bytes) -> None:
        if not item.mail_from:
            self.lab.errors.append(f"double bounce dropped for {', '.join(failed)} (the bounce itself failed)")
            return
        dsn = delivery_status_notification(self.host.name, item.mail_from, failed, original)
        await self.lab._accept(self.host, "", [item.mail_from], dsn, secrets.token_hex(5).upper())


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
    blocks = [_header_block({"Reporting-MTA": f"dns; {host}"})]
    blocks += [_header_block({"Final-Recipient": f"rfc822; {rcpt}", "Action": "failed", "Status": _status(reply),
                              "Diagnostic-Code": f"smtp; {reply}"}) for rcpt, reply in failed.items()]
    status = EmailMessage()
    status["Content-Type"] = "message/delivery-status"
    status.set_payload(blocks)
    report.attach(status)
    headers = original.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").replace("\r\n", "\n")
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


def _write_atomically(path: Path, data: bytes, sync: bool) -> None:
    """Readers see the old file or the new one, never half of one (and, with `sync`, so does a power cut)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
