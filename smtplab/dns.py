"""The lab's DNS: a small authoritative server for the lab zones, over UDP and TCP.

It speaks real DNS messages (dnspython does the wire format), so ``dig`` and
any resolver can ask it. Zones are built from the scenario with absolute
names: relativized zones cannot be written back to the wire as they are.
A query it cannot answer gets SERVFAIL, never silence (silence makes a
client wait out its whole timeout).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import struct

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.zone

from .topology import Topology

__all__ = ["DNSFailure", "LabDNS", "resolve_mx", "zone_text"]


def zone_text(topology: Topology, addresses: dict[str, str]) -> str:
    """The lab's records in zone-file text: A for every host, MX for every domain."""
    lines = ["$TTL 300", "@ IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300", "@ IN NS ns.lab.", "ns.lab. IN A 127.0.0.1"]
    for host in topology.hosts:
        lines.append(f"{host.name}. IN A {addresses[host.name]}")
    for dom in topology.domains:
        for pref, mx in dom.mx:
            lines.append(f"{dom.name}. IN MX {pref} {mx if mx == '.' else mx + '.'}")
    return "\n".join(lines) + "\n"


class LabDNS:
    """An authoritative DNS server for the lab's names, on one loopback port (UDP and TCP)."""

    def __init__(self, topology: Topology, addresses: dict[str, str]) -> None:
        self.zone = dns.zone.from_text(zone_text(topology, addresses), origin=dns.name.root, relativize=False)
        self.address = "127.0.0.1"
        self.port = 0
        self.queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

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

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to one query in wire format (None for something that is not a query)."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None  # not DNS: nothing sensible to say to it
        self.queries += 1
        try:
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            for question in query.question:
                self._resolve(question.name, question.rdtype, response)
            return response.to_wire()
        except Exception:
            fail = dns.message.make_response(query)
            fail.set_rcode(dns.rcode.SERVFAIL)
            return fail.to_wire()

    def _resolve(self, name: dns.name.Name, rdtype: int, response: dns.message.Message) -> None:
        node = self.zone.get_node(name)
        if node is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return
        rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if rdataset is not None:
            rrset = response.find_rrset(response.answer, name, dns.rdataclass.IN, rdtype, create=True)
            rrset.update(rdataset)
        # else NODATA: the name exists but has no records of that type (NOERROR, empty answer)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.answer(await reader.readexactly(length))
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
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


class DNSFailure(Exception):
    """A lookup that failed; ``permanent`` says whether trying again later could help."""

    def __init__(self, message: str, permanent: bool, reply: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.reply = reply or ("550 5.1.2 " if permanent else "451 4.4.3 ") + message


async def resolve_mx(domain: str, address: str, port: int, rng: random.Random | None = None) -> list[str]:
    """The hosts to try for `domain`, best first (RFC 5321 section 5.1; RFC 7505 null MX).

    Lowest preference first, equal preferences shuffled; no MX records means the
    domain itself is the mail host (implicit MX); a lone ``MX 0 .`` means the
    domain accepts no mail.
    """
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [address]
    resolver.port = port
    resolver.lifetime = 2.0
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        raise DNSFailure(f"{domain} does not exist in DNS (NXDOMAIN)", permanent=True) from None
    except dns.resolver.NoAnswer:
        return [domain]
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as err:
        raise DNSFailure(f"DNS lookup of {domain} MX failed for now ({type(err).__name__})", permanent=False) from None
    records = sorted(answer, key=lambda r: r.preference)
    if len(records) == 1 and records[0].exchange == dns.name.root:
        raise DNSFailure(f"{domain} publishes a null MX: it accepts no mail", permanent=True,
                         reply=f"556 5.1.10 {domain} publishes a null MX (RFC 7505): it accepts no mail")
    rng = rng or random.Random()
    ordered: list[str] = []
    for _, group in itertools.groupby(records, key=lambda r: r.preference):
        names = [str(r.exchange).rstrip(".") for r in group]
        rng.shuffle(names)
        ordered += names
    return ordered
