#!/usr/bin/env python
"""smtplab benchmarks: figures to read, never assertions.

Run from the repository root::

    .venv/bin/python benchmarks/bench.py            # about 20 s (up to ~50 s when the lab stalls)
    .venv/bin/python benchmarks/bench.py --quick    # about 10 s (up to ~20 s)
    .venv/bin/python benchmarks/bench.py --profile  # also profile the lab's loop thread

What it prints (see benchmarks/README.md for how to read it):

1. Throughput of a recorded lab listener versus a bare aiosmtpd server with a
   do-nothing handler, same client, same run, as a ratio (target >= 0.8):
   (a) plain port 25 delivery to a local user, (b) STARTTLS + AUTH PLAIN on 587.
2. How long ``Lab()`` takes to start (median of ~10) and ``lab.stop()`` to stop.
3. What a 10 MB message costs in transcript memory and on disk (target < 1 MB).
4. One whole STARTTLS + AUTH submission with ``lab.send`` versus smtplib and
   aiosmtplib against the bare server (median of 50).

The bare server runs the way the lab runs its own: ``loop.create_server(lambda:
SMTP(handler, ...), sock=...)`` on an event loop in a background thread
(aiosmtpd's ``Controller(port=0)`` is broken). The load client is a real
client nobody here wrote: aiosmtplib on its own event loop in the main thread
by default (``--client smtplib`` runs smtplib in a thread pool instead).

A figure that cannot be measured says why, and the script goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import cProfile
import gc
import os
import platform
import pstats
import smtplib
import socket
import ssl
import statistics
import sys
import threading
import time
import tracemalloc
import traceback
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable

perf = time.perf_counter

# --------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------

def section(title: str) -> None:
    print()
    print(title)
    print("-" * len(title))
    sys.stdout.flush()


def say(text: str = "") -> None:
    print(f"  {text}" if text else "")
    sys.stdout.flush()


def not_measured(what: str, err: BaseException) -> None:
    say(f"{what}: NOT MEASURED: {type(err).__name__}: {err}")
    tb = traceback.extract_tb(err.__traceback__)
    if tb:
        last = tb[-1]
        say(f"    (at {Path(last.filename).name}:{last.lineno} in {last.name})")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES TARGET"


# --------------------------------------------------------------------------
# an event loop in a background thread, as the lab has
# --------------------------------------------------------------------------

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
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


# --------------------------------------------------------------------------
# the bare aiosmtpd server
# --------------------------------------------------------------------------

class NullHandler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


class MaildirHandler:
    """A reference, not the baseline: the lab's promise before 250 (the message written into the
    Maildir by the lab's own MailStore.deliver, unsynced as the lab's default, in a worker thread)
    and nothing else, so the lab's ratio can be split into 'storing' and 'recording'."""

    def __init__(self, root: Path) -> None:
        from smtplab.store import MailStore
        self.store = MailStore(root)
        self.pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="bare-maildir")

    def _deliver(self, rcpt: str, message: bytes) -> None:
        self.store.deliver(rcpt, message)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        loop = asyncio.get_running_loop()
        for rcpt in envelope.rcpt_tos:
            await loop.run_in_executor(self.pool, self._deliver, rcpt, envelope.original_content)
        return "250 OK"


def accept_any_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult
    return AuthResult(success=True)


class BareServer:
    """aiosmtpd's SMTP with a do-nothing handler, on its own loop thread, on 127.0.0.1."""

    def __init__(self, tls_context: ssl.SSLContext | None = None, maildir: Path | None = None) -> None:
        from aiosmtpd.smtp import SMTP
        self.lt = LoopThread("bare-aiosmtpd")
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on an accepted connection only when the
        # socket's proto is IPPROTO_TCP (base_events._set_nodelay), which is what create_server(host, port)
        # gives. With proto 0, every multi-line reply (EHLO) waits ~40 ms on Nagle + delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.address, self.port = sock.getsockname()[:2]
        handler: Any = NullHandler() if maildir is None else MaildirHandler(maildir)
        self.handler = handler
        # An explicit hostname, as the lab gives: otherwise aiosmtpd asks getfqdn() per connection.
        kwargs: dict[str, Any] = {"hostname": "smtp.example.org"}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True, authenticator=accept_any_login,
                          auth_required=True, auth_require_tls=True)

        async def start() -> Any:
            return await asyncio.get_running_loop().create_server(lambda: SMTP(handler, **kwargs), sock=sock)
        self.server = self.lt.run(start())

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.lt.loop

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass
        try:
            self.lt.run(shut(), timeout=5)
        except Exception:  # noqa: BLE001 - closing must go on
            pass
        self.lt.stop()
        if isinstance(self.handler, MaildirHandler):
            self.handler.pool.shutdown(wait=True)


