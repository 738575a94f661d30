"""MX lookup as RFC 5321 section 5.1 says, with a trace a student can read.

A sending server does not look up "the recipient's IP address". It asks DNS
for the domain's MX records, orders them (lowest preference first, equal
preferences in random order), and only then asks for each host's address:

* an alias (CNAME) is followed;
* NXDOMAIN means the domain does not exist: a permanent failure (bounce);
* a server failure or a time-out is temporary: try again later;
* no MX records at all means the domain itself is the mail host (implicit MX);
* a lone ``MX 0 .`` (RFC 7505, null MX) means the domain takes no mail at all.

:func:`lookup_mx` returns an :class:`MXLookup`: the hosts to try, in order,
and the steps that led there (what was asked, what came back, what was
chosen and why).
"""

from __future__ import annotations

import html
import itertools
import random
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

__all__ = ["MXHost", "MXLookup", "lookup_mx", "recorded_mx"]

RECORDED = Path(__file__).parent / "data" / "recorded_mx.toml"


@dataclass
class MXHost:
    """One mail host for a domain, in the order it will be tried."""

    preference: int
    name: str
    addresses: list[str] = field(default_factory=list)


@dataclass
class MXLookup:
    """What an MX lookup found, and how."""

    domain: str
    hosts: list[MXHost] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    error: str = ""
    permanent: bool = False  # for an error: True = bounce now, False = try again later
    reply: str = ""  # the SMTP reply a relay gives for this error (e.g. 556 5.1.10 for a null MX)
    source: str = "lab DNS"
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else ("permanent failure" if self.permanent else "temporary failure")
        return f"<MXLookup {self.domain}: {verdict}, hosts {[h.name for h in self.hosts]}>"

    def step(self, text: str) -> None:
        self.steps.append(text)

    def fail(self, text: str, permanent: bool, reply: str) -> MXLookup:
        self.error, self.permanent, self.reply = text, permanent, reply
        self.step(("PERMANENT: " if permanent else "TEMPORARY: ") + text)
        return self

    def __str__(self) -> str:
        lines = [f"MX lookup for {self.domain} ({self.source}, {self.seconds * 1000:.1f} ms)"]
        lines += [f"  {i}. {s}" for i, s in enumerate(self.steps, 1)]
        if self.hosts:
            lines.append("  hosts to try, in order:")
            lines += [f"    {h.preference:>3}  {h.name:<40} {', '.join(h.addresses) or '(no address)'}" for h in self.hosts]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        steps = "".join(f"<li>{html.escape(s)}</li>" for s in self.steps)
        rows = "".join(
            f"<tr><td>{i}</td><td>{h.preference}</td><td><code>{html.escape(h.name)}</code></td>"
            f"<td>{html.escape(', '.join(h.addresses) or '(no address)')}</td></tr>"
            for i, h in enumerate(self.hosts, 1))
        table = ("<table><thead><tr><th>try</th><th>preference</th><th>host</th><th>address</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>") if rows else ""
        status = (f'<p style="color:#b35900"><b>{"permanent" if self.permanent else "temporary"} failure:</b> '
                  f"{html.escape(self.error)}<br><code>{html.escape(self.reply)}</code></p>") if self.error else ""
        return (f"<div><b>MX lookup for {html.escape(self.domain)}</b> <small>({html.escape(self.source)})</small>"
                f"<ol>{steps}</ol>{status}{table}</div>")


def _resolver(nameserver: str | None, port: int, lifetime: float) -> dns.asyncresolver.Resolver:
    if nameserver is None:  # online: the system's resolver
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [nameserver]
        resolver.port = port
    resolver.lifetime = lifetime
    resolver.timeout = lifetime
    return resolver


async def lookup_mx(domain: str, nameserver: str | None = "127.0.0.1", port: int = 53, *,
                    rng: random.Random | None = None, lifetime: float = 1.0,
                    source: str = "lab DNS") -> MXLookup:
    """Look up where mail for `domain` goes. ``nameserver=None`` asks the system's resolver (online)."""
    started = time.perf_counter()
    result = MXLookup(domain.lower().rstrip("."), source=source)
    try:
        return await _lookup(result, _resolver(nameserver, port, lifetime), rng or random.Random())
    finally:
        result.seconds = time.perf_counter() - started


