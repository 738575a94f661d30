"""Helpers for tests, exercises and notebooks: ports that fail on purpose, and free ports.

A real failure beats a mocked one: :func:`closed_port` is a port where the
kernel itself refuses connections, :func:`silent_port` one where it drops
them, so a client meets exactly what it would meet behind a firewall. For a
raw SMTP conversation with a lab server use :meth:`smtplab.Lab.session`
(``send_bytes``, ``last_reply``, ``server_transcript``).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

__all__ = ["closed_port", "free_port", "silent_port"]


def free_port(address: str = "127.0.0.1") -> int:
    """A port nothing uses on `address` right now (for ``lab.session(..., source_port=...)``, say)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def closed_port(address: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A port on `address` where nothing listens: connecting there is refused at once.

    The port is held (bound, never listening) while the block runs, so nothing else takes it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
        yield sock.getsockname()[:2]
    finally:
        sock.close()


@contextlib.contextmanager
def silent_port(address: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A port that never answers: connecting there times out, like a firewall that drops packets.

    A listening socket whose accept queue is full (``listen(0)`` plus one connection never
    accepted): Linux then drops further SYNs, so a client waits for its whole timeout.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind((address, 0))
        server.listen(0)
        where = server.getsockname()[:2]
        filler.settimeout(2)
        filler.connect(where)  # fills the accept queue
        yield where
    finally:
        filler.close()
        server.close()
