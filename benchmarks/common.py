"""What every benchmark section shares: printing, a loop thread, a test message, CPU and memory figures."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import resource
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

perf = time.perf_counter


# --- printing ---------------------------------------------------------------

def section(title: str) -> None:
    """Print a section heading."""
    print()
    print(title)
    print("-" * len(title))
    sys.stdout.flush()


def say(text: str = "") -> None:
    """Print one indented line at once (output is read while the script runs)."""
    print(f"  {text}" if text else "")
    sys.stdout.flush()


def not_measured(what: str, err: BaseException) -> None:
    """Say that a figure could not be measured, why, and where it failed."""
    say(f"{what}: NOT MEASURED: {type(err).__name__}: {err}")
    tb = traceback.extract_tb(err.__traceback__)
    if tb:
        last = tb[-1]
        say(f"    (at {Path(last.filename).name}:{last.lineno} in {last.name})")


def ms(seconds: float) -> str:
    """Seconds as milliseconds, for reading."""
    return f"{seconds * 1000:.2f} ms"


def size(n: float) -> str:
    """A byte count with a binary unit."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def verdict(ok: bool) -> str:
    """The words printed beside a figure that has a target."""
    return "meets target" if ok else "MISSES TARGET"


# --- memory -------------------------------------------------------------------

def peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (ru_maxrss is in kB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss() -> int | None:
    """This process's resident set size now, in bytes (Linux /proc only; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


# --- an event loop in a background thread, as the lab has ---------------------

def call_in_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], timeout: float = 10) -> Any:
    """Run plain `fn()` on `loop`'s thread and return its result (for thread CPU time, profilers)."""
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            fut.set_result(fn())
        except BaseException as err:  # noqa: BLE001 - handed back to the caller
            fut.set_exception(err)
    loop.call_soon_threadsafe(run)
    return fut.result(timeout)


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run `coro` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and its thread; close the loop once the thread has ended."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


# --- CPU time ---------------------------------------------------------------------

def threads_cpu() -> dict[str, float]:
    """CPU seconds so far of each live Python thread, by name with pool suffixes dropped (Linux /proc only)."""
    out: dict[str, float] = {}
    for t in threading.enumerate():
        try:
            with open(f"/proc/self/task/{t.native_id}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError, TypeError):
            continue
        name = re.sub(r"_\d+$", "", t.name)
        out[name] = out.get(name, 0.0) + ns / 1e9
    return out


def thread_cpu(loop: asyncio.AbstractEventLoop | None) -> float | None:
    """CPU seconds so far of the thread running `loop`, or None if it cannot be asked."""
    if loop is None:
        return None
    try:
        return call_in_loop(loop, time.thread_time)
    except Exception:  # noqa: BLE001 - a figure we can do without
        return None


def machine_busy() -> float | None:
    """CPU seconds the whole machine has spent busy (all CPUs, all processes) since boot; None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def others_busy(window: float = 0.5) -> float | None:
    """How many CPUs processes other than this one (and its children) keep busy, over `window` seconds."""
    b0, c0, k0, t0 = machine_busy(), time.process_time(), os.times(), perf()
    time.sleep(window)
    b1, c1, k1, t1 = machine_busy(), time.process_time(), os.times(), perf()
    if b0 is None or b1 is None:
        return None
    children = (k1.children_user - k0.children_user) + (k1.children_system - k0.children_system)
    return max(0.0, (b1 - b0 - (c1 - c0) - children) / (t1 - t0))


def wait_for_quiet(limit: float = 0.25, patience: float = 15.0) -> tuple[float, float | None]:
    """Wait (up to `patience` s) until other processes keep under `limit` CPUs busy; (waited s, last reading)."""
    t0 = perf()
    reading = others_busy()
    while reading is not None and reading > limit and perf() - t0 < patience:
        reading = others_busy()
    return perf() - t0, reading


def cpu_by_thread(before: dict[str, float], after: dict[str, float], per: int, floor: float = 0.00002) -> str:
    """'name 0.12 ms, ...': CPU per message of each thread busier than `floor` seconds per message."""
    per = max(per, 1)
    busy = sorted(((name, (after[name] - before.get(name, 0.0)) / per) for name in after), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {sec * 1000:.2f} ms" for name, sec in busy if sec >= floor)


# --- what is sent ---------------------------------------------------------------------

class CheckFailed(Exception):
    """A session that ran but did not do what it should (a refused recipient, a wrong count)."""


def make_message(sender: str, rcpt: str, body_bytes: int = 400) -> bytes:
    """A small plain-text message with CRLF line ends."""
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = (line * (body_bytes // len(line) + 1))[:body_bytes]
    head = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: smtplab benchmark\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <bench@example.org>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    return head + body.rstrip(b"\r\n.") + b"\r\n"
