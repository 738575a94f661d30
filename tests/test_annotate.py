"""Tests for smtplab.annotate: the Annotator that follows a session and explains each line."""

from __future__ import annotations

import base64

import pytest

from smtplab.annotate import Annotator
from smtplab.replycodes import parse_reply


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- Annotator

def walk(annotator: Annotator, steps):
    """Feed ('C'|'S', line) pairs; return the notes in order."""
    notes = []
    for side, line in steps:
        note = annotator.client(line) if side == "C" else annotator.server(line)
        assert isinstance(note, str) and note
        notes.append(note)
    return notes


def test_full_session():
    a = Annotator()
    assert a.in_data is False

    def s(line):
        return a.server(line)

    def c(line):
        return a.client(line)

    assert "greeting" in s("220 mx.example.net ESMTP ready").lower()
    assert c("EHLO client.example") == \
        "Client says hello as client.example and asks for the extended (ESMTP) features."
    assert s("250-mx.example.net Hello client") == "The server names itself and lists its extensions below."
    assert s("250-SIZE 33554432") == "SIZE: the largest message the server accepts is 32 MiB (33554432 bytes)."
    assert "TLS" in s("250-STARTTLS")
    assert "without waiting" in s("250-PIPELINING")
    assert "5.1.1" in s("250-ENHANCEDSTATUSCODES")
    assert s("250 AUTH LOGIN PLAIN") == "AUTH: login mechanisms offered: LOGIN, PLAIN."

    assert "TLS" in c("STARTTLS")
    note = s("220 2.0.0 Ready to start TLS")
    assert "TLS handshake" in note and "encrypted" in note
    assert a.tls is True
    assert "ESMTP" in c("EHLO client.example")
    assert "extensions" in s("250-mx.example.net")
    assert "PLAIN" in s("250 AUTH PLAIN LOGIN")

    note = c("AUTH PLAIN " + b64(b"\0alice\0secret"))
    assert "alice" in note and "secret" not in note
    assert "***" in note and "not encryption" in note
    assert "succeeded" in s("235 2.7.0 Authentication successful").lower()
    assert a.authenticated is True

    assert c("MAIL FROM:<alice@example.org>") == \
        "Envelope sender: bounces for this message go to alice@example.org."
    assert "sender accepted" in s("250 2.1.0 Ok").lower()
    assert c("RCPT TO:<bob@example.net>") == \
        "Envelope recipient: asks the server to accept mail for bob@example.net."
    assert "recipient accepted" in s("250 2.1.5 Ok").lower()

    assert "message" in c("DATA").lower()
    assert a.in_data is False
    assert "dot" in s("354 End data with <CR><LF>.<CR><LF>")
    assert a.in_data is True

    assert c("From: Alice <alice@example.org>").startswith("Message header: From")
    assert c("Subject: Hi").startswith("Message header: Subject")
    assert c("X-Lab: 1").startswith("Message header: X-Lab")
    assert "continu" in c("\tfolded part of X-Lab")
    assert c("") == "Blank line: the headers end here and the body begins."
    assert c("Hello Bob,") == "Message body."
    assert c("Subject: not a header in the body") == "Message body."
    assert c("") == "Message body."
    assert c("..a line that began with a dot") == \
        "A leading dot is doubled (dot-stuffing) so this line is not mistaken for the end."
    assert a.in_data is True
    assert c(".") == "End of data: a lone dot on a line tells the server the message is complete."
    assert a.in_data is False
    assert s("250 2.0.0 Ok: queued as 4ABC") == \
        "Message accepted: the server now takes responsibility for delivering it."

    assert "goodbye" in c("QUIT").lower()
    assert "closes" in s("221 2.0.0 Bye")


def test_ehlo_single_line_and_helo():
    notes = walk(Annotator(), [("S", "220 mx ESMTP"), ("C", "EHLO me"), ("S", "250 mx"),
                               ("C", "HELO me"), ("S", "250 mx")])
    assert "no extensions" in notes[2]
    assert "HELO" in notes[3] and "no extensions" in notes[3]
    assert "no list of extensions" in notes[4]


