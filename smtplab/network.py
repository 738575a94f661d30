"""Links between places: what a real network does to a TCP connection, on loopback.

On loopback every reply comes back in microseconds, so a timing plot of the
bare lab would teach nothing. A :class:`Link` is a small TCP relay placed
between a client and a lab listener that gives the path the properties of a
real one:

* a one-way ``delay`` (and ``jitter``) on every chunk, each way, in order;
* a ``bandwidth`` limit: a chunk takes len/bandwidth seconds to go out;
* a blocked port: ``refuse`` (a firewall that answers with a reset) or
  ``timeout`` (one that drops packets, so the client waits and gives up);
* a tap: the bytes exactly as they crossed the wire, with times, so a
  student sees readable SMTP up to STARTTLS and TLS records after it;
* a ``middlebox``: a function that may change what passes (an attacker
  stripping STARTTLS, a proxy).

A link is made on first use for each (place, listener) pair and lives until
the lab stops.
"""

from __future__ import annotations

import asyncio
import html
import random
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .client import Endpoint
from .connections import ConnectionKey, Connections, key_of

__all__ = ["Capture", "Link", "LinkSettings", "Network", "Place", "StripStartTLS", "WireRecord"]

#: Bytes of each direction a capture keeps (a 10 MB message is not kept whole).
CAPTURE_LIMIT = 256 * 1024

#: A middlebox sees (direction, bytes) and returns what goes on (maybe changed, maybe b"").
Middlebox = Callable[[str, bytes], bytes]


class StripStartTLS:
    """A man in the middle that deletes STARTTLS from the server's EHLO reply (one per connection).

    A client that only upgrades when STARTTLS is offered goes on in plain text, and
    everything after, a password included, crosses the network readable. A client that
    requires TLS notices the missing capability and stops. RFC 3207 section 6 warns of this.
    """

    def __init__(self) -> None:
        self.done = False  # once TLS could have begun (the client asked), pass everything untouched
        self.stripped = 0

    def __call__(self, direction: str, data: bytes) -> bytes:
        if self.done:
            return data
        if direction == "client":
            if b"STARTTLS" in data.upper():
                self.done = True
            return data
        lines = data.split(b"\r\n")
        kept = [line for line in lines if line.upper() not in (b"250-STARTTLS", b"250 STARTTLS")]
        self.stripped += len(lines) - len(kept)
        return b"\r\n".join(kept)


ATTACKS: dict[str, Callable[[], Middlebox]] = {"strip-starttls": StripStartTLS}


@dataclass(frozen=True)
class LinkSettings:
    """What the network between a place and a server does."""

    delay: float = 0.0  # one-way, seconds
    jitter: float = 0.0  # up to this much more, at random, per chunk (order is kept)
    bandwidth: float | None = None  # bytes per second, each way
    block: str = ""  # "", "refuse" or "timeout"

    @property
    def plain(self) -> bool:
        return not (self.delay or self.jitter or self.bandwidth or self.block)


@dataclass
class Capture:
    """One connection's bytes as they crossed the link: (seconds since connect, direction, bytes)."""

    place: str
    server: str
    port: int
    chunks: list[tuple[float, str, bytes]] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=lambda: {"client": 0, "server": 0})

    def add(self, t: float, direction: str, data: bytes) -> None:
        room = CAPTURE_LIMIT - self.kept[direction]
        if room > 0:
            self.chunks.append((t, direction, data[:room]))
            self.kept[direction] += min(len(data), room)

    def bytes_from(self, direction: str) -> bytes:
        return b"".join(data for _, d, data in self.chunks if d == direction)

    def records(self) -> list[WireRecord]:
        """What crossed the wire, in time order: readable SMTP lines, then TLS records (type, size, bytes)."""
        found: list[WireRecord] = []
        for direction in ("client", "server"):
            found += _parse(direction, [(t, data) for t, d, data in self.chunks if d == direction])
        return sorted(found, key=lambda r: r.t)

    def text(self) -> str:
        return "\n".join(f"{r.t * 1000:8.1f} ms  {'C->S' if r.direction == 'client' else 'S->C'}  {r.summary}"
                         for r in self.records())

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='text-align:right'>{r.t * 1000:.1f}</td>"
            f"<td>{'client → server' if r.direction == 'client' else 'server → client'}</td>"
            f"<td>{r.kind}</td><td style='text-align:left'><code>{html.escape(r.summary)}</code></td>"
            f"<td style='text-align:left'><code>{html.escape(r.hex)}</code></td></tr>" for r in self.records())
        return (f"<div><b>On the wire</b> between {html.escape(self.place)} and {html.escape(self.server)} port {self.port}"
                "<table><thead><tr><th>ms</th><th>direction</th><th>what</th><th>as readable as it gets</th>"
                f"<th>first bytes (hex)</th></tr></thead><tbody>{rows}</tbody></table></div>")


