"""The relay: what smtp.example.org does with mail for other domains."""

from __future__ import annotations

import email.policy


def test_a_refused_recipient_comes_back_to_the_sender_as_a_bounce(lab):
    before = len(lab.inbox("alice@example.org"))
    result = lab.send("alice@example.org", "nobody@example.net", subject="to a mailbox that does not exist")
    assert result.ok, result  # the first hop accepts: it cannot know yet
    assert lab.wait_for_queue(10)
    bounces = lab.inbox("alice@example.org")[before:]
    assert len(bounces) == 1
    bounce = bounces[0]
    assert bounce["Subject"] == "Undelivered Mail Returned to Sender"
    assert bounce["Return-Path"] == "<>"  # bounces have the null sender: they are never bounced back
    assert bounce.get_content_type() == "multipart/report"
    assert "550 5.1.1" in bounce.get_body(("plain",)).get_content()
    status = next(p for p in bounce.iter_parts() if p.get_content_type() == "message/delivery-status")
    assert "Status: 5.1.1" in status.as_string(policy=email.policy.default)
    # The relay's own session to mx1 shows the refusal
    relay = [t for t in lab.transcripts(host="mx1.example.net", view="client") if t.client == "smtp.example.org"][-1]
    assert any(line.startswith("550 5.1.1") for line in relay.replies())


def test_mixed_recipients_are_split_between_delivery_and_bounce(lab):
    before_bob = len(lab.inbox("bob@example.net"))
    before_alice = len(lab.inbox("alice@example.org"))
    result = lab.send("alice@example.org", ["bob@example.net", "ghost@example.net", "carol@example.org"], subject="mixed")
    assert result.ok
    assert lab.wait_for_queue(10)
    assert [m["Subject"] for m in lab.inbox("bob@example.net")[before_bob:]] == ["mixed"]
    assert "mixed" in [m["Subject"] for m in lab.inbox("carol@example.org")]
    bounce = lab.inbox("alice@example.org")[before_alice:]
    assert len(bounce) == 1 and "ghost@example.net" in bounce[0].get_body(("plain",)).get_content()
