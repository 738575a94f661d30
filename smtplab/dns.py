"""The lab's DNS: a small authoritative server for the lab zones, over UDP and TCP.

It speaks real DNS messages (dnspython does the wire format), so ``dig`` and
any resolver can ask it. Its records are the scenario's zone text plus an A
record for every lab host. Zones are built with absolute names: relativized
zones cannot be written back to the wire as they are. A query it cannot
answer gets SERVFAIL, never silence (silence makes a client wait out its
whole timeout), except for names a scenario marks ``timeout`` on purpose.
"""

from __future__ import annotations

import asyncio
import html
import socket
import struct
import time
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from .connections import ConnectionCap
from .topology import Topology

__all__ = ["DigAnswer", "LabDNS", "dig", "zone_text"]

#: How many CNAMEs an answer follows before it gives up (a CNAME loop must not hang the server).
MAX_CNAME_CHAIN = 8
MAX_TCP_CONNECTIONS = 500  # past it, the longest idle one is closed (see ConnectionCap)
TCP_IDLE_TIMEOUT = 10.0  # seconds a DNS-over-TCP connection may sit idle before the server closes it


def zone_text(topology: Topology, addresses: dict[str, str]) -> str:
    """All the lab's records in zone-file text: the scenario's zone and an A record per host."""
    lines = ["$TTL 300", ". IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300", ". IN NS ns.lab.",
             "ns.lab. IN A 127.0.0.1"]
    lines += [f"{host.name}. IN A {addresses[host.name]}" for host in topology.hosts]
    return "\n".join(lines) + "\n" + topology.zone + "\n"


class LabDNS:
    """An authoritative DNS server for the lab's names, on one loopback port (UDP and TCP)."""

    def __init__(self, topology: Topology, addresses: dict[str, str]) -> None:
        try:
            self.zone = dns.zone.from_text(zone_text(topology, addresses), origin=dns.name.root,
                                           relativize=False, check_origin=False)
        except dns.exception.DNSException as err:
            from .topology import ScenarioError
            raise ScenarioError(f"the scenario's zone text is not valid: {err}") from None
        self.faults = {dns.name.from_text(name): kind for name, kind in topology.dns_faults}
        self.address = "127.0.0.1"
        self.port = 0
        self.queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self.tcp_cap = ConnectionCap(MAX_TCP_CONNECTIONS)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # UDP and TCP must share one port number
            udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp_sock.bind((self.address, 0))
            port = udp_sock.getsockname()[1]
            tcp_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
            try:
                tcp_sock.bind((self.address, port))
            except OSError:
                udp_sock.close()
                tcp_sock.close()
                continue
            break
        else:  # pragma: no cover - only on a machine whose ports are all taken
            raise OSError("no free port for the lab DNS")
        self.port = port
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDP(self), sock=udp_sock)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    # --- records that change while the lab runs (DKIM keys made at start, a student's edits) ----------
    def set_records(self, name: str, rdtype: str, values: list[str], ttl: int = 300) -> None:
        """Replace `name`'s records of one type by `values` (zone-file text each); an empty list removes them.

        A bad value raises ValueError saying which, and the old records stay.
        """
        owner = dns.name.from_text(name)
        kind = dns.rdatatype.from_text(rdtype)
        if not values:
            self.zone.delete_rdataset(owner, kind)
            return
        try:
            rdataset = dns.rdataset.from_text_list(dns.rdataclass.IN, kind, ttl, values, origin=dns.name.root)
        except dns.exception.DNSException as err:
            raise ValueError(f"not a valid {rdtype} record for {name}: {values!r} ({err})") from None
        self.zone.replace_rdataset(owner, rdataset)

    def set_txt(self, name: str, texts: list[str]) -> None:
        """Publish TXT records given as plain text (quoted and split into 255-character strings here)."""
        quoted = [" ".join('"' + t[i:i + 255].replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for i in range(0, max(len(t), 1), 255)) for t in texts]
        self.set_records(name, "TXT", quoted)

    def records(self, name: str, rdtype: str) -> list[str]:
        """`name`'s records of one type, as zone-file text (what ``dig +short`` would print)."""
        node = self.zone.get_node(dns.name.from_text(name))
        rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype)) if node else None
        return [r.to_text() for r in rdataset] if rdataset else []

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to one query in wire format (None: say nothing)."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None  # not DNS: nothing sensible to say to it
        if query.flags & dns.flags.QR:
            return None  # a response, not a question: answering it could start a loop between two servers
        self.queries += 1
        try:
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            for question in query.question:
                fault = self._fault(question.name)
                if fault == "timeout":
                    return None  # on purpose: this scenario's DNS never answers for that name
                if fault == "servfail":
                    response.set_rcode(dns.rcode.SERVFAIL)
                    response.flags &= ~dns.flags.AA
                    continue
                self._resolve(question.name, question.rdtype, response)
            return response.to_wire(want_shuffle=False)  # the zone's order: a lookup's trace is reproducible
        except Exception:
            fail = dns.message.make_response(query)
            fail.set_rcode(dns.rcode.SERVFAIL)
            return fail.to_wire()

    def _fault(self, name: dns.name.Name) -> str | None:
        return next((kind for faulty, kind in self.faults.items() if name.is_subdomain(faulty)), None)

    def _resolve(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, response: dns.message.Message) -> None:
        for _ in range(MAX_CNAME_CHAIN):
            node = self.zone.get_node(name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return
            rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rdataset is not None:
                response.find_rrset(response.answer, name, dns.rdataclass.IN, rdtype, create=True).update(rdataset)
                return
            alias = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if alias is None:
                return  # NODATA: the name exists, without records of that type (NOERROR, empty answer)
            response.find_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME,
                                create=True).update(alias)
            name = alias[0].target  # follow the alias, as a resolver would

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tcp_cap.admit(writer, writer.close)
        try:
            while True:
                # RFC 7766 section 6.2.3: a server may close idle connections; a few seconds is usual.
                (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT))
                reply = self.answer(await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT))
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
                self.tcp_cap.touch(writer)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.tcp_cap.leave(writer)
            writer.close()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: LabDNS) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@dataclass
