"""Where a running ``smtplab serve`` publishes its state, and how other programs find it.

``serve`` writes ``lab.info()`` to ``STATE_DIR/lab.json`` while it runs and removes
it when it stops; ``smtplab send``, ``check``, ``talk`` and students' scripts read it
to find the lab's real ports. The file holds the lab users' passwords (and the
state dir holds transcripts with AUTH lines), so the directory is made for its
owner only (0700) and the file is written 0600.

This module knows files and one probe connection, nothing of :class:`~smtplab.Lab`:
the CLI and the troubleshooting commands both import it, and it imports neither.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LAB_FILE", "default_state_dir", "lab_file", "prepare_state_dir", "publish", "running_lab", "withdraw"]

#: The name of the published state, inside the state dir.
LAB_FILE = "lab.json"
#: Probing the lab's first listener takes no longer than this (it is on loopback).
PROBE_TIMEOUT = 0.5
_STATE_PARTS = (LAB_FILE, "maildir", "transcripts", "tls")


def default_state_dir() -> Path:
    """``$SMTPLAB_STATE_DIR``, else ``~/.smtplab``: where serve writes and the other commands look."""
    return Path(os.environ.get("SMTPLAB_STATE_DIR") or Path.home() / ".smtplab")


def lab_file(state_dir: Path) -> Path:
    """The path of the published state in `state_dir`."""
    return Path(state_dir) / LAB_FILE


def private_dir(path: Path) -> Path:
    """Make `path` and any missing parents, each 0700 whatever the umask (``mkdir(parents=True)`` would not)."""
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another thread: fine
            pass
    return missing[0] if missing else path


def prepare_state_dir(state_dir: Path) -> Path:
    """Make `state_dir` readable by its owner only, creating it (0700) if it is missing.

    An existing directory is tightened only when it is empty or already a lab's
    state dir: ``--state-dir .`` must not change the mode of someone's project.
    """
    state_dir = Path(state_dir)
    if not state_dir.exists():
        private_dir(state_dir)
    elif state_dir.stat().st_uid == os.getuid() and (
            not any(state_dir.iterdir()) or any((state_dir / part).exists() for part in _STATE_PARTS)):
        state_dir.chmod(0o700)
    return state_dir


def publish(state_dir: Path, info: Mapping[str, Any]) -> Path:
    """Write `info` as ``STATE_DIR/lab.json``, mode 0600; returns its path.

    Written to a temporary file and renamed into place, so a reader never sees half a file.
    """
    target = lab_file(state_dir)
    fd, temporary = tempfile.mkstemp(prefix=".lab-", suffix=".json", dir=target.parent)  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(info, indent=2) + "\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def withdraw(state_dir: Path, info: Mapping[str, Any] | None = None) -> None:
    """Remove ``STATE_DIR/lab.json``; with `info`, only while it still describes that lab.

    A second ``serve`` on the same state dir may have published over the first;
    the first one stopping must not hide the second.
    """
    target = lab_file(state_dir)
    if info is not None and _read(target) not in (None, json.loads(json.dumps(info))):
        return
    target.unlink(missing_ok=True)


def _read(target: Path) -> Any:
    """The JSON in `target`, or None if it is missing or unreadable."""
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def running_lab(state_dir: Path) -> dict[str, Any] | None:
    """The published state of the lab a ``smtplab serve`` runs for `state_dir`, or None.

    A file left behind by a serve that was killed is not a running lab: its
    first listener must accept a connection.
    """
    info = _read(lab_file(state_dir))
    try:
        first = info["servers"][0]
        with socket.create_connection((first["address"], first["bound_port"]), timeout=PROBE_TIMEOUT):
            return info
    except (OSError, KeyError, IndexError, TypeError):
        return None
