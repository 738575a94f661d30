"""The troubleshooting commands of the ``smtplab`` CLI: check, explain, talk, drills.

They find a running lab through :mod:`smtplab.statefile`, as ``smtplab send`` does,
and start a temporary one for a lab name when none runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import re
import shutil
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..client import RawSession
from ..lab import Lab
from ..result import LabError
from ..statefile import default_state_dir, running_lab
from ..tls import describe_tls
from ..topology import load_scenario
from ..transcript import Entry, Recorder, Transcript
from .checklist import DEFAULT_TIMEOUT, check, split_target
from .drills import DRILLS
from .explain import explain
from .lookup import World, is_address
from .report import wrap


def add_commands(sub: Any) -> None:
    """Add ``check``, ``explain``, ``talk`` and ``drills`` to the ``smtplab`` command's subparsers."""
    state_help = "the state dir of a running `smtplab serve` (default ~/.smtplab or $SMTPLAB_STATE_DIR)"
    c = sub.add_parser("check", help="run the troubleshooting checklist against a mail server",
                       description="Run the troubleshooting checklist step by step: resolve, connect, greeting, "
                                   "EHLO, TLS and certificate, AUTH, then (if asked) a login and a test message. "
                                   "Lab names use the running lab (smtplab serve); other names use the system's "
                                   "DNS and trust store. Exit status: 0 if every step passed, 1 if one failed, "
                                   "2 for a usage error.")
    c.add_argument("target", metavar="HOST[:PORT]", help="a server name (or a mail domain with --mx), and a port")
    c.add_argument("--port", type=int, default=None, help="the port (default 587; 25 with --mx)")
    c.add_argument("--mx", action="store_true", help="HOST is a mail domain: check its best MX host")
    c.add_argument("--tls", choices=["auto", "starttls", "implicit", "none"], default="auto",
                   help="auto (default): TLS from the first byte on 465, STARTTLS elsewhere")
    c.add_argument("--user", default=None, help="log in as this user")
    c.add_argument("--password", default=None,
                   help="the password (default: $SMTPLAB_PASSWORD, the lab's for a lab user, or asked for)")
    c.add_argument("--send-to", action="append", default=[], metavar="ADDRESS",
                   help="send a test message to this address (repeat for more)")
    c.add_argument("--from", dest="mail_from", default=None, help="the test message's envelope sender")
    c.add_argument("--size", type=int, default=None, help="make the test message about this many bytes")
    c.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds each network wait may take (default {DEFAULT_TIMEOUT:g})")
    c.add_argument("--try-ports", action="store_true", help="when the connection fails, try the other usual ports")
    c.add_argument("--cafile", default=None, help="also trust the CA certificate(s) in this PEM file")
    c.add_argument("--ehlo", default=None, help="the name to give in EHLO")
    c.add_argument("--state-dir", type=Path, default=None, help=state_help)
    c.add_argument("--scenario", default=None,
                   help="without a running lab, start this scenario for lab names (default: default)")
    c.set_defaults(func=_cmd_check)

    e = sub.add_parser("explain", help="explain a reply code, an enhanced code or a whole reply line",
                       description="Explain 550, 5.7.1, X.7.X, 4.X.X or a whole reply line such as "
                                   "'421 4.7.0 Try again later'. Exit status: 0 for a standard code, 1 for a "
                                   "well-formed code that is not standard, 2 for something that is no code.")
    e.add_argument("code", nargs="+", help="the code or reply line (quotes are optional)")
    e.set_defaults(func=_cmd_explain)

    t = sub.add_parser("talk", help="type SMTP commands by hand, with each reply explained (STARTTLS works)",
                       description="An interactive SMTP session like telnet: each line you type is sent as it "
                                   "is, and every reply is printed with its note. STARTTLS upgrades the "
                                   "connection; QUIT or end of input (Ctrl-D) ends it.")
    t.add_argument("target", metavar="HOST", help="the server (HOST or HOST:PORT)")
    t.add_argument("port", nargs="?", type=int, default=None, help="the port (default 587)")
    t.add_argument("--tls", choices=["auto", "implicit", "none"], default="auto",
                   help="auto (default): TLS from the first byte on 465 and the lab's implicit-TLS ports")
    t.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each reply")
    t.add_argument("--cafile", default=None, help="also trust the CA certificate(s) in this PEM file")
    t.add_argument("--no-notes", action="store_true", help="print the lines without their notes")
    t.add_argument("--state-dir", type=Path, default=None, help=state_help)
    t.add_argument("--scenario", default=None, help="without a running lab, start this scenario for lab names")
    t.set_defaults(func=_cmd_talk)

    d = sub.add_parser("drills", help="list the fault drills (run them against `smtplab serve --scenario drills`)")
    d.add_argument("--answers", action="store_true", help="also print each drill's diagnosis and fix")
    d.set_defaults(func=_cmd_drills)


