"""A failed send says where and how it failed, as data (SendResult.failure), for every stage a real session can fail at."""

from __future__ import annotations

import pytest

from smtplab import Failure, Lab


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    with Lab("security", state_dir=tmp_path_factory.mktemp("sec"), replace=False) as lab:
        yield lab


def failure(result) -> tuple[str, str, int | None]:
    assert not result.ok and result.failure is not None, result
    return result.failure.stage, result.failure.kind, result.failure.code


def test_a_host_that_is_down_refuses_the_connection(tmp_path):
    with Lab(state_dir=tmp_path, replace=False) as lab:
        lab.stop_host("smtp.example.org")
        assert failure(lab.send("alice@example.org", "carol@example.org", timeout=2)) == ("connect", "refused", None)


def test_a_network_that_drops_packets_times_out_at_connect(lab):
    result = lab.send("alice@example.org", "carol@example.org", port=25, network="home", timeout=0.5)
    assert failure(result) == ("connect", "timeout", None)


def test_implicit_tls_against_a_plain_text_port_fails_in_tls(lab):
    result = lab.send("alice@example.org", "carol@example.org", port=587, tls="implicit", timeout=2)
    assert failure(result)[:2] == ("tls", "tls")


def test_plain_text_against_port_465_never_hears_a_greeting(lab):
    result = lab.send("alice@example.org", "carol@example.org", port=465, tls="none", timeout=0.5)
    assert failure(result)[:2] == ("greeting", "timeout")


def test_a_wrong_password_fails_at_auth_with_its_code(lab):
    result = lab.send("alice@example.org", "carol@example.org", login=("alice", "not-her-password"))
    assert failure(result) == ("auth", "reply", 535)
    assert result.failure.reply.startswith("535 5.7.8")


def test_sending_as_someone_else_fails_at_mail(lab):
    result = lab.send("bob@example.org", "carol@example.org", login="alice")
    assert failure(result) == ("mail", "reply", 553)


def test_every_recipient_refused_fails_at_rcpt(lab):
    result = lab.send("alice@example.org", "nobody@example.org")
    assert failure(result) == ("rcpt", "reply", 550)


def test_a_refused_message_fails_at_data(tmp_path):
    with Lab(state_dir=tmp_path, replace=False) as lab:
        lab.fault("smtp.example.org", "554 5.7.1 Message rejected as spam", command="DATA")
        assert failure(lab.send("alice@example.org", "carol@example.org")) == ("data", "reply", 554)


def test_a_client_that_requires_starttls_stops_when_it_is_stripped(sec):
    result = sec.send("alice@example.org", "bob@example.net", network="evil-cafe", tls="starttls")
    assert failure(result)[:2] == ("tls", "not-offered")


def test_a_success_has_no_failure_and_a_partial_one_is_not_a_failure(lab):
    assert lab.send("alice@example.org", "carol@example.org").failure is None
    partial = lab.send("alice@example.org", ["carol@example.org", "nobody@example.org"])
    assert not partial.ok and partial.failure is None and list(partial.refused) == ["nobody@example.org"]


def test_a_failure_names_only_known_stages_and_kinds():
    assert str(Failure("rcpt", "reply", 550, "550 5.1.1 no such mailbox")) == "reply at rcpt: 550 5.1.1 no such mailbox"
    with pytest.raises(ValueError, match="stage in"):
        Failure("ehlo-ish", "reply")
