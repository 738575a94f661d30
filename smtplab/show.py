"""Small helpers the notebooks use to show a transcript a few lines at a time, or the wire beside it.

They are not part of what the course teaches: they only pick and print. Keeping them
here, with tests, keeps the notebooks' cells short (one idea per cell), and a student
who wonders how they work can read them with ``help(part)`` or ``part??``.

    from smtplab.show import part, show, wire_beside_server
    show(part(result.transcript, "EHLO", "STARTTLS"))   # the EHLO exchange, each note under its line
    print(wire_beside_server(result))                    # a send made with tap=True: the wire vs the server's record

Everything here reads transcripts and wire records as plain objects (entries with
``line``, ``note``, ``kind``, ``direction`` and ``arrow()``; records with ``kind``,
``direction`` and ``summary``), so it imports nothing from the lab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

__all__ = ["first_word", "lines_text", "part", "show", "turns", "wire_beside_server", "wire_text"]

T = TypeVar("T")

#: Width of the left column of :func:`wire_beside_server` (what anyone on the path sees).
WIRE_COLUMN = 46


def first_word(entry: Any) -> str:
    """The first word of an entry's line, without a trailing colon ("MAIL FROM:<a@b>" gives "MAIL")."""
    return entry.line.split(" ", 1)[0].rstrip(":")


def part(transcript: Iterable[Any], start: str, stop: str | None = None) -> list[Any]:
    """The entries from the first line whose first word is `start` up to (not including) the next one starting `stop`.

    A whole session is about fifty lines; the notebooks take them one exchange at a
    time: ``part(t, "EHLO", "STARTTLS")``. Without `stop`, up to the end. A `start`
    that no line begins with is a ValueError that names the words there are, rather
    than a bare StopIteration.
    """
    entries = list(transcript)
    begin = next((i for i, e in enumerate(entries) if first_word(e) == start), None)
    if begin is None:
        words = sorted({first_word(e) for e in entries})
        raise ValueError(f"no line of this transcript starts with {start!r}; first words there: {', '.join(words)}")
    end = next((i for i, e in enumerate(entries) if i > begin and first_word(e) == stop), len(entries))
    return entries[begin:end]


def show(entries: Iterable[Any]) -> None:
    """Print entries as ``print(transcript)`` does, but with each note on a line of its own, easier to read."""
    for entry in entries:
        print(f"{entry.arrow()}{entry.line}")
        if entry.note:
            print(f"        # {entry.note}")


def turns(items: Iterable[T], direction_of: Callable[[T], str]) -> list[tuple[str, list[T]]]:
    """Group items into turns: runs of consecutive items sent by the same side, as (direction, items).

    A turn is what one side says before the other answers. The wire and a transcript
    cut a session into different pieces (TLS records, SMTP lines), but their turns line up.
    """
    grouped: list[tuple[str, list[T]]] = []
    for item in items:
        direction = direction_of(item)
        if grouped and grouped[-1][0] == direction:
            grouped[-1][1].append(item)
        else:
            grouped.append((direction, [item]))
    return grouped


def _more(count: int) -> str:
    return f" (+{count} lines)" if count else ""


def wire_text(records: Sequence[Any]) -> str:
    """One turn of wire records in a few words: its first SMTP line, or the kinds of TLS record in it.

    An eavesdropper sees record types ("ClientHello", "encrypted") once TLS starts, so
    that is all this column says; repeated kinds are named once.
    """
    if records[0].kind == "SMTP":
        return records[0].summary + _more(len(records) - 1)
    kinds: list[str] = []
    for record in records:
        what = record.summary.split(", ")[1].replace("Handshake: ", "")
        what = "encrypted" if what.startswith("Application data") else what
        if what not in kinds:
            kinds.append(what)
    return "TLS: " + ", ".join(kinds)


def lines_text(entries: Sequence[Any]) -> str:
    """One turn of transcript entries in a few words: its first line, and how many more there are."""
    return entries[0].line + _more(len(entries) - 1)


def wire_beside_server(result: Any) -> str:
    """A table, one row per turn: what a tap on the wire saw, beside the server's own (decrypted) record.

    `result` is a send made with ``tap=True`` (it has ``.wire`` and ``.server_transcript``).
    TLS handshake turns carry no SMTP line, so the server's column says so and the
    server's turns are matched with the wire's other turns, in order.
    """
    server_lines = [e for e in result.server_transcript if e.kind == "line"]
    server_turns = iter(turns(server_lines, lambda e: e.direction))
    wire_heading = "on the wire (what anyone on the path sees)"
    rows = [f"{'':7}{wire_heading:<{WIRE_COLUMN}}in the server's transcript (decrypted)"]
    for direction, records in turns(result.wire.records(), lambda r: r.direction):
        if any("Hello" in r.summary for r in records):
            right = "(the TLS handshake: no SMTP line)"
        else:
            turn = next(server_turns, None)
            right = lines_text(turn[1]) if turn else "(no SMTP line: TLS closing the connection)"
        rows.append(f"{direction:<7}{wire_text(records):<{WIRE_COLUMN}}{right}")
    return "\n".join(rows)