@dataclass
class WireRecord:
    """One thing seen on the wire: an SMTP line in clear, or a TLS record."""

    t: float
    direction: str
    kind: str  # "SMTP" (readable) or "TLS"
    summary: str
    hex: str
    raw: bytes


TLS_TYPES = {20: "ChangeCipherSpec", 21: "Alert", 22: "Handshake", 23: "Application data (encrypted)"}
HANDSHAKE_TYPES = {1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket", 11: "Certificate",
                   12: "ServerKeyExchange", 16: "ClientKeyExchange", 20: "Finished"}


def _parse(direction: str, chunks: list[tuple[float, bytes]]) -> list[WireRecord]:
    """Split one direction's bytes into SMTP lines until TLS begins, then into TLS records."""
    stream = b"".join(data for _, data in chunks)
    starts, offset = [], 0
    for t, data in chunks:  # the time each byte offset arrived
        starts.append((offset, t))
        offset += len(data)

    def time_at(pos: int) -> float:
        return next((t for off, t in reversed(starts) if off <= pos), 0.0)

    out: list[WireRecord] = []
    pos = 0
    while pos < len(stream):
        if stream[pos] in TLS_TYPES and stream[pos + 1:pos + 2] == b"\x03" and len(stream) - pos >= 5:
            kind, length = stream[pos], int.from_bytes(stream[pos + 3:pos + 5], "big")
            record = stream[pos:pos + 5 + length]
            what = TLS_TYPES[kind]
            if kind == 22 and len(record) > 5:
                what += f": {HANDSHAKE_TYPES.get(record[5], 'handshake message')}"
            out.append(WireRecord(time_at(pos), direction, "TLS",
                                  f"TLS record, {what}, {length} bytes (version bytes {record[1]:02x}{record[2]:02x})",
                                  record[:16].hex(" "), record))
            pos += 5 + length
            continue
        end = stream.find(b"\n", pos)
        end = len(stream) if end < 0 else end + 1
        line = stream[pos:end]
        out.append(WireRecord(time_at(pos), direction, "SMTP", line.rstrip(b"\r\n").decode("utf-8", "backslashreplace"),
                              line[:16].hex(" "), line))
        pos = end
    return out


