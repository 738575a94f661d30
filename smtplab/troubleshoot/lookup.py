"""Where names, ports and trust come from: the lab's for lab names, the system's for the rest.

A *lab name* is one the lab DNS knows (the name, or a parent domain of it, exists
there): it is resolved by the lab DNS, its logical port (587) is mapped to the
port the lab really bound, and the lab CA is trusted. Any other name goes to the
system resolver, its port is used as given, and the system trust store (plus a
``cafile``) is trusted. Every wait is bounded by the timeout a :class:`World` is
made with, also where the library has none (``getaddrinfo``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from ..mx import MXLookup, lookup_mx


@dataclass
class Resolved:
    """What resolving a name found: its addresses, or what kind of failure (and the words for it)."""

    addresses: list[str]
    canonical: str
    source: str
    kind: str = "ok"  # ok, nxdomain, nodata, timeout, servfail, temporary, error
    error: str = ""


def is_address(text: str) -> bool:
    """Whether `text` is an IP address (nothing to look up, no name for a certificate)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


class World:
    """Names, ports and trust: the lab's for lab names, the system's for the rest."""

    def __init__(self, info: Mapping[str, Any] | None, cafile: str | None, timeout: float) -> None:
        self.info = info
        self.cafile = cafile
        self.timeout = timeout
        self.servers: list[dict[str, Any]] = list(info["servers"]) if info else []
        self._answers: dict[tuple[str, str], dns.message.Message | None] = {}

    @property
    def lab(self) -> Mapping[str, Any]:
        """The running lab's state file; only asked for a lab name, and a name is one only when there is a lab."""
        if self.info is None:
            raise RuntimeError("no running lab: is_lab_name() is False for every name")
        return self.info

    # --- lab DNS ------------------------------------------------------------
    def _lab_query(self, name: str, rdtype: str) -> dns.message.Message | None:
        """The lab DNS's reply (None: no answer in time)."""
        key = (name, rdtype)
        if key not in self._answers:
            dns_info = self.lab["dns"]
            query = dns.message.make_query(name, rdtype)
            try:
                self._answers[key] = dns.query.udp(query, dns_info["address"], port=dns_info["port"],
                                                   timeout=self.timeout)
            except (dns.exception.Timeout, OSError):
                self._answers[key] = None
        return self._answers[key]

    def is_lab_name(self, name: str) -> bool:
        """Whether `name` (or a parent domain of it) is known to the lab DNS, so the lab's rules apply."""
        if not self.info or is_address(name):
            return False
        name = name.lower().rstrip(".")
        if any(s["host"] == name for s in self.servers):
            return True
        labels = name.split(".")
        for i in range(max(len(labels) - 1, 1)):  # the name, then its parents, down to two labels
            reply = self._lab_query(".".join(labels[i:]) + ".", "A")
            if reply is None or reply.rcode() != dns.rcode.NXDOMAIN:
                return True  # the lab DNS knows it (or fails on it on purpose: a scenario's DNS fault)
        return False

    def where(self, lab_name: bool) -> str:
        """In words, for the report's first line: which world's DNS, ports and trust a check uses."""
        if lab_name:
            return "a lab name: the lab DNS, the lab's real ports, the lab CA"
        return "not a lab name: the system's DNS, the port as given, the system's trusted certificates" + (
            f" and {self.cafile}" if self.cafile else "")

    # --- resolving ----------------------------------------------------------
    def resolve(self, name: str, lab_name: bool) -> Resolved:
        """The addresses of `name` from the lab DNS (a lab name) or the system's resolver; never raises."""
        if is_address(name):
            return Resolved([name], name, "an address: nothing to look up")
        if lab_name:
            return self._resolve_lab(name)
        return self._resolve_system(name)

    def _resolve_lab(self, name: str) -> Resolved:
        fqdn = name.lower().rstrip(".") + "."
        reply = self._lab_query(fqdn, "A")
        if reply is None:
            return Resolved([], name, "lab DNS", "timeout", f"the lab DNS did not answer within {self.timeout:g} s")
        rcode = reply.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return Resolved([], name, "lab DNS", "nxdomain", f"{name} does not exist in DNS (NXDOMAIN)")
        if rcode != dns.rcode.NOERROR:
            return Resolved([], name, "lab DNS", "servfail",
                             f"the DNS server failed to answer ({dns.rcode.to_text(rcode)})")
        canonical = name
        addresses = []
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                canonical = str(rrset[0].target).rstrip(".")
            elif rrset.rdtype == dns.rdatatype.A:
                addresses += [r.address for r in rrset]
        if not addresses:
            return Resolved([], canonical, "lab DNS", "nodata",
                             f"{name} exists in DNS but has no address (no A record)")
        return Resolved(addresses, canonical, "lab DNS")

    def _resolve_system(self, name: str) -> Resolved:
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["infos"] = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except socket.gaierror as err:
                box["error"] = err
            except UnicodeError as err:
                box["error"] = socket.gaierror(socket.EAI_NONAME, str(err))

        worker = threading.Thread(target=work, name="smtplab-resolve", daemon=True)  # getaddrinfo has no timeout
        worker.start()
        worker.join(self.timeout)
        source = "system DNS"
        if worker.is_alive():
            return Resolved([], name, source, "timeout", f"the system's DNS did not answer within {self.timeout:g} s")
        err = box.get("error")
        if err is not None:
            if err.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
                return Resolved([], name, source, "nxdomain", f"{name} does not exist in DNS ({err.strerror})")
            if err.errno == socket.EAI_AGAIN:
                return Resolved([], name, source, "temporary",
                                 f"the name could not be looked up now ({err.strerror}): no working DNS")
            return Resolved([], name, source, "error", f"the lookup failed: {err.strerror or err}")
        addresses: list[str] = []
        for _family, *_rest, sockaddr in box["infos"]:
            if sockaddr[0] not in addresses:
                addresses.append(sockaddr[0])
        addresses.sort(key=lambda a: ":" in a)  # IPv4 first: more often reachable
        return Resolved(addresses, name, source)

    def mx_records(self, name: str, lab_name: bool) -> list[str]:
        """The MX targets of `name`, if it has any (to spot a mail domain given as a server)."""
        try:
            if lab_name:
                reply = self._lab_query(name.rstrip(".") + ".", "MX")
                return [f"{r.preference} {str(r.exchange).rstrip('.')}" for rrset in (reply.answer if reply else [])
                        if rrset.rdtype == dns.rdatatype.MX for r in rrset]
            resolver = dns.resolver.Resolver()
            resolver.lifetime = resolver.timeout = min(self.timeout, 3.0)
            return [f"{r.preference} {str(r.exchange).rstrip('.')}" for r in resolver.resolve(name, "MX")]
        except Exception:  # noqa: BLE001 - only a hint: any trouble means no hint
            return []

    def lookup_mx(self, domain: str, lab_name: bool) -> MXLookup:
        """The MX lookup of `domain`, from the lab DNS or the system's; raises TimeoutError past the bound."""
        if lab_name:
            coro = lookup_mx(domain, self.lab["dns"]["address"], self.lab["dns"]["port"], lifetime=self.timeout)
        else:
            coro = lookup_mx(domain, None, lifetime=self.timeout, source="system DNS")
        return _run_coroutine(coro, self.timeout * 4 + 5)

    # --- lab listeners ------------------------------------------------------
    def listener(self, names: Sequence[str], address: str, port: int) -> dict[str, Any] | None:
        """The lab listener for logical `port` of the host called `names` (or at `address`)."""
        wanted = {n.lower().rstrip(".") for n in names}
        for s in self.servers:
            if s["host"] in wanted and s["port"] == port:
                return s
        hosts_there = {s["host"] for s in self.servers if s["address"] == address}
        if len(hosts_there) == 1:  # hosts with their own loopback address: the address says which host
            return next((s for s in self.servers if s["address"] == address and s["port"] == port), None)
        return None

    def host_of(self, names: Sequence[str], address: str) -> str | None:
        """The lab host called `names` (or the only one at `address`), or None."""
        wanted = {n.lower().rstrip(".") for n in names}
        for s in self.servers:
            if s["host"] in wanted:
                return s["host"]
        hosts_there = {s["host"] for s in self.servers if s["address"] == address}
        return next(iter(hosts_there)) if len(hosts_there) == 1 else None

    def by_bound_address(self, address: str, port: int) -> dict[str, Any] | None:
        """The lab listener really at address:port (someone typed the bound port)."""
        return next((s for s in self.servers if s["address"] == address and s["bound_port"] == port), None)

    def ssl_context(self, lab_name: bool, check_hostname: bool = True) -> ssl.SSLContext:
        """A verifying TLS 1.2+ context trusting the lab CA (a lab name) or the system's store and `cafile`."""
        if lab_name:
            ctx = ssl.create_default_context(cafile=self.lab["ca_cert"])
        else:
            ctx = ssl.create_default_context()
            if self.cafile:
                ctx.load_verify_locations(cafile=self.cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if not check_hostname:
            ctx.check_hostname = False
        return ctx


def _run_coroutine(coro: Any, timeout: float) -> Any:
    """Run a coroutine to its end on a fresh loop in a helper thread (works inside Jupyter too)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            box["error"] = err

    worker = threading.Thread(target=work, name="smtplab-async", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]
