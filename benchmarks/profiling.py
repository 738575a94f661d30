"""Profilers for the lab under load: cProfile on its loop thread, and py-spy over every thread of the process.

Both print the hot spots inside smtplab, by cumulative and by own ("self") time,
as a share of what was sampled, so that the figures of one run can be compared
with another's.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Self

from common import call_in_loop, ms, say

EPOLL = "<method 'poll' of 'select.epoll' objects>"


def _short(filename: str) -> str:
    """A path as 'package/module.py', shorter for site-packages."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    return "/".join(parts[-2:])


def _in_smtplab(path: str) -> bool:
    return "smtplab/" in path.replace("\\", "/") and "benchmarks" not in path


class LoopProfiler:
    """cProfile on another thread's event loop: enabled and disabled from inside that thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.prof = cProfile.Profile()

    def __enter__(self) -> Self:
        call_in_loop(self.loop, self.prof.enable)
        return self

    def __exit__(self, *exc: object) -> None:
        call_in_loop(self.loop, self.prof.disable)

    def report(self, per: int, top: int = 14, percent: bool = False) -> None:
        """Print the top costs per message; `percent` adds each one's share of the loop's busy time."""
        stats = pstats.Stats(self.prof)
        rows = dict(stats.stats)  # type: ignore[attr-defined]
        idle = sum(v[2] for k, v in rows.items() if k[2] == EPOLL)
        rows = {k: v for k, v in rows.items() if k[2] != EPOLL}
        total = sum(v[2] for v in rows.values()) or 1e-9
        say(f"profiled loop-thread time: {ms(total / per)} per message busy, {ms(idle / per)} idle in epoll "
            f"(profiler overhead included; a send() or recv() also counts time waiting for the GIL)")

        def name(key: tuple[str, int, str]) -> str:
            filename, line, func = key
            return func if filename == "~" else f"{_short(filename)}:{line}({func})"

        def share(t: float) -> str:
            return f"{100 * t / total:5.1f}% " if percent else ""

        say(f"top {top} by own time (us per message, calls per message):")
        for key, (_cc, nc, tt, _ct, _) in sorted(rows.items(), key=lambda kv: -kv[1][2])[:top]:
            say(f"  {share(tt)}{tt / per * 1e6:8.1f} us {nc / per:7.1f} calls  {name(key)}")
        lab_rows = [(k, v) for k, v in rows.items() if _in_smtplab(k[0])]
        say(f"smtplab functions by cumulative time (us per message{', % of busy loop time' if percent else ''}):")
        for key, (_cc, nc, tt, ct, _) in sorted(lab_rows, key=lambda kv: -kv[1][3])[:top]:
            say(f"  {share(ct)}{ct / per * 1e6:8.1f} us cum {tt / per * 1e6:7.1f} us own {nc / per:6.1f} calls  "
                f"{name(key)}")
        say(f"smtplab functions by own time (us per message{', % of busy loop time' if percent else ''}):")
        for key, (_cc, nc, tt, ct, _) in sorted(lab_rows, key=lambda kv: -kv[1][2])[:top]:
            say(f"  {share(tt)}{tt / per * 1e6:8.1f} us own {ct / per * 1e6:8.1f} us cum {nc / per:6.1f} calls  "
                f"{name(key)}")


def find_py_spy() -> str | None:
    """py-spy beside this Python (a venv's bin/) or on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class PySpy:
    """``py-spy record`` of this very process (all threads, idle ones left out), stopped with SIGINT.

    ``--nonblocking`` (the default here) samples without pausing the process, so the load runs nearly
    at full speed; add ``--gil`` to `extra` to sample only the thread holding the GIL.
    """

    def __init__(self, exe: str, rate: int = 200, extra: tuple[str, ...] = ("--nonblocking",)) -> None:
        self.rate = rate
        self.out = Path(tempfile.mkdtemp(prefix="smtplab-pyspy-")) / "stacks.txt"
        self.cmd = [exe, "record", "--pid", str(os.getpid()), "--rate", str(rate), "--format", "raw",
                    "--function", "--threads", *extra, "--output", str(self.out)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = b""

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # let it attach before the load starts
        if self.proc.poll() is not None:
            self.log = self.proc.communicate()[0]
            raise RuntimeError(f"py-spy exited at once: {self.log.decode(errors='replace').strip()[-300:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.log = self.proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.log = self.proc.communicate()[0]

    def stacks(self) -> list[tuple[str, list[str], int]]:
        """(thread name, frames outermost first, samples) for each distinct stack."""
        rows = []
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {self.log.decode(errors='replace').strip()[-300:]}")
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            thread = frames[0].partition(": ")[2] or frames[0]
            rows.append((thread.rstrip("_0123456789") or thread, frames[1:], int(count)))
        shutil.rmtree(self.out.parent, ignore_errors=True)
        return rows

    def report(self, top: int = 15) -> None:
        """Print samples per thread, then smtplab's hot spots by cumulative and by own share of all samples."""
        rows = self.stacks()
        total = sum(n for _, _, n in rows) or 1
        by_thread: Counter[str] = Counter()
        cum: Counter[str] = Counter()
        own: Counter[str] = Counter()
        lab_own: Counter[str] = Counter()  # samples whose innermost smtplab frame is this function
        loop_cum: Counter[str] = Counter()
        loop_total = 0
        for thread, frames, n in rows:
            by_thread[thread] += n
            names = [_frame(f) for f in frames]
            for f in set(names):
                cum[f] += n
            if names:
                own[names[-1]] += n
            inner = [f for f in names if _in_smtplab(f)]
            if inner:
                lab_own[inner[-1]] += n
            if thread == "smtplab-loop":
                loop_total += n
                for f in set(names):
                    loop_cum[f] += n
        say(f"py-spy: {total} samples of busy threads ({self.rate} a second each); by thread: "
            + ", ".join(f"{t} {100 * n / total:.0f}%" for t, n in by_thread.most_common()))
        say(f"top {top} smtplab functions by cumulative share of all samples (and of the loop thread's):")
        for f, n in [(f, n) for f, n in cum.most_common() if _in_smtplab(f)][:top]:
            loop_share = f"{100 * loop_cum[f] / loop_total:5.1f}% of loop" if loop_total else ""
            say(f"  {100 * n / total:5.1f}%  {loop_share}   {f}")
        say(f"top {top} smtplab functions by own share (Python time in the function itself):")
        for f, n in [(f, n) for f, n in own.most_common() if _in_smtplab(f)][:top]:
            say(f"  {100 * n / total:5.1f}%   {f}")
        say(f"top {top} smtplab functions by 'own + what they call outside smtplab' (the innermost smtplab frame):")
        for f, n in lab_own.most_common(top):
            say(f"  {100 * n / total:5.1f}%   {f}")
        say("top 10 of any code by own share, for context:")
        for f, n in own.most_common(10):
            say(f"  {100 * n / total:5.1f}%   {f}")


def _frame(frame: str) -> str:
    """'func (smtplab/server.py:284)' as 'smtplab/server.py:func' (py-spy --function gives the def line)."""
    func, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rpartition(":")[0]
    return f"{path}:{func}" if func else frame
