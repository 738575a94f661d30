"""What happened to each message, hop by hop: the lab's journal and the per-message trace.

Every host notes when it received a message (from whom, over TLS or not),
when it queued, relayed, delivered, deferred or bounced it. A
:class:`MessageTrace` lays one message's events out as hops: where it
arrived, when it left, how long it sat in a queue. The path itself is the
one the Received headers of the delivered copy tell, read from the bottom up.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Journal", "Hop", "MessageTrace"]


@dataclass
class Event:
    time: float  # time.time() when it happened
    event: str  # received, queued, relayed, delivered, deferred, bounced
    host: str
    queue_id: str
    message_id: str
    details: dict[str, Any] = field(default_factory=dict)


class Journal:
    """A bounded list of what each host did with each message."""

    def __init__(self, limit: int = 20_000) -> None:
        self.events: list[Event] = []
        self.limit = limit

    def add(self, event: str, host: str, queue_id: str, message_id: str, **details: Any) -> None:
        if len(self.events) >= self.limit:
            del self.events[: self.limit // 10]
        self.events.append(Event(time.time(), event, host, queue_id, message_id, details))

    def of(self, message_id: str) -> list[Event]:
        return [e for e in self.events if e.message_id == message_id]


@dataclass
class Hop:
    host: str
    came_from: str
    arrived: float
    left: float | None  # None: delivered here, still queued, or bounced
    tls_in: bool
    outcome: str  # "delivered", "relayed to mx1.example.net", "queued", "bounced", ...
    checks: str = ""  # sender authentication at this hop: "DKIM-signed (example.org, s=lab)", "spf=pass ..."

    @property
    def queued(self) -> float | None:
        return None if self.left is None else self.left - self.arrived


@dataclass
class MessageTrace:
    """One message's journey through the lab."""

    message_id: str
    hops: list[Hop]
    events: list[Event]

    def __repr__(self) -> str:
        return f"<MessageTrace {self.message_id}: {len(self.hops)} hops>"

    @property
    def total(self) -> float | None:
        """Seconds from the first server's acceptance to the last hop's."""
        return self.hops[-1].arrived - self.hops[0].arrived if self.hops else None

    @classmethod
    def build(cls, journal: Journal, message_id: str) -> MessageTrace:
        events = journal.of(message_id)
        hops: list[Hop] = []
        for e in events:
            if e.event == "received":
                hops.append(Hop(e.host, e.details.get("client", "?"), e.time, None, e.details.get("tls", False), "queued"))
                continue
            hop = next((h for h in reversed(hops) if h.host == e.host), None)
            if hop is None:
                continue
            if e.event == "relayed":
                hop.left = hop.left or e.details.get("started", e.time)  # when it set off for the next hop
                hop.outcome = f"relayed to {e.details.get('to')}" + (" over TLS" if e.details.get("tls") else "")
            elif e.event == "delivered":
                folder = e.details.get("folder", "")
                hop.outcome = f"delivered to {folder + ' of ' if folder else ''}" + ", ".join(e.details.get("rcpts", []))
            elif e.event == "signed":
                hop.checks = (hop.checks + "; " if hop.checks else "") + \
                    f"DKIM-signed as {e.details.get('domain')} (selector {e.details.get('selector')})"
            elif e.event == "checked":
                hop.checks = (hop.checks + "; " if hop.checks else "") + str(e.details.get("summary", ""))
                if e.details.get("action") == "junk":
                    hop.outcome = "delivered to Junk of " + ", ".join(e.details.get("rcpts", []))
            elif e.event in ("bounced", "deferred"):
                hop.outcome = e.event + (f": {e.details['why']}" if "why" in e.details else "")
        return cls(message_id, hops, events)

    def rows(self) -> list[dict[str, Any]]:
        start = self.hops[0].arrived if self.hops else 0.0
        checked = any(h.checks for h in self.hops)  # the column appears only where a hop checked or signed
        return [{"hop": i, "host": h.host, "from": h.came_from, "TLS in": "yes" if h.tls_in else "no",
                 "arrived (ms)": round((h.arrived - start) * 1000, 1),
                 "queued (ms)": None if h.queued is None else round(h.queued * 1000, 1), "then": h.outcome,
                 **({"sender checks": h.checks} if checked else {})}
                for i, h in enumerate(self.hops, 1)]

    def __str__(self) -> str:
        lines = [f"trace of {self.message_id}"]
        for r in self.rows():
            queued = "" if r["queued (ms)"] is None else f", queued {r['queued (ms)']} ms"
            lines.append(f"  {r['hop']}. {r['host']} from {r['from']} (TLS in: {r['TLS in']}) "
                         f"at +{r['arrived (ms)']} ms{queued}: {r['then']}"
                         + (f" [{r['sender checks']}]" if r.get("sender checks") else ""))
        return "\n".join(lines)

    def table_html(self) -> str:
        """The hops as an HTML table (what notebooks and widgets show)."""
        rows = self.rows()
        if not rows:
            return f"<p>No server has seen {html.escape(self.message_id)} (yet).</p>"
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r.values())
                       + "</tr>" for r in rows)
        return f"<table class='smtplab-trace'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_html_(self) -> str:
        return f"<div><b>Trace of</b> <code>{html.escape(self.message_id)}</code>{self.table_html()}</div>"
