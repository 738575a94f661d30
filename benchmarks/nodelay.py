"""Section 0: do the lab's accepted connections have Nagle's algorithm off (TCP_NODELAY)?

Without it every multi-line reply (EHLO) waits about 40 ms on Nagle plus the
peer's delayed ACK, which swamps every other figure. Three looks:

* the listening sockets' ``proto`` (asyncio sets TCP_NODELAY on accepted
  connections only when it is IPPROTO_TCP);
* the option itself, read with ``getsockopt`` on the server side of a live
  connection to each of the lab's SMTP listeners;
* the EHLO round trip, lab versus a bare aiosmtpd.
"""

from __future__ import annotations

import socket
import statistics
from typing import Any

from common import call_in_loop, ms, not_measured, perf, say, section
from peers import BareServer


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


def server_side_nodelay(lab: Any, ep: Any) -> int | None:
    """TCP_NODELAY as the lab's end of a live connection to endpoint `ep` has it (None: connection not found)."""
    s = socket.create_connection((ep.address, ep.bound_port), 5)
    try:
        me = s.getsockname()[:2]
        if ep.listener.tls == "implicit":
            s = lab.client_tls.wrap_socket(s, server_hostname=ep.host.name)
        s.makefile("rb").readline()  # the greeting: the lab's protocol object exists by now

        def look() -> int | None:
            # asyncio's selector loop keeps its live transports by file descriptor: no need to know the lab's
            # own bookkeeping (which changes) to find the server end of this connection.
            for transport in list(lab._loop._transports.values()):
                sock = transport.get_extra_info("socket")
                try:
                    if sock is not None and tuple(sock.getpeername()[:2]) == tuple(me):
                        return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                except OSError:  # a datagram or closing socket: not ours
                    continue
            return None
        found = call_in_loop(lab._loop, look)
        s.sendall(b"QUIT\r\n")
        return found
    finally:
        s.close()


def nodelay_check(lab: Any) -> None:
    """Print the three looks at TCP_NODELAY."""
    section("0. Check: do the lab's accepted connections get TCP_NODELAY?")
    try:
        protos = {s.proto for group in lab._servers.values() for server in group for s in server.sockets}
        ok = protos == {socket.IPPROTO_TCP}
        say(f"lab listening sockets: proto {sorted(protos)} "
            + ("(IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections)" if ok else
               "(not all IPPROTO_TCP (6): asyncio will NOT set TCP_NODELAY on some accepted connections)"))
    except Exception as err:  # noqa: BLE001
        not_measured("listening socket proto", err)
    try:
        seen: dict[str, list[str]] = {"on": [], "OFF": [], "not found": []}
        for (host, port), ep in sorted(lab.endpoints.items()):
            value = server_side_nodelay(lab, ep)
            seen["not found" if value is None else "on" if value else "OFF"].append(f"{host}:{port}")
        say("TCP_NODELAY read on the lab's end of a live connection (getsockopt): "
            + "; ".join(f"{k} for {', '.join(v)}" for k, v in seen.items() if v))
    except Exception as err:  # noqa: BLE001
        not_measured("server-side TCP_NODELAY", err)
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
