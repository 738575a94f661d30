"""Section 5: pieces of the lab's work timed alone (Maildir delivery, transcript serialisation, building a message)."""

from __future__ import annotations

import mailbox
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import make_message, not_measured, perf, say, section


def micro(lab: Any, quick: bool) -> None:
    """Print section 5."""
    section("5. Where the lab's extra time goes: pieces timed alone (per call; wall and CPU of the calling thread)")
    say("these run in the lab's worker threads, holding the GIL for their Python part, so they compete with its loop")
    n = 100 if quick else 300

    def measure(label: str, fn: Callable[[], Any]) -> None:
        try:
            for _ in range(10):
                fn()
            w, c = perf(), time.thread_time()
            for _ in range(n):
                fn()
            say(f"{label:<70} wall {(perf() - w) / n * 1e6:7.0f} us   CPU {(time.thread_time() - c) / n * 1e6:7.0f} us")
        except Exception as err:  # noqa: BLE001
            not_measured(label, err)

    scratch = Path(tempfile.mkdtemp(prefix="smtplab-bench-"))
    try:
        msg = make_message("alice@example.org", "carol@example.org")
        box = mailbox.Maildir(scratch / "maildir", factory=None, create=True)
        measure("mailbox.Maildir.add of a 500-byte message (fsyncs): Lab(durable=True)", lambda: box.add(msg))
        from smtplab.store import MailStore
        fast = MailStore(scratch / "state")
        measure("MailStore.deliver, unsynced: the default 250 promise", lambda: fast.deliver("carol@example.org", msg))
        try:
            res = lab.send("alice@example.org", "carol@example.org", server="smtp.example.org", port=25,
                           tls="none", login=False)
            lab.flush()
            tr = res.server_transcript or next(
                t for t in reversed(lab.transcripts("smtp.example.org", "server")) if t.port == 25)
            measure(f"Transcript.to_jsonl, a port-25 server transcript ({len(tr.entries)} entries)", tr.to_jsonl)
            measure("Transcript.save (to_jsonl + a new file) in the transcript writer", lambda: tr.save(scratch / "t"))
        except Exception as err:  # noqa: BLE001
            not_measured("transcript serialisation", err)
        try:
            plan_args = ("alice@example.org", ["carol@example.org"], "Hello", "A short benchmark message.\n")
            measure("lab._plan_send: build the EmailMessage lab.send sends (caller's thread)",
                    lambda: lab._plan_send(*plan_args, None, None, None, None, None, "client.lab", 10.0))
            measure("lab._plan_send with message=bytes", lambda: lab._plan_send(
                "alice@example.org", ["carol@example.org"], "", "", msg, None, None, None, None, "client.lab", 10.0))
        except Exception as err:  # noqa: BLE001
            not_measured("lab._plan_send", err)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
