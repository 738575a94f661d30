"""The recorder: lines split right whatever the chunks, bodies summarised, renderers and files faithful."""

from __future__ import annotations

import sys

import pytest

from smtplab import Transcript
from smtplab.transcript import DATA_LINES_KEPT, Recorder


def session(chunks: list[bytes]) -> Transcript:
    rec = Recorder(Transcript("smtp.example.org", "server", port=25))
    rec.line("server", "220 smtp.example.org ESMTP")
    for line in (b"EHLO me\r\n", b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<carol@example.org>\r\n", b"DATA\r\n"):
        rec.feed("client", line)
        rec.line("server", "354 go ahead" if line == b"DATA\r\n" else "250 OK")
    for chunk in chunks:
        rec.feed("client", chunk)
    rec.line("server", "250 2.0.0 queued")
    rec.feed("client", b"QUIT\r\n")
    return rec.transcript


BODY = b"".join(b"Header-%d: value\r\n" % i for i in range(5)) + b"\r\n" + b"".join(
    b"body line %d\r\n" % i for i in range(200)) + b"..a dot-stuffed line\r\n"
DATA = BODY + b".\r\n"


@pytest.mark.parametrize("cut", [0, 1, 2, 50, 150, len(DATA) - 5, len(DATA) - 4, len(DATA) - 3, len(DATA) - 2,
                                 len(DATA) - 1])
def test_end_of_data_is_found_wherever_the_socket_cuts(cut):
    t = session([DATA[:cut], DATA[cut:]])
    client = t.lines("client")
    assert client.count(".") == 1 and client[-1] == "QUIT"
    assert client[4:4 + DATA_LINES_KEPT] == [line.decode() for line in BODY.split(b"\r\n")[:DATA_LINES_KEPT]]
    summary = next(line for line in client if line.startswith("[…"))
    kept = b"\r\n".join(BODY.split(b"\r\n")[:DATA_LINES_KEPT]) + b"\r\n"
    body_lines = BODY.count(b"\n")
    assert f"{body_lines - DATA_LINES_KEPT} more lines" in summary
    assert f"{len(BODY) - len(kept):,} bytes" in summary


def test_byte_by_byte_is_the_same_as_all_at_once():
    whole = session([DATA])
    trickle = session([DATA[i:i + 1] for i in range(len(DATA))])
    assert whole.lines() == trickle.lines()


def test_empty_body_and_short_body():
    assert session([b".\r\n"]).lines("client")[-2:] == [".", "QUIT"]
    short = session([b"Subject: hi\r\n\r\nhello\r\n.\r\n"]).lines("client")
    assert short[-5:] == ["Subject: hi", "", "hello", ".", "QUIT"]


def test_a_ten_megabyte_message_costs_a_few_kilobytes():
    line = b"x" * 998 + b"\r\n"
    body = line * (10 * 1024 * 1024 // len(line))
    t = session([body[i:i + 65536] for i in range(0, len(body), 65536)] + [b".\r\n"])
    size = sum(sys.getsizeof(e.line) + sys.getsizeof(e.note) + sys.getsizeof(e) for e in t)
    assert size < 64 * 1024
    assert t.lines("client")[-2:] == [".", "QUIT"]


def test_runaway_line_without_newline_is_cut():
    rec = Recorder(Transcript("h", "server"))
    rec.feed("client", b"A" * 100_000)
    rec.feed("client", b"\r\nNOOP\r\n")
    lines = rec.transcript.lines("client")
    assert lines[0].endswith("(line continues)") and len(lines[0]) < 1000 and lines[-1] == "NOOP"


def test_text_marks_tls_and_events_like_swaks():
    rec = Recorder(Transcript("h", "client"))
    rec.line("server", "220 hi")
    rec.event("client", "TLS established")
    rec.tls = True
    rec.feed("client", b"EHLO me\r\n")
    rec.line("server", "250 ok")
    text = rec.transcript.text(notes=False).splitlines()
    assert text == ["<-  220 hi", "=== TLS established", " ~> EHLO me", "<~  250 ok"]


def test_html_escapes_what_the_client_sent():
    rec = Recorder(Transcript("h", "server"))
    rec.feed("client", b"<script>alert(1)</script>\r\n")
    html = rec.transcript._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_save_and_load_round_trip(tmp_path):
    t = session([DATA])
    loaded = Transcript.load(t.save(tmp_path))
    assert [(e.t, e.direction, e.line, e.tls, e.note, e.kind) for e in loaded] == \
           [(e.t, e.direction, e.line, e.tls, e.note, e.kind) for e in t]
    assert (loaded.session, loaded.view, loaded.port) == (t.session, "server", 25)


def test_load_rejects_an_empty_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no transcript events"):
        Transcript.load(empty)
