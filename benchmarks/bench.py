"""smtplab benchmarks: figures to read, never assertions (``make bench``).

Run from the repository root::

    .venv/bin/python benchmarks/bench.py                      # everything, a few minutes
    .venv/bin/python benchmarks/bench.py --quick              # fewer messages
    .venv/bin/python benchmarks/bench.py --only smtp-source   # one section (names: --help)
    .venv/bin/python benchmarks/bench.py --only smtp-source --profile --py-spy   # and where the time goes

This file only reads the options, prints the header and runs the sections, each
in its own module (see benchmarks/README.md for how to read the figures):

0. nodelay.py        TCP_NODELAY on the lab's accepted connections
1. throughput.py     lab vs bare aiosmtpd under a Python client, ports 25 and 587
2. startup.py        Lab() and lab.stop()
3. transcript_size.py  a 10 MB message's transcripts
4. latency.py        one STARTTLS + AUTH submission (and 7: round trips over a delayed link)
5. pieces.py         pieces of the lab's work timed alone
6. chain.py          a three-hop relay chain
8. smtp_source.py    Postfix smtp-source against mx1.example.net:25 vs bare aiosmtpd (null, Maildir)

The bare comparison servers are in peers.py, the Python clients in clients.py,
the profilers in profiling.py. A figure that cannot be measured says why, and
the script goes on.
"""

from __future__ import annotations

import argparse
import os
import platform
import ssl
import sys
from typing import Any

from chain import relay_chain_throughput
from clients import Client
from common import not_measured, peak_rss, perf, say, section, size
from latency import round_trips_at_delay, submission
from nodelay import nodelay_check
from pieces import micro
from smtp_source import find_smtp_source, parse_loads, smtp_source_throughput
from startup import startup
from throughput import throughput
from transcript_size import transcript_memory

SECTIONS = ("nodelay", "throughput", "startup", "transcripts", "submission", "pieces", "chain", "delay",
            "smtp-source")


def options() -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages everywhere")
    ap.add_argument("--only", default="", help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}")
    ap.add_argument("--client", choices=("aiosmtplib", "smtplib"), default="aiosmtplib",
                    help="section 1's client: aiosmtplib on its own loop in the main thread (default), "
                         "or smtplib in a thread pool")
    ap.add_argument("-n", type=int, default=None, help="messages per side for section 1 (300; --quick 60)")
    ap.add_argument("--concurrency", type=int, default=4, help="sessions at a time in sections 1 and 6")
    ap.add_argument("--source-loads", default=None,
                    help="smtp-source loads as SESSIONSxMESSAGES[d],... (default 1x1000,10x2000; "
                         "--quick 1x250,10x500; a trailing d adds -d: all messages of a session on one connection)")
    ap.add_argument("--source-reps", type=int, default=3, help="repetitions of each smtp-source load (median)")
    ap.add_argument("--no-wait-quiet", dest="wait_quiet", action="store_false",
                    help="section 8: do not wait (up to 15 s) before each timed run for other processes to go quiet")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the lab's loop thread (sections 1, 4 and 8; separate, untimed runs)")
    ap.add_argument("--py-spy", action="store_true",
                    help="section 8: also sample every thread with py-spy during one more run of the biggest load")
    args = ap.parse_args()
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = wanted - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    args.sections = wanted or set(SECTIONS)
    return args


def header(args: argparse.Namespace) -> None:
    """What machine and which versions the figures are from."""
    import aiosmtpd
    import aiosmtplib
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print("smtplab benchmarks (figures only; nothing here asserts a timing)")
    print(f"CPUs: {os.cpu_count()} (usable by this process: {affinity})   "
          f"Python {platform.python_version()} ({platform.python_implementation()})   {platform.platform()}")
    print(f"aiosmtpd {getattr(aiosmtpd, '__version__', '?')}   aiosmtplib {getattr(aiosmtplib, '__version__', '?')}   "
          f"{ssl.OPENSSL_VERSION}   smtp-source: {find_smtp_source() or 'not found'}   "
          f"mode: {'quick' if args.quick else 'full'}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"sections: {', '.join(s for s in SECTIONS if s in args.sections)}"
          + (f"   load average now: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else ""))
    sys.stdout.flush()


def main() -> None:
    """Run the sections asked for, in order."""
    args = options()
    want = args.sections.__contains__
    n = args.n or (60 if args.quick else 300)
    rounds = 3 if args.quick else 6  # short alternating rounds, so drifts (fsync latency) hit every side alike
    t_all = perf()
    header(args)

    from smtplab import Lab
    client = Client(args.client)
    lab: Any = None
    try:
        if want("nodelay") or want("throughput"):
            try:
                lab = Lab()
                if want("nodelay"):
                    nodelay_check(lab)
                if want("throughput"):
                    throughput(lab, client, n, args.concurrency, rounds, args.profile)
            except Exception as err:  # noqa: BLE001
                not_measured("throughput", err)
            finally:
                if lab is not None:
                    lab.stop()
                lab = None
        if want("startup"):
            startup(5 if args.quick else 10)
        if want("transcripts") or want("submission") or want("pieces"):
            try:
                lab = Lab()
            except Exception as err:  # noqa: BLE001
                not_measured("a lab for sections 3 to 5", err)
            if lab is not None:
                if want("transcripts"):
                    transcript_memory(lab)
                if want("submission"):
                    submission(lab, client, 15 if args.quick else 50, args.profile)
                if want("pieces"):
                    micro(lab, args.quick)
                errors = list(lab.errors)
                lab.stop()
                lab = None
                if errors:
                    section("lab.errors (what went wrong inside the lab's loop during sections 3 to 5)")
                    for e in errors[-10:]:
                        say(e)
        if want("chain"):
            try:
                relay_chain_throughput(60 if args.quick else 200, args.concurrency)
            except Exception as err:  # noqa: BLE001
                not_measured("the relay chain", err)
        if want("delay"):
            try:
                round_trips_at_delay(20, 3 if args.quick else 5)
            except Exception as err:  # noqa: BLE001
                not_measured("round trips at a delay", err)
        if want("smtp-source"):
            loads = parse_loads(args.source_loads or ("1x250,10x500" if args.quick else "1x1000,10x2000"))
            smtp_source_throughput(loads, args.source_reps, profile=args.profile, py_spy=args.py_spy,
                                   quiet=args.wait_quiet)
    finally:
        if lab is not None:
            lab.stop()
        client.close()
    print()
    print(f"peak RSS of this process: {size(peak_rss())}   total time: {perf() - t_all:.1f} s")


if __name__ == "__main__":
    main()