# --------------------------------------------------------------------------
# the client: aiosmtplib (default) or smtplib, nobody here wrote either
# --------------------------------------------------------------------------

@dataclass
class Target:
    label: str
    address: str
    port: int
    server_hostname: str
    tls_context: ssl.SSLContext | None  # STARTTLS with this context, or plain
    login: tuple[str, str] | None
    sender: str
    rcpt: str
    loop: asyncio.AbstractEventLoop | None = None  # the server's loop, for its thread CPU time


def make_message(sender: str, rcpt: str, body_bytes: int = 400) -> bytes:
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = (line * (body_bytes // len(line) + 1))[:body_bytes]
    head = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: smtplab benchmark\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <bench@example.org>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    return head + body.rstrip(b"\r\n.") + b"\r\n"


class CheckFailed(Exception):
    pass


async def aio_session(t: Target, msg: bytes) -> None:
    import aiosmtplib
    client = aiosmtplib.SMTP(hostname=t.address, port=t.port, start_tls=False, use_tls=False,
                             local_hostname="client.lab", timeout=10)
    try:
        await client.connect()
        await client.ehlo()
        if t.tls_context is not None:
            await client.starttls(server_hostname=t.server_hostname, tls_context=t.tls_context)
            await client.ehlo()
        if t.login is not None:
            await client.auth_plain(*t.login)
        errors, reply = await client.sendmail(t.sender, [t.rcpt], msg)
        if errors:
            raise CheckFailed(f"refused: {errors}")
        await client.quit()
    finally:
        client.close()


class MappedSMTP(smtplib.SMTP):
    """smtplib talking to a logical host name (so STARTTLS checks the right certificate) at a real address."""

    def __init__(self, target: Target, **kwargs: Any) -> None:
        self._target = target
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._target.address, self._target.port), timeout)


def smtplib_session(t: Target, msg: bytes) -> None:
    s = MappedSMTP(t, host=t.server_hostname, port=t.port, local_hostname="client.lab", timeout=10)
    try:
        s.ehlo()
        if t.tls_context is not None:
            s.starttls(context=t.tls_context)
            s.ehlo()
        if t.login is not None:
            s.user, s.password = t.login
            s.auth("PLAIN", s.auth_plain)
        refused = s.sendmail(t.sender, [t.rcpt], msg)
        if refused:
            raise CheckFailed(f"refused: {refused}")
        s.quit()
    finally:
        s.close()


@dataclass
class Batch:
    n: int
    ok: int
    elapsed: float
    latencies: list[float]
    failures: list[str]
    process_cpu: float
    server_cpu: float | None  # CPU time of the server's loop thread
    by_thread: dict[str, float]  # CPU seconds per thread name during the batch (threads that lived through it)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


def threads_cpu() -> dict[str, float]:
    """CPU seconds so far of each live Python thread, by name with pool suffixes dropped (Linux /proc only)."""
    import re
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
    if loop is None:
        return None
    try:
        return call_in_loop(loop, time.thread_time)
    except Exception:  # noqa: BLE001 - a figure we can do without
        return None


