"""SPF (RFC 7208): may this address send mail for this domain? Evaluated by hand, since it is the lesson.

Theory of operation. A domain publishes one TXT record starting ``v=spf1``: a
list of *mechanisms* tried left to right (``ip4:``, ``a``, ``mx``,
``include:``, ``exists:``, ``all``), each with a qualifier (``+`` pass, ``-``
fail, ``~`` softfail, ``?`` neutral), and *modifiers* (``redirect=``). The
first mechanism that matches the connecting address gives the result; no
match gives ``neutral`` (or what ``redirect=`` says). The receiver checks two
identities: the HELO name and the MAIL FROM domain (for the null sender,
``postmaster@`` the HELO name). DMARC later uses the MAIL FROM result only.

What makes SPF tricky in practice, and what this module shows:

* at most 10 mechanisms or modifiers that cost a DNS lookup (``include``, ``a``,
  ``mx``, ``ptr``, ``exists``, ``redirect``) per check, counted across includes:
  one more is a ``permerror``, and a permerror under DMARC is a fail;
* at most 2 lookups that find nothing ("void lookups", section 4.6.4);
* a DNS failure is a ``temperror``: the receiver should say "try later";
* a forwarder breaks SPF: it sends from its own address, which the original
  domain never listed.

Macros (section 7) are supported for the common letters (``s l o d i h``) with
the digit and ``r`` transformers; ``ptr`` is counted and never matches (it is
deprecated, and the lab zone has no reverse records).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .lookup import Answer, Lookup

__all__ = ["SPFResult", "check_spf", "spf_record"]

MAX_LOOKUPS = 10  # RFC 7208 section 4.6.4
MAX_VOID_LOOKUPS = 2
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}


@dataclass
class SPFResult:
    """One SPF verdict, with the reason a student can read and the DNS answers it rested on."""

    result: str  # pass | fail | softfail | neutral | none | permerror | temperror
    identity: str  # "mailfrom" or "helo"
    domain: str
    reason: str
    lookups: int = 0
    answers: list[Answer] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.result == "pass"

    def __str__(self) -> str:
        return f"spf={self.result} ({self.identity} {self.domain}: {self.reason})"


class _Stop(Exception):
    """Ends the evaluation with a permerror or temperror."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result, self.reason = result, reason


@dataclass
class _Check:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    sender: str
    helo: str
    lookup: Lookup
    lookups: int = 0
    voids: int = 0
    answers: list[Answer] = field(default_factory=list)

    async def ask(self, name: str, rdtype: str) -> Answer:
        answer = await self.lookup(name, rdtype)
        self.answers.append(answer)
        if answer.failed:
            raise _Stop("temperror", f"DNS did not answer for {name} {rdtype} ({answer.status})")
        if not answer.records:
            self.voids += 1
            if self.voids > MAX_VOID_LOOKUPS:
                raise _Stop("permerror", f"more than {MAX_VOID_LOOKUPS} lookups found nothing (void lookup limit)")
        return answer

    def count(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _Stop("permerror", f"more than {MAX_LOOKUPS} DNS-querying terms (at {term!r}): "
                                     "too many lookups, the record must be flattened")

    async def addresses(self, name: str) -> list[str]:
        rdtype = "AAAA" if self.ip.version == 6 else "A"
        return [r for r in (await self.ask(name, rdtype)).records if _is_ip(r)]

    def expand(self, spec: str, domain: str) -> str:
        local, _, sender_domain = self.sender.rpartition("@")
        letters = {"s": self.sender, "l": local or "postmaster", "o": sender_domain, "d": domain,
                   "i": str(self.ip), "h": self.helo}

        def one(match: re.Match[str]) -> str:
            if match.group(0) == "%%":
                return "%"
            if match.group(0) == "%_":
                return " "
            if match.group(0) == "%-":
                return "%20"
            letter, digits, reverse, delimiters = match.group(1).lower(), match.group(2), match.group(3), match.group(4)
            if letter not in letters:
                raise _Stop("permerror", f"macro %{{{match.group(1)}}} is not one the lab knows")
            parts = re.split("[" + re.escape(delimiters or ".") + "]", letters[letter])
            if reverse:
                parts.reverse()
            if digits:
                parts = parts[-int(digits):]
            return ".".join(parts)

        return re.sub(r"%\{([a-zA-Z])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-", one, spec)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def spf_record(texts: list[str]) -> str | None | list[str]:
    """The SPF record among a domain's TXT records: one string, None, or the list when there are several."""
    found = [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]
    if not found:
        return None
    return found[0] if len(found) == 1 else found


async def check_spf(ip: str, domain: str, *, sender: str, helo: str, lookup: Lookup,
                    identity: str = "mailfrom") -> SPFResult:
    """Evaluate `domain`'s SPF record for a client at `ip` (RFC 7208 ``check_host()``)."""
    check = _Check(ipaddress.ip_address(ip), sender, helo, lookup)
    domain = domain.lower().rstrip(".")
    try:
        result, reason = await _check_host(check, domain, depth=0)
    except _Stop as stop:
        result, reason = stop.result, stop.reason
    return SPFResult(result, identity, domain, reason, check.lookups, check.answers)


async def _check_host(check: _Check, domain: str, depth: int) -> tuple[str, str]:
    if not domain or ".." in domain or len(domain) > 253:
        return "none", f"{domain!r} is not a domain that can have a record"
    answer = await check.lookup(domain, "TXT")
    check.answers.append(answer)
    if answer.failed:
        raise _Stop("temperror", f"DNS did not answer for {domain} TXT ({answer.status})")
    record = spf_record(answer.texts())
    if record is None:
        return "none", f"{domain} publishes no SPF record"
    if isinstance(record, list):
        raise _Stop("permerror", f"{domain} publishes {len(record)} SPF records; exactly one is allowed")
    redirect = ""
    for term in record.split()[1:]:
        name, sep, value = term.partition("=")
        if sep and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_.\-]*", name):  # a modifier
            if name.lower() == "redirect":
                redirect = value
            continue  # exp= and unknown modifiers are ignored (section 6)
        qualifier = term[0] if term[0] in QUALIFIERS else "+"
        body = term[1:] if term[0] in QUALIFIERS else term
        mechanism = re.split(r"[:/]", body, maxsplit=1)[0].lower()
        argument = body[len(mechanism):]  # ":domain/cidr", "/cidr" or ""
        if mechanism not in MECHANISMS:
            raise _Stop("permerror", f"{domain}: unknown mechanism {term!r}")
        if await _matches(check, domain, mechanism, argument, term, depth):
            verdict = QUALIFIERS[qualifier]
            return verdict, f"{check.ip} matched {term!r} in {domain}'s record"
    if redirect:
        check.count("redirect=" + redirect)
        target = check.expand(redirect, domain)
        result, reason = await _check_host(check, target, depth + 1)
        if result == "none":
            raise _Stop("permerror", f"{domain} redirects to {target}, which has no SPF record")
        return result, reason
    return "neutral", f"{check.ip} matched nothing in {domain}'s record (no 'all' at its end)"


