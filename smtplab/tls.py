"""The lab's certificate authority and the TLS settings every lab host uses.

The CA is made fresh when a lab starts (trustme), signs one certificate per
host name, and is exported as a PEM file so outside tools (swaks, openssl,
a mail client) can trust the lab the way the lab's own clients do.
"""

from __future__ import annotations

import datetime
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from .statefile import private_dir

__all__ = ["LabCA", "TLSInfo", "describe_tls"]

#: SSL 3.0 and TLS 1.0/1.1 are deprecated (RFC 7568, RFC 8996): the lab never offers them.
MINIMUM_TLS = ssl.TLSVersion.TLSv1_2


class LabCA:
    """A throw-away certificate authority with one certificate per lab host."""

    def __init__(self, directory: Path, hostnames: Iterable[str], faults: dict[str, str] | None = None) -> None:
        self._ca = trustme.CA(organization_name="smtplab", organization_unit_name="lab CA")
        private_dir(directory)
        self.cert_path = directory / "ca.pem"
        fd = os.open(self.cert_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as out:
            out.write(self._ca.cert_pem.bytes())
        faults = faults or {}
        self._leaves = {name: self._issue(name, faults.get(name, "")) for name in hostnames}
        self._server_contexts: dict[str, ssl.SSLContext] = {}

    def _issue(self, name: str, fault: str) -> trustme.LeafCert:
        """A certificate for `name`; a scenario may plant a fault a client must catch."""
        if fault == "expired":
            past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=400)
            return self._ca.issue_cert(name, not_before=past, not_after=past + datetime.timedelta(days=90))
        if fault == "wrong-name":
            return self._ca.issue_cert(f"other.{name}")
        if fault == "self-signed":  # signed by a CA nobody trusts
            return trustme.CA(organization_name="self-signed").issue_cert(name)
        return self._ca.issue_cert(name)

    def server_context(self, hostname: str) -> ssl.SSLContext:
        """The server-side context for `hostname`: its own certificate, TLS 1.2 or newer."""
        ctx = self._server_contexts.get(hostname)
        if ctx is None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.minimum_version = MINIMUM_TLS
            self._leaves[hostname].configure_cert(ctx)
            self._server_contexts[hostname] = ctx
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the lab CA (and nothing else) and checks host names."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and names
        ctx.minimum_version = MINIMUM_TLS
        self._ca.configure_trust(ctx)
        return ctx


def describe_tls(transport: Any) -> str:
    """What a transcript says once a handshake is done: ``TLS established: TLSv1.3, <cipher>``."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return "TLS established"
    return f"TLS established: {ssl_object.version()}, {ssl_object.cipher()[0]}"


@dataclass
class TLSInfo:
    """What a client learnt in a TLS handshake: the version, the cipher, and the server's certificate."""

    version: str
    cipher: str
    subject: str
    issuer: str
    names: list[str]
    not_before: str
    not_after: str

    @classmethod
    def of(cls, transport: Any) -> TLSInfo | None:
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        cert = ssl_object.getpeercert() or {}

        def name(field: str) -> str:
            return ", ".join(f"{k}={v}" for rdn in cert.get(field, ()) for k, v in rdn)

        return cls(ssl_object.version() or "", ssl_object.cipher()[0], name("subject"), name("issuer"),
                   [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"],
                   cert.get("notBefore", ""), cert.get("notAfter", ""))

    def __str__(self) -> str:
        return (f"{self.version}, {self.cipher}\n  certificate for {', '.join(self.names) or self.subject}\n"
                f"  issued by {self.issuer}\n  valid {self.not_before} to {self.not_after}")
