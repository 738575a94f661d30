"""A small synchronous SMTP line client that records every line through the lab's Recorder.

Blocking sockets with a timeout work the same in a terminal and in a Jupyter
kernel (whose own event loop is busy), and the timeout a report states is the
one each wait had. The socket may be swapped for its TLS-wrapped self mid-session
(STARTTLS): :class:`Wire` reads and writes whatever ``sock`` is.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence

from ..transcript import Recorder


class Closed(Exception):
    """The server closed the connection."""


class Wire:
    """SMTP lines over a blocking socket: each wait bounded by ``timeout``, each line recorded."""

    def __init__(self, sock: socket.socket, recorder: Recorder, timeout: float) -> None:
        self.sock = sock
        self.rec = recorder
        self.timeout = timeout
        self._buffer = b""
        self.closed = False

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                self.rec.event("server", "connection closed", "The server hung up.")
                raise Closed()
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def reply(self) -> list[str]:
        """One whole reply (every line up to the one with a space after the code)."""
        deadline = time.monotonic() + self.timeout
        lines = []
        while True:
            raw = self._line(deadline)
            self.rec.feed("server", raw)
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3:4] != "-" or not text[:3].isdigit():
                return lines

    def send(self, line: str) -> None:
        """Send one command line (CRLF added)."""
        data = line.encode("utf-8", "surrogateescape") + b"\r\n"
        self.rec.feed("client", data)
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (a message body, already dot-stuffed)."""
        self.rec.feed("client", data)
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def command(self, line: str) -> list[str]:
        """Send one command line and read its whole reply."""
        self.send(line)
        return self.reply()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def reply_code(lines: Sequence[str]) -> int:
    """The code of a reply (its last line's), or 0 when it is no SMTP reply."""
    return int(lines[-1][:3]) if lines and lines[-1][:3].isdigit() else 0


def last_line(lines: Sequence[str]) -> str:
    """The last line of a reply: the one whose code and text the catalogue explains."""
    return lines[-1] if lines else ""


def plain_reply(lines: Sequence[str]) -> str:
    """A reply as one line: '550 5.1.1 <x>: no such mailbox here'."""
    if not lines:
        return ""
    return lines[0] if len(lines) == 1 else lines[0] + " ... " + lines[-1]


def ehlo_keywords(lines: Sequence[str]) -> list[str]:
    """The extension keywords of an EHLO reply (every line after the first)."""
    return [ln[4:].strip().upper() for ln in lines[1:] if ln[4:].strip()]
