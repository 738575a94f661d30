"""Attacks and defences, with real peers: STARTTLS stripping, openssl, smuggling, command injection, relays, quotas."""

from __future__ import annotations

import base64
import ssl
import subprocess
import time

import pytest
from peers import need

from smtplab import Lab, Session

OLGA = base64.b64encode(b"\0olga\0olga-secret")


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    with Lab("security", state_dir=tmp_path_factory.mktemp("security"), retry=(0.1, 0.2, 0.4)) as lab:
        yield lab


# --- STARTTLS stripping ------------------------------------------------------------------------

def test_stripped_starttls_leaks_the_password_of_an_opportunistic_client(sec):
    result = sec.send("olga@oldmail.example", "bob@example.net", server="oldmail.example", port=587,
                      tls="opportunistic", network="evil-cafe", tap=True)
    assert result.ok  # nobody noticed anything...
    sent = result.wire.bytes_from("client")
    assert b"AUTH PLAIN " + OLGA in sent  # ...but the password crossed the café in the clear
    assert b"STARTTLS" not in sent
    assert b"250-STARTTLS" in sec.transcripts(host="oldmail.example", view="server")[-1].text().encode()


def test_a_client_that_requires_tls_stops_and_says_why(sec):
    result = sec.send("olga@oldmail.example", "bob@example.net", server="oldmail.example", port=587,
                      tls="starttls", network="evil-cafe", tap=True)
    assert not result.ok and "STARTTLS" in result.error
    sent = result.wire.bytes_from("client")
    assert b"AUTH" not in sent and b"olga" not in sent and OLGA not in sent


def test_a_server_that_refuses_plaintext_auth_leaks_nothing_either(sec):
    result = sec.send("alice@example.org", "bob@example.net", tls="opportunistic", network="evil-cafe", tap=True)
    assert not result.ok and result.error_code == 530
    assert b"AUTH" not in result.wire.bytes_from("client")


def test_implicit_tls_cannot_be_stripped(sec):
    result = sec.send("alice@example.org", "carol@example.org", port=465, network="evil-cafe", tap=True)
    assert result.ok
    assert all(r.kind == "TLS" for r in result.wire.records())


# --- openssl s_client against every TLS listener ---------------------------------------------------

