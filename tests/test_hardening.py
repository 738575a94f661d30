"""Every entrance refuses hostile addresses and names; nothing is ever written outside the state directory."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from smtplab import Lab, LabError, scenario_names
from smtplab.mailboxes import MailboxError, mailbox_problem, maildir_folder

HOSTILE_LOCAL = ["../../somewhere/x", "/tmp/smtplab-abs/x", "../../x", '"a/../../b"', "bob/..", "bob\x00",
                 "x" * 10_000, ".bob", "bob.", "a..b", "a\\b", "bob\r\nX-Injected: yes"]
HOSTILE_DOMAIN = ["x@../../etc", "x@a..b", "x@-bad-.example", "x@" + "a" * 300 + ".example", "x@nodot"]


def hostile_for(domain: str) -> list[str]:
    return [f"{local}@{domain}" for local in HOSTILE_LOCAL] + HOSTILE_DOMAIN


def test_the_rule_accepts_real_addresses_and_refuses_the_hostile_ones():
    for good in ("bob@example.net", "o'brien+tag@mail.example.co.uk", "a.b.c@x-y.example", "UPPER@Example.NET"):
        assert mailbox_problem(good) is None, good
    for bad in hostile_for("example.net"):
        assert mailbox_problem(bad), bad


def test_the_maildir_path_is_checked_again_before_anything_is_written(tmp_path):
    root = tmp_path / "maildir"
    root.mkdir()
    assert maildir_folder(root, "Bob@Example.net") == (root / "bob@example.net").resolve()
    for bad in ("../x@example.net", "x@example.net/../../y", ".."):
        with pytest.raises(MailboxError):
            maildir_folder(root, bad)


def every_file(top: Path) -> set[Path]:
    return {p for p in top.rglob("*")}


def smtp_prober(lab: Lab, host: str, port: int):
    """A raw session as far as MAIL: TLS where offered, logged in where it can be."""
    session = lab.session(host, port, timeout=5)
    session.send("EHLO prober.example")
    if "STARTTLS" in session.last_reply:
        session.send("STARTTLS")
        if session.closed:  # a certificate the lab client rightly refuses (the drills): go on in plain text
            session = lab.session(host, port, timeout=5)
        session.send("EHLO prober.example")
    host_obj = lab.topology.host(host)
    user = next((u for u in lab.topology.users if u.domain in host_obj.domains), None)
    if user is not None and "AUTH" in session.last_reply:
        token = base64.b64encode(f"\0{user.username}\0{user.password}".encode()).decode()
        session.send(f"AUTH PLAIN {token}")
        assert session.last_reply.startswith("235"), session.last_reply
    return session, user


@pytest.mark.parametrize("scenario", scenario_names())
def test_no_entrance_takes_a_hostile_address_and_nothing_lands_outside(tmp_path, scenario):
    state = tmp_path / "a" / "b" / "state"
    with Lab(scenario, state_dir=state, replace=False, retry=(0.05,)) as lab:
        before = every_file(tmp_path) - every_file(state)
        for ep in lab.endpoints.values():
            if ep.listener.tls == "implicit":
                continue  # the same policy as the STARTTLS ports of its host; probed there
            session, user = smtp_prober(lab, ep.host.name, ep.listener.port)
            sender = user.address if user is not None else "prober@example.com"
            for address in hostile_for(next(iter(ep.host.domains), "example.net")):
                line = address.encode("utf-8", "surrogateescape")
                session.send_bytes(b"MAIL FROM:<" + line + b">\r\n")
                assert session.last_reply[:1] == "5", (ep, address, session.last_reply)
                session.send(f"MAIL FROM:<{sender}>")
                if not session.last_reply.startswith("250"):
                    break  # this port wants what the prober lacks (a login): MAIL was the test
                session.send_bytes(b"RCPT TO:<" + line + b">\r\n")
                assert session.last_reply[:1] == "5", (ep, address, session.last_reply)
                session.send("RSET")
            session.close()
            assert not any("Error: (" in e.line for e in session.transcript), session.transcript.text()
        for (host, _), api in lab.services.items():
            user = next(u for u in lab.topology.users if u.domain in api.host.domains)
            for address in hostile_for("example.net"):
                result = lab.api_send(user.address, address)
                assert result.statuses == [422], (address, result)
        for address in hostile_for("example.net"):
            with pytest.raises(LabError, match="not an email address"):
                lab.send(address, "bob@example.net")
            with pytest.raises(LabError, match="not an email address"):
                lab.send("alice@example.org", address)
        assert lab.wait_for_queue(5)
        assert all(not relay.queued() for relay in lab.relays.values())
        after = every_file(tmp_path) - every_file(state)
    assert after == before, sorted(after - before)
    assert not Path("/tmp/smtplab-abs").exists()


def test_a_bare_cr_in_ehlo_never_becomes_a_header(lab):
    session = lab.session("smtp.example.org", 25)
    session.send_bytes(b"EHLO evil.lab\rX-Injected: yes\rSubject: INJECTED\r\n")
    assert session.last_reply.startswith("501 5.5.4"), session.last_reply
    session.send("EHLO evil.lab")
    session.send("MAIL FROM:<mallory@example.com>")
    session.send("RCPT TO:<carol@example.org>")
    session.send("DATA")
    session.send_bytes(b"Subject: the real one\r\n\r\nhi\r\n.\r\n")
    assert session.last_reply.startswith("250"), session.last_reply
    session.send("QUIT")
    session.close()
    newest = lab.inbox("carol@example.org")[-1]
    assert newest["Subject"] == "the real one" and newest["X-Injected"] is None


@pytest.mark.parametrize("port", [25, 587, 465])
def test_starttls_inside_tls_gets_503(lab, port):
    session = lab.session("smtp.example.org", port)
    session.send("EHLO twice.example")
    if port != 465:
        session.send("STARTTLS")
        session.send("EHLO twice.example")
    session.send("STARTTLS")
    assert session.last_reply.startswith("503 5.5.1"), session.last_reply
    session.send("NOOP")
    assert session.last_reply.startswith("250")  # the session goes on, still encrypted
    session.close()
    assert list(lab.errors) == []


def test_help_answers_214(lab):
    session = lab.session("smtp.example.org", 25)
    session.send("HELP")
    assert session.last_reply.startswith("214 2.0.0"), session.last_reply
    session.close()


def test_a_permanent_routing_error_bounces_at_once(tmp_path):
    """A queue file from an older lab with a recipient no DNS could route: bounced on the first try."""
    with Lab(state_dir=tmp_path, replace=False) as lab:
        lab.stop()
    queue = tmp_path / "queue" / "smtp.example.org"
    queue.mkdir(parents=True, exist_ok=True)
    (queue / "OLD0000001.json").write_text(
        '{"queue_id": "OLD0000001", "mail_from": "alice@example.org", "rcpts": ["x@a..b"], "message_id": "<old@x>"}')
    (queue / "OLD0000001.eml").write_bytes(b"Subject: stuck?\r\n\r\nno\r\n")
    with Lab(state_dir=tmp_path, replace=False) as lab:
        assert lab.wait_for_queue(5) and lab.queue() == []
        bounce = lab.inbox("alice@example.org")[-1]
        assert "Undelivered" in bounce["Subject"] and "5.1.2" in bounce.as_string()


def test_state_dir_and_its_files_are_private(tmp_path):
    old = os.umask(0o022)
    try:
        with Lab(state_dir=tmp_path / "state", replace=False) as lab:
            assert lab.send("alice@example.org", "carol@example.org").ok
            assert lab.send("alice@example.org", "bob@example.net").ok
            lab.flush()
            lab.wait_for_queue(5)
            state = lab.state_dir
            loose = [(p, oct(stat.S_IMODE(p.stat().st_mode))) for p in [state, *state.rglob("*")]
                     if stat.S_IMODE(p.stat().st_mode) & 0o077]
            assert loose == []
    finally:
        os.umask(old)