class Client:
    """N messages, `concurrency` sessions at a time, one message per session."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.aio_loop = asyncio.new_event_loop() if kind == "aiosmtplib" else None
        self.pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="bench-smtplib") if kind == "smtplib" else None

    def close(self) -> None:
        if self.aio_loop is not None:
            self.aio_loop.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def one(self, t: Target, msg: bytes, kind: str | None = None) -> float:
        """One session, sequential; returns its duration."""
        kind = kind or self.kind
        t0 = perf()
        if kind == "aiosmtplib":
            loop = self.aio_loop or asyncio.new_event_loop()
            try:
                loop.run_until_complete(aio_session(t, msg))
            finally:
                if loop is not self.aio_loop:
                    loop.close()
        else:
            smtplib_session(t, msg)
        return perf() - t0

    def batch(self, t: Target, msg: bytes, n: int, concurrency: int) -> Batch:
        latencies: list[float] = []
        failures: list[str] = []
        cpu0, srv0, th0 = time.process_time(), thread_cpu(t.loop), threads_cpu()
        t0 = perf()
        if self.kind == "aiosmtplib":
            assert self.aio_loop is not None
            jobs = iter(range(n))

            async def worker() -> None:
                for _ in jobs:
                    s = perf()
                    try:
                        await asyncio.wait_for(aio_session(t, msg), 15)
                    except Exception as err:  # noqa: BLE001 - counted and shown
                        failures.append(f"{type(err).__name__}: {err}")
                    else:
                        latencies.append(perf() - s)

            async def main() -> None:
                await asyncio.gather(*(worker() for _ in range(concurrency)))
            self.aio_loop.run_until_complete(main())
        else:
            assert self.pool is not None
            sem = threading.Semaphore(concurrency)

            def job() -> None:
                with sem:
                    s = perf()
                    try:
                        smtplib_session(t, msg)
                    except Exception as err:  # noqa: BLE001 - counted and shown
                        failures.append(f"{type(err).__name__}: {err}")
                    else:
                        latencies.append(perf() - s)
            # A pool of `concurrency` workers would do; the semaphore keeps it exact with a shared pool.
            futures = [self.pool.submit(job) for _ in range(n)]
            concurrent.futures.wait(futures)
        elapsed = perf() - t0
        cpu1, srv1, th1 = time.process_time(), thread_cpu(t.loop), threads_cpu()
        server_cpu = (srv1 - srv0) if srv0 is not None and srv1 is not None else None
        by_thread = {name: th1[name] - th0.get(name, 0.0) for name in th1}
        return Batch(n, len(latencies), elapsed, latencies, failures, cpu1 - cpu0, server_cpu, by_thread)


# --------------------------------------------------------------------------
# profiling the lab's loop thread
# --------------------------------------------------------------------------

class LoopProfiler:
    """cProfile on another thread's event loop: enable and disable it from inside that thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.prof = cProfile.Profile()

    def __enter__(self) -> "LoopProfiler":
        call_in_loop(self.loop, self.prof.enable)
        return self

    def __exit__(self, *exc: object) -> None:
        call_in_loop(self.loop, self.prof.disable)

    def report(self, per: int, top: int = 14) -> None:
        stats = pstats.Stats(self.prof)
        rows = dict(stats.stats)  # type: ignore[attr-defined]
        idle = sum(v[2] for k, v in rows.items() if k[2] == "<method 'poll' of 'select.epoll' objects>")
        rows = {k: v for k, v in rows.items() if k[2] != "<method 'poll' of 'select.epoll' objects>"}
        total = sum(v[2] for v in rows.values())
        say(f"profiled loop-thread time: {ms(total / per)} per message busy, {ms(idle / per)} idle in epoll "
            f"(profiler overhead included; a send() or recv() also counts time waiting for the GIL)")

        def name(key: tuple[str, int, str]) -> str:
            filename, line, func = key
            if filename == "~":
                return func
            parts = Path(filename).parts
            short = "/".join(parts[-2:]) if "site-packages" not in parts else "/".join(parts[parts.index("site-packages") + 1:])
            return f"{short}:{line}({func})"

        say(f"top {top} by own time (us per message, calls per message):")
        for key, (cc, nc, tt, ct, _) in sorted(rows.items(), key=lambda kv: -kv[1][2])[:top]:
            say(f"  {tt / per * 1e6:8.1f} us {nc / per:7.1f} calls  {name(key)}")
        lab_rows = [(k, v) for k, v in rows.items() if "smtplab" in k[0] and "bench" not in k[0]]
        say("smtplab functions by cumulative time (us per message):")
        for key, (cc, nc, tt, ct, _) in sorted(lab_rows, key=lambda kv: -kv[1][3])[:top]:
            say(f"  {ct / per * 1e6:8.1f} us cum {tt / per * 1e6:7.1f} us own {nc / per:6.1f} calls  {name(key)}")


