"""The lab refuses what a real server refuses, with the standard codes, and keeps serving after bad input."""

from __future__ import annotations

import smtplib
import socket
import ssl
import warnings

import pytest
from peers import smtp_to

from smtplab import Lab, Session

LISTENERS = [("smtp.example.org", 25), ("smtp.example.org", 587), ("smtp.example.org", 465),
             ("smtp.example.org", 2525), ("mx1.example.net", 25), ("mx2.example.net", 25)]


def code_and_enhanced(reply: tuple[int, bytes]) -> tuple[int, str]:
    code, text = reply
    return code, text.decode().split()[0]


def test_auth_before_starttls_on_587(lab):
    with smtp_to(lab, "smtp.example.org", 587) as client:
        client.ehlo("laptop")
        code, enhanced = code_and_enhanced(client.docmd("AUTH", "PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="))
    assert code in (530, 538) and enhanced in ("5.7.0", "5.7.11")


def test_wrong_password(lab, ca_context):
    with smtp_to(lab, "smtp.example.org", 587) as client:
        client.starttls(context=ca_context)
        with pytest.raises(smtplib.SMTPAuthenticationError) as err:
            client.login("alice", "not-her-password")
    assert err.value.smtp_code == 535 and err.value.smtp_error.startswith(b"5.7.8")


def test_unknown_local_recipient(lab):
    with smtp_to(lab, "smtp.example.org", 25) as client:
        client.ehlo("mx.example.com")
        client.mail("someone@example.com")
        code, enhanced = code_and_enhanced(client.rcpt("nobody@example.org"))
    assert (code, enhanced) == (550, "5.1.1")


@pytest.mark.parametrize("host, port", LISTENERS)
def test_no_listener_is_an_open_relay(lab, ca_context, host, port):
    with smtp_to(lab, host, port, ca_context) as client:
        client.ehlo("spammer.example.com")
        if client.has_extn("starttls"):
            client.starttls(context=ca_context)  # even inside TLS, no login means no relaying
            client.ehlo("spammer.example.com")
        assert client.mail("alice@example.org")[0] == 250
        code, enhanced = code_and_enhanced(client.rcpt("victim@example.com"))
    if lab.endpoint(host, port).listener.auth == "required":  # a submission port: nothing at all before a login
        assert (code, enhanced) == (530, "5.7.0")
    else:
        assert code in (550, 554) and enhanced == "5.7.1"


def test_a_submission_port_gives_one_answer_to_an_unauthenticated_rcpt(lab, ca_context):
    """Local or remote recipient, the cause is the same (no login), and so is the reply."""
    with smtp_to(lab, "smtp.example.org", 587, ca_context) as client:
        client.ehlo("laptop")
        client.starttls(context=ca_context)
        client.ehlo("laptop")
        assert client.mail("alice@example.org")[0] == 250
        replies = {rcpt: code_and_enhanced(client.rcpt(rcpt)) for rcpt in ("carol@example.org", "bob@example.net")}
    assert replies == {"carol@example.org": (530, "5.7.0"), "bob@example.net": (530, "5.7.0")}


def test_submission_without_tls_is_told_to_starttls(lab):
    with smtp_to(lab, "smtp.example.org", 587) as client:
        client.ehlo("laptop")
        code, enhanced = code_and_enhanced(client.mail("alice@example.org"))
    assert (code, enhanced) == (530, "5.7.0")


def test_a_user_cannot_send_as_someone_else(lab, ca_context):
    with smtp_to(lab, "smtp.example.org", 587) as client:
        client.starttls(context=ca_context)
        client.login("alice", "wonderland")
        code, enhanced = code_and_enhanced(client.mail("carol@example.org"))
    assert code == 553 and enhanced == "5.7.1"


# --- bad input over a raw socket -------------------------------------------------------------

def raw(lab: Lab, host: str = "smtp.example.org", port: int = 25) -> Session:
    """A bare conversation through the lab's own raw session: the lab must answer whatever arrives."""
    return lab.session(host, port, timeout=5)


def command(session: Session, data: bytes) -> str:
    session.send_bytes(data)
    return session.last_reply


