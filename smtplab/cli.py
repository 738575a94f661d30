"""The ``smtplab`` command: run the lab for terminal tools, and send through it.

    smtplab serve [--json] [--state-dir DIR]   start the lab; serve until Ctrl-C or SIGTERM
    smtplab send --from A --to B ...            send one message and print its annotated transcript

``serve`` publishes what it prints in ``STATE_DIR/lab.json`` too (:mod:`smtplab.statefile`),
so ``send`` (and students' scripts) can find the running lab. Without a running lab,
``send`` starts one for the single message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .client import Endpoint, SendPlan, submit
from .lab import DEFAULT_EHLO, Lab
from .messages import compose, wire_bytes
from .result import LabError, SendResult
from .statefile import (
    default_state_dir,
    prepare_state_dir,
    publish,
    running_lab,
    withdraw,
)
from .topology import Host, Listener, ScenarioError
from .troubleshoot import add_commands

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smtplab", description="An interactive SMTP teaching lab.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the lab and serve until interrupted")
    serve.add_argument("--json", action="store_true", help="print the lab's state as one JSON line")
    serve.add_argument("--state-dir", type=Path, default=None, help="where mail and transcripts go (default ~/.smtplab)")
    serve.add_argument("--scenario", default="default", help="a built-in scenario name or a TOML file")
    serve.add_argument("--latency-ms", type=float, default=None,
                       help="a one-way delay, in ms, on every client's link to the lab's servers")

    send = sub.add_parser("send", help="send one message through the lab and print its annotated transcript")
    send.add_argument("--from", dest="sender", default="alice@example.org", help="envelope sender (default alice@example.org)")
    send.add_argument("--to", dest="recipients", action="append", required=True, help="a recipient (repeat for more)")
    send.add_argument("--server", default="smtp.example.org", help="the lab host to connect to")
    send.add_argument("--port", type=int, default=587, help="its logical port: 25, 465, 587 or 2525")
    send.add_argument("--tls", choices=["starttls", "implicit", "none", "opportunistic"], default=None,
                      help="how to use TLS (default: what the port expects)")
    send.add_argument("--login", default=None, help="log in as this user (default: the sender, where the port wants a login)")
    send.add_argument("--password", default=None, help="the password (default: the lab user's)")
    send.add_argument("--no-login", action="store_true", help="do not log in")
    send.add_argument("--subject", default="Hello from the terminal")
    send.add_argument("--body", default="Sent with smtplab send.\n")
    send.add_argument("--state-dir", type=Path, default=None, help="the state dir of a running `smtplab serve`")
    send.add_argument("--no-notes", action="store_true", help="print the bare transcript without notes")

    add_commands(sub)  # check, explain, talk, drills (issue 6)

    args = parser.parse_args(argv)
    try:
        if getattr(args, "func", None) is not None:
            return args.func(args)
        return _serve(args) if args.command == "serve" else _send(args)
    except (LabError, ScenarioError) as err:
        print(f"smtplab: {err}", file=sys.stderr)
        return 2


# --- serve -------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    state_dir = prepare_state_dir(args.state_dir or default_state_dir())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    lab = Lab(args.scenario, state_dir=state_dir, latency_ms=args.latency_ms)
    info = lab.info()
    try:
        publish(lab.state_dir, info)
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(_describe(info), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        withdraw(lab.state_dir, info)
        lab.stop()
    return 0


def _describe(info: dict[str, Any]) -> str:
    rows = [f"smtplab is running (state in {info['state_dir']}). Ctrl-C stops it.", "",
            f"  {'host':<18} {'port':>5}  {'role':<12} {'tls':<9} {'auth':<9} really at"]
    for s in info["servers"]:
        rows.append(f"  {s['host']:<18} {s['port']:>5}  {s['role']:<12} {s['tls']:<9} {s['auth']:<9} "
                    f"{s['address']}:{s['bound_port']}")
    dns = info["dns"]
    for api in info.get("http_api", ()):
        rows.append(f"  {api['host']:<18} {api['port']:>5}  {'http-api':<12} {'implicit':<9} {'key':<9} "
                    f"{api['address']}:{api['bound_port']}   POST {api['url']}")
    if info.get("latency_ms"):
        rows.append(f"  (every address above is behind a link with a {info['latency_ms']:g} ms one-way delay)")
    rows += ["", f"  lab DNS: {dns['address']} port {dns['port']}    lab CA: {info['ca_cert']}", "",
             "  users: " + ", ".join(f"{u['username']}/{u['password']}" for u in info["users"])]
    sub = next((s for s in info["servers"] if s["port"] == 587), None)
    if sub:
        rows += ["", "Try, in another terminal:", *(f"  {shlex.join(c)}" for c in _try_commands(info, sub))]
    return "\n".join(rows)


def _try_commands(info: dict[str, Any], sub: dict[str, Any]) -> list[list[str]]:
    """swaks, openssl s_client and dig against the lab, as argument lists (printed with shlex.join).

    ``-quiet -crlf`` make s_client usable for a whole typed session: without -quiet
    it takes a line starting with R (``RCPT TO:``) as "renegotiate" and one starting
    with Q as "quit"; without -crlf it ends lines with a bare LF, and the server never
    sees the "." that ends DATA. Paths are quoted: a state dir may have a space.
    """
    where, ca, dns = f"{sub['address']}:{sub['bound_port']}", info["ca_cert"], info["dns"]
    return [
        ["swaks", "--server", where, "--tls", "--tls-ca-path", ca, "--tls-sni", sub["host"], "--tls-verify",
         "--auth", "--auth-user", "alice", "--auth-password", "wonderland",
         "--from", "alice@example.org", "--to", "carol@example.org"],
        ["openssl", "s_client", "-quiet", "-crlf", "-starttls", "smtp", "-connect", where,
         "-servername", sub["host"], "-CAfile", ca],
        ["dig", f"@{dns['address']}", "-p", str(dns["port"]), "example.net", "MX"],
    ]


# --- send --------------------------------------------------------------------
def _send(args: argparse.Namespace) -> int:
    info = running_lab(args.state_dir or default_state_dir())
    if info is not None:
        result = asyncio.run(_send_to_running(info, args))
    else:
        print("=== no running lab found: starting one just for this message", file=sys.stderr)
        with Lab(state_dir=None) as lab:
            login: Any = False if args.no_login else ((args.login, args.password) if args.password else args.login)
            result = lab.send(args.sender, args.recipients, args.subject, args.body, server=args.server,
                              port=args.port, tls=args.tls, login=login)
            lab.wait_for_queue(5)
    if result.transcript is not None:  # submit() always records one
        print(result.transcript.text(notes=not args.no_notes))
        print()
    print(("OK: " if result.ok else "FAILED: ") + result.summary())
    return 0 if result.ok else 1


async def _send_to_running(info: dict[str, Any], args: argparse.Namespace) -> SendResult:
    server = next((s for s in info["servers"] if s["host"] == args.server and s["port"] == args.port), None)
    if server is None:
        ports = ", ".join(f"{s['host']}:{s['port']}" for s in info["servers"])
        raise LabError(f"the running lab has no listener {args.server}:{args.port}; it has {ports}")
    listener = Listener(server["port"], server["role"], server["tls"], server["auth"])
    endpoint = Endpoint(Host(server["host"], server["address"], (listener,)), listener, server["address"], server["bound_port"])
    credentials = None
    if not args.no_login and (args.login or listener.auth != "none"):
        name = args.login or args.sender
        user = next((u for u in info["users"] if name in (u["username"], u["address"])), None)
        password = args.password or (user["password"] if user else None)
        if password is not None:
            credentials = (user["username"] if user and not args.password else name, password)
    msg = compose(args.sender, args.recipients, args.subject, args.body)
    plan = SendPlan(args.sender, list(args.recipients), wire_bytes(msg),
                    endpoint, args.tls or listener.tls, credentials, DEFAULT_EHLO, 10.0, str(msg["Message-ID"]))
    context = ssl.create_default_context(cafile=info["ca_cert"])
    return await submit(plan, context)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