def test_auth_login_exchange():
    a = Annotator()
    notes = walk(a, [
        ("S", "220 mx ESMTP"), ("C", "EHLO c"), ("S", "250 AUTH LOGIN"),
        ("C", "AUTH LOGIN"),
        ("S", "334 " + b64(b"Username:")),
        ("C", b64(b"alice")),
        ("S", "334 " + b64(b"Password:")),
        ("C", b64(b"secret")),
        ("S", "535 5.7.8 Authentication credentials invalid"),
    ])
    assert "LOGIN" in notes[3]
    assert "Username:" in notes[4] and "base64" in notes[4]
    assert "alice" in notes[5] and "username" in notes[5]
    assert "Password:" in notes[6]
    assert "password" in notes[7] and "***" in notes[7]
    assert "secret" not in notes[7]
    assert "5.7.8" in notes[8] and "permanent" in notes[8] and "do not retry as is" in notes[8]
    assert a.authenticated is False
    # the exchange is over: the next line is a command again
    assert "Envelope sender" in a.client("MAIL FROM:<alice@example.org>")


def test_auth_login_with_initial_response_and_cancel():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 AUTH LOGIN")])
    assert "alice" in a.client("AUTH LOGIN " + b64(b"alice"))
    assert "Password:" in a.server("334 " + b64(b"Password:"))
    assert "cancel" in a.client("*").lower()
    assert a.server("501 5.7.0 Authentication aborted")
    assert "Not an SMTP command" in a.client("*")  # no longer an AUTH answer


def test_auth_plain_two_step():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 AUTH PLAIN")])
    assert "PLAIN" in a.client("AUTH PLAIN")
    assert "empty" in a.server("334 ")
    note = a.client(b64(b"\0alice\0hunter2"))
    assert "alice" in note and "hunter2" not in note
    assert "235" not in note
    a.server("235 2.7.0 OK")
    assert a.authenticated


def test_auth_bad_base64_never_raises():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 AUTH PLAIN")])
    assert "base64" in a.client("AUTH PLAIN !!!not-base64!!!")
    note = a.client("AUTH PLAIN " + b64(b"no-nul-separators"))
    assert "decode" in note and "no-nul" not in note


def test_failure_notes():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 mx"), ("C", "MAIL FROM:<a@b.example>")])
    assert "authentication required" in a.server("530 5.7.0 Authentication required").lower()
    a.client("RCPT TO:<nobody@example.net>")
    note = a.server("550 5.1.1 <nobody@example.net>: User unknown")
    assert "no such mailbox" in note and "permanent: do not retry as is" in note
    a.client("RCPT TO:<carol@example.net>")
    note = a.server("451 4.7.1 Greylisted, try again later")
    assert "try again later" in note and "greylisting" in note
    a.client("RCPT TO:<dave@example.net>")
    assert "try again later" in a.server("452 4.5.3 Too many recipients")
    note = a.server("421 4.7.0 mx closing connection")
    assert "closing" in note and "try again later" in note


def test_encryption_required_note():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 AUTH PLAIN"), ("C", "AUTH PLAIN")])
    note = a.server("538 5.7.11 Encryption required for requested authentication mechanism")
    assert "encryption" in note.lower() and "5.7.11" in note


def test_greeting_refusal():
    assert "no SMTP service" in Annotator().server("554 5.7.1 You are not welcome")


def test_pipelined_commands_keep_context():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250-mx"), ("S", "250 PIPELINING")])
    a.client("MAIL FROM:<a@example.org>")
    a.client("RCPT TO:<b@example.net>")
    a.client("RCPT TO:<c@example.net>")
    a.client("DATA")
    assert "Sender accepted" in a.server("250 2.1.0 Ok")
    assert "Recipient accepted" in a.server("250 2.1.5 Ok")
    assert "no such mailbox" in a.server("550 5.1.1 unknown")
    assert "dot" in a.server("354 go ahead")
    assert a.in_data