class DigAnswer:
    """One question to a DNS server and its real reply, shown the way ``dig`` shows it."""

    name: str
    rdtype: str
    response: dns.message.Message | None
    server: str
    seconds: float
    tcp: bool = False
    error: str = ""

    def __repr__(self) -> str:
        return f"<DigAnswer {self.name} {self.rdtype}: {self.status}, {len(self.records())} records>"

    @property
    def status(self) -> str:
        return dns.rcode.to_text(self.response.rcode()) if self.response is not None else "NO ANSWER"

    def records(self) -> list[str]:
        """The answer's records, as ``dig +short`` prints them."""
        if self.response is None:
            return []
        return [rdata.to_text() for rrset in self.response.answer for rdata in rrset]

    def __str__(self) -> str:
        lines = [f"; <<>> dig @{self.server} {self.name} {self.rdtype}{' +tcp' if self.tcp else ''}"]
        if self.response is None:
            return "\n".join(lines + [f";; {self.error}"])
        flags = dns.flags.to_text(self.response.flags).lower()
        lines.append(f";; ->>HEADER<<- opcode: QUERY, status: {self.status}")
        lines.append(f";; flags: {flags}; QUERY: {len(self.response.question)}, ANSWER: "
                     f"{sum(len(r) for r in self.response.answer)}")
        for title, section in (("QUESTION", self.response.question), ("ANSWER", self.response.answer),
                               ("AUTHORITY", self.response.authority)):
            if section:
                lines += ["", f";; {title} SECTION:"]
                lines += [(";" if title == "QUESTION" else "") + rrset.to_text() for rrset in section]
        lines += ["", f";; Query time: {self.seconds * 1000:.1f} msec",
                  f";; SERVER: {self.server} ({'TCP' if self.tcp else 'UDP'})"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


async def dig(name: str, rdtype: str, server: str, port: int, *, tcp: bool = False, timeout: float = 2.0) -> DigAnswer:
    """Ask `server` one question over UDP (or TCP) and keep the whole reply."""
    query = dns.message.make_query(name, rdtype)
    started = time.perf_counter()
    try:
        send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
        response = await send(query, server, port=port, timeout=timeout)
    except dns.exception.Timeout:
        return DigAnswer(name, rdtype, None, f"{server}#{port}", time.perf_counter() - started, tcp,
                         f"connection timed out; no servers could be reached (waited {timeout:g} s)")
    return DigAnswer(name, rdtype, response, f"{server}#{port}", time.perf_counter() - started, tcp)
