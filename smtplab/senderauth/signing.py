"""DKIM (RFC 6376, Ed25519 from RFC 8463) and ARC (RFC 8617), through dkimpy, fed from the lab DNS.

dkimpy does the cryptography and canonicalization, which are not the lesson.
Its verifiers look keys up synchronously through a ``dnsfunc``; on the lab's
event loop that would wait for a DNS server served by the same loop, so the
keys a message names are fetched first, asynchronously and on the record
(:func:`key_names`), and dkimpy is handed a dictionary of the answers.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ..statefile import private_dir

__all__ = ["ALGORITHMS", "DKIMResult", "SigningKey", "arc_seal", "arc_verify", "dkim_sign", "dkim_verify",
           "key_names", "signing_key", "txt_strings"]

#: The algorithms a lab host can sign with, as a scenario names them.
ALGORITHMS = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"mime-version",
                  b"content-type"]


@dataclass(frozen=True)
class SigningKey:
    """A host's key for one domain and selector; its public half is published at ``selector._domainkey.domain``."""

    domain: str
    selector: str
    algorithm: str  # "rsa" or "ed25519"
    private: bytes  # as dkimpy takes it: PEM for RSA, base64 of the 32-byte seed for Ed25519
    public: str  # base64, the p= tag

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record(self) -> str:
        return f"v=DKIM1; k={self.algorithm}; p={self.public}"


def txt_strings(text: str) -> str:
    """A TXT value as zone-file text: quoted strings of at most 255 characters (a DKIM key needs several)."""
    return " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))


def signing_key(key_dir: Path, domain: str, selector: str, algorithm: str = "rsa") -> SigningKey:
    """The key for `domain`/`selector`, kept in `key_dir` (0600) so that a restarted lab signs with the same key."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"DKIM algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    private_dir(key_dir)
    path = key_dir / f"{selector}._domainkey.{domain}.{algorithm}.pem"
    if path.exists():
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if algorithm == "rsa" \
            else ed25519.Ed25519PrivateKey.generate()
        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    if isinstance(private_key, rsa.RSAPrivateKey):
        private = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption())
        public = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        private = base64.b64encode(private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                             serialization.NoEncryption()))
        public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:  # pragma: no cover - only a hand-edited key file
        raise ValueError(f"{path}: not an RSA or Ed25519 key")
    return SigningKey(domain, selector, algorithm, private, base64.b64encode(public).decode())


def dkim_sign(message: bytes, key: SigningKey) -> bytes:
    """The ``DKIM-Signature:`` header (ending in CRLF) that signs `message` with `key`."""
    present = {name.lower().encode() for name in BytesHeaderParser(policy=compat32).parsebytes(message).keys()}
    return dkim.sign(message, key.selector.encode(), key.domain.encode(), key.private,
                     signature_algorithm=ALGORITHMS[key.algorithm],
                     include_headers=[h for h in SIGNED_HEADERS if h in present] or [b"from"])


_TAG_D = re.compile(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)")
_TAG_S = re.compile(rb"(?:^|;)\s*s\s*=\s*([^;\s]+)")


def _tags(value: str) -> tuple[str, str]:
    raw = re.sub(r"\s+", "", value).encode()
    d, s = _TAG_D.search(raw), _TAG_S.search(raw)
    return (d.group(1).decode().lower() if d else "", s.group(1).decode() if s else "")


def key_names(message: bytes, header: str = "DKIM-Signature") -> list[tuple[str, str]]:
    """(domain, selector) of each signature in `message` under `header` (also ARC-Seal, ARC-Message-Signature)."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(message)
    return [_tags(str(v)) for v in headers.get_all(header, [])]


@dataclass(frozen=True)
class DKIMResult:
    """One signature's verdict."""

    result: str  # pass | fail | neutral | temperror | permerror (RFC 8601 names)
    domain: str
    selector: str
    reason: str

    def __str__(self) -> str:
        return f"dkim={self.result} header.d={self.domain} header.s={self.selector} ({self.reason})"


def _dnsfunc(keys: dict[str, str | None]) -> Callable[..., bytes | None]:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        found = keys.get(name.decode().rstrip(".").lower())
        return found.encode() if found else None
    return lookup


def dkim_verify(message: bytes, keys: dict[str, str | None]) -> list[DKIMResult]:
    """Verify every DKIM signature of `message` against `keys` (``selector._domainkey.domain`` -> TXT or None)."""
    results = []
    verifier = dkim.DKIM(message)
    for index, (domain, selector) in enumerate(key_names(message)):
        name = f"{selector}._domainkey.{domain}"
        if name.lower() not in keys or keys[name.lower()] is None:
            results.append(DKIMResult("permerror" if name.lower() in keys else "temperror", domain, selector,
                                      f"no key published at {name}"))
            continue
        try:
            ok = verifier.verify(idx=index, dnsfunc=_dnsfunc(keys))
        except dkim.DKIMException as err:
            if "body hash mismatch" in str(err):
                results.append(DKIMResult("fail", domain, selector, "the body was changed after signing "
                                          "(its hash is not the bh= the signature carries)"))
            else:
                results.append(DKIMResult("permerror", domain, selector, f"signature unusable: {err}"))
            continue
        if ok:
            results.append(DKIMResult("pass", domain, selector, f"signature verified with the key at {name}"))
        else:
            results.append(DKIMResult("fail", domain, selector,
                                      "signature does not match: the message was changed after signing, "
                                      "or signed with another key"))
    return results


def arc_seal(message: bytes, key: SigningKey, authserv_id: str) -> bytes:
    """The three ARC headers (seal, message signature, authentication results) a forwarder adds."""
    headers = dkim.arc_sign(message, key.selector.encode(), key.domain.encode(), key.private,
                            authserv_id.encode(), signature_algorithm=ALGORITHMS[key.algorithm])
    return b"".join(headers)


def arc_verify(message: bytes, keys: dict[str, str | None]) -> tuple[str, str, str]:
    """(cv, sealer domain, reason): the ARC chain's validation (``none``, ``pass``, ``fail``)."""
    seals = key_names(message, "ARC-Seal")
    if not seals:
        return "none", "", "no ARC headers"
    cv, _results, reason = dkim.arc_verify(message, dnsfunc=_dnsfunc(keys))
    sealer = seals[0][0] if seals else ""
    newest = _newest_sealer(message) or sealer
    return cv.decode(), newest, (reason.decode() if isinstance(reason, bytes) else str(reason))


def _newest_sealer(message: bytes) -> str:
    headers = BytesHeaderParser(policy=compat32).parsebytes(message)
    best, best_i = "", -1
    for value in headers.get_all("ARC-Seal", []):
        raw = re.sub(r"\s+", "", str(value))
        i = re.search(r"(?:^|;)i=(\d+)", raw)
        if i and int(i.group(1)) > best_i:
            best_i, best = int(i.group(1)), _tags(str(value))[0]
    return best
