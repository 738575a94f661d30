"""Where the lab keeps what it must not lose: Maildirs and transcript files.

What "250 after DATA" promises, decided on purpose: the message has been
written *and synced* (``mailbox.Maildir.add`` fsyncs) into every local
recipient's Maildir, or into the relay queue, before the server says 250.
That write runs in a worker thread, so one session's fsync never stalls the
event loop that serves all the others.

Transcripts are not promises: they go to disk through one background writer
thread, in order, off the event loop; :meth:`MailStore.flush` waits for it.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

from .transcript import Transcript

__all__ = ["MailStore"]


class MailStore:
    """Maildirs under ``STATE_DIR/maildir/<address>/`` and transcripts under ``STATE_DIR/transcripts/``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.maildir_root = state_dir / "maildir"
        self.transcript_dir = state_dir / "transcripts"
        self.maildir_root.mkdir(parents=True, exist_ok=True)
        self.transcript_dir.mkdir(parents=True, exist_ok=True)
        self.io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="smtplab-io")
        self._pending: queue.SimpleQueue[Transcript | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_transcripts, name="smtplab-transcripts", daemon=True)
        self._writer.start()

    # --- mail --------------------------------------------------------------
    def maildir(self, address: str) -> mailbox.Maildir:
        path = self.maildir_root / address.lower()
        # Made here, not by mailbox.Maildir(create=True), whose check-then-create races when
        # two sessions deliver to a new address at once (one finds the folder but no tmp/ yet).
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return mailbox.Maildir(path, factory=None, create=False)

    def deliver(self, address: str, message: bytes) -> str:
        """Write one message into `address`'s Maildir (synced); returns its Maildir key. Blocking."""
        return self.maildir(address).add(message)

    def inbox(self, address: str) -> list[EmailMessage]:
        """The messages in `address`'s Maildir, oldest first."""
        path = self.maildir_root / address.lower()
        if not path.exists():
            return []
        box = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(box.keys())  # Maildir names start with the delivery time
        return [email.message_from_bytes(box.get_bytes(k), policy=email.policy.default) for k in keys]

    # --- transcripts -------------------------------------------------------
    def save_transcript(self, transcript: Transcript) -> None:
        """Queue a finished transcript for writing; returns at once."""
        self._pending.put(transcript)

    def _write_transcripts(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                item.save(self.transcript_dir)
            except OSError:
                pass  # a transcript that cannot be written must not take the lab down

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every transcript queued so far is on disk."""
        done = threading.Event()
        self._pending.put(done)  # type: ignore[arg-type]
        done.wait(timeout)

    def close(self) -> None:
        self._pending.put(None)
        self._writer.join(timeout=5)
        self.io.shutdown(wait=True)