# --------------------------------------------------------------------------
# 0. TCP_NODELAY: a check
# --------------------------------------------------------------------------

def ehlo_round_trip(address: str, port: int, runs: int = 5) -> float:
    """Median time from sending EHLO to the last line of its (multi-line) reply, over a plain socket."""
    times = []
    for _ in range(runs):
        with socket.create_connection((address, port), 5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")
            f.readline()  # greeting
            t0 = perf()
            s.sendall(b"EHLO client.lab\r\n")
            while True:
                line = f.readline()
                if not line or line[3:4] != b"-":
                    break
            times.append(perf() - t0)
            s.sendall(b"QUIT\r\n")
            f.readline()
    return statistics.median(times)


def nodelay_check(lab: Any) -> None:
    section("0. Check: do the lab's accepted connections get TCP_NODELAY?")
    try:
        protos = {s.proto for server in lab._servers for s in server.sockets}
        ok = protos == {socket.IPPROTO_TCP}
        say(f"lab listening sockets: proto {sorted(protos)} "
            f"({'IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections' if ok else 'not IPPROTO_TCP (6): asyncio will NOT set TCP_NODELAY on accepted connections, so a multi-line reply waits on Nagle + delayed ACK'})")
    except Exception as err:  # noqa: BLE001
        not_measured("listening socket proto", err)
    bare = None
    try:
        bare = BareServer(None)
        ep = lab.endpoint("smtp.example.org", 25)
        lab_t, bare_t = ehlo_round_trip(ep.address, ep.bound_port), ehlo_round_trip(bare.address, bare.port)
        say(f"EHLO round trip (multi-line reply), median of 5: lab port 25 {ms(lab_t)}, bare aiosmtpd {ms(bare_t)}"
            + ("   <- ~40 ms is the Nagle/delayed-ACK stall" if lab_t > 0.02 else ""))
    except Exception as err:  # noqa: BLE001
        not_measured("EHLO round trip", err)
    finally:
        if bare is not None:
            bare.close()


def throughput(lab: Any, client: Client, n: int, concurrency: int, rounds: int, profile: bool) -> None:
    section(f"1. Throughput: recorded lab listener vs bare aiosmtpd (do-nothing handler), same client ({client.kind})")
    say(f"{n} messages per side, {concurrency} sessions at a time, one message per session, "
        f"in {rounds} alternating rounds (bare, bare+Maildir, lab, bare, ...), after a warm-up")
    say("'server CPU' is the CPU time of the server's event-loop thread; 'process CPU' is all threads, client included")
    say("'bare+Maildir' is a reference, not the baseline: bare aiosmtpd whose handler only does what the lab promises")
    say("before 250 (the same unsynced Maildir write, in a worker thread); lab/bare+Maildir is then the cost of recording")
    user = lab.topology.user("alice@example.org")
    cases = [
        ("(a) port 25, plain, delivery to carol@example.org", None, None, lab.endpoint("smtp.example.org", 25)),
        ("(b) port 587, STARTTLS + AUTH PLAIN, delivery to carol@example.org",
         lab.ca.server_context("smtp.example.org"), (user.username, user.password), lab.endpoint("smtp.example.org", 587)),
    ]
    for title, server_ctx, login, ep in cases:
        say()
        say(title)
        servers: list[BareServer] = []
        scratch = None
        try:
            import tempfile
            scratch = Path(tempfile.mkdtemp(prefix="smtplab-bench-"))
            bare = BareServer(server_ctx)
            servers.append(bare)
            bare_md = BareServer(server_ctx, maildir=scratch)
            servers.append(bare_md)
            client_ctx = lab.client_tls if server_ctx is not None else None
            msg = make_message("alice@example.org", "carol@example.org")

            def target(label: str, address: str, port: int, loop: asyncio.AbstractEventLoop) -> Target:
                return Target(label, address, port, "smtp.example.org", client_ctx, login,
                              "alice@example.org", "carol@example.org", loop)
            targets = {
                "bare": target("bare aiosmtpd", bare.address, bare.port, bare.loop),
                "bare+Maildir": target("bare+Maildir (ref.)", bare_md.address, bare_md.port, bare_md.loop),
                "lab": target("lab", ep.address, ep.bound_port, lab._loop),
            }
            for t in targets.values():  # warm-up: connections, TLS session machinery, code paths
                client.batch(t, msg, max(8, concurrency * 2), concurrency)
            results: dict[str, list[Batch]] = {side: [] for side in targets}
            per_round = max(1, n // rounds)
            for _ in range(rounds):
                for side, t in targets.items():
                    results[side].append(client.batch(t, msg, per_round, concurrency))
            rates = {}
            for side, t in targets.items():
                bs = results[side]
                ok = sum(b.ok for b in bs)
                elapsed = sum(b.elapsed for b in bs)
                lat = [x for b in bs for x in b.latencies]
                fails = [f for b in bs for f in b.failures]
                rates[side] = ok / elapsed if elapsed else 0.0
                cpu = sum(b.process_cpu for b in bs) / max(ok, 1)
                srv = [b.server_cpu for b in bs]
                srv_text = ms(sum(srv) / max(ok, 1)) if all(x is not None for x in srv) else "n/a"  # type: ignore[misc]
                med = ms(statistics.median(lat)) if lat else "n/a"
                p90 = ms(statistics.quantiles(lat, n=10)[-1]) if len(lat) >= 10 else "n/a"
                label = f"{t.label} ({t.address}:{t.port})"
                say(f"  {label:<37} {rates[side]:6.0f} msg/s   median latency {med:>9}   p90 {p90:>9}   "
                    f"server CPU/msg {srv_text:>8}   process CPU/msg {ms(cpu):>8}   ok {ok}/{per_round * rounds}")
                for f in sorted(set(fails))[:3]:
                    say(f"    failure ({fails.count(f)}x): {f}")
                threads: dict[str, float] = {}
                for b in bs:
                    for name, sec in b.by_thread.items():
                        threads[name] = threads.get(name, 0.0) + sec
                busy = [(name, sec / max(ok, 1)) for name, sec in sorted(threads.items(), key=lambda kv: -kv[1])
                        if sec / max(ok, 1) >= 0.00002]
                if busy:
                    say("      CPU per msg by thread: " + ", ".join(f"{name} {sec * 1000:.2f} ms" for name, sec in busy))
            if rates["bare"]:
                ratio = rates["lab"] / rates["bare"]
                per_round_ratios = [lb.rate / bb.rate for lb, bb in zip(results["lab"], results["bare"]) if bb.rate]
                spread = ", ".join(f"{r:.2f}" for r in per_round_ratios)
                say(f"  RATIO lab/bare = {ratio:.2f}   (target >= 0.8: {verdict(ratio >= 0.8)})   "
                    f"per round: {spread} (the spread is this machine's noise)")
            if rates["bare+Maildir"]:
                say(f"  for reference: bare+Maildir/bare = {rates['bare+Maildir'] / rates['bare']:.2f}, "
                    f"lab/bare+Maildir = {rates['lab'] / rates['bare+Maildir']:.2f}")
            if profile:  # a separate, untimed batch: the profiler slows the loop a lot
                prof = LoopProfiler(lab._loop)
                with prof:
                    extra = client.batch(targets["lab"], msg, per_round, concurrency)
                say()
                say(f"cProfile of the lab's loop thread over {extra.ok} more messages (untimed, not in the figures above):")
                prof.report(extra.ok or 1)
        except Exception as err:  # noqa: BLE001 - the script goes on
            not_measured(title, err)
        finally:
            for server in servers:
                server.close()
            if scratch is not None:
                import shutil
                shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------
# 2. start and stop
# --------------------------------------------------------------------------

def startup(runs: int) -> None:
    section(f"2. Lab() start-up and lab.stop() (median of {runs}; construction timed alone, each stopped before the next)")
    from smtplab import Lab
    try:
        current = Lab._current
        if current is not None:
            current.stop()
        starts, stops = [], []
        for _ in range(runs):
            gc.collect()
            t0 = perf()
            lab = Lab()
            starts.append(perf() - t0)
            t0 = perf()
            lab.stop()
            stops.append(perf() - t0)
        say(f"Lab():      median {ms(statistics.median(starts))}   min {ms(min(starts))}   max {ms(max(starts))}   "
            f"(first {ms(starts[0])})   target < 1 s: {verdict(statistics.median(starts) < 1)}")
        say(f"lab.stop(): median {ms(statistics.median(stops))}   min {ms(min(stops))}   max {ms(max(stops))}")
    except Exception as err:  # noqa: BLE001
        not_measured("start-up", err)
    # Where the start-up time goes, roughly: the CA (trustme) is one visible part.
    try:
        import trustme
        t0 = perf()
        ca = trustme.CA(organization_name="smtplab", organization_unit_name="lab CA")
        for name in ("smtp.example.org", "mx1.example.net", "mx2.example.net"):
            ca.issue_cert(name)
        say(f"of which, roughly: a trustme CA and 3 host certificates take {ms(perf() - t0)}")
    except Exception as err:  # noqa: BLE001
        not_measured("trustme CA", err)


# --------------------------------------------------------------------------
# 3. transcript memory for a 10 MB message
# --------------------------------------------------------------------------

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
    line = (b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n")  # 76 + CRLF
    head = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: a 10 MB message\r\n"
            f"Message-ID: <big@example.org>\r\n\r\n").encode()
    return head + line * (nbytes // len(line))


def transcript_memory(lab: Any) -> None:
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


# --------------------------------------------------------------------------
# 4. one whole submission
# --------------------------------------------------------------------------

def submission(lab: Any, client: Client, runs: int, profile: bool) -> None:
    section(f"4. One whole STARTTLS + AUTH submission, sequential (median of {runs}, the variants interleaved)")
    say("each: connect, EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT; a ~500-byte message to carol@example.org")
    user = lab.topology.user("alice@example.org")
    login = (user.username, user.password)
    msg = make_message("alice@example.org", "carol@example.org")
    bare = None
    try:
        bare = BareServer(lab.ca.server_context("smtp.example.org"))
        t_bare = Target("bare", bare.address, bare.port, "smtp.example.org", lab.client_tls, login,
                        "alice@example.org", "carol@example.org")
        ep = lab.endpoint("smtp.example.org", 587)
        t_lab = Target("lab", ep.address, ep.bound_port, "smtp.example.org", lab.client_tls, login,
                       "alice@example.org", "carol@example.org")

        def lab_send() -> None:
            res = lab.send("alice@example.org", "carol@example.org", body="A short benchmark message.\n")
            if not res.ok:
                raise CheckFailed(res.summary())

        def lab_send_raw() -> None:
            res = lab.send("alice@example.org", "carol@example.org", message=msg)
            if not res.ok:
                raise CheckFailed(res.summary())

        SEND = "lab.send    -> lab 587 (both sides recorded)"
        variants: dict[str, Callable[[], Any]] = {
            "smtplib     -> bare aiosmtpd": lambda: client.one(t_bare, msg, "smtplib"),
            "aiosmtplib  -> bare aiosmtpd": lambda: client.one(t_bare, msg, "aiosmtplib"),
            "smtplib     -> lab 587 (server records, client does not)": lambda: client.one(t_lab, msg, "smtplib"),
            "aiosmtplib  -> lab 587 (server records, client does not)": lambda: client.one(t_lab, msg, "aiosmtplib"),
            SEND: lab_send,
            "lab.send(message=bytes): no EmailMessage to build": lab_send_raw,
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        broken: dict[str, BaseException] = {}
        warm = 3 if runs < 30 else 5
        for i in range(runs + warm):  # the first rounds warm up
            for label, fn in variants.items():
                if label in broken:
                    continue
                try:
                    t0 = perf()
                    fn()
                    if i >= warm:
                        times[label].append(perf() - t0)
                    lab.flush()  # untimed: the next variant starts with the lab's transcript writer idle
                except Exception as err:  # noqa: BLE001
                    broken[label] = err
        figures: dict[str, float] = {}
        for label in variants:
            if label in broken:
                not_measured(label, broken[label])
                continue
            ts = times[label]
            figures[label] = statistics.median(ts)
            say(f"{label:<58} median {ms(figures[label]):>9}   min {ms(min(ts)):>9}   max {ms(max(ts)):>9}")
        if SEND in figures:
            for ref in ("smtplib     -> bare aiosmtpd", "aiosmtplib  -> bare aiosmtpd"):
                if ref in figures:
                    r = figures[SEND] / figures[ref]
                    say(f"lab.send / ({ref.split()[0]} -> bare) = {r:.2f}x   (target about <= 2x: {verdict(r <= 2.0)})")
        if profile and SEND in figures:  # separate and untimed: the profiler slows the loop a lot
            prof = LoopProfiler(lab._loop)
            with prof:
                for _ in range(runs):
                    lab_send()
            say()
            say(f"cProfile of the lab's loop thread over {runs} more lab.send calls (untimed):")
            prof.report(runs)
    except Exception as err:  # noqa: BLE001
        not_measured("submission", err)
    finally:
        if bare is not None:
            bare.close()


# --------------------------------------------------------------------------
# 5. where the time goes, off the loop
# --------------------------------------------------------------------------

def micro(lab: Any, quick: bool) -> None:
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

    import mailbox
    import shutil
    import tempfile
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


# --------------------------------------------------------------------------

def relay_chain_throughput(n: int, concurrency: int) -> None:
    section(f"6. Through a three-hop chain (smtp.example.org -> relay1.example.org -> mx1.example.net), {n} messages")
    from smtplab import Lab, relay_chain
    say("  lab.asend submits with STARTTLS + AUTH, each hop relays over STARTTLS; timed until the last one is in Bob's Maildir")
    say("  end-to-end: from smtp.example.org accepting a message to mx1 accepting it (the lab's per-message trace)")
    with Lab(relay_chain(1)) as lab:
        async def send_all() -> list[Any]:
            results = []
            for start in range(0, n, concurrency):
                batch = [lab.asend("alice@example.org", "bob@example.net", subject=f"chain {i}")
                         for i in range(start, min(n, start + concurrency))]
                results += await asyncio.gather(*batch)
            return results
        lab.send("alice@example.org", "bob@example.net", subject="warm-up")
        lab.wait_for_queue(30)
        t0 = perf()
        results = asyncio.run(send_all())
        emptied = lab.wait_for_queue(120)
        elapsed = perf() - t0
        delivered = len(lab.inbox("bob@example.net")) - 1
        totals = [t.total for t in (lab.trace(r) for r in results) if len(t.hops) == 3]
        say(f"  {delivered}/{n} delivered ({'queue empty' if emptied else 'QUEUE NOT EMPTY'}) in {elapsed:.2f} s: "
            f"{delivered / elapsed:.0f} messages/s end to end")
        if totals:
            say(f"  end-to-end per message: median {ms(statistics.median(totals))}, "
                f"p90 {ms(sorted(totals)[int(len(totals) * 0.9) - 1])}, over {len(totals)} traced messages")

def round_trips_at_delay(delay_ms: float, runs: int) -> None:
    section(f"7. One message per variant over a link with a one-way delay of {delay_ms:g} ms (median of {runs})")
    from smtplab import Lab
    say(f"  round trips = elapsed / (2 x {delay_ms:g} ms); the lab's links do not delay the TCP handshake itself,")
    say("  so a real network adds one more round trip per new connection, to every variant alike")
    with Lab(latency_ms=delay_ms) as lab:
        variants = {
            "SMTP port 25, plain, no login": lambda: lab.send("alice@example.org", "carol@example.org", port=25, tls="none"),
            "SMTP port 587, STARTTLS + AUTH": lambda: lab.send("alice@example.org", "carol@example.org", port=587),
            "SMTP port 465, implicit TLS + AUTH": lambda: lab.send("alice@example.org", "carol@example.org", port=465),
            "HTTP API, one POST over HTTPS": lambda: lab.api_send("alice@example.org", "carol@example.org"),
        }
        for name, send in variants.items():
            times = []
            for _ in range(runs):
                result = send()
                if not result.ok:
                    say(f"  {name}: FAILED ({getattr(result, 'error', '')})")
                    break
                times.append(result.elapsed)
            if times:
                median = statistics.median(times)
                say(f"  {name:<38} {ms(median):>10}   about {median / (2 * delay_ms / 1000):.1f} round trips")
        ten = lab.api_send("alice@example.org", "carol@example.org", count=10)
        say(f"  {'HTTP API, 10 POSTs on one connection':<38} {ms(ten.elapsed):>10}   "
            f"{ms(ten.elapsed / 10)} per message")

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages: about 20 s")
    ap.add_argument("--client", choices=("aiosmtplib", "smtplib"), default="aiosmtplib",
                    help="throughput client: aiosmtplib on its own loop in the main thread (default), "
                         "or smtplib in a thread pool")
    ap.add_argument("-n", type=int, default=None, help="messages per side for throughput (300; --quick 60)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--profile", action="store_true", help="cProfile the lab's loop thread, per message")
    args = ap.parse_args()
    n = args.n or (60 if args.quick else 300)
    rounds = 3 if args.quick else 6  # short alternating rounds, so drifts (fsync latency) hit every side alike
    start_runs = 5 if args.quick else 10
    send_runs = 15 if args.quick else 50

    t_all = perf()
    import aiosmtpd
    import aiosmtplib
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print("smtplab benchmarks (figures only; nothing here asserts a timing)")
    print(f"CPUs: {os.cpu_count()} (usable by this process: {affinity})   "
          f"Python {platform.python_version()} ({platform.python_implementation()})   {platform.platform()}")
    print(f"aiosmtpd {getattr(aiosmtpd, '__version__', '?')}   aiosmtplib {getattr(aiosmtplib, '__version__', '?')}   "
          f"{ssl.OPENSSL_VERSION}   mode: {'quick' if args.quick else 'full'}")
    print(f"throughput client: {args.client} "
          f"({'on its own event loop in the main thread' if args.client == 'aiosmtplib' else 'in a thread pool'}); "
          f"servers: each on an event loop in its own background thread")
    sys.stdout.flush()

    from smtplab import Lab
    client = Client(args.client)
    lab = None
    try:
        try:
            lab = Lab()
            nodelay_check(lab)
            throughput(lab, client, n, args.concurrency, rounds, args.profile)
        except Exception as err:  # noqa: BLE001
            not_measured("throughput", err)
        finally:
            if lab is not None:
                lab.stop()
        startup(start_runs)
        lab = None
        try:
            lab = Lab()
        except Exception as err:  # noqa: BLE001
            not_measured("a lab for sections 3 and 4", err)
        if lab is not None:
            transcript_memory(lab)
            submission(lab, client, send_runs, args.profile)
            micro(lab, args.quick)
            lab.stop()
            try:
                relay_chain_throughput(60 if args.quick else 200, args.concurrency)
            except Exception as err:  # noqa: BLE001
                not_measured("the relay chain", err)
            try:
                round_trips_at_delay(20, 3 if args.quick else 5)
            except Exception as err:  # noqa: BLE001
                not_measured("round trips at a delay", err)
            errors = list(lab.errors)
            if errors:
                section("lab.errors (what went wrong inside the lab's loop during the run)")
                for e in errors[-10:]:
                    say(e)
    finally:
        if lab is not None:
            lab.stop()
        client.close()
    print()
    print(f"total time: {perf() - t_all:.1f} s")


if __name__ == "__main__":
    main()
