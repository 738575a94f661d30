"""Section 8: throughput under Postfix's ``smtp-source``, the lab's mx1.example.net:25 versus two bare aiosmtpd peers.

The load comes from outside this process (``smtp-source`` from the Debian
package ``postfix``), so every CPU cycle this process spends is a server's.
Each load (``-s SESSIONS -m MESSAGES -l 1024``, one message per connection
unless ``-d`` is asked for) goes to three servers in the same run:

* ``lab``: the lab's ``mx1.example.net`` port 25 (its real address from
  ``Lab().endpoint``), delivering to ``dave@example.net``: recorded,
  annotated, stored in a Maildir before 250 (unsynced, the lab's default);
* ``bare null``: aiosmtpd's ``Controller`` with a handler that returns "250 OK";
* ``bare Maildir``: the same with a handler that adds each message to a
  standard-library ``mailbox.Maildir`` (which fsyncs every message).

One warm-up run per server, then ``reps`` repetitions in a rotating order
(so a drift on the machine hits every server alike); the figure is the
median messages/second, with the per-repetition ratios beside it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CheckFailed,
    cpu_by_thread,
    current_rss,
    machine_busy,
    ms,
    not_measured,
    peak_rss,
    perf,
    say,
    section,
    size,
    threads_cpu,
    wait_for_quiet,
)
from peers import ControllerPeer, MaildirHandler, NullHandler
from profiling import LoopProfiler, PySpy, find_py_spy

SENDER = "alice@example.com"
RCPT = "dave@example.net"
HELO = "source.example.com"
QUIET_CPUS = 0.25  # other processes' load under which a run may start (unless --no-wait-quiet)


def find_smtp_source() -> str | None:
    """smtp-source on PATH, or where Debian puts it (/usr/sbin is not on an ordinary user's PATH)."""
    found = shutil.which("smtp-source")
    if found:
        return found
    return "/usr/sbin/smtp-source" if os.access("/usr/sbin/smtp-source", os.X_OK) else None


@dataclass(frozen=True)
class Load:
    """One smtp-source load: `sessions` in parallel, `messages` in all; `keep` is -d (reuse each connection)."""

    sessions: int
    messages: int
    keep: bool = False

    @property
    def label(self) -> str:
        return f"{self.sessions} x {self.messages}" + (" -d" if self.keep else "")

    def scaled(self, factor: float) -> Load:
        return Load(self.sessions, max(self.sessions, int(self.messages * factor)), self.keep)


def parse_loads(text: str) -> list[Load]:
    """'1x1000,10x2000' (a trailing 'd' on one asks for -d) as Loads."""
    loads = []
    for item in text.split(","):
        part = item.strip().lower()
        keep = part.endswith("d")
        s, _, m = part.rstrip("d").partition("x")
        loads.append(Load(int(s), int(m), keep))
    return loads


@dataclass
class Run:
    """One smtp-source run against one server."""

    elapsed: float
    messages: int
    cpu: float  # CPU seconds of this (the servers') process
    child_cpu: float  # CPU seconds of smtp-source itself
    threads: dict[str, float] = field(default_factory=dict)  # CPU seconds by thread name
    others: float | None = None  # CPUs kept busy by other processes meanwhile (noise), on average
    flush: float = 0.0  # wall seconds of lab.flush() after the run (untimed): the transcript backlog

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed if self.elapsed > 0 else 0.0


class Server:
    """One server under load: where it listens, and how many messages it has stored or accepted."""

    def __init__(self, label: str, address: str, port: int, delivered: Any, close: Any = None) -> None:
        self.label, self.address, self.port = label, address, port
        self.delivered = delivered  # () -> messages accepted so far
        self._close = close

    def close(self) -> None:
        if self._close is not None:
            self._close()


def maildir_count(folder: Path) -> int:
    """Messages in a Maildir's new/ and cur/."""
    return sum(1 for sub in ("new", "cur") if (folder / sub).is_dir() for _ in os.scandir(folder / sub))


def run_load(exe: str, server: Server, load: Load, body: int) -> Run:
    """One smtp-source run, timed from start to exit; checks its counter and the server's own count."""
    cmd = [exe, "-s", str(load.sessions), "-m", str(load.messages), "-l", str(body), "-c",
           "-M", HELO, "-f", SENDER, "-t", RCPT, *(["-d"] if load.keep else []), f"{server.address}:{server.port}"]
    before = server.delivered()
    th0 = threads_cpu()
    cpu0 = time.process_time()
    child0 = os.times()
    busy0 = machine_busy()
    t0 = perf()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=max(120, load.messages / 10))
    elapsed = perf() - t0
    cpu, child1, th1, busy1 = time.process_time() - cpu0, os.times(), threads_cpu(), machine_busy()
    child_cpu = (child1.children_user - child0.children_user) + (child1.children_system - child0.children_system)
    others = (busy1 - busy0 - cpu - child_cpu) / elapsed if busy0 is not None and busy1 is not None else None
    counted = [line for line in proc.stdout.split() if line.isdigit()]
    sent = int(counted[-1]) if counted else 0
    if proc.returncode != 0 or sent != load.messages:
        raise CheckFailed(f"smtp-source exited {proc.returncode} after {sent}/{load.messages} messages: "
                          f"{proc.stderr.strip()[-300:]}")
    got = server.delivered() - before
    if got != load.messages:
        raise CheckFailed(f"{server.label} accepted {got} of {load.messages} messages")
    return Run(elapsed, load.messages, cpu, child_cpu, {k: th1[k] - th0.get(k, 0.0) for k in th1},
               max(others, 0.0) if others is not None else None)