def _names_in_scenario(name: str, scenario: str) -> bool:
    """Whether `name` belongs to the scenario's world (so a temporary lab can answer for it)."""
    topology = load_scenario(scenario)
    name = name.lower().rstrip(".")
    known = {h.name for h in topology.hosts} | {d.name for d in topology.domains}
    known |= {m.lower() for m in re.findall(r"([A-Za-z0-9.-]+)\.\s", topology.zone)}
    return any(name == k or name.endswith("." + k) for k in known)


@contextlib.contextmanager
def _lab_for(args: argparse.Namespace, host: str, what: str) -> Iterator[dict[str, Any] | None]:
    """The running lab's info; or a temporary lab for a lab name when none runs; or None."""
    info = running_lab(args.state_dir or default_state_dir())
    wanted = args.scenario
    if info is not None and (wanted is None or info.get("scenario") == load_scenario(wanted).name):
        yield info
        return
    scenario = wanted or "default"
    if is_address(host) or not _names_in_scenario(host, scenario):
        yield info if wanted is None else None
        return
    print(f"=== no running lab {'with scenario ' + scenario + ' ' if wanted else ''}found: "
          f"starting one just for this {what}", file=sys.stderr)
    lab = Lab(scenario, state_dir=None)
    try:
        yield lab.info()
    finally:
        lab.stop()


def _terminal_width() -> int | None:
    return min(shutil.get_terminal_size((100, 24)).columns, 110) if sys.stdout.isatty() else 100


def _cmd_check(args: argparse.Namespace) -> int:
    host, port = split_target(args.target, args.port)
    password = args.password or os.environ.get("SMTPLAB_PASSWORD") or None
    with _lab_for(args, host, "check") as info:
        lab_user = info is not None and args.user is not None and any(
            args.user in (u["username"], u["address"]) for u in info["users"])
        if args.user and password is None and not lab_user:
            if not sys.stdin.isatty():
                raise LabError(f"--user {args.user} needs a password: --password or $SMTPLAB_PASSWORD")
            password = getpass.getpass(f"password for {args.user}: ")
        report = check(info, host, port, user=args.user, password=password, send_to=args.send_to,
                       mail_from=args.mail_from, size=args.size, tls=args.tls, mx=args.mx, timeout=args.timeout,
                       try_ports=args.try_ports, cafile=args.cafile, ehlo=args.ehlo)
    print(report.text(_terminal_width()), flush=True)
    return 0 if report.ok else 1


def _cmd_explain(args: argparse.Namespace) -> int:
    text = " ".join(args.code)
    try:
        found = explain(text)
    except ValueError as err:
        print(f"smtplab explain: {err}", file=sys.stderr)
        return 2
    print(found.text(_terminal_width()))
    if not found.standard:
        print("\n(Not a standard code: the explanation above says what can be read from its digits.)")
    return 0 if found.standard else 1


def _cmd_drills(args: argparse.Namespace) -> int:
    print("Fault drills. Start the drills world in one terminal:  smtplab serve --scenario drills")
    print("then, in another, run the check each drill suggests and diagnose what is wrong.\n")
    for d in DRILLS.values():
        print(f"[{d.id}] {d.title}")
        print(wrap(f"    {d.symptom}", 100, "    "))
        print(f"    try:  {d.command()}")
        if args.answers:
            print(f"    fails at: {d.fails_at}; diagnosis: {d.diagnosis}")
            print(wrap(f"    fix: {d.fix}", 100, "    "))
        print()
    return 0


