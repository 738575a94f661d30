"""Section 3: what one 10 MB message costs in transcript memory and on disk (target: under 1 MB each)."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from dataclasses import fields, is_dataclass
from typing import Any

from common import ms, not_measured, perf, say, section, size, verdict


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """sys.getsizeof over an object and everything it holds (each object counted once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    total = sys.getsizeof(obj)
    if isinstance(obj, (str, bytes, bytearray, int, float, bool, type(None))):
        return total
    if isinstance(obj, dict):
        return total + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return total + sum(deep_size(x, seen) for x in obj)
    if is_dataclass(obj):
        return total + sum(deep_size(getattr(obj, f.name), seen) for f in fields(obj))
    if hasattr(obj, "__dict__"):
        total += deep_size(vars(obj), seen)
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            total += deep_size(getattr(obj, slot), seen)
    return total


def big_message(sender: str, rcpt: str, nbytes: int) -> bytes:
    """A message of about `nbytes` in 77-byte lines."""
    line = (b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n")  # 76 + CRLF
    head = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: a 10 MB message\r\n"
            f"Message-ID: <big@example.org>\r\n\r\n").encode()
    return head + line * (nbytes // len(line))


def transcript_memory(lab: Any) -> None:
    """Print section 3."""
    section("3. Transcripts of one 10 MB message (target: under 1 MB each, in memory and on disk)")
    raw = big_message("alice@example.org", "carol@example.org", 10 * 1024 * 1024)
    nlines = raw.count(b"\n")
    say(f"message: {size(len(raw))}, {nlines:,} lines; memory = sys.getsizeof over the Transcript, its entries "
        f"and their strings; disk = its JSONL file after lab.flush()")
    variants = [
        ("lab.send, port 587 STARTTLS + AUTH (traced with tracemalloc once more afterwards)", {}, True),
        ("lab.send, port 25 plain, no login", {"server": "smtp.example.org", "port": 25, "tls": "none", "login": False}, False),
    ]
    for label, kwargs, traced in variants:
        say()
        say(label)
        try:
            t0 = perf()
            res = lab.send("alice@example.org", "carol@example.org", message=raw, timeout=30, **kwargs)
            took = perf() - t0
            say(f"  send took {ms(took)}: {'ok' if res.ok else 'FAILED: ' + res.summary()}")
            lab.flush()
            server_tr = res.server_transcript
            found_elsewhere = False
            if server_tr is None:  # SendResult lost it: find it among the lab's recent sessions
                port = kwargs.get("port", 587)
                recent = [t for t in lab.transcripts("smtp.example.org", "server") if t.port == port]
                if recent:
                    server_tr, found_elsewhere = recent[-1], True
            for view, tr in (("client", res.transcript), ("server", server_tr)):
                if tr is None:
                    say(f"  {view} transcript: none returned and none found")
                    continue
                mem = deep_size(tr)
                path = lab.state_dir / "transcripts" / f"{tr.session}.jsonl"
                disk = path.stat().st_size if path.exists() else None
                disk_text = size(disk) if disk is not None else f"file not found ({path.name})"
                worst = max(mem, disk or 0)
                say(f"  {view:<6} transcript: {len(tr.entries):4d} entries, {size(mem):>9} in memory, "
                    f"{disk_text:>9} on disk   target < 1 MB: {verdict(worst < 1024 * 1024)}")
            if found_elsewhere:
                say("  NOTE: SendResult.server_transcript was None; the server transcript above was found with "
                    "lab.transcripts() (a lab bug: see the report)")
            if traced:
                gc.collect()
                tracemalloc.start()
                try:
                    before = tracemalloc.get_traced_memory()[0]
                    res = lab.send("alice@example.org", "carol@example.org", message=raw, timeout=60, **kwargs)
                    gc.collect()
                    current, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
                say(f"  tracemalloc (Python allocations, all threads): peak {size(peak - before)} above the start "
                    f"during the send (~{(peak - before) / len(raw):.1f}x the message; the caller's own copy not counted), "
                    f"{size(current - before)} still held after it")
        except Exception as err:  # noqa: BLE001
            if tracemalloc.is_tracing():
                tracemalloc.stop()
            not_measured(label, err)
