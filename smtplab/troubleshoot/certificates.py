"""What a server's certificate says, and why a client refused it, in words a student can act on.

The checklist's TLS step verifies the certificate with Python's ``ssl`` module.
When that fails, the error says little a student can act on, so the server's
certificate is fetched once more *without* checking it (:func:`peek_certificate`)
and :func:`why_refused` names the cause: expired, not yet valid, another name,
an authority nobody trusts.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..transcript import Recorder, Transcript
from .lookup import is_address
from .wire import Closed, Wire, reply_code

# OpenSSL's verify codes (``SSLCertVerificationError.verify_code``) that get their own words.
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_HOSTNAME_MISMATCH = 62
#: Self-signed (18, 19), or signed by an authority the client does not know (20, 21).
UNTRUSTED_ISSUER = (18, 19, 20, 21)


def tls_text(sock: ssl.SSLSocket) -> str:
    """The TLS version and cipher of a connection: 'TLSv1.3, TLS_AES_256_GCM_SHA384'."""
    cipher = sock.cipher()
    return f"{sock.version()}, {cipher[0]}" if cipher else str(sock.version())


def certificate_summary(sock: ssl.SSLSocket, hostname: str | None) -> str:
    """A verified certificate in one line: whose name, signed by whom, and a warning when it ends soon."""
    # typeshed gives the values as one union of every field's shape; these are:
    # "issuer": a tuple of RDNs, each a tuple of (key, value) pairs; "notAfter": a str.
    cert: dict[str, Any] = sock.getpeercert() or {}
    issuer = dict(x[0] for x in cert.get("issuer", ()))
    issued_by = ", ".join(v for v in (issuer.get("organizationName"), issuer.get("organizationalUnitName"))
                          if v) or issuer.get("commonName") or "?"
    until = cert.get("notAfter", "")
    left = ""
    if until:
        expires = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(until), datetime.UTC)
        days = (expires - datetime.datetime.now(datetime.UTC)).days
        left = f", expires in {days} days: renew soon" if days < 30 else ""
    name_part = f"made out to {hostname}" if hostname else "name not checked (an address was given)"
    return f"certificate {name_part}, signed by '{issued_by}' (trusted){left}"


def why_refused(err: ssl.SSLCertVerificationError, cert: dict[str, Any] | None,
                server_name: str) -> tuple[str, str, str]:
    """(what happened, what it means, what to try next) for a refused certificate.

    `cert` is what :func:`peek_certificate` found (None if it could not look).
    """
    code = getattr(err, "verify_code", 0)
    message = getattr(err, "verify_message", "") or str(err)
    names = ", ".join(cert.get("names", ())) if cert else ""
    if code == X509_V_ERR_CERT_HAS_EXPIRED:
        when = cert.get("not_after") if cert else None
        ago = ""
        if when is not None:
            days = (datetime.datetime.now(datetime.UTC) - when).days
            ago = f" on {when:%Y-%m-%d %H:%M:%S} UTC ({days} days ago)"
        detail = f"the server's certificate expired{ago}"
        meaning = ("A certificate is valid only between two dates. This one is past its end date, so the "
                   "client cannot trust it, even though it was once fine: the server's administrator forgot "
                   "to renew it.")
        nxt = ("Nothing to fix on your side: tell the server's administrator (renewing it, e.g. with "
               "Let's Encrypt, fixes it). Do not switch certificate checks off.")
    elif code == X509_V_ERR_CERT_NOT_YET_VALID:
        detail = "the server's certificate is not valid yet"
        meaning = "Its start date is in the future: a wrong clock on the server or on this computer."
        nxt = "Check this computer's date and time, then tell the server's administrator."
    elif code == X509_V_ERR_HOSTNAME_MISMATCH:
        detail = (f"the certificate is made out to {names or 'another name'}, not {server_name}")
        meaning = ("The certificate is genuine, but for another name: the client cannot tell whether it "
                   "talks to the right server, or to an impostor who has a certificate of their own.")
        nxt = ("Use the server name the certificate is made out to, if that is the provider's real server "
               "name (often the settings name an alias); otherwise tell the administrator.")
    elif code in UNTRUSTED_ISSUER:
        issuer = cert.get("issuer", "") if cert else ""
        by = f" (signed by '{issuer}')" if issuer else ""
        detail = f"the certificate is signed by an authority this client does not trust{by}"
        meaning = ("Anyone can make a certificate for any name; a client trusts only those signed by an "
                   "authority it knows. This one is self-signed or signed by an unknown authority, so it "
                   "proves nothing.")
        nxt = ("If it is your own server, get a certificate from a real authority (Let's Encrypt). If you "
               "run your own CA on purpose, give its certificate to the client (--cafile). Never click "
               "'accept anyway' for a server you do not run.")
    else:
        detail = f"the certificate was refused: {message}"
        meaning = "The client could not verify the server's certificate."
        nxt = "Tell the server's administrator what the check says."
    return detail, meaning, nxt


def peek_certificate(sock: socket.socket, server_name: str, ehlo: str | None, timeout: float) -> dict[str, Any] | None:
    """The certificate the server on `sock` shows, fetched without checking it (only to describe it).

    ``ehlo`` is the EHLO name for a STARTTLS port; None for implicit TLS. Closes `sock`.
    Returns its ``names``, ``not_after`` and ``issuer``, or None if the server would not show it.
    """
    try:
        wire = Wire(sock, Recorder(Transcript(server_name, "client")), timeout)
        if ehlo is not None:
            wire.reply()
            wire.command(f"EHLO {ehlo}")
            if reply_code(wire.command("STARTTLS")) != 220:
                return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls_sock = ctx.wrap_socket(sock, server_hostname=None if is_address(server_name) else server_name)
        der = tls_sock.getpeercert(binary_form=True)
        tls_sock.close()
    except (OSError, Closed, ssl.SSLError):
        return None
    finally:
        sock.close()
    if der is None:  # no certificate at all (an anonymous cipher)
        return None
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]  # a CN is a str
    issuer = (cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
              or cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME))
    return {"names": list(names), "not_after": cert.not_valid_after_utc,
            "issuer": str(issuer[0].value) if issuer else ""}
