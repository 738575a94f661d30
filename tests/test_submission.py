"""Real clients nobody here wrote (smtplib, aiosmtplib, swaks) submit and deliver through the lab."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from email.message import EmailMessage

import aiosmtplib
import pytest
from peers import need, smtp_to

from smtplab import Lab, Transcript

ALICE = ("alice", "wonderland")


def message(to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.org", to, subject
    msg.set_content("Hello from a real client.\n")
    return msg


def subjects(lab: Lab, address: str) -> list[str]:
    return [m["Subject"] for m in lab.inbox(address)]


@pytest.mark.parametrize("port", [587, 2525])
def test_smtplib_starttls_then_auth(lab, ca_context, port):
    with smtp_to(lab, "smtp.example.org", port) as client:
        client.ehlo("laptop.example.org")
        assert client.has_extn("starttls") and not client.has_extn("auth"), "AUTH must wait for TLS"
        client.starttls(context=ca_context)
        client.ehlo("laptop.example.org")
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login(*ALICE)
        client.send_message(message("carol@example.org", f"starttls {port}"))
    assert f"starttls {port}" in subjects(lab, "carol@example.org")


def test_smtplib_implicit_tls_then_auth_on_465(lab, ca_context):
    # aiosmtpd 1.4.6 hides AUTH on implicit TLS; the lab works around it.
    with smtp_to(lab, "smtp.example.org", 465, ca_context) as client:
        client.ehlo("laptop.example.org")
        assert "PLAIN" in client.esmtp_features.get("auth", ""), client.esmtp_features
        assert not client.has_extn("starttls")
        client.login(*ALICE)
        client.send_message(message("carol@example.org", "implicit 465"))
    assert "implicit 465" in subjects(lab, "carol@example.org")


def test_plain_delivery_on_port_25_to_a_local_user(lab):
    with smtp_to(lab, "mx1.example.net", 25) as client:
        client.ehlo("smtp.example.org")
        assert not client.has_extn("auth"), "port 25 is for servers: no AUTH"
        refused = client.sendmail("alice@example.org", ["bob@example.net"], message("bob@example.net", "port 25").as_bytes())
    assert refused == {}
    delivered = lab.inbox("bob@example.net")[-1]
    assert delivered["Subject"] == "port 25"
    assert delivered["Received"].startswith("from smtp.example.org")
    assert "by mx1.example.net" in delivered["Received"] and "with ESMTP " in delivered["Received"] + " "


def test_relayed_mail_reaches_bob_with_a_received_header_per_hop(lab, ca_context):
    with smtp_to(lab, "smtp.example.org", 587) as client:
        client.starttls(context=ca_context)
        client.login(*ALICE)
        client.send_message(message("bob@example.net", "two hops"))
    assert lab.wait_for_queue(10)
    msg = next(m for m in lab.inbox("bob@example.net") if m["Subject"] == "two hops")
    hops = msg.get_all("Received")
    assert len(hops) == 2
    assert "by mx1.example.net" in hops[0] and "with ESMTPS" in hops[0]  # smtp.example.org -> mx1 over STARTTLS
    assert "by smtp.example.org" in hops[1] and "with ESMTPSA" in hops[1]  # alice -> smtp.example.org, TLS + AUTH
    assert msg["Return-Path"] == "<alice@example.org>"
    relay_sessions = [t for t in lab.transcripts(host="mx1.example.net", view="client") if t.client == "smtp.example.org"]
    assert relay_sessions and "RCPT TO:<bob@example.net>" in relay_sessions[-1].commands()


@pytest.mark.parametrize("port, kwargs", [(587, {"start_tls": True}), (465, {"use_tls": True})])
def test_aiosmtplib_submits(lab, ca_context, port, kwargs):
    ep = lab.endpoint("smtp.example.org", port)

    async def go():
        # aiosmtplib checks the certificate against `hostname`: connect a socket to the real address.
        sock = socket.create_connection((ep.address, ep.bound_port))
        client = aiosmtplib.SMTP(hostname="smtp.example.org", sock=sock, tls_context=ca_context, **kwargs)
        async with client:
            await client.login(*ALICE)
            await client.send_message(message("carol@example.org", f"aiosmtplib {port}"))

    asyncio.run(go())
    assert f"aiosmtplib {port}" in subjects(lab, "carol@example.org")


def test_each_session_is_on_disk_as_json_lines(lab):
    result = lab.send("alice@example.org", "carol@example.org", subject="on disk")
    assert result.ok, result
    lab.flush()
    files = {p.stem: p for p in (lab.state_dir / "transcripts").glob("*.jsonl")}
    for transcript in (result.transcript, result.server_transcript):
        path = files[transcript.session]
        events = [json.loads(line) for line in path.read_text().splitlines()]
        assert {"t", "host", "direction", "line", "tls", "note"} <= set(events[0])
        assert all(e["direction"] in ("client", "server") for e in events)
        assert [e["t"] for e in events] == sorted(e["t"] for e in events)
        loaded = Transcript.load(path)
        assert loaded.lines() == transcript.lines() and loaded.view == transcript.view
    server_lines = result.server_transcript.lines()
    assert "DATA" in server_lines and "." in server_lines
    # the server saw the session encrypted from STARTTLS on
    auth = next(e for e in result.server_transcript if e.line.startswith("AUTH"))
    assert auth.tls and not result.server_transcript.entries[1].tls


def test_swaks_submits_on_587_and_465(lab):
    swaks = need("swaks")
    for port, tls_flag in ((587, "--tls"), (465, "--tlsc")):
        ep = lab.endpoint("smtp.example.org", port)
        run = subprocess.run(
            [swaks, "--server", ep.address, "--port", str(ep.bound_port), tls_flag,
             "--tls-verify", "--tls-ca-path", str(lab.ca.cert_path), "--tls-sni", "smtp.example.org",
             "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "wonderland",
             "--from", "alice@example.org", "--to", "carol@example.org", "--header", f"Subject: swaks {port}",
             "--helo", "laptop.example.org"],
            capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"swaks {port}" in subjects(lab, "carol@example.org")


def test_swaks_auth_without_tls_is_refused(lab):
    swaks = need("swaks")
    ep = lab.endpoint("smtp.example.org", 587)
    run = subprocess.run([swaks, "--server", ep.address, "--port", str(ep.bound_port), "--auth", "PLAIN",
                          "--auth-user", "alice", "--auth-password", "wonderland", "--from", "alice@example.org",
                          "--to", "carol@example.org"], capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "530" in run.stdout or "538" in run.stdout or "not advertise" in run.stdout + run.stderr