async def _lookup(result: MXLookup, resolver: dns.asyncresolver.Resolver, rng: random.Random) -> MXLookup:
    domain = result.domain
    result.step(f"asked {domain} MX")
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        if result.source == "public DNS" and not await _public_dns_works(resolver):
            return result.fail("the public DNS cannot be reached from here (it even denies example.com)", False,
                               "451 4.4.3 no working DNS: will try again")
        return result.fail(f"{domain} does not exist (NXDOMAIN)", True,
                           f"550 5.1.2 {domain}: no such domain (NXDOMAIN)")
    except dns.resolver.NoAnswer:
        result.step(f"no MX records for {domain}: the domain itself is the mail host (implicit MX)")
        result.hosts = [MXHost(0, domain)]
    except (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout, dns.exception.Timeout) as err:
        what = "timed out" if isinstance(err, dns.exception.Timeout) else "failed (SERVFAIL)"
        return result.fail(f"the DNS lookup of {domain} MX {what}", False,
                           f"451 4.4.3 DNS lookup of {domain} {what}: will try again")
    else:
        canonical = str(answer.canonical_name).rstrip(".")
        if canonical != domain:
            result.step(f"{domain} is an alias (CNAME) for {canonical}: followed it")
        records = sorted(answer, key=lambda r: (r.preference, str(r.exchange)))
        result.step("got " + ", ".join(f"{r.preference} {r.exchange}" for r in records))
        if len(records) == 1 and records[0].exchange == dns.name.root:
            return result.fail(f"{domain} publishes a null MX (0 .): it accepts no mail (RFC 7505)", True,
                               f"556 5.1.10 {domain} accepts no mail (null MX, RFC 7505)")
        for preference, group in itertools.groupby(records, key=lambda r: r.preference):
            names = sorted(str(r.exchange).rstrip(".") for r in group)  # a set's order varies: start from one
            if len(names) > 1:
                rng.shuffle(names)
                result.step(f"{len(names)} hosts share preference {preference}: chose a random order, "
                            f"{', '.join(names)} (spreads the load)")
            result.hosts += [MXHost(preference, name) for name in names]
        result.step("lowest preference first: " + " then ".join(h.name for h in result.hosts))
    for host in result.hosts:
        host.addresses = await _addresses(resolver, host.name, result)
    usable = [h for h in result.hosts if h.addresses]
    if not usable:
        return result.fail(f"no mail host of {domain} has an address", True,
                           f"550 5.4.4 {domain}: unable to route, no mail host has an address")
    return result


async def _public_dns_works(resolver: dns.asyncresolver.Resolver) -> bool:
    """Some sandboxes answer NXDOMAIN for every name: check a name that surely exists."""
    try:
        await resolver.resolve("example.com", "NS")
        return True
    except dns.exception.DNSException:
        return False


async def _addresses(resolver: dns.asyncresolver.Resolver, name: str, result: MXLookup) -> list[str]:
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            found += [r.address for r in await resolver.resolve(name, rdtype)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            pass
        except (dns.resolver.NoNameservers, dns.exception.Timeout):
            result.step(f"could not get the {rdtype} record of {name} for now")
    result.step(f"asked {name} A/AAAA: " + (", ".join(found) if found else "no address (this host is skipped)"))
    return found


def recorded_mx(domain: str) -> MXLookup | None:
    """The recorded answer for a well-known public domain, for when there is no network."""
    data = tomllib.loads(RECORDED.read_text())
    entry = data["domains"].get(domain.lower().rstrip("."))
    if entry is None:
        return None
    result = MXLookup(domain.lower(), source=f"recorded answer from {data['recorded']}, may have changed")
    records = sorted(entry["mx"])
    result.step(f"no network lookup: recorded MX records of {domain} ({data['recorded']})")
    result.step("recorded " + ", ".join(f"{p} {h}." if h != "." else f"{p} ." for p, h in records))
    if len(records) == 1 and records[0][1] == ".":
        return result.fail(f"{domain} publishes a null MX (0 .): it accepts no mail (RFC 7505)", True,
                           f"556 5.1.10 {domain} accepts no mail (null MX, RFC 7505)")
    result.hosts = [MXHost(p, h) for p, h in records]
    return result
