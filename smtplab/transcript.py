"""Annotated transcripts: every line of an SMTP session, who sent it, when, and what it means.

A :class:`Transcript` is one session seen from one side (``view``: the server's
or the client's). A :class:`Recorder` turns the bytes a side sees into entries
as they pass; it is on the path of every SMTP line in the lab, so it does
little per line: it splits lines, stamps them with ``time.perf_counter()``,
asks the :class:`~smtplab.codes.Annotator` for a note, and summarises message
bodies past a few lines so a 10 MB message costs a few kilobytes.

On disk a transcript is JSON Lines, one event per line (the public contract):
``t`` seconds since the session began, ``host``, ``direction`` (``client`` or
``server``: who sent the line), ``line``, ``tls`` and ``note``; plus ``kind``
(``line`` or ``event`` for things that are not SMTP lines, like the TLS
handshake), ``session`` and ``view``.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .annotate import Annotator
from .statefile import private_dir

__all__ = ["Entry", "Transcript", "Recorder"]

#: How many message lines a transcript keeps before it summarises the rest.
DATA_LINES_KEPT = 12
#: Longest line kept as it was; longer lines are cut, saying how much was cut.
LINE_KEPT = 500
#: Most entries one transcript keeps (a flood of garbage still costs little).
MAX_ENTRIES = 2000

# swaks' marks: sent / received, and the same inside TLS.
_ARROWS = {("client", False): " -> ", ("server", False): "<-  ", ("client", True): " ~> ", ("server", True): "<~  "}

_session_counter = itertools.count(1)


@dataclass(slots=True)
class Entry:
    """One line (or event) of a session."""

    t: float
    host: str
    direction: str  # "client" or "server": who sent it
    line: str
    tls: bool
    note: str
    kind: str = "line"  # "line" or "event"

    def arrow(self) -> str:
        if self.kind == "event":
            return "=== "
        return _ARROWS[(self.direction, self.tls)]


@dataclass
class Transcript:
    """One SMTP session as one side saw it."""

    host: str  # the server of the session
    view: str  # "server" or "client": whose record this is
    session: str = ""
    port: int | None = None  # the logical port (587), not the bound one
    peer: str = ""
    client: str = ""  # who the client was: a lab host relaying, or "" for the student
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    entries: list[Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.session:
            stamp = self.started[:19].replace("-", "").replace(":", "")
            self.session = f"{stamp}-{self.view}-{self.host}-{self.port}-{next(_session_counter):05d}"

    # --- reading -----------------------------------------------------------
    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def lines(self, direction: str | None = None) -> list[str]:
        """The SMTP lines (not events), optionally only those one side sent."""
        return [e.line for e in self.entries if e.kind == "line" and direction in (None, e.direction)]

    def replies(self) -> list[str]:
        return self.lines("server")

    def commands(self) -> list[str]:
        return self.lines("client")

    @property
    def duration(self) -> float:
        return self.entries[-1].t if self.entries else 0.0

    # --- rendering ---------------------------------------------------------
    def text(self, notes: bool = True, times: bool = False) -> str:
        """swaks-style text: `` -> `` client, ``<-  `` server, ``~>``/``<~`` inside TLS."""
        out = []
        for e in self.entries:
            stamp = f"{e.t * 1000:8.2f} ms " if times else ""
            row = f"{stamp}{e.arrow()}{e.line}"
            if notes and e.note:
                row = f"{row:<60}  # {e.note}"
            out.append(row)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Transcript {self.view} view of {self.host}:{self.port}, {len(self.entries)} entries>"

    def _repr_html_(self) -> str:
        rows = []
        for e in self.entries:
            who = "event" if e.kind == "event" else e.direction
            lock = "🔒" if e.tls else ""
            rows.append(
                f'<tr class="smtplab-{who}"><td style="text-align:right;color:#888">{e.t * 1000:.2f}</td>'
                f"<td>{lock}</td><td><code>{html.escape(e.arrow().strip())}</code></td>"
                f'<td style="text-align:left"><code>{html.escape(e.line)}</code></td>'
                f'<td style="text-align:left;color:#555">{html.escape(e.note)}</td></tr>'
            )
        return (
            f"<div><b>{html.escape(self.view)} view</b> of a session with "
            f"<b>{html.escape(self.host)}</b> port {self.port} (peer {html.escape(self.peer)})"
            '<table class="smtplab-transcript"><thead><tr><th>ms</th><th>TLS</th><th></th>'
            '<th style="text-align:left">line</th><th style="text-align:left">what it means</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )

    # --- storage -----------------------------------------------------------
    def to_jsonl(self) -> str:
        # Hand-assembled: this runs for every session, and json.dumps per entry costs ~3 us where
        # this costs well under one. The session's fields are the same on every line: encode them once.
        meta = json.dumps({"session": self.session, "view": self.view, "port": self.port, "peer": self.peer,
                           "client": self.client, "started": self.started}, ensure_ascii=False)[1:]
        quote = _json_string
        host = quote(self.host)
        return "".join(
            f'{{"t": {e.t!r}, "host": {host}, "direction": "{e.direction}", "line": {quote(e.line)}, '
            f'"tls": {"true" if e.tls else "false"}, "note": {quote(e.note)}, "kind": "{e.kind}", {meta}\n'
            for e in self.entries)

    def save(self, directory: Path) -> Path:
        private_dir(directory)
        path = directory / self.filename
        write_file(path, self.to_jsonl().encode("utf-8", "surrogateescape"))
        return path

    @property
    def filename(self) -> str:
        return f"{self.session}.jsonl"

    @classmethod
    def load(cls, path: str | Path) -> Transcript:
        """Read a transcript back from its JSON Lines file."""
        events = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        if not events:
            raise ValueError(f"{path} holds no transcript events")
        first = events[0]
        transcript = cls(
            host=first["host"],
            view=first.get("view", "server"),
            session=first.get("session", Path(path).stem),
            port=first.get("port"),
            peer=first.get("peer", ""),
            client=first.get("client", ""),
            started=first.get("started", ""),
        )
        fields = Entry.__slots__
        transcript.entries = [Entry(**{k: ev[k] for k in fields if k in ev}) for ev in events]
        return transcript


class Recorder:
    """Turns what one side of a session sees into annotated entries, as it happens."""

    __slots__ = ("transcript", "annotator", "tls", "_t0", "_partial", "_data_kept", "_data_lines", "_data_bytes", "_tail",
                 "_skipping")

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self.annotator = Annotator()
        self.tls = False
        self._t0 = time.perf_counter()
        self._partial = {"client": b"", "server": b""}
        self._skipping: set[str] = set()  # directions inside a runaway line, dropping it until its end
        self._reset_data()

    def _reset_data(self) -> None:
        self._data_kept = 0
        self._data_lines = 0
        self._data_bytes = 0
        self._tail = b""

    # --- entries -----------------------------------------------------------
    def _add(self, direction: str, line: str, note: str, kind: str = "line") -> None:
        entries = self.transcript.entries
        if len(entries) < MAX_ENTRIES:
            entries.append(Entry(time.perf_counter() - self._t0, self.transcript.host, direction, line, self.tls, note, kind))
        elif len(entries) == MAX_ENTRIES:
            entries.append(Entry(time.perf_counter() - self._t0, self.transcript.host, direction,
                                 "(transcript full: later lines not recorded)", self.tls,
                                 f"Only the first {MAX_ENTRIES} entries of a session are kept.", "event"))

    def event(self, direction: str, text: str, note: str = "") -> None:
        """Something that is not an SMTP line: a connection, a TLS handshake, a close."""
        self._add(direction, text, note, "event")

    def line(self, direction: str, raw: str) -> None:
        """A whole line one side sent (without its CRLF)."""
        text = raw if len(raw) <= LINE_KEPT else f"{raw[:LINE_KEPT]}… ({len(raw) - LINE_KEPT} more characters)"
        if not text.isprintable():
            text = text.translate(_VISIBLE)
        if direction == "client":
            was_data = self.annotator.in_data
            note = self.annotator.client(raw)
            if was_data and not self.annotator.in_data:
                self._reset_data()
        else:
            note = self.annotator.server(raw)
            if self.annotator.in_data:
                self._tail = b"\r\n"  # DATA's own CRLF: an empty body ends at the first "."
        self._add(direction, text, note)

    def feed(self, direction: str, data: bytes) -> None:
        """Bytes one side sent, in whatever chunks the socket delivered them."""
        if direction == "client" and self.annotator.in_data and self._data_kept >= DATA_LINES_KEPT:
            data = self._skim_data(data)
            if not data:
                return
        if direction in self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return
            self._skipping.discard(direction)
            data = data[newline + 1 :]
        buf = self._partial[direction] + data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            self.line(direction, _decode(buf[start:end]))
            if direction == "client" and self.annotator.in_data:
                self._data_kept += 1
                if self._data_kept >= DATA_LINES_KEPT:
                    self._partial[direction] = b""
                    rest = self._skim_data(buf[end + 1 :])
                    if rest:
                        self.feed(direction, rest)
                    return
            start = end + 1
        rest = buf[start:]
        if len(rest) > LINE_KEPT * 4:  # a runaway line with no end: keep its start, drop the rest of it
            self.line(direction, _decode(rest[: LINE_KEPT - 20]) + "… (line continues)")
            rest = b""
            self._skipping.add(direction)
        self._partial[direction] = rest

    def _skim_data(self, data: bytes) -> bytes:
        """Count message lines without keeping them; return what follows the end of data."""
        scan = self._tail + data
        end = scan.find(b"\r\n.\r\n")
        if end < 0:
            self._data_lines += data.count(b"\n")
            self._data_bytes += len(data)
            self._tail = scan[-4:]
            return b""
        body_end = max(end + 2 - len(self._tail), 0)  # in data's coordinates: where the final "." starts
        self._data_lines += data.count(b"\n", 0, body_end)
        # May be negative: the end marker began in the previous chunk, whose bytes were all counted.
        self._data_bytes += end + 2 - len(self._tail)
        after = data[end + 5 - len(self._tail) :]  # what follows CRLF.CRLF
        if self._data_lines:
            self._add("client", f"[… {self._data_lines} more lines of message data, {self._data_bytes:,} bytes]",
                      self.annotator.note_for_summary(self._data_lines, self._data_bytes))
        self._data_kept = 0
        self._data_lines = self._data_bytes = 0
        self._tail = b""
        self._partial["client"] = b""
        return b".\r\n" + after  # the lone dot is recorded as a line: it ends the data


def write_file(path: str | Path, data: bytes) -> None:
    """Create (or replace) a file with `data`: plain system calls, the cheapest way Python has."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # AUTH lines and mail text: the owner's only
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


_json_string = json.encoder.encode_basestring  # the C speed-up, with quotes


def _decode(raw: bytes) -> str:
    """A line as text: its CR stripped, bytes that are not UTF-8 shown as escapes."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "backslashreplace")


# Control characters (NUL, a stray CR, the bytes of a TLS record...) shown as escapes; tab stays a tab.
_VISIBLE = {i: f"\\x{i:02x}" for i in [*range(32), 127] if i != 9}