class Link:
    """A TCP relay from one place to one lab listener, with a network's properties."""

    def __init__(self, place: str, server: str, port: int, target: tuple[str, int], settings: LinkSettings,
                 middlebox: Callable[[], Middlebox] | None = None, bind_address: str = "127.0.0.1",
                 connections: Connections | None = None) -> None:
        self.place, self.server, self.port = place, server, port
        self.connections = connections if connections is not None else Connections()
        self.target = target
        self.settings = settings
        self.middlebox = middlebox
        self.bind_address = bind_address
        self.address = bind_address
        self.bound_port = 0
        self.captures: deque[Capture] = deque(maxlen=50)  # the latest connections' bytes, for a look afterwards
        self._server: asyncio.base_events.Server | None = None
        self._blocker: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random()

    # --- life --------------------------------------------------------------
    async def start(self) -> None:
        if self.settings.block:
            self._start_blocked()
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((self.bind_address, 0))
        self.bound_port = sock.getsockname()[1]
        self._server = await asyncio.get_running_loop().create_server(lambda: _Accepted(self), sock=sock)

    def _start_blocked(self) -> None:
        """A port a firewall blocks: nothing listens (refused), or nothing ever answers (timeout)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.bind_address, 0))
        self.bound_port = sock.getsockname()[1]
        self._blocker = sock
        if self.settings.block == "timeout":
            # A listening socket whose accept queue is full: the kernel drops new SYNs, so a
            # client's connect waits and times out, as behind a firewall that drops packets.
            sock.listen(0)
            for _ in range(2):
                filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                filler.setblocking(False)
                filler.connect_ex((self.bind_address, self.bound_port))
                self._held.append(filler)
        # "refuse": bound but not listening, so a connect gets a reset at once.

    async def stop(self) -> None:
        for s in [*self._held, *( [self._blocker] if self._blocker else [])]:
            s.close()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- one connection ------------------------------------------------------
    async def _serve(self, client: _Accepted) -> None:
        loop = asyncio.get_running_loop()
        peer = client.transport.get_extra_info("peername")
        carried = key_of(peer, client.transport.get_extra_info("sockname"))
        capture = Capture(self.place, self.server, self.port)
        self.captures.append(capture)
        start = time.perf_counter()
        # From the client's own loopback address: the server sees who really connects. Bound
        # first, so the server's side knows whom this leg carries before it can accept it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setblocking(False)
        upstream: ConnectionKey | None = None
        try:
            sock.bind((peer[0], 0))
            upstream = key_of(sock.getsockname(), self.target)
            self.connections.carry(upstream, carried, capture)
            await loop.sock_connect(sock, self.target)
            upstream_reader, upstream_writer = await asyncio.open_connection(sock=sock)
        except BaseException as err:  # refused, or the link stopped while connecting
            sock.close()
            if upstream is not None:
                self.connections.release(upstream)
            client.transport.abort()
            if isinstance(err, OSError):
                return
            raise
        try:
            await self._relay(client, upstream_reader, upstream_writer, capture, start)
        finally:
            self.connections.release(upstream)

    async def _relay(self, client: _Accepted, upstream_reader: asyncio.StreamReader,
                     upstream_writer: asyncio.StreamWriter, capture: Capture, start: float) -> None:
        loop = asyncio.get_running_loop()
        middlebox = self.middlebox() if self.middlebox is not None else None  # one per connection: it has state
        up_task = loop.create_task(self._pump("client", client.reader, upstream_writer, capture, start, middlebox))
        down_task = loop.create_task(self._pump("server", upstream_reader, client.writer, capture, start, middlebox))
        for task in (up_task, down_task):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.gather(up_task, down_task, return_exceptions=True)

    async def _pump(self, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    capture: Capture, start: float, middlebox: Middlebox | None) -> None:
        """Carry one direction: each chunk is stamped as it arrives and written when the network would deliver it.

        Reading and writing are two tasks joined by a queue, so a chunk that arrives while an
        earlier one is still "in flight" is not held up by it: both travel the same delay, in order.
        """
        settings = self.settings
        in_flight: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await in_flight.get()) is not None:
                release, data = item
                wait = release - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.get_running_loop().create_task(deliver())
        free_at = last_release = 0.0  # when the (bandwidth-limited) wire is free again; the last release
        try:
            while data := await reader.read(65536):
                now = time.perf_counter()
                # The tap sits on the client's side of the path: what the client sent, and what reached it
                # (after any man in the middle had its way).
                if direction == "client":
                    capture.add(now - start, direction, data)
                if middlebox is not None:
                    data = middlebox(direction, data)
                if direction == "server":
                    capture.add(now - start, direction, data)
                if not data:
                    continue
                if settings.bandwidth:
                    free_at = max(now, free_at) + len(data) / settings.bandwidth
                sent = free_at if settings.bandwidth else now
                release = sent + settings.delay + (self._rng.uniform(0, settings.jitter) if settings.jitter else 0.0)
                last_release = max(release, last_release)  # a link never reorders
                in_flight.put_nowait((last_release, data))
            in_flight.put_nowait(None)
            await sender
        except (ConnectionError, asyncio.CancelledError):
            sender.cancel()
        finally:
            if not writer.is_closing():
                try:
                    writer.write_eof() if writer.can_write_eof() else None
                except (OSError, RuntimeError):
                    pass
                writer.close()


@dataclass(frozen=True)
class Place:
    """Somewhere a client sends from, and what its network lets through (scenario data: ``[[networks]]``)."""

    name: str
    about: str = ""
    delay: float = 0.0  # one-way, seconds, to every server
    jitter: float = 0.0
    bandwidth: float | None = None  # bytes per second
    blocked: tuple[int, ...] = ()  # logical ports this network blocks
    allowed: tuple[int, ...] | None = None  # if set, the only ports it lets out
    how: str = "timeout"  # how a blocked port looks: "timeout" (dropped) or "refuse" (reset)
    attack: str = ""  # a man in the middle on this network: "strip-starttls"

    def lets_out(self, port: int) -> bool:
        return port not in self.blocked and (self.allowed is None or port in self.allowed)

    def link_settings(self, port: int) -> LinkSettings:
        return LinkSettings(self.delay, self.jitter, self.bandwidth, "" if self.lets_out(port) else self.how)

    @classmethod
    def from_dict(cls, data: dict) -> Place:
        allowed = data.get("allowed")
        kbps = data.get("bandwidth_kbps")
        return cls(data["name"], data.get("about", ""), data.get("delay_ms", 0) / 1000, data.get("jitter_ms", 0) / 1000,
                   kbps * 1000 / 8 if kbps else None, tuple(data.get("blocked", ())),
                   tuple(allowed) if allowed is not None else None, data.get("how", "timeout"),
                   data.get("attack", ""))


class Network:
    """Every place and the links made from them, for one lab (lives on the lab's loop)."""

    def __init__(self, places: dict[str, Place], connections: Connections | None = None) -> None:
        self.places = {"student": Place("student", "wherever the notebook or terminal runs: no limits"), **places}
        self.connections = connections if connections is not None else Connections()
        self.links: dict[tuple[str, str, int], Link] = {}

    def place(self, name: str) -> Place:
        return self.places.get(name) or Place(name)  # a lab host relaying is a place with no limits

    async def route(self, place: str, endpoint: Endpoint, force: bool = False) -> tuple[Endpoint, Link | None]:
        """Where a client at `place` must connect to reach `endpoint`: the endpoint itself, or a link to it."""
        where = self.place(place)
        settings = where.link_settings(endpoint.listener.port)
        middlebox = ATTACKS.get(where.attack)
        if settings.plain and not force and middlebox is None:
            return endpoint, None
        key = (place, endpoint.host.name, endpoint.listener.port)
        link = self.links.get(key)
        if link is None or link.settings != settings or link.middlebox is not middlebox \
                or link.target != (endpoint.address, endpoint.bound_port):
            if link is not None:
                await link.stop()
            link = Link(place, endpoint.host.name, endpoint.listener.port, (endpoint.address, endpoint.bound_port),
                        settings, middlebox, connections=self.connections)
            await link.start()
            self.links[key] = link
        return Endpoint(endpoint.host, endpoint.listener, link.address, link.bound_port), link

    async def stop(self) -> None:
        for link in self.links.values():
            await link.stop()
        self.links.clear()


class _Accepted(asyncio.StreamReaderProtocol):
    """The link's side of a client's connection: a stream reader/writer pair, then the relay."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.reader = asyncio.StreamReader()
        super().__init__(self.reader, self._connected)

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.transport = writer.transport
        task = asyncio.get_running_loop().create_task(self.link._serve(self))
        self.link._tasks.add(task)
        task.add_done_callback(self.link._tasks.discard)
