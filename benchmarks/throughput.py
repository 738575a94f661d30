"""Section 1: throughput of a recorded lab listener versus bare aiosmtpd, same Python client, same run.

(a) plain port 25 delivery, (b) STARTTLS + AUTH PLAIN on 587; the client is
aiosmtplib (default) or smtplib, one message per session. The sides run in
short alternating rounds after a warm-up, so a drift on the machine hits each alike.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import statistics
import tempfile
from pathlib import Path
from typing import Any

from clients import Batch, Client, Target
from common import make_message, ms, not_measured, say, section, verdict
from peers import BareServer
from profiling import LoopProfiler


def throughput(lab: Any, client: Client, n: int, concurrency: int, rounds: int, profile: bool) -> None:
    """Print section 1."""
    section(f"1. Throughput: recorded lab listener vs bare aiosmtpd (do-nothing handler), same client ({client.kind})")
    say(f"{n} messages per side, {concurrency} sessions at a time, one message per session, "
        f"in {rounds} alternating rounds (bare, bare+MailStore, lab, bare, ...), after a warm-up")
    say("'server CPU' is the CPU time of the server's event-loop thread; 'process CPU' is all threads, client included")
    say("'bare+MailStore' is a reference, not the baseline: bare aiosmtpd whose handler only does what the lab promises")
    say("before 250 (the same unsynced Maildir write, in a worker thread); lab/bare+MailStore is then the cost of recording")
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
            scratch = Path(tempfile.mkdtemp(prefix="smtplab-bench-"))
            bare = BareServer(server_ctx)
            servers.append(bare)
            bare_md = BareServer(server_ctx, maildir=scratch)
            servers.append(bare_md)
            client_ctx = lab.client_tls if server_ctx is not None else None
            msg = make_message("alice@example.org", "carol@example.org")

            def target(label: str, address: str, port: int, loop: asyncio.AbstractEventLoop,
                       tls: ssl.SSLContext | None = client_ctx, login: tuple[str, str] | None = login) -> Target:
                return Target(label, address, port, "smtp.example.org", tls, login,
                              "alice@example.org", "carol@example.org", loop)
            targets = {
                "bare": target("bare aiosmtpd", bare.address, bare.port, bare.loop),
                "bare+MailStore": target("bare+MailStore (ref.)", bare_md.address, bare_md.port, bare_md.loop),
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
                srv = [b.server_cpu for b in bs if b.server_cpu is not None]
                srv_text = ms(sum(srv) / max(ok, 1)) if len(srv) == len(bs) else "n/a"
                med = ms(statistics.median(lat)) if lat else "n/a"
                p90 = ms(statistics.quantiles(lat, n=10)[-1]) if len(lat) >= 10 else "n/a"
                label = f"{t.label} ({t.address}:{t.port})"
                say(f"  {label:<41} {rates[side]:6.0f} msg/s   median latency {med:>9}   p90 {p90:>9}   "
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
                per_round_ratios = [lb.rate / bb.rate for lb, bb in zip(results["lab"], results["bare"], strict=True) if bb.rate]
                spread = ", ".join(f"{r:.2f}" for r in per_round_ratios)
                say(f"  RATIO lab/bare = {ratio:.2f}   (target >= 0.8: {verdict(ratio >= 0.8)})   "
                    f"per round: {spread} (the spread is this machine's noise)")
            if rates["bare+MailStore"]:
                say(f"  for reference: bare+MailStore/bare = {rates['bare+MailStore'] / rates['bare']:.2f}, "
                    f"lab/bare+MailStore = {rates['lab'] / rates['bare+MailStore']:.2f}")
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
                shutil.rmtree(scratch, ignore_errors=True)