@pytest.mark.parametrize("bad, code", [
    (b"\x16\x03\x01\x02\x00garbage\xff\xfe\r\n", "500"),
    (b"EHLO \x00\x00\x00\r\n", "501"),  # no control characters in a name that goes into Received; still recorded
    (b"\x00\x00\x00\x00\r\n", "500"),
    (b"A" * 5000 + b"\r\n", "500"),
    (b"RCPT TO:<bob@example.net>\r\n", "503"),
    (b"DATA\r\n", "503"),
    (b"MAIL FROM:<no-closing-bracket\r\n", "5"),
    (b"\r\n", "500"),
])
def test_bad_input_gets_a_proper_reply_is_recorded_and_the_server_keeps_serving(lab, bad, code):
    session = raw(lab)
    assert session.last_reply.startswith("220 ")
    if code != "250" and not bad.startswith((b"RCPT", b"DATA")):
        command(session, b"EHLO prober.example.com\r\n")
    reply = command(session, bad)
    assert reply[:1] in "245" and reply.startswith(code), reply
    assert command(session, b"NOOP\r\n").startswith("250")
    command(session, b"QUIT\r\n")
    session.close()
    transcript = session.server_transcript
    assert any(e.direction == "client" and e.kind == "line" for e in transcript), transcript
    assert all(isinstance(e.note, str) for e in transcript)
    if b"\x00" in bad:
        assert any("\\x00" in e.line for e in transcript), transcript.text()
    # and a normal message still goes through
    assert lab.send("alice@example.org", "carol@example.org", subject="after bad input").ok


def test_commands_out_of_order(lab):
    session = raw(lab)
    assert command(session, b"MAIL FROM:<a@example.com>\r\n").startswith("503")  # before EHLO
    command(session, b"EHLO prober\r\n")
    assert command(session, b"RCPT TO:<carol@example.org>\r\n").startswith("503")  # before MAIL
    assert command(session, b"MAIL FROM:<a@example.com>\r\n").startswith("250")
    assert command(session, b"MAIL FROM:<a@example.com>\r\n").startswith("503")  # nested MAIL
    assert command(session, b"DATA\r\n").startswith("503")  # before RCPT
    assert command(session, b"QUIT\r\n").startswith("221")
    session.close()


def test_disconnect_mid_data_delivers_nothing(lab):
    before = len(lab.inbox("carol@example.org"))
    session = raw(lab)
    command(session, b"EHLO prober\r\n")
    command(session, b"MAIL FROM:<a@example.com>\r\n")
    command(session, b"RCPT TO:<carol@example.org>\r\n")
    assert command(session, b"DATA\r\n").startswith("354")
    session.send_bytes(b"Subject: half a message\r\n\r\nthe client vanishes before the dot\r\n", reply=False)
    session.close()
    transcript = session.server_transcript
    assert "connection lost in the middle of DATA" in [e.line for e in transcript]
    assert len(lab.inbox("carol@example.org")) == before
    assert lab.send("alice@example.org", "carol@example.org", subject="still serving").ok


def test_overlong_line_inside_data_is_refused_and_not_delivered(lab):
    before = len(lab.inbox("carol@example.org"))
    session = raw(lab)
    command(session, b"EHLO prober\r\n")
    command(session, b"MAIL FROM:<a@example.com>\r\n")
    command(session, b"RCPT TO:<carol@example.org>\r\n")
    command(session, b"DATA\r\n")
    reply = command(session, b"Subject: long\r\n\r\n" + b"x" * 5000 + b"\r\n.\r\n")
    assert reply.startswith("500"), reply
    assert command(session, b"QUIT\r\n").startswith("221")
    session.close()
    assert len(lab.inbox("carol@example.org")) == before


def test_a_tls_client_of_an_old_version_is_turned_away(lab):
    ep = lab.endpoint("smtp.example.org", 465)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with socket.create_connection((ep.address, ep.bound_port), timeout=5) as sock:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            old.wrap_socket(sock, server_hostname="smtp.example.org")
    assert lab.send("alice@example.org", "carol@example.org", port=465).ok
