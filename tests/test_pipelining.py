"""The lab's pipelining client (RFC 2920) against the lab's servers: one write for the envelope, same outcomes."""

from __future__ import annotations

import pytest


def round_trips(transcript) -> int:
    """How many times the client waited: a run of client lines followed by a server reply is one wait."""
    waits, sent = 0, False
    for entry in transcript:
        if entry.kind != "line":
            continue
        if entry.direction == "client":
            sent = True
        elif sent:
            waits, sent = waits + 1, False
    return waits


@pytest.mark.parametrize("port", [587, 465, 25])
def test_a_pipelined_send_delivers_like_a_plain_one_with_fewer_round_trips(lab, port):
    to = ["carol@example.org"] if port == 25 else ["carol@example.org", "bob@example.net"]
    before = len(lab.inbox("carol@example.org"))
    plain = lab.send("alice@example.org", to, subject=f"plain {port}", port=port)
    piped = lab.send("alice@example.org", to, subject=f"piped {port}", port=port, pipelining=True)
    assert plain.ok and piped.ok, (plain, piped)
    assert piped.accepted == to and piped.reply.startswith("250") and piped.tls == plain.tls
    events = [e.line for e in piped.transcript if e.kind == "event"]
    assert any(line.startswith("pipelined: MAIL, RCPT") for line in events), events
    assert round_trips(piped.transcript) == round_trips(plain.transcript) - len(to) - 1
    assert [m["Subject"] for m in lab.inbox("carol@example.org")[before:]] == [f"plain {port}", f"piped {port}"]
    assert piped.server_transcript is not None  # the server's view of that very session


def test_a_refused_recipient_in_a_pipelined_envelope(lab):
    result = lab.send("alice@example.org", ["carol@example.org", "nobody@example.org"], pipelining=True)
    assert result.accepted == ["carol@example.org"] and list(result.refused) == ["nobody@example.org"]
    assert result.refused["nobody@example.org"].startswith("550 5.1.1")


def test_every_recipient_refused_is_a_failure_at_rcpt_and_nothing_is_sent(lab):
    before = len(lab.inbox("carol@example.org"))
    result = lab.send("alice@example.org", "nobody@example.org", pipelining=True)
    assert not result.ok and result.failure.stage == "rcpt" and result.failure.code == 550
    assert len(lab.inbox("carol@example.org")) == before


def test_a_wrong_password_stops_before_the_envelope(lab):
    result = lab.send("alice@example.org", "carol@example.org", login=("alice", "nope"), pipelining=True)
    assert (result.failure.stage, result.failure.code) == ("auth", 535)
    assert not any(line.startswith("MAIL") for line in result.transcript.commands())


def test_dots_and_bare_line_ends_are_sent_safely(lab):
    raw = b"Subject: dots\r\n\r\n.starts with a dot\n.\nlast line"
    result = lab.send("alice@example.org", "carol@example.org", message=raw, pipelining=True)
    assert result.ok, result
    body = lab.inbox("carol@example.org")[-1].get_content()
    assert ".starts with a dot" in body and "last line" in body


def test_the_timing_analysis_sees_a_pipelined_group_as_one_round_trip(lab):
    from smtplab.timing import exchanges
    from smtplab.timing import round_trips as counted
    plain = lab.send("alice@example.org", ["carol@example.org", "bob@example.net"])
    piped = lab.send("alice@example.org", ["carol@example.org", "bob@example.net"], pipelining=True)
    names = [step["name"] for step in exchanges(piped)]
    assert "MAIL FROM + RCPT TO + RCPT TO + DATA (pipelined)" in names, names
    assert "(unasked reply)" not in names and "message" in names
    assert counted(piped) == counted(plain) - 3
