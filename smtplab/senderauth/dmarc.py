"""DMARC (RFC 7489): does the From: domain stand behind this message, and what does it ask a receiver to do?

SPF checks the envelope sender, DKIM the domain that signed; neither looks at
the From: line a reader sees. DMARC ties them to it: a message *passes* when
SPF passed for a domain aligned with the From: domain, or a DKIM signature
verified for one. "Aligned" is ``relaxed`` by default (the same organizational
domain: ``mail.example.org`` aligns with ``example.org``) or ``strict`` (the
same name) with ``aspf=s`` / ``adkim=s``. When it fails, the From: domain's
record says what to do: ``p=none`` (only report), ``quarantine`` (the Junk
folder) or ``reject`` (refuse it). ``sp=`` is the policy for subdomains,
``pct=`` the share of failing mail the policy applies to.

The organizational domain is found, in real life, with the Public Suffix List.
The lab's domains all sit under one-label suffixes (``.org``, ``.net``,
``.example``), so here it is the last two labels; :func:`org_domain` says so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .lookup import Answer, Lookup

__all__ = ["DMARCPolicy", "DMARCResult", "aligned", "check_dmarc", "org_domain", "parse_dmarc"]

POLICIES = ("none", "quarantine", "reject")


def org_domain(domain: str) -> str:
    """The organizational domain: the last two labels (the lab's suffixes are one label each)."""
    labels = domain.lower().rstrip(".").split(".")
    return ".".join(labels[-2:])


def aligned(identifier: str, from_domain: str, mode: str = "r") -> bool:
    """Whether an SPF or DKIM domain aligns with the From: domain (``r`` relaxed, ``s`` strict)."""
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return identifier == from_domain
    return bool(identifier) and org_domain(identifier) == org_domain(from_domain)


@dataclass(frozen=True)
class DMARCPolicy:
    """A parsed ``_dmarc`` record."""

    p: str
    sp: str
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: str = ""
    record: str = ""
    found_at: str = ""


def parse_dmarc(text: str, found_at: str = "") -> DMARCPolicy:
    """Parse a DMARC record; ValueError says what is wrong with it."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            tags[name.strip().lower()] = value.strip()
    if tags.get("v") != "DMARC1":
        raise ValueError("a DMARC record starts with v=DMARC1")
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        raise ValueError(f"p= must be one of {', '.join(POLICIES)}, not {tags.get('p', '(missing)')!r}")
    sp = tags.get("sp", p).lower()
    if sp not in POLICIES:
        sp = p
    try:
        pct = max(0, min(100, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    return DMARCPolicy(p, sp, tags.get("adkim", "r").lower()[:1], tags.get("aspf", "r").lower()[:1], pct,
                       tags.get("rua", ""), text, found_at)


@dataclass
class DMARCResult:
    """A DMARC verdict: the result, the policy that applies, what the receiver does, and why."""

    result: str  # pass | fail | none | temperror | permerror
    from_domain: str
    disposition: str  # deliver | junk | reject
    reason: str
    policy: DMARCPolicy | None = None
    answers: list[Answer] = field(default_factory=list)

    @property
    def requested(self) -> str:
        """The policy the domain asked for (``none`` where there is no record)."""
        if self.policy is None:
            return "none"
        return self.policy.sp if self.from_domain != org_domain(self.from_domain) else self.policy.p

    def __str__(self) -> str:
        return f"dmarc={self.result} (p={self.requested}) header.from={self.from_domain}: {self.reason}"


async def _find_record(domain: str, lookup: Lookup, answers: list[Answer]) -> DMARCPolicy | str | None:
    """The record for `domain`, else its organizational domain's (section 6.6.3); a str is a temporary error."""
    for candidate in dict.fromkeys((domain, org_domain(domain))):
        answer = await lookup(f"_dmarc.{candidate}", "TXT")
        answers.append(answer)
        if answer.failed:
            return f"DNS did not answer for _dmarc.{candidate} ({answer.status})"
        records = [t for t in answer.texts() if t.startswith("v=DMARC1")]
        if len(records) == 1:
            return parse_dmarc(records[0], f"_dmarc.{candidate}")
    return None


async def check_dmarc(from_domain: str, *, spf_result: str, spf_domain: str,
                      dkim_passed: list[str], lookup: Lookup, rng: random.Random | None = None) -> DMARCResult:
    """Evaluate DMARC for a message whose From: domain is `from_domain`.

    `spf_result`/`spf_domain`: the MAIL FROM check; `dkim_passed`: the ``d=`` domains whose signatures verified.
    """
    from_domain = from_domain.lower().rstrip(".")
    answers: list[Answer] = []
    try:
        found = await _find_record(from_domain, lookup, answers)
    except ValueError as err:
        return DMARCResult("permerror", from_domain, "deliver", f"the DMARC record is broken: {err}", None, answers)
    if isinstance(found, str):
        return DMARCResult("temperror", from_domain, "deliver", found, None, answers)
    if found is None:
        return DMARCResult("none", from_domain, "deliver", f"{from_domain} publishes no DMARC record", None, answers)
    spf_ok = spf_result == "pass" and aligned(spf_domain, from_domain, found.aspf)
    dkim_ok = [d for d in dkim_passed if aligned(d, from_domain, found.adkim)]
    if spf_ok or dkim_ok:
        why = []
        if dkim_ok:
            why.append(f"DKIM passed for {dkim_ok[0]}, aligned with {from_domain}")
        if spf_ok:
            why.append(f"SPF passed for {spf_domain}, aligned with {from_domain}")
        return DMARCResult("pass", from_domain, "deliver", " and ".join(why), found, answers)
    why = []
    if spf_result == "pass":
        why.append(f"SPF passed, but for {spf_domain}, not aligned with {from_domain}")
    else:
        why.append(f"SPF {spf_result} for {spf_domain or 'the envelope sender'}")
    why.append(f"DKIM passed only for {', '.join(dkim_passed)}, not aligned" if dkim_passed else "no valid DKIM signature")
    result = DMARCResult("fail", from_domain, "deliver", "; ".join(why), found, answers)
    policy = result.requested
    if policy != "none" and (rng or random).random() * 100 < found.pct:
        result.disposition = "reject" if policy == "reject" else "junk"
    return result
