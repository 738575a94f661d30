"""Sender authentication: SPF, DKIM, DMARC and ARC, checked against a DNS server the caller names.

Pure rules and dkimpy calls; nothing here knows a lab. The server runs
:func:`check_arrival` at the end of DATA, with a lookup that asks the lab DNS
and writes each answer into the session's transcript.
"""

from .arrival import ArrivalVerdict, check_arrival, from_domain
from .dmarc import DMARCPolicy, DMARCResult, aligned, check_dmarc, org_domain, parse_dmarc
from .lookup import Answer, Lookup, dig_lookup
from .results import AuthPart, authentication_results, parse_authentication_results, strip_claims_of
from .signing import DKIMResult, SigningKey, arc_seal, arc_verify, dkim_sign, dkim_verify, key_names, signing_key
from .spf import SPFResult, check_spf

__all__ = [
    "Answer",
    "ArrivalVerdict",
    "AuthPart",
    "DKIMResult",
    "DMARCPolicy",
    "DMARCResult",
    "Lookup",
    "SPFResult",
    "SigningKey",
    "aligned",
    "arc_seal",
    "arc_verify",
    "authentication_results",
    "check_arrival",
    "check_dmarc",
    "check_spf",
    "dig_lookup",
    "dkim_sign",
    "dkim_verify",
    "from_domain",
    "key_names",
    "org_domain",
    "parse_authentication_results",
    "parse_dmarc",
    "signing_key",
    "strip_claims_of",
]
