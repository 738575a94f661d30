"""What a receiving MX checks when a message arrives: SPF, DKIM, ARC, then DMARC, and what it does about it.

The order is the standard one: SPF on the HELO name and on the envelope
sender (against the connecting address), every DKIM signature, the ARC chain
an intermediary may have sealed, then DMARC, which asks whether SPF or DKIM
passed *for the From: domain*. The verdict says whether to deliver, put the
message in the recipient's Junk folder (``p=quarantine``) or refuse it at the
end of DATA (``p=reject``: 550 5.7.1, with the reason); and it carries the
Authentication-Results header to add. A receiver that trusts an ARC sealer
may deliver what DMARC failed (a mailing list that changed the message).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from .dmarc import DMARCResult, check_dmarc
from .lookup import Answer, Lookup
from .results import AuthPart, authentication_results
from .signing import DKIMResult, arc_verify, dkim_verify, key_names
from .spf import SPFResult, check_spf

__all__ = ["ArrivalVerdict", "check_arrival", "from_domain"]


@dataclass
class ArrivalVerdict:
    """Everything a receiver found about who sent a message, and what it decided."""

    action: str  # deliver | junk | reject
    reason: str
    helo: SPFResult
    spf: SPFResult
    dkim: list[DKIMResult]
    dmarc: DMARCResult
    arc: tuple[str, str, str]  # (cv, sealer, reason)
    header: bytes = b""
    answers: list[Answer] = field(default_factory=list)

    @property
    def reply(self) -> str:
        """The reply at the end of DATA when the message is refused."""
        return (f"550 5.7.1 Message refused by the DMARC policy of {self.dmarc.from_domain} "
                f"(p={self.dmarc.requested}): {self.reason}")

    def parts(self) -> list[AuthPart]:
        spf, helo = self.spf, self.helo
        out = [AuthPart("spf", spf.result, spf.reason, (("smtp.mailfrom", spf.domain),)),
               AuthPart("spf", helo.result, helo.reason, (("smtp.helo", helo.domain),))]
        if self.dkim:
            out += [AuthPart("dkim", d.result, d.reason, (("header.d", d.domain), ("header.s", d.selector)))
                    for d in self.dkim]
        else:
            out.append(AuthPart("dkim", "none", "no signature"))
        cv, sealer, why = self.arc
        if cv != "none":
            out.append(AuthPart("arc", cv, why if cv != "pass" else f"sealed by {sealer}",
                                (("header.oldest-pass", "0"),) if cv == "pass" else ()))
        dmarc = self.dmarc
        disposition = {"deliver": "none", "junk": "quarantine", "reject": "reject"}[self.action]  # what was done
        out.append(AuthPart("dmarc", dmarc.result, f"p={dmarc.requested} dis={disposition}",
                            (("header.from", dmarc.from_domain),)))
        return out


def from_domain(message: bytes) -> str:
    """The domain of the single From: address ("" when there is none, or more than one)."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(message)
    addresses = [a for _, a in getaddresses([str(v) for v in headers.get_all("From", [])]) if "@" in a]
    domains = {a.rpartition("@")[2].lower() for a in addresses}
    return domains.pop() if len(domains) == 1 else ""


async def check_arrival(message: bytes, *, authserv_id: str, ip: str, helo: str, mail_from: str,
                        lookup: Lookup, trusted_sealers: tuple[str, ...] = (),
                        rng: random.Random | None = None) -> ArrivalVerdict:
    """Run SPF, DKIM, ARC and DMARC for one arriving message; `lookup` asks the lab DNS (and records it)."""
    helo_name = helo.strip().lower().rstrip(".") or "unknown"
    helo_spf = await check_spf(ip, helo_name, sender=f"postmaster@{helo_name}", helo=helo_name, lookup=lookup,
                               identity="helo")
    envelope = mail_from if mail_from and mail_from != "<>" else f"postmaster@{helo_name}"
    envelope_domain = envelope.rpartition("@")[2].lower()
    spf = await check_spf(ip, envelope_domain, sender=envelope, helo=helo_name, lookup=lookup)

    async def keys_for(names: list[tuple[str, str]]) -> dict[str, str | None]:
        keys: dict[str, str | None] = {}
        for domain, selector in names:
            name = f"{selector}._domainkey.{domain}".lower()
            if name in keys or not domain or not selector:
                continue
            answer = await lookup(name, "TXT")
            texts = [t for t in answer.texts() if "p=" in t]
            keys[name] = texts[0] if texts and not answer.failed else None
            if answer.failed:
                keys.pop(name)  # unknown now: dkim_verify reports a temperror
        return keys

    dkim_keys = await keys_for(key_names(message))
    dkim = dkim_verify(message, dkim_keys)
    arc_names = key_names(message, "ARC-Seal") + key_names(message, "ARC-Message-Signature")
    arc = arc_verify(message, await keys_for(arc_names)) if arc_names else ("none", "", "no ARC headers")
    author = from_domain(message)
    if author:
        dmarc = await check_dmarc(author, spf_result=spf.result, spf_domain=envelope_domain,
                                  dkim_passed=[d.domain for d in dkim if d.result == "pass"], lookup=lookup, rng=rng)
    else:
        dmarc = DMARCResult("permerror", "", "deliver", "the message has no single From: address to check")
    action, reason = dmarc.disposition, dmarc.reason
    if action != "deliver" and arc[0] == "pass" and arc[1] in trusted_sealers:
        action, reason = "deliver", (f"DMARC failed ({dmarc.reason}), but {arc[1]} sealed it with ARC and this "
                                     f"server trusts {arc[1]}: delivered on the forwarder's word")
    answers = spf.answers + helo_spf.answers + dmarc.answers
    verdict = ArrivalVerdict(action, reason, helo_spf, spf, dkim, dmarc, arc, answers=answers)
    verdict.header = authentication_results(authserv_id, verdict.parts())
    return verdict