def _split_cidr(argument: str, domain: str, check: _Check) -> tuple[str, int | None]:
    """``:name/24`` -> (name or the current domain, prefix length for this address family)."""
    target, cidr4, cidr6 = argument, None, None
    match = re.search(r"/(\d+)(?://(\d+))?$|//(\d+)$", argument)
    if match:
        target = argument[:match.start()]
        cidr4 = int(match.group(1)) if match.group(1) else None
        cidr6 = int(match.group(2) or match.group(3)) if (match.group(2) or match.group(3)) else None
    target = check.expand(target[1:], domain) if target.startswith(":") else domain
    return target, (cidr6 if check.ip.version == 6 else cidr4)


def _in(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, address: str, prefix: int | None) -> bool:
    try:
        net = ipaddress.ip_network(f"{address}/{prefix if prefix is not None else ip.max_prefixlen}", strict=False)
    except ValueError:
        return False
    return ip.version == net.version and ip in net


async def _matches(check: _Check, domain: str, mechanism: str, argument: str, term: str, depth: int) -> bool:
    if mechanism == "all":
        return True
    if mechanism in ("ip4", "ip6"):
        network = argument[1:]
        try:
            return check.ip in ipaddress.ip_network(network, strict=False)
        except (ValueError, TypeError):
            raise _Stop("permerror", f"{domain}: {term!r} is not a network") from None
    check.count(term)
    if mechanism == "include":
        if depth >= MAX_LOOKUPS:
            raise _Stop("permerror", "includes nest too deep (a loop?)")
        result, reason = await _check_host(check, check.expand(argument[1:], domain), depth + 1)
        if result == "none":
            raise _Stop("permerror", f"{term!r}: the included domain has no SPF record")
        if result in ("temperror", "permerror"):
            raise _Stop(result, reason)
        return result == "pass"
    if mechanism == "a":
        target, prefix = _split_cidr(argument, domain, check)
        return any(_in(check.ip, a, prefix) for a in await check.addresses(target))
    if mechanism == "mx":
        target, prefix = _split_cidr(argument, domain, check)
        exchanges = [r.split()[1] for r in (await check.ask(target, "MX")).records if len(r.split()) == 2]
        if len(exchanges) > MAX_LOOKUPS:
            raise _Stop("permerror", f"{target} has more than {MAX_LOOKUPS} MX hosts")
        for exchange in exchanges:
            if any(_in(check.ip, a, prefix) for a in await check.addresses(exchange.rstrip("."))):
                return True
        return False
    if mechanism == "exists":
        return bool((await check.ask(check.expand(argument[1:], domain), "A")).records)
    return False  # ptr: counted, deprecated (section 5.5), and the lab has no reverse zone
