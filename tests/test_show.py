"""smtplab.show: the notebooks' helpers for picking out a few lines of a transcript, and the wire beside it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from smtplab.show import first_word, lines_text, part, show, turns, wire_beside_server, wire_text


@pytest.fixture(scope="module")
def tapped(lab):
    """One submission on 587, recorded on the wire (tap=True) and by both sides."""
    result = lab.send("alice@example.org", "carol@example.org", subject="Lunch?", tap=True)
    assert result.ok
    return result


def test_first_word_drops_the_colon():
    assert first_word(SimpleNamespace(line="MAIL FROM:<alice@example.org>")) == "MAIL"
    assert first_word(SimpleNamespace(line="From: alice@example.org")) == "From"
    assert first_word(SimpleNamespace(line="250-STARTTLS")) == "250-STARTTLS"


def test_part_picks_one_exchange(tapped):
    ehlo = part(tapped.transcript, "EHLO", "STARTTLS")
    assert ehlo[0].line.startswith("EHLO ") and ehlo[0].direction == "client"
    assert any(e.line == "250-STARTTLS" for e in ehlo)
    assert not any(e.line == "STARTTLS" for e in ehlo), "up to, not including, stop"
    assert part(tapped.transcript, "QUIT")[-1].kind == "event", "without stop: to the end of the session"


def test_part_with_a_word_no_line_starts_with_says_which_there_are(tapped):
    with pytest.raises(ValueError, match=r"no line of this transcript starts with 'HELO'.*EHLO"):
        part(tapped.transcript, "HELO")


def test_show_prints_each_note_under_its_line(tapped, capsys):
    show(part(tapped.transcript, "MAIL", "RCPT"))
    lines = capsys.readouterr().out.splitlines()
    assert "MAIL FROM:<alice@example.org>" in lines[0] and not lines[0].startswith("        #")
    assert lines[1].startswith("        # "), "the note, indented, on a line of its own"
    assert any(line.lstrip("<~- ").startswith("250 ") for line in lines[2:])


def test_turns_group_runs_by_the_same_side():
    items = ["c1", "s1", "s2", "c2", "c3", "s3"]
    assert turns(items, lambda x: x[0]) == [("c", ["c1"]), ("s", ["s1", "s2"]), ("c", ["c2", "c3"]), ("s", ["s3"])]
    assert turns([], lambda x: x) == []


def record(kind: str, summary: str) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, direction="client", summary=summary)


def test_wire_text_names_the_first_line_or_the_kinds_of_tls_record():
    assert wire_text([record("SMTP", "EHLO client.lab")]) == "EHLO client.lab"
    assert wire_text([record("SMTP", "250-smtp.example.org"), record("SMTP", "250 HELP")]) == (
        "250-smtp.example.org (+1 lines)")
    tls = [record("TLS", "TLS 1.3, Handshake: ServerHello, 122 bytes"),
           record("TLS", "TLS 1.2, ChangeCipherSpec, 1 bytes"),
           record("TLS", "TLS 1.2, Application data (encrypted), 40 bytes"),
           record("TLS", "TLS 1.2, Application data (encrypted), 900 bytes")]
    assert wire_text(tls) == "TLS: ServerHello, ChangeCipherSpec, encrypted", "each kind once"
    assert lines_text([SimpleNamespace(line="DATA")]) == "DATA"


def test_wire_beside_server_lines_the_turns_up(tapped):
    rows = wire_beside_server(tapped).splitlines()
    assert rows[0].strip().startswith("on the wire") and "in the server's transcript" in rows[0]
    readable = [r for r in rows[1:] if "TLS:" not in r]
    assert all(r[7:53].strip() == r[53:].strip() for r in readable), "before TLS both sides read the same"
    assert any("TLS: ClientHello" in r and "the TLS handshake" in r for r in rows)
    inside = [r for r in rows if "TLS: encrypted" in r]
    assert any("AUTH PLAIN" in r for r in inside), "the server's column shows what the wire hides"
    assert any(r.endswith("221 2.0.0 Bye") for r in inside)
