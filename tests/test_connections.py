"""Sessions known by their connection: the full address pair, never the client's port alone."""

from __future__ import annotations

import pytest

from smtplab import Lab
from smtplab.testing import free_port


def said(transcript, text: str) -> bool:
    return any(text in e.line for e in transcript if e.direction == "client")


def test_two_sessions_from_one_client_port_each_get_their_own_server_view(lab: Lab):
    port = free_port()
    # Both open at once, from 127.0.0.1:port, to two servers: only the server side tells them apart.
    first = lab.session("smtp.example.org", 25, source_port=port)
    second = lab.session("mx1.example.net", 25, source_port=port)
    first.send("EHLO first.example")
    second.send("EHLO second.example")
    second.close()
    first.send("QUIT")
    first.close()
    assert first.server_transcript.host == "smtp.example.org"
    assert second.server_transcript.host == "mx1.example.net"
    assert said(first.server_transcript, "EHLO first.example") and not said(first.server_transcript, "second")
    assert said(second.server_transcript, "EHLO second.example") and not said(second.server_transcript, "first")


def test_a_reused_client_port_finds_the_new_session_not_the_old_one(lab: Lab):
    port = free_port()
    for turn in range(3):  # the same pair of addresses again, once each earlier session has ended
        session = lab.session("smtp.example.org", 25, source_port=port)
        session.send(f"EHLO turn{turn}.example")
        session.send("QUIT")
        session.close()
        view = session.server_transcript
        assert said(view, f"EHLO turn{turn}.example"), view.text()
        assert not any(said(view, f"turn{other}") for other in range(3) if other != turn)


def test_the_server_view_is_only_complete_after_close(lab: Lab):
    session = lab.session("smtp.example.org", 25)
    with pytest.raises(Exception, match="close"):
        _ = session.server_transcript
    session.close()
    assert session.server_transcript is not None


def test_hundreds_of_sends_each_get_the_server_view_of_their_own_session(tmp_path):
    """Sends on direct and linked paths, interleaved with raw sessions, never mix up sessions; nothing is left behind."""
    with Lab(state_dir=tmp_path, latency_ms=0.5) as lab:  # the student's link carries every send
        for i in range(300):
            subject = f"message number {i}"
            if i % 3 == 0:
                raw = lab.session("mx1.example.net", 25)
                raw.send(f"EHLO raw{i}.example")
            tapped = i % 10 == 0  # in clear text on port 25, so the tap's bytes can be read
            result = lab.send("alice@example.org", "carol@example.org", subject=subject, tap=tapped,
                              **({"port": 25, "tls": "none"} if tapped else {}))
            assert result.ok, result
            view = result.server_transcript
            assert view is not None and view.host == "smtp.example.org"
            assert said(view, f"Subject: {subject}") and sum(said(view, f"number {j}") for j in range(i - 3, i + 4)) == 1
            if tapped:
                assert f"Subject: {subject}".encode() in result.wire.bytes_from("client")
            if i % 3 == 0:
                raw.close()
                assert said(raw.server_transcript, f"EHLO raw{i}.example")
        book = lab.post.connections
        assert book.live == {}  # every session the lab served has ended
        assert book._watches == {} and book._carried == {}, (book._watches, book._carried)
        assert list(lab.errors) == []
