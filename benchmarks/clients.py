"""The load clients nobody here wrote: aiosmtplib on its own event loop (default) or smtplib in a thread pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from common import CheckFailed, perf, thread_cpu, threads_cpu


@dataclass
class Target:
    """Where a client session goes and what it does there."""

    label: str
    address: str
    port: int
    server_hostname: str
    tls_context: ssl.SSLContext | None  # STARTTLS with this context, or plain
    login: tuple[str, str] | None
    sender: str
    rcpt: str
    loop: asyncio.AbstractEventLoop | None = None  # the server's loop, for its thread CPU time


async def aio_session(t: Target, msg: bytes) -> None:
    """One aiosmtplib session: EHLO, [STARTTLS, EHLO], [AUTH PLAIN], one message, QUIT."""
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
        errors, _reply = await client.sendmail(t.sender, [t.rcpt], msg)
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
    """The same session as :func:`aio_session`, with smtplib."""
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
    """What one batch of sessions gave."""

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
        """`n` sessions to `t`, `concurrency` at a time, timed with CPU per thread."""
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

