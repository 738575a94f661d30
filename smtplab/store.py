"""Where the lab keeps what it must not lose: Maildirs and transcript files.

What "250 after DATA" promises, decided on purpose: the message is in every
local recipient's Maildir (or in the relay queue) before the server says 250:
written, and renamed from ``tmp/`` into ``new/`` as the Maildir format asks,
so a reader never sees half a message and a crash of the lab process loses
nothing. It is not fsynced by default: a lab's state lives on a laptop or a
Binder container, and a sync costs about a millisecond a message here, more
than the whole rest of a session. ``Lab(durable=True)`` syncs every write, as
a production MTA must (and then uses ``mailbox.Maildir.add``, which does).
A durable write runs in a worker thread, so an fsync never stalls the event
loop that serves every other session; an unsynced one runs on the loop, where
it costs less than the hand-off to a thread would.

Transcripts are not promises: they go to disk through one background writer
thread, in order, off the event loop; :meth:`MailStore.flush` waits for it.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import mailbox
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from .mailboxes import mailbox_problem, maildir_folder
from .statefile import private_dir
from .transcript import Transcript, write_file

__all__ = ["MailStore", "new_queue_id"]

_last_id = 0
_id_lock = threading.Lock()


def new_queue_id() -> str:
    """A queue ID like Postfix's, ``4E1A2B3C5D``: from the clock in microseconds, never the same twice here.

    It names queue files, so it must not repeat across restarts either (the clock has moved on);
    ``secrets.token_hex`` did the same job for ~0.2 ms a message under load, waiting for the GIL.
    """
    global _last_id
    with _id_lock:
        _last_id = max(_last_id + 1, time.time_ns() // 1000)
        return f"{_last_id % 16**10:010X}"


class MailStore:
    """Maildirs under ``STATE_DIR/maildir/<address>/`` and transcripts under ``STATE_DIR/transcripts/``."""

    def __init__(self, state_dir: Path, durable: bool = False) -> None:
        self.state_dir = state_dir
        self.durable = durable
        self.maildir_root = state_dir / "maildir"
        self.transcript_dir = state_dir / "transcripts"
        private_dir(self.maildir_root)
        private_dir(self.transcript_dir)
        self._counter = itertools.count()
        self._made: dict[str, str] = {}  # address -> its Maildir folder, once made
        self.io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="smtplab-io")
        self._pending: queue.SimpleQueue[Any] = queue.SimpleQueue()  # (path, bytes), an Event, or None
        self._writer = threading.Thread(target=self._write_transcripts, name="smtplab-transcripts", daemon=True)
        self._writer.start()

    # --- mail --------------------------------------------------------------
    def _folder(self, address: str, subfolder: str = "") -> str:
        path = self._made.get(address + "\0" + subfolder)
        if path is None:
            # Made here, not by mailbox.Maildir(create=True), whose check-then-create races when
            # two sessions deliver to a new address at once (one finds the folder but no tmp/ yet).
            folder = maildir_folder(self.maildir_root, address)  # a valid address, inside the root: or nothing
            if subfolder:  # Maildir++: a subfolder is ".Name" inside the account's Maildir, marked as one
                folder = folder / f".{_checked_folder(subfolder)}"
                private_dir(folder)
                (folder / "maildirfolder").touch(mode=0o600)
            for sub in ("tmp", "new", "cur"):
                private_dir(folder / sub)
            path = self._made[address + "\0" + subfolder] = str(folder)
        return path

    def maildir(self, address: str, folder: str = "") -> mailbox.Maildir:
        return mailbox.Maildir(self._folder(address, folder), factory=None, create=False)

    def deliver(self, address: str, *parts: bytes, folder: str = "") -> str:
        """Write one message, given as `parts` in order, into `address`'s Maildir; returns its Maildir key.

        Parts, not one bytes object: the headers a hop adds are written ahead of the message
        without copying it (os.writev). `folder` names a Maildir++ subfolder such as ``"Junk"``.
        """
        if self.durable:
            return self.maildir(address, folder).add(b"".join(parts))  # fsyncs
        # The Maildir protocol without the sync: a unique name in tmp/, then a rename into new/.
        folder = self._folder(address, folder)
        key = f"{time.time():.6f}.{os.getpid()}_{next(self._counter)}.smtplab"
        tmp = f"{folder}/tmp/{key}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, [p for p in parts if p])
        finally:
            os.close(fd)
        os.rename(tmp, f"{folder}/new/{key}")
        return key

    def inbox(self, address: str, folder: str = "") -> list[EmailMessage]:
        """The messages in `address`'s Maildir (or its subfolder `folder`, e.g. ``"Junk"``), oldest first."""
        if mailbox_problem(address):
            return []  # nothing was ever delivered there
        path = maildir_folder(self.maildir_root, address)
        if folder:
            path = path / f".{_checked_folder(folder)}"
        if not path.exists():
            return []
        box = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(box.keys(), key=_delivery_order)
        return [email.message_from_bytes(box.get_bytes(k), policy=email.policy.default) for k in keys]

    # --- transcripts -------------------------------------------------------
    def save_transcript(self, transcript: Transcript) -> None:
        """Queue a finished transcript for writing; returns at once.

        The JSON is made here, by the caller (the lab's loop, ~30 us a session); the writer
        thread only makes system calls, which release the GIL. A writer thread that encoded
        too would hold the GIL for milliseconds and make the loop wait for it (a convoy).
        """
        data = transcript.to_jsonl().encode("utf-8", "surrogateescape")
        self._pending.put((self.transcript_dir / transcript.filename, data))

    def _write_transcripts(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                write_file(*item)
            except OSError:
                pass  # a transcript that cannot be written must not take the lab down

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every transcript queued so far is on disk."""
        done = threading.Event()
        self._pending.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._pending.put(None)
        self._writer.join(timeout=5)
        self.io.shutdown(wait=True)


def _checked_folder(name: str) -> str:
    """A Maildir++ folder name: letters, digits, - and _ only (it becomes part of a path)."""
    if not name.replace("-", "").replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"{name!r} is not a mail folder name: use letters, digits, - and _ (e.g. 'Junk')")
    return name


def _write_all(fd: int, parts: list[bytes]) -> None:
    """os.writev until every byte is written (a write may be short)."""
    views = [memoryview(p) for p in parts]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views:
            views[0] = views[0][written:]


def _delivery_order(key: str) -> tuple[float, str]:
    """Maildir names start with the delivery time (seconds, maybe with a fraction)."""
    stamp = key.split(".", 2)
    try:
        return (float(f"{stamp[0]}.{stamp[1]}" if stamp[1].isdigit() else stamp[0]), key)
    except (ValueError, IndexError):
        return (0.0, key)
