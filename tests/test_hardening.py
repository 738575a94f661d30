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
        for api in lab.services.values():
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


# --- the HTTP API follows RFC 9110/9112 on message framing -----------------------------------

def raw_http(lab: Lab, request: bytes, timeout: float = 5) -> bytes:
    """Bytes exactly as given over TLS to the HTTP API; the whole answer until the server closes or goes quiet."""
    import socket
    import ssl
    ep = lab.endpoint("smtp.example.org", 443)
    context = ssl.create_default_context(cafile=str(lab.ca.cert_path))
    with socket.create_connection((ep.address, ep.bound_port), timeout=timeout) as plain:
        with context.wrap_socket(plain, server_hostname="smtp.example.org") as tls:
            tls.sendall(request)
            answer = b""
            try:
                while chunk := tls.recv(65536):
                    answer += chunk
                    if b"\r\n\r\n" in answer and b"Connection: close" in answer:
                        break
            except (TimeoutError, ssl.SSLError, ConnectionError):
                pass
    return answer


BODY = b'{"from": "alice@example.org", "to": ["carol@example.org"], "subject": "s", "text": "t"}'


@pytest.mark.parametrize("headers, status", [
    (b"Content-Length: abc\r\n", b"400"),
    (b"Content-Length: -1\r\n", b"400"),
    (b"Content-Length: +86\r\n", b"400"),
    ("Content-Length: 8\u00b2\r\n".encode(), b"400"),  # a superscript digit: int() would take it
    (b"Content-Length: 86\r\nContent-Length: 10\r\n", b"400"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 86\r\n", b"411"),
    (b"Content-Length : 86\r\n", b"400"),
])
def test_http_api_framing_is_strict(lab, headers, status):
    before = len(lab.inbox("carol@example.org"))
    answer = raw_http(lab, b"POST /v1/send HTTP/1.1\r\nHost: smtp.example.org\r\nAuthorization: Bearer lab-key-alice\r\n"
                      + headers + b"\r\n" + BODY)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b"Error" not in answer.split(b"\r\n\r\n", 1)[1] or b'"error"' in answer  # JSON error, not a traceback
    assert len(lab.inbox("carol@example.org")) == before
    assert list(lab.errors) == []


def test_http_api_still_takes_a_well_framed_request(lab):
    answer = raw_http(lab, b"POST /v1/send HTTP/1.1\r\nHost: smtp.example.org\r\nAuthorization: Bearer lab-key-alice\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
    assert answer.startswith(b"HTTP/1.1 202"), answer[:200]


def test_a_key_sends_only_as_its_own_address(lab):
    result = lab.api_send("alice@evil.example", "carol@example.org", key="lab-key-alice")
    assert result.statuses == [403] and "alice@example.org" in result.bodies[0]["detail"]


def test_deeply_nested_json_is_a_clear_400(lab):
    body = b"[" * 100_000 + b"]" * 100_000
    answer = raw_http(lab, b"POST /v1/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer lab-key-alice\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert answer.startswith(b"HTTP/1.1 400") and b"nested too deeply" in answer, answer[:300]
    assert list(lab.errors) == []


def test_idle_api_and_dns_tcp_connections_are_closed(lab, monkeypatch):
    import socket
    import ssl

    from smtplab import dns as lab_dns
    from smtplab import httpapi
    monkeypatch.setattr(httpapi, "IDLE_TIMEOUT", 0.3)
    monkeypatch.setattr(lab_dns, "TCP_IDLE_TIMEOUT", 0.3)
    ep = lab.endpoint("smtp.example.org", 443)
    context = ssl.create_default_context(cafile=str(lab.ca.cert_path))
    with context.wrap_socket(socket.create_connection((ep.address, ep.bound_port), timeout=5),
                             server_hostname="smtp.example.org") as tls:
        assert tls.recv(100) == b""  # the server hung up on a client that said nothing
    with socket.create_connection((lab.dns.address, lab.dns.port), timeout=5) as dns_tcp:
        assert dns_tcp.recv(100) == b""


# --- nothing from a client's misbehaviour reaches a student's cell, or a reply -------------

NOISE = """
import socket, ssl, time
from smtplab import Lab
lab = Lab()
ep = lab.endpoint("smtp.example.org", 465)
ctx = ssl.create_default_context(cafile=str(lab.ca.cert_path))
s = ctx.wrap_socket(socket.create_connection((ep.address, ep.bound_port)), server_hostname="smtp.example.org")
s.recv(1000)
s.sendall(b"NOOP\\r\\n" * 2000)  # pipelined, then gone
s.close()
time.sleep(1)
assert lab.send("alice@example.org", "carol@example.org").ok
print("errors:", list(lab.errors))
lab.stop()
"""


def test_a_client_that_pipelines_and_vanishes_prints_nothing():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", NOISE], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.strip() == "errors: []", (done.stdout, done.stderr[-2000:])


@pytest.mark.parametrize("line", [b"RCPT TO:<\r\n", b"RCPT TO:<\nbob@enet>\r\n", b"MAIL FROM:<\r\n",
                                  b"RCPT TO:" + b"<" * 500 + b"\r\n"])
def test_malformed_envelope_commands_get_501_not_an_exception(lab, line):
    session, _ = smtp_prober(lab, "smtp.example.org", 587)
    if not line.startswith(b"MAIL"):
        session.send("MAIL FROM:<alice@example.org>")
    session.send_bytes(line)
    for _ in range(line.count(b"\n") - 1):  # a bare LF inside makes two commands: two replies
        session.reply()
    replies = [e.line for e in session.transcript if e.direction == "server" and e.kind == "line"]
    assert not any("Error: (" in r for r in replies), replies
    assert session.last_reply[:1] == "5", session.last_reply
    session.send("NOOP")
    assert session.last_reply.startswith("250")
    session.close()


# --- limits that keep a student's session alive ------------------------------------------------

def test_a_submission_works_while_two_thousand_idle_connections_are_open(tmp_path):
    import socket
    import time
    with Lab(state_dir=tmp_path, replace=False) as lab:
        targets = [(lab.endpoint("smtp.example.org", 587).address, lab.endpoint("smtp.example.org", 587).bound_port),
                   (lab.endpoint("smtp.example.org", 443).address, lab.endpoint("smtp.example.org", 443).bound_port),
                   (lab.dns.address, lab.dns.port)]
        idle = []
        try:
            for i in range(2000):
                idle.append(socket.create_connection(targets[i % 3], timeout=5))
            started = time.perf_counter()
            result = lab.send("alice@example.org", "carol@example.org", subject="while flooded")
            took = time.perf_counter() - started
            assert result.ok, result
            print(f"submission with 2000 idle connections open: {took * 1000:.0f} ms")
            assert lab.dig("example.net", "MX").records()
        finally:
            for sock in idle:
                sock.close()


def test_past_its_cap_a_listener_sheds_the_longest_idle_connection(tmp_path, monkeypatch):
    from smtplab import server
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 5)
    with Lab(state_dir=tmp_path, replace=False) as lab:
        idle = [lab.session("smtp.example.org", 25) for _ in range(5)]
        idle[0].send("NOOP")  # now idle[1] has been silent longest
        newcomer = lab.session("smtp.example.org", 25)
        newcomer.send("EHLO newcomer.example")
        assert newcomer.last_reply.startswith("250")
        shed = idle[1]
        shed.reply()
        assert shed.closed and shed.last_reply.startswith("421 4.7.0"), shed.transcript.text()
        assert all(not s.closed for s in idle if s is not shed)
        for s in [*idle, newcomer]:
            s.close()


# --- PIPELINING (RFC 2920) -------------------------------------------------------------------

def test_pipelining_is_offered_and_honoured_in_order(lab):
    session = lab.session("smtp.example.org", 25)
    session.send("EHLO pipeliner.example")
    assert "250-PIPELINING" in session.last_reply.splitlines()
    session.send_bytes(b"MAIL FROM:<mallory@example.com>\r\nRCPT TO:<carol@example.org>\r\n"
                       b"RCPT TO:<nobody@example.org>\r\nDATA\r\n", reply=False)
    replies = [session.reply() and session.last_reply for _ in range(4)]
    assert [r[:3] for r in replies] == ["250", "250", "550", "354"], replies
    session.send_bytes(b"Subject: pipelined\r\n\r\nhi\r\n.\r\n")
    assert session.last_reply.startswith("250")
    session.close()
    assert lab.inbox("carol@example.org")[-1]["Subject"] == "pipelined"


def test_a_pipelined_data_after_every_rcpt_was_refused_gets_503_not_354(lab):
    before = len(lab.inbox("carol@example.org"))
    session = lab.session("smtp.example.org", 25)
    session.send("EHLO pipeliner.example")
    session.send_bytes(b"MAIL FROM:<mallory@example.com>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n"
                       b"Subject: for nobody\r\n\r\nhi\r\n.\r\n", reply=False)
    replies = [session.reply() and session.last_reply for _ in range(3)]
    assert [r[:3] for r in replies] == ["250", "550", "503"], replies
    session.send("QUIT")
    session.close()
    assert len(lab.inbox("carol@example.org")) == before


def test_scenario_data_follows_the_same_address_rule():
    from smtplab import ScenarioError, load_scenario
    from smtplab.topology import load_scenario as load
    data = load("default")
    assert data.users  # the built-in scenarios pass
    import tomllib
    from importlib import resources
    text = resources.files("smtplab").joinpath("scenarios/default.toml").read_text()
    raw = tomllib.loads(text)
    raw["users"][0]["address"] = "../../x@example.org"
    with pytest.raises(ScenarioError, match="not a mailbox address"):
        load_scenario(raw)