def smtp_source_throughput(loads: list[Load], reps: int, body: int = 1024, profile: bool = False,
                           py_spy: bool = False, quiet: bool = True) -> None:
    """Print section 8: each load against the lab and the two bare peers, median of `reps`, then profiles.

    `quiet`: before each timed run, wait (a little) until other processes leave the CPUs alone.
    """
    section("8. Throughput under Postfix smtp-source: the lab's mx1.example.net:25 vs bare aiosmtpd peers")
    exe = find_smtp_source()
    if exe is None:
        say("SKIPPED: smtp-source not found (on PATH or /usr/sbin); it is in the Debian package 'postfix' "
            "(apt-get install postfix)")
        return
    from smtplab import Lab
    say(f"{exe}: -l {body} -f {SENDER} -t {RCPT} -M {HELO}, one message per connection unless -d; "
        f"{reps} repetitions in rotating order after one warm-up run each; median msg/s")
    say("bare null = aiosmtpd Controller, handler returns '250 OK'; bare Maildir = the same, handler does "
        "mailbox.Maildir.add (fsynced), on its loop")
    say("lab = mx1.example.net:25 with recording, annotation, Received header, Maildir delivery (unsynced) before 250")
    say("'CPU/msg' is this process's CPU (all server work: nothing else runs here meanwhile); "
        "'source' is smtp-source's own CPU;")
    say("'other processes' is how many CPUs the rest of the machine kept busy meanwhile: compare runs only when it is low")
    scratch = Path(tempfile.mkdtemp(prefix="smtplab-bench-source-"))
    servers: list[Server] = []
    lab = None
    rss0 = current_rss()
    try:
        lab = Lab()
        ep = lab.endpoint("mx1.example.net", 25)
        lab_box = lab.state_dir / "maildir" / RCPT
        null = ControllerPeer("bare null", NullHandler())
        servers.append(Server("bare null", null.address, null.port, lambda: null.count, null.close))
        md = ControllerPeer("bare Maildir", MaildirHandler(scratch / "maildir"))
        servers.append(Server("bare Maildir", md.address, md.port, lambda: maildir_count(scratch / "maildir"),
                              md.close))
        lab_server = Server("lab", ep.address, ep.bound_port, lambda: maildir_count(lab_box))
        servers.append(lab_server)
        for s in servers:
            say(f"  {s.label:<13} {s.address}:{s.port}")
        for load in loads:
            say()
            say(f"load {load.label}: {load.sessions} session(s) in parallel, {load.messages} messages")
            runs: dict[str, list[Run]] = {s.label: [] for s in servers}
            try:
                warm = load.scaled(0.1)
                for s in servers:
                    run_load(exe, s, warm, body)
                lab.flush()
                waited, noisy = 0.0, 0
                for rep in range(reps):
                    order = servers[rep % len(servers):] + servers[:rep % len(servers)]
                    for s in order:
                        if quiet:
                            w, reading = wait_for_quiet(QUIET_CPUS)
                            waited += w
                            noisy += reading is not None and reading > QUIET_CPUS
                        runs[s.label].append(run_load(exe, s, load, body))
                        if s is lab_server:  # untimed: the next server starts with the transcript writer idle
                            t0 = perf()
                            lab.flush()
                            runs[s.label][-1].flush = perf() - t0
            except Exception as err:  # noqa: BLE001 - the next load may still work
                not_measured(f"load {load.label}", err)
                continue
            if quiet:
                say(f"  (waited {waited:.1f} s in all for other processes to keep under {QUIET_CPUS} CPUs busy; "
                    f"{noisy} of {reps * len(servers)} runs started without that)")
            report_load(runs)
        if profile or py_spy:
            profile_lab(exe, lab, lab_server, max(loads, key=lambda ld: ld.sessions * ld.messages), body,
                        profile, py_spy)
    except Exception as err:  # noqa: BLE001 - the script goes on
        not_measured("smtp-source throughput", err)
    finally:
        for s in servers:
            try:
                s.close()
            except Exception as err:  # noqa: BLE001 - closing must go on
                not_measured(f"closing {s.label}", err)
        if lab is not None:
            errors = list(lab.errors)
            lab.stop()
            for e in errors[-5:]:
                say(f"lab.errors: {e}")
        shutil.rmtree(scratch, ignore_errors=True)
    rss1 = current_rss()
    say()
    say(f"memory: peak RSS of this process so far {size(peak_rss())}"
        + (f"; RSS {size(rss0)} before this section, {size(rss1)} after it (lab stopped)" if rss0 and rss1 else ""))