def test_bdat_chunk():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 CHUNKING")])
    assert "12 bytes" in a.client("BDAT 12 LAST")
    assert "BDAT" in a.client("Hello world")
    assert "Message accepted" in a.server("250 2.0.0 Ok")
    assert "Envelope" in a.client("MAIL FROM:<a@example.org>")


@pytest.mark.parametrize("line", ["", "   ", "\x00", "MAIL\x00FROM:<a@b>", "\x16\x03\x01\x00\xa5",
                                  "GET / HTTP/1.1", "ÿÿÿ", "\x1b[31m", "MAIL", "MAIL FROM:",
                                  "MAIL FROM:<unterminated", "RCPT TO:<>", "AUTH", "BDAT x",
                                  "EHLO", "x" * 5000])
def test_garbage_client_lines_never_raise(line):
    a = Annotator()
    a.server("220 mx")
    note = a.client(line)
    assert isinstance(note, str) and note and len(note) < 200


def test_specific_garbage_notes():
    a = Annotator()
    a.server("220 mx")
    assert a.client("FOO bar") == "Not an SMTP command this server knows."
    assert "NUL" in a.client("HELO \x00\x00")
    assert "TLS" in a.client("\x16\x03\x01")
    assert "Empty" in a.client("")
    assert "<>" in a.client("MAIL FROM:<>")


def test_nul_and_smuggling_in_data():
    a = Annotator()
    walk(a, [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 mx"), ("C", "MAIL FROM:<a@b.example>"),
             ("S", "250 ok"), ("C", "RCPT TO:<c@d.example>"), ("S", "250 ok"), ("C", "DATA"),
             ("S", "354 go")])
    assert a.client("") == "Blank line: the headers end here and the body begins."
    assert "NUL" in a.client("bad\x00body")
    assert "smuggling" in a.client("text\n.\rmore")
    assert "one dot" in a.client(".single")
    assert a.in_data


@pytest.mark.parametrize("line", ["", "garbage", "99", "2", "600 nope", "199 nope", "\x00\x00\x00",
                                  "250", "250-", "999-x"])
def test_malformed_server_lines_never_raise(line):
    a = Annotator()
    note = a.server(line)
    assert isinstance(note, str) and note
    if parse_reply(line).code is None or line[:1] not in "2345":
        assert "Malformed" in note


def test_multiline_code_mismatch_and_plain_continuation():
    a = Annotator()
    assert "Greeting" in a.server("220-mx.example.net welcome")
    assert "more lines" in a.server("220-more greeting text")
    assert "Malformed" in a.server("250 oops")


def test_note_for_summary():
    a = Annotator()
    note = a.note_for_summary(120, 5000)
    assert "120 more lines" in note and "5,000 bytes" in note
    assert "1 more line " in a.note_for_summary(1, 1)
    assert a.in_data is False


def test_notes_are_short():
    a = Annotator()
    notes = walk(a, [
        ("S", "220 mx.example.net ESMTP"), ("C", "EHLO client.example"), ("S", "250-mx.example.net"),
        ("S", "250-SIZE 10240000"), ("S", "250-8BITMIME"), ("S", "250 SMTPUTF8"),
        ("C", "MAIL FROM:<alice@example.org>"), ("S", "250 2.1.0 Ok"),
        ("C", "RCPT TO:<bob@example.net>"), ("S", "550 5.1.1 User unknown"),
        ("C", "RCPT TO:<carol@example.net>"), ("S", "452 4.2.2 Mailbox full"),
        ("C", "QUIT"), ("S", "221 Bye"),
    ])
    assert all(len(n) <= 125 for n in notes), [n for n in notes if len(n) > 125]


def test_a_503_is_a_command_out_of_order_not_a_refused_sender():
    a = Annotator()
    a.server("220 x ESMTP")
    a.client("MAIL FROM:<a@example.com>")
    note = a.server("503 5.5.1 Error: send HELO first")
    assert note.startswith("MAIL out of order") and "EHLO (or HELO) first" in note and "Sender refused" not in note
    a.client("DATA")
    assert "wants RCPT TO first" in a.server("503 5.5.1 Error: need RCPT command")
