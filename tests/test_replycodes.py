"""Tests for smtplab.replycodes: the catalogue of codes, commands and EHLO keywords, and its parsers."""

from __future__ import annotations

import dataclasses

import pytest

from smtplab.replycodes import (
    CAPABILITIES,
    COMMANDS,
    ENHANCED_CLASSES,
    ENHANCED_DETAILS,
    ENHANCED_SUBJECTS,
    REPLY_CODES,
    CodeInfo,
    Reply,
    describe_capability,
    explain,
    explain_enhanced,
    explain_reply_code,
    parse_reply,
    reply_kind,
)

# --------------------------------------------------------------------------- catalogue

RFC5321_CODES = [211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 455,
                 500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555]
AUTH_CODES = [235, 334, 432, 454, 530, 534, 535, 538]


@pytest.mark.parametrize("code", RFC5321_CODES + AUTH_CODES + [521, 556])
def test_reply_codes_present_and_complete(code):
    info = REPLY_CODES[code]
    assert isinstance(info, CodeInfo)
    assert info.code == str(code)
    assert info.title and info.meaning and info.rfc.startswith("RFC")
    if code >= 400:
        assert info.causes, f"{code} should list usual causes"
        assert info.action, f"{code} should say what to try next"
    else:
        assert info.action == ""


def test_reply_code_rfc_sources():
    assert "5321" in REPLY_CODES[250].rfc
    assert "4954" in REPLY_CODES[535].rfc
    assert "7504" in REPLY_CODES[521].rfc and "7504" in REPLY_CODES[556].rfc
    assert "3207" in REPLY_CODES[220].rfc  # 220 is also the STARTTLS go-ahead


def test_codeinfo_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        REPLY_CODES[250].title = "changed"  # type: ignore[misc]


def test_enhanced_classes_and_subjects():
    assert set(ENHANCED_CLASSES) == {2, 4, 5}
    assert "transient" in ENHANCED_CLASSES[4].title.lower()
    assert "permanent" in ENHANCED_CLASSES[5].title.lower()
    assert set(ENHANCED_SUBJECTS) == set(range(8))
    expected = ["other", "address", "mailbox", "mail system", "network",
                "protocol", "content", "security"]
    for subject, word in enumerate(expected):
        assert word in ENHANCED_SUBJECTS[subject].title.lower()


RFC3463_DETAILS = (["0.0"] + [f"1.{d}" for d in range(9)] + [f"2.{d}" for d in range(5)]
                   + [f"3.{d}" for d in range(6)] + [f"4.{d}" for d in range(8)]
                   + [f"5.{d}" for d in range(6)] + [f"6.{d}" for d in range(6)]
                   + [f"7.{d}" for d in range(8)])


@pytest.mark.parametrize("key", RFC3463_DETAILS)
def test_every_rfc3463_detail_present(key):
    info = ENHANCED_DETAILS[key]
    assert info.code == f"X.{key}"
    assert "3463" in info.rfc


@pytest.mark.parametrize("key,words,rfc", [
    ("1.1", ["mailbox"], "3463"),
    ("7.1", ["not authorized"], "3463"),
    ("7.8", ["credentials"], "4954"),
    ("7.9", ["weak"], "4954"),
    ("7.11", ["encryption"], "4954"),
    ("7.12", ["password"], "4954"),
    ("5.6", ["too long"], "4954"),
    ("1.10", ["null mx"], "7505"),
    ("7.27", ["null mx"], "7505"),
    ("4.6", ["loop"], "3463"),
    ("3.4", ["too big"], "3463"),
    ("2.2", ["full"], "3463"),
    ("7.0", ["security"], "3463"),
    ("4.5", ["congestion"], "3463"),
])
def test_specific_details(key, words, rfc):
    info = ENHANCED_DETAILS[key]
    text = (info.title + " " + info.meaning).lower()
    for word in words:
        assert word in text
    assert rfc in info.rfc


def test_details_keyed_without_class():
    assert all(not k.startswith(("2.", "4.", "5.")) or k.count(".") == 1 for k in ENHANCED_DETAILS)
    assert all(k.count(".") == 1 for k in ENHANCED_DETAILS)


def test_commands_and_capabilities():
    for verb in ("HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
                 "STARTTLS", "AUTH", "BDAT", "ETRN"):
        assert COMMANDS[verb].code == verb and COMMANDS[verb].meaning
    for kw in ("SIZE", "8BITMIME", "SMTPUTF8", "STARTTLS", "AUTH", "PIPELINING", "CHUNKING",
               "ENHANCEDSTATUSCODES", "DSN", "HELP", "BINARYMIME", "REQUIRETLS", "ETRN", "VRFY"):
        assert CAPABILITIES[kw].code == kw and CAPABILITIES[kw].rfc


# --------------------------------------------------------------------------- parse_reply

def test_parse_single_line():
    assert parse_reply("250 OK") == Reply(250, None, "OK", True)


def test_parse_continuation_line():
    r = parse_reply("250-SIZE 33554432")
    assert (r.code, r.enhanced, r.text, r.last) == (250, None, "SIZE 33554432", False)


def test_parse_enhanced():
    r = parse_reply("550 5.1.1 <bob@example.net>: User unknown")
    assert (r.code, r.enhanced, r.text, r.last) == (550, "5.1.1", "<bob@example.net>: User unknown", True)
    assert parse_reply("250-2.0.0 more").enhanced == "2.0.0"
    assert parse_reply("421 4.7.0").enhanced == "4.7.0"


