"""Which session is which: live connections known by their full pair of addresses.

A TCP connection is named by four things: the client's address and port and
the server's. Two connections may share a client port (the OS reuses an
ephemeral port once it is free, often towards another listener), so the
client's ``ip:port`` alone can name the wrong session; the pair cannot, while
both are open.

The lab's own clients bind their socket before connecting, so they know their
pair before the first byte, and :meth:`Connections.watch` it. A network link
that carries a connection does the same for its upstream leg and says which
client connection it carries (:meth:`Connections.carry`). The server side
registers each connection when it opens and reports its transcript when it
closes; a watcher gets the server's view of that very session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .transcript import Transcript

__all__ = ["ConnectionCap", "ConnectionKey", "Connections", "Watch", "key_of"]

# (client address, client port, server address, server port)
ConnectionKey = tuple[str, int, str, int]


def key_of(local: Any, remote: Any) -> ConnectionKey:
    """The key of a connection seen from the client's side: its own address, then the server's."""
    return (local[0], int(local[1]), remote[0], int(remote[1]))


@dataclass
class Watch:
    """What one of the lab's own clients waits for about its connection."""

    key: ConnectionKey
    server_view: asyncio.Future[Transcript]
    capture: Any = None  # the link's network.Capture, when the connection went through one


@dataclass
class Connections:
    """Open connections, who watches them, and which link legs stand for which client (on the lab's loop)."""

    live: dict[ConnectionKey, Any] = field(default_factory=dict)  # server side -> its session, while open
    _watches: dict[ConnectionKey, Watch] = field(default_factory=dict)
    _carried: dict[ConnectionKey, ConnectionKey] = field(default_factory=dict)  # link upstream -> client

    # --- the lab's own clients ------------------------------------------------
    def watch(self, key: ConnectionKey) -> Watch:
        """Start watching a connection about to be made; call :meth:`unwatch` when done with it."""
        found = Watch(key, asyncio.get_running_loop().create_future())
        self._watches[key] = found
        return found

    def unwatch(self, key: ConnectionKey) -> None:
        self._watches.pop(key, None)

    # --- links -------------------------------------------------------------------
    def carry(self, upstream: ConnectionKey, client: ConnectionKey, capture: Any = None) -> None:
        """A link is about to connect `upstream` on behalf of `client` (whose bytes `capture` records)."""
        self._carried[upstream] = client
        watch = self._watches.get(client)
        if watch is not None and capture is not None:
            watch.capture = capture

    def release(self, upstream: ConnectionKey) -> None:
        """The link's leg ended: forget it (the server may already have reported the session)."""
        self._carried.pop(upstream, None)

    # --- the servers ---------------------------------------------------------------
    def opened(self, server_side: ConnectionKey, session: Any) -> ConnectionKey:
        """A server accepted a connection; returns the key of the client it really serves."""
        self.live[server_side] = session
        return self._carried.get(server_side, server_side)

    def closed(self, server_side: ConnectionKey, client: ConnectionKey, transcript: Transcript) -> None:
        """A server session ended: hand its transcript to whoever watches that client connection."""
        self.live.pop(server_side, None)
        watch = self._watches.get(client)
        if watch is not None and not watch.server_view.done():
            watch.server_view.set_result(transcript)

    def __len__(self) -> int:
        return len(self.live)


class ConnectionCap:
    """At most `limit` open connections to one service; a newcomer past it sheds the longest idle one.

    On loopback a flood and the student's own client share 127.0.0.1, so refusing newcomers
    (as a per-address limit would) would lock the student out: closing the connection that
    has been silent longest keeps a working session working (Postfix's anvil, for one box).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._idle_since: dict[Any, float] = {}  # connection -> when it last did something
        self._shed: dict[Any, Callable[[], None]] = {}
        self.shed_count = 0

    def admit(self, connection: Any, shed: Callable[[], None]) -> None:
        """Count `connection` in; `shed` closes it politely if it must make room later."""
        self._idle_since[connection] = time.monotonic()
        self._shed[connection] = shed
        while len(self._idle_since) > self.limit:
            oldest = min(self._idle_since, key=self._idle_since.__getitem__)
            close = self._shed.pop(oldest)
            del self._idle_since[oldest]
            self.shed_count += 1
            close()

    def touch(self, connection: Any) -> None:
        if connection in self._idle_since:
            self._idle_since[connection] = time.monotonic()

    def leave(self, connection: Any) -> None:
        self._idle_since.pop(connection, None)
        self._shed.pop(connection, None)

    def __len__(self) -> int:
        return len(self._idle_since)