# --- talk ---------------------------------------------------------------------

def _format(entry: Entry, notes: bool) -> str:
    row = f"{entry.arrow()}{entry.line}"
    if notes and entry.note:
        row = f"{row:<60}  # {entry.note}"
    return row


def _cmd_talk(args: argparse.Namespace) -> int:
    host, port = split_target(args.target, args.port)
    port = port or 587
    with _lab_for(args, host, "session") as info:
        world = World(info, args.cafile, args.timeout)
        lab_name = world.is_lab_name(host)
        listener = world.by_bound_address(host, port) if is_address(host) else None
        name = listener["host"] if listener else host
        if listener is not None:
            lab_name, real = True, (listener["address"], listener["bound_port"])
        else:
            found = world.resolve(host, lab_name)
            if not found.addresses:
                print(f"=== {found.error}", flush=True)
                return 1
            real = (found.addresses[0], port)
            if lab_name:
                listener = world.listener([host, found.canonical], found.addresses[0], port)
                if listener is None:
                    print(f"=== could not connect to {host} port {port}: connection refused "
                          "(nothing listens on that port)", flush=True)
                    return 1
                real = (listener["address"], listener["bound_port"])
        implicit = args.tls == "implicit" or (args.tls == "auto" and (
            listener["tls"] == "implicit" if listener else port == 465))
        ctx = world.ssl_context(lab_name, check_hostname=not is_address(name))
        try:
            return asyncio.run(_talk(name, port, real, implicit, ctx, args.timeout, not args.no_notes))
        except KeyboardInterrupt:
            print("\n=== interrupted", flush=True)
            return 130


async def _talk(name: str, port: int, real: tuple[str, int], implicit: bool, ctx: ssl.SSLContext,
                timeout: float, notes: bool) -> int:
    rec = Recorder(Transcript(name, "client", port=port, peer=f"{real[0]}:{real[1]}", client="smtplab talk"))
    printed = 0

    def show() -> None:
        nonlocal printed
        for entry in rec.transcript.entries[printed:]:
            print(_format(entry, notes), flush=True)
        printed = len(rec.transcript.entries)

    server_hostname = None if is_address(name) else name
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            real[0], real[1], ssl=ctx if implicit else None,
            server_hostname=server_hostname if implicit else None), timeout)
    except ssl.SSLCertVerificationError as err:
        print(f"=== TLS handshake failed: {err.verify_message} (run `smtplab check {name}:{port}` for more)",
              flush=True)
        return 1
    except (TimeoutError, OSError) as err:
        reason = "timed out" if isinstance(err, asyncio.TimeoutError) else (
            "connection refused" if isinstance(err, ConnectionRefusedError) else (err.strerror or str(err)))
        print(f"=== could not connect to {name} port {port} ({real[0]}:{real[1]}): {reason}", flush=True)
        return 1
    rec.event("client", f"connected to {name} port {port} ({real[0]}:{real[1]})",
              "Type SMTP commands; STARTTLS upgrades; QUIT or Ctrl-D ends.")
    if implicit:
        rec.tls = True
        rec.event("client", describe_tls(writer.transport), "Implicit TLS: encrypted before the first SMTP line.")
    session = RawSession(rec, reader, writer, server_hostname or real[0], ctx, reply_timeout=timeout)
    await session.read_reply()
    show()
    lines = _stdin_lines()
    failed = False
    while not session.closed:
        line = await lines.get()
        if line is None:
            await session.close()
            break
        try:
            await session.send(line.rstrip("\r\n"))
        except (ConnectionError, OSError) as err:
            rec.event("server", f"connection lost: {err}", "")
            failed = True
            break
        show()
        failed = any("TLS handshake failed" in e.line for e in rec.transcript.entries if e.kind == "event")
    show()
    return 1 if failed else 0


def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines from standard input, read by a daemon thread (it never holds up the exit)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
            for line in iter(sys.stdin.readline, ""):
                loop.call_soon_threadsafe(lines.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may be gone already
                loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="smtplab-talk-stdin", daemon=True).start()
    return lines