def report_load(runs: dict[str, list[Run]]) -> None:
    """Median msg/s per server and the lab's ratios to each bare peer (overall and per repetition)."""
    rates = {label: statistics.median(r.rate for r in rs) for label, rs in runs.items()}
    for label, rs in runs.items():
        n = sum(r.messages for r in rs)
        cpu = sum(r.cpu for r in rs) / n
        child = sum(r.child_cpu for r in rs) / n
        spread = ", ".join(f"{r.rate:.0f}" for r in rs)
        noise = [r.others for r in rs if r.others is not None]
        noise_text = f"   other processes: up to {max(noise):.2f} CPUs busy" if noise else ""
        say(f"  {label:<13} {rates[label]:7.0f} msg/s median   (runs: {spread})   CPU/msg {ms(cpu)}   "
            f"source CPU/msg {ms(child)}{noise_text}")
        if label == "lab":
            threads: dict[str, float] = {}
            for r in rs:
                for k, v in r.threads.items():
                    threads[k] = threads.get(k, 0.0) + v
            say(f"      CPU per msg by thread: {cpu_by_thread({}, threads, n)}")
            say(f"      transcript backlog left after a run (lab.flush(), untimed): "
                f"{ms(statistics.mean(r.flush for r in rs))} on average")
    lab_rs = runs.get("lab", [])
    cpu_per = {label: sum(r.cpu for r in rs) / sum(r.messages for r in rs) for label, rs in runs.items()}
    for peer in ("bare null", "bare Maildir"):
        if peer in rates and "lab" in rates and rates[peer]:
            per_rep = [a.rate / b.rate for a, b in zip(lab_rs, runs[peer], strict=True) if b.rate]
            say(f"  RATIO lab / {peer:<12} = {rates['lab'] / rates[peer]:.2f}x msg/s   "
                f"(per repetition: {', '.join(f'{r:.2f}' for r in per_rep)}; median {statistics.median(per_rep):.2f})   "
                f"CPU/msg {peer} / lab = {cpu_per[peer] / cpu_per['lab']:.2f}")


def profile_lab(exe: str, lab: Any, server: Server, load: Load, body: int, profile: bool, py_spy: bool) -> None:
    """Extra, untimed runs of `load` against the lab: under py-spy (all threads), then cProfile (loop thread)."""
    spy_exe = find_py_spy() if py_spy else None
    if py_spy and spy_exe is None:
        say()
        say("py-spy profile SKIPPED: py-spy not found (.venv/bin/python -m pip install py-spy)")
    if spy_exe is not None:
        for what, flags in (("every busy thread, running Python or in a system call", ("--nonblocking",)),
                            ("only the thread holding the GIL", ("--nonblocking", "--gil"))):
            say()
            say(f"py-spy ({' '.join(flags)}: {what}) over one more {load.label} run against the lab (untimed):")
            try:
                spy = PySpy(spy_exe, extra=flags)
                with spy:
                    run = run_load(exe, server, load, body)
                lab.flush()
                say(f"  ({run.rate:.0f} msg/s under py-spy)")
                spy.report(15)
            except Exception as err:  # noqa: BLE001
                not_measured("py-spy profile", err)
    if profile:
        say()
        say(f"cProfile of the lab's loop thread over one more {load.label} run (untimed; the profiler slows it):")
        try:
            prof = LoopProfiler(lab._loop)
            with prof:
                run = run_load(exe, server, load, body)
            lab.flush()
            say(f"  ({run.rate:.0f} msg/s under cProfile)")
            prof.report(run.messages, top=15, percent=True)
        except Exception as err:  # noqa: BLE001
            not_measured("cProfile", err)