def openssl(lab: Lab, port: int, *extra: str) -> subprocess.CompletedProcess:
    tool = need("openssl")
    ep = lab.endpoint("smtp.example.org", port)
    args = [tool, "s_client", "-connect", f"{ep.address}:{ep.bound_port}", "-servername", "smtp.example.org",
            "-CAfile", str(lab.ca.cert_path), "-verify_return_error", "-brief", *extra]
    if ep.listener.tls == "starttls":
        args[2:2] = ["-starttls", "smtp"]
    return subprocess.run(args, input="QUIT\n", capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("port", [25, 587, 2525, 465])
def test_openssl_verifies_the_lab_certificate(sec, port):
    run = openssl(sec, port)
    out = run.stdout + run.stderr
    assert "Verification: OK" in out, out
    assert "Protocol version: TLSv1.3" in out or "Protocol version: TLSv1.2" in out


@pytest.mark.parametrize("port", [587, 465])
def test_tls_1_1_is_refused(sec, port):
    run = openssl(sec, port, "-tls1_1")
    assert run.returncode != 0 and "Verification: OK" not in run.stdout + run.stderr


# --- raw sessions -----------------------------------------------------------------------------------

def say(session: Session, data: bytes) -> str:
    """Send raw bytes through the lab's raw session and return the reply's text."""
    session.send_bytes(data)
    return session.last_reply


SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r"]


def smuggle(lab: Lab, host: str, port: int, rcpt: str, ending: bytes) -> str:
    wire = lab.session(host, port, timeout=5)
    say(wire, b"EHLO prober.example.com\r\n")
    say(wire, b"MAIL FROM:<mallory@example.com>\r\n")
    assert say(wire, f"RCPT TO:<{rcpt}>\r\n".encode()).startswith("250")
    assert say(wire, b"DATA\r\n").startswith("354")
    payload = (b"Subject: innocent\r\n\r\nhello" + ending + b"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<" +
               rcpt.encode() + b">\r\nDATA\r\nSubject: smuggled\r\n\r\nwire the money\r\n.\r\n")
    reply = say(wire, payload)
    wire.send("QUIT")
    wire.close()
    return reply


@pytest.mark.parametrize("ending", SMUGGLING, ids=[repr(e) for e in SMUGGLING])
@pytest.mark.parametrize("host, rcpt", [("smtp.example.org", "carol@example.org"),
                                        ("mx1.example.net", "dave@example.net"),
                                        ("mx2.example.net", "dave@example.net")])
def test_smuggling_never_makes_two_messages(sec, host, rcpt, ending):
    before = len(sec.inbox(rcpt))
    assert smuggle(sec, host, 25, rcpt, ending).startswith("250")
    time.sleep(0.05)
    got = sec.inbox(rcpt)[before:]
    assert [m["Subject"] for m in got] == ["innocent"]  # one message, the smuggled text inside its body


@pytest.mark.parametrize("ending", SMUGGLING, ids=[repr(e) for e in SMUGGLING])
def test_smuggling_through_the_relay_still_makes_one_message(sec, ending):
    before = len(sec.inbox("dave@example.net"))
    # oldmail relays for anyone: the relay hop then hands the message to example.net's MX
    assert smuggle(sec, "oldmail.example", 25, "dave@example.net", ending).startswith("250")
    assert sec.wait_for_queue(10)
    got = sec.inbox("dave@example.net")[before:]
    assert [m["Subject"] for m in got] == ["innocent"]


def test_commands_pipelined_after_starttls_are_discarded(sec):
    wire = sec.session("smtp.example.org", 587, timeout=5)
    say(wire, b"EHLO prober\r\n")
    # STARTTLS and, in the same packet, a command an attacker hopes runs inside the TLS session
    assert say(wire, b"STARTTLS\r\nMAIL FROM:<mallory@example.com>\r\n").startswith("220")
    wire.starttls()
    assert wire.transcript.entries[-1].line.startswith("TLS established"), wire.transcript.text()
    wire.send("EHLO prober")
    assert wire.last_reply.startswith("250-smtp.example.org")  # the reply to EHLO, not to the injected MAIL
    wire.send("QUIT")
    wire.close()
    view = wire.server_transcript.text()
    assert "bytes sent before the TLS handshake were discarded" in view, view
    assert "mallory" not in view.split("discarded", 1)[1]  # never run as a command


def test_the_open_relay_probe(sec):
    def probe(host: str) -> str:
        wire = sec.session(host, 25, timeout=5)
        wire.send("EHLO scanner.example.com")
        wire.send("MAIL FROM:<spam@example.com>")
        wire.send("RCPT TO:<victim@example.com>")
        wire.close()
        return wire.last_reply
    assert probe("oldmail.example").startswith("250")  # the misconfigured one would relay for anyone
    for host in ("smtp.example.org", "mx1.example.net", "mx2.example.net"):
        assert probe(host).startswith("554 5.7.1")


def test_a_sending_quota_answers_with_the_standard_code(tmp_path):
    with Lab("security", state_dir=tmp_path) as lab:
        results = [lab.send("alice@example.org", "carol@example.org", subject=f"#{i}") for i in range(6)]
        assert [r.ok for r in results] == [True] * 5 + [False]
        assert results[-1].error_code == 550 and "5.4.5" in results[-1].error
        assert lab.send("carol@example.org", "alice@example.org").ok  # the quota is per user


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The default world: no quota, so a test may send as often as it likes."""
    with Lab(state_dir=tmp_path_factory.mktemp("plain"), replace=False) as lab:
        yield lab


@pytest.mark.parametrize("ending", [b"\n.\n", b"\r.\r"], ids=["bare LF", "bare CR"])
@pytest.mark.parametrize("port", [587, 465, 2525])
def test_smuggling_through_the_submission_ports_makes_one_message(plain, port, ending):
    from peers import smtp_to
    sec = plain
    before = len(sec.inbox("carol@example.org"))
    context = ssl.create_default_context(cafile=str(sec.ca.cert_path))
    with smtp_to(sec, "smtp.example.org", port, context) as client:
        client.ehlo("laptop")
        if port != 465:
            client.starttls(context=context)
            client.ehlo("laptop")
        client.login("carol", "carol-pass")
        reply = client.mail("carol@example.org")
        assert reply[0] == 250, reply
        assert client.rcpt("carol@example.org")[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(b"Subject: innocent\r\n\r\nhello" + ending + b"MAIL FROM:<ceo@example.org>\r\n"
                    b"RCPT TO:<carol@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")  # raw: no dot-stuffing
        assert client.getreply()[0] == 250
    got = sec.inbox("carol@example.org")[before:]
    assert [m["Subject"] for m in got] == ["innocent"]