def test_parse_bare_code_and_crlf():
    assert parse_reply("354") == Reply(354, None, "", True)
    assert parse_reply("221 Bye\r\n") == Reply(221, None, "Bye", True)


@pytest.mark.parametrize("line", ["", "hello", "25", "2500 x", "25a ok", "²50 x", "ABC def"])
def test_parse_malformed(line):
    r = parse_reply(line)
    assert r.code is None and r.enhanced is None and r.last is True and r.text == line


def test_parse_does_not_mistake_text_for_enhanced():
    assert parse_reply("250 2.0 is not enhanced").enhanced is None
    assert parse_reply("250 5.1.1x not enhanced").enhanced is None
    assert parse_reply("250-8BITMIME").enhanced is None


# --------------------------------------------------------------------------- explain*

def test_explain_reply_code_known():
    assert explain_reply_code(550) is REPLY_CODES[550]
    assert explain_reply_code("550") is REPLY_CODES[550]
    assert explain_reply_code(" 421 ") is REPLY_CODES[421]


@pytest.mark.parametrize("code,word", [("299", "succe"), (577, "permanent"), ("432", "password"),
                                       ("459", "temporary"), ("399", "intermediate")])
def test_explain_reply_code_unknown_is_honest(code, word):
    info = explain_reply_code(code)
    assert word in (info.title + info.meaning).lower()
    if int(code) not in REPLY_CODES:
        assert "not a standard" in info.meaning


def test_unknown_code_uses_second_digit():
    info = explain_reply_code(525)
    assert "connection" in info.meaning  # x2z: connections
    assert "permanent" in info.meaning


@pytest.mark.parametrize("bad", ["abc", "999", "199", "55", "5500", "", 42, 1000, True, None, "६५०"])
def test_explain_reply_code_rejects_garbage(bad):
    with pytest.raises(ValueError):
        explain_reply_code(bad)


def test_explain_enhanced_combined():
    info = explain_enhanced("5.7.1")
    assert info.code == "5.7.1"
    assert info.title == ENHANCED_DETAILS["7.1"].title
    assert "permanent" in info.meaning.lower()
    assert info.action
    temp = explain_enhanced("4.2.2")
    assert "transient" in temp.meaning.lower() or "temporary" in temp.meaning.lower()
    assert "full" in temp.title.lower()
    ok = explain_enhanced("2.0.0")
    assert ok.action == "" and "success" in ok.meaning.lower()


def test_explain_enhanced_detail_only_and_unregistered():
    assert explain_enhanced("X.7.27") is ENHANCED_DETAILS["7.27"]
    info = explain_enhanced("5.1.42")
    assert "not a registered detail" in info.meaning
    assert "address" in info.meaning.lower() and "permanent" in info.meaning.lower()
    odd = explain_enhanced("4.9.1")
    assert "not a registered detail" in odd.meaning and "not a defined subject" in odd.meaning


@pytest.mark.parametrize("bad", ["5.9.x", "6.1.1", "5.1", "5..1", "5.1.1.1", "5.1234.1", "abc", "", 5])
def test_explain_enhanced_rejects_bad_syntax(bad):
    with pytest.raises(ValueError):
        explain_enhanced(bad)


def test_explain_variants():
    [one] = explain("550")
    assert one is REPLY_CODES[550]
    [enh] = explain("5.7.1")
    assert enh.code == "5.7.1"
    reply, detail = explain("421 4.7.0 Try again later")
    assert reply is REPLY_CODES[421] and detail.code == "4.7.0"
    assert "transient" in detail.meaning.lower() or "temporary" in detail.meaning.lower()
    [unknown] = explain("299")
    assert "not a standard" in unknown.meaning and "succe" in unknown.meaning
    assert [i.code for i in explain("STARTTLS")] == ["STARTTLS", "STARTTLS"]  # command and EHLO keyword


@pytest.mark.parametrize("bad", ["abc", "999", "5.9.x", "", "   ", "999 oops", "hello world"])
def test_explain_rejects_nonsense(bad):
    with pytest.raises(ValueError) as err:
        explain(bad)
    assert str(err.value)


def test_describe_capability():
    assert describe_capability("SIZE 33554432") == \
        "SIZE: the largest message the server accepts is 32 MiB (33554432 bytes)."
    assert describe_capability("AUTH LOGIN PLAIN") == "AUTH: login mechanisms offered: LOGIN, PLAIN."
    assert describe_capability("AUTH=LOGIN PLAIN") == "AUTH: login mechanisms offered: LOGIN, PLAIN."
    assert "no fixed limit" in describe_capability("SIZE 0")
    assert "no fixed limit" in describe_capability("SIZE")
    assert "BDAT" in describe_capability("CHUNKING")
    assert "private" in describe_capability("XCLIENT NAME ADDR")
    assert describe_capability("FOOBAR").startswith("FOOBAR:")
    assert describe_capability("")


@pytest.mark.parametrize(("code", "kind"), [(220, "success"), (354, "intermediate"), (451, "transient failure"),
                                            (599, "permanent failure")])
def test_reply_kind_names_the_first_digit(code, kind):
    assert reply_kind(code) == kind
