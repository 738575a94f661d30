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
import random
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .client import Endpoint

__all__ = ["Capture", "Link", "LinkSettings", "Network", "Place"]

#: Bytes of each direction a capture keeps (a 10 MB message is not kept whole).
CAPTURE_LIMIT = 256 * 1024

#: A middlebox sees (direction, bytes) and returns what goes on (maybe changed, maybe b"").
Middlebox = Callable[[str, bytes], bytes]


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


class Link:
    """A TCP relay from one place to one lab listener, with a network's properties."""

    def __init__(self, place: str, server: str, port: int, target: tuple[str, int], settings: LinkSettings,
                 middlebox: Middlebox | None = None, bind_address: str = "127.0.0.1") -> None:
        self.place, self.server, self.port = place, server, port
        self.target = target
        self.settings = settings
        self.middlebox = middlebox
        self.bind_address = bind_address
        self.address = bind_address
        self.bound_port = 0
        self.captures: deque[Capture] = deque(maxlen=50)
        self._by_peer: dict[str, Capture] = {}
        self.client_of: dict[str, str] = {}  # the link's own upstream address -> the client it carries
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

    def capture_for(self, client_address: str) -> Capture | None:
        """The capture of the connection that came from `client_address` ("ip:port")."""
        return self._by_peer.get(client_address)

    # --- one connection ------------------------------------------------------
    async def _serve(self, client: "_Accepted") -> None:
        loop = asyncio.get_running_loop()
        peer = client.transport.get_extra_info("peername")
        capture = Capture(self.place, self.server, self.port)
        self.captures.append(capture)
        self._by_peer[f"{peer[0]}:{peer[1]}"] = capture
        if len(self._by_peer) > 200:
            self._by_peer.pop(next(iter(self._by_peer)))
        start = time.perf_counter()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client.transport.abort()
            return
        upstream = upstream_writer.get_extra_info("sockname")
        self.client_of[f"{upstream[0]}:{upstream[1]}"] = f"{peer[0]}:{peer[1]}"
        if len(self.client_of) > 200:
            self.client_of.pop(next(iter(self.client_of)))
        up_task = loop.create_task(self._pump("client", client.reader, upstream_writer, capture, start))
        down_task = loop.create_task(self._pump("server", upstream_reader, client.writer, capture, start))
        for task in (up_task, down_task):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.gather(up_task, down_task, return_exceptions=True)

    async def _pump(self, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    capture: Capture, start: float) -> None:
        """Carry one direction: read, wait as the network would, write, in order."""
        settings = self.settings
        free_at = 0.0  # when the (bandwidth-limited) wire is free again
        last_release = 0.0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                now = time.perf_counter()
                capture.add(now - start, direction, data)
                if self.middlebox is not None:
                    data = self.middlebox(direction, data)
                if settings.bandwidth:
                    free_at = max(now, free_at) + len(data) / settings.bandwidth
                    sent = free_at
                else:
                    sent = now
                release = sent + settings.delay + (self._rng.uniform(0, settings.jitter) if settings.jitter else 0.0)
                release = last_release = max(release, last_release)  # a link never reorders
                wait = release - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
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

    def lets_out(self, port: int) -> bool:
        return port not in self.blocked and (self.allowed is None or port in self.allowed)

    def link_settings(self, port: int) -> LinkSettings:
        return LinkSettings(self.delay, self.jitter, self.bandwidth, "" if self.lets_out(port) else self.how)

    @classmethod
    def from_dict(cls, data: dict) -> "Place":
        allowed = data.get("allowed")
        kbps = data.get("bandwidth_kbps")
        return cls(data["name"], data.get("about", ""), data.get("delay_ms", 0) / 1000, data.get("jitter_ms", 0) / 1000,
                   kbps * 1000 / 8 if kbps else None, tuple(data.get("blocked", ())),
                   tuple(allowed) if allowed is not None else None, data.get("how", "timeout"))


class Network:
    """Every place and the links made from them, for one lab (lives on the lab's loop)."""

    def __init__(self, places: dict[str, Place]) -> None:
        self.places = {"student": Place("student", "wherever the notebook or terminal runs: no limits"), **places}
        self.links: dict[tuple[str, str, int], Link] = {}
        self.middleboxes: dict[str, Middlebox] = {}  # place -> a middlebox on every link from it

    def place(self, name: str) -> Place:
        return self.places.get(name) or Place(name)  # a lab host relaying is a place with no limits

    async def route(self, place: str, endpoint: "Endpoint", force: bool = False) -> tuple["Endpoint", Link | None]:
        """Where a client at `place` must connect to reach `endpoint`: the endpoint itself, or a link to it."""
        from .client import Endpoint  # (a cycle at import time otherwise)

        settings = self.place(place).link_settings(endpoint.listener.port)
        middlebox = self.middleboxes.get(place)
        if settings.plain and not force and middlebox is None:
            return endpoint, None
        key = (place, endpoint.host.name, endpoint.listener.port)
        link = self.links.get(key)
        if link is None or link.settings != settings or link.middlebox is not middlebox \
                or link.target != (endpoint.address, endpoint.bound_port):
            if link is not None:
                await link.stop()
            link = Link(place, endpoint.host.name, endpoint.listener.port, (endpoint.address, endpoint.bound_port),
                        settings, middlebox)
            await link.start()
            self.links[key] = link
        return Endpoint(endpoint.host, endpoint.listener, link.address, link.bound_port), link

    def client_of(self, upstream: str) -> str | None:
        """Which client connection a server's peer address stands for, when it came through a link."""
        for link in self.links.values():
            found = link.client_of.get(upstream)
            if found is not None:
                return found
        return None

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
