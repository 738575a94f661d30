"""Latency of one message: section 4 (one STARTTLS + AUTH submission, lab.send versus stdlib clients
against bare aiosmtpd) and section 7 (each way of sending over a link with a one-way delay, in round trips).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from clients import Client, Target
from common import (
    CheckFailed,
    make_message,
    ms,
    not_measured,
    perf,
    say,
    section,
    verdict,
)
from peers import BareServer
from profiling import LoopProfiler


def submission(lab: Any, client: Client, runs: int, profile: bool) -> None:
    """Print section 4: median of `runs`, the variants interleaved."""
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



def round_trips_at_delay(delay_ms: float, runs: int) -> None:
    """Print section 7: a lab whose student link has a one-way delay of `delay_ms`."""
    section(f"7. One message per variant over a link with a one-way delay of {delay_ms:g} ms (median of {runs})")
    from smtplab import Lab
    say(f"  round trips = elapsed / (2 x {delay_ms:g} ms); the lab's links do not delay the TCP handshake itself,")
    say("  so a real network adds one more round trip per new connection, to every variant alike")
    with Lab(latency_ms=delay_ms) as lab:
        variants: dict[str, Callable[[], Any]] = {
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
