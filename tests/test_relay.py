"""The relay: what smtp.example.org does with mail for other domains."""

from __future__ import annotations

import asyncio
import email.policy
import ssl
import subprocess
import time

import pytest
from peers import need, smtp_to

from smtplab import Lab, relay_chain, scenario_names


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


# --- routing, failover, the queue -------------------------------------------------------------

FAST = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


@pytest.fixture
def fresh(tmp_path):
    with Lab(state_dir=tmp_path, retry=FAST) as lab:
        yield lab


def subjects(lab: Lab, address: str) -> list[str]:
    return [m["Subject"] for m in lab.inbox(address)]


def test_swaks_submission_reaches_bob_with_a_received_header_per_hop(lab):
    swaks = need("swaks")
    ep = lab.endpoint("smtp.example.org", 587)
    run = subprocess.run([swaks, "--server", ep.address, "--port", str(ep.bound_port), "--tls", "--tls-verify",
                          "--tls-ca-path", str(lab.ca.cert_path), "--tls-sni", "smtp.example.org", "--auth", "PLAIN",
                          "--auth-user", "alice", "--auth-password", "wonderland", "--from", "alice@example.org",
                          "--to", "bob@example.net", "--header", "Subject: swaks to bob"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout
    assert lab.wait_for_queue(10)
    msg = next(m for m in lab.inbox("bob@example.net") if m["Subject"] == "swaks to bob")
    hops = msg.get_all("Received")
    assert [h.split("by ")[1].split()[0] for h in hops] == ["mx1.example.net", "smtp.example.org"]
    relay = [t for t in lab.transcripts(host="mx1.example.net", view="client") if t.client == "smtp.example.org"]
    assert any("Subject: swaks to bob" in t.commands() for t in relay)


def test_backup_mx_takes_over_when_the_primary_is_down(fresh):
    fresh.stop_host("mx1.example.net")
    result = fresh.send("alice@example.org", "bob@example.net", subject="via the backup")
    assert result.ok and fresh.wait_for_queue(10)
    assert subjects(fresh, "bob@example.net") == ["via the backup"]
    hops = fresh.trace(result).hops
    assert hops[0].outcome.startswith("relayed to mx2.example.net") and hops[1].host == "mx2.example.net"
    refused = [t for t in fresh.transcripts(host="mx1.example.net", view="client")]
    assert refused and "Could not connect" in refused[-1].text()


def test_with_every_mx_down_mail_waits_in_the_queue_then_goes(fresh):
    fresh.stop_host("mx1.example.net")
    fresh.stop_host("mx2.example.net")
    result = fresh.send("alice@example.org", "bob@example.net", subject="patience")
    assert result.ok  # accepted: now smtp.example.org is responsible for it
    time.sleep(0.5)
    queued = fresh.queue("smtp.example.org")
    assert [q.rcpts for q in queued] == [["bob@example.net"]] and queued[0].history
    fresh.start_host("mx2.example.net")
    assert fresh.wait_for_queue(10)
    assert subjects(fresh, "bob@example.net") == ["patience"]
    assert fresh.queue("smtp.example.org") == []


def test_a_4xx_everywhere_means_retry_later(fresh):
    for mx in ("mx1.example.net", "mx2.example.net"):
        fresh.fault(mx, "451 4.7.1 Greylisted, try again later")
    result = fresh.send("alice@example.org", "bob@example.net", subject="greylisted")
    assert fresh.wait_for_queue(10)
    assert subjects(fresh, "bob@example.net") == ["greylisted"]
    events = [e.event for e in fresh.trace(result).events]
    assert events.count("deferred") == 1 and "relayed" in events


def test_retries_run_out_into_a_bounce(tmp_path):
    with Lab(state_dir=tmp_path, retry=(0.05, 0.05)) as lab:
        for mx in ("mx1.example.net", "mx2.example.net"):
            lab.fault(mx, "451 4.3.0 Try again later", times=10)
        lab.send("alice@example.org", "bob@example.net", subject="never")
        assert lab.wait_for_queue(10)
        bounce = lab.inbox("alice@example.org")
        assert len(bounce) == 1 and "gave up after 3 tries" in bounce[0].get_body(("plain",)).get_content()
        assert subjects(lab, "bob@example.net") == []


def test_a_5xx_at_data_bounces(fresh):
    fresh.fault("mx1.example.net", "554 5.6.0 Message content rejected", command="DATA")
    fresh.send("alice@example.org", "bob@example.net", subject="rejected")
    assert fresh.wait_for_queue(10)
    assert "554 5.6.0" in fresh.inbox("alice@example.org")[0].get_body(("plain",)).get_content()


def test_the_queue_survives_a_stop_and_the_next_lab_delivers_it(tmp_path):
    with Lab(state_dir=tmp_path, retry=FAST) as first:
        first.stop_host("mx1.example.net")
        first.stop_host("mx2.example.net")
        assert first.send("alice@example.org", "bob@example.net", subject="kept").ok
    assert list((tmp_path / "queue" / "smtp.example.org").glob("*.json"))
    with Lab(state_dir=tmp_path, retry=FAST) as second:
        assert second.wait_for_queue(10)
        assert subjects(second, "bob@example.net") == ["kept"]


def test_two_hundred_messages_with_a_hop_down_part_way_arrive_exactly_once(tmp_path):
    with Lab(state_dir=tmp_path, retry=(0.2, 0.4, 0.8, 1.6, 3.2)) as lab:
        async def send_all():
            async def one(i: int):
                result = await lab.asend("alice@example.org", "bob@example.net", subject=f"#{i:03d}")
                assert result.ok, result.summary()
                if i == 60:
                    lab._loop.call_soon(asyncio.ensure_future, lab._stop_host("mx1.example.net"))
                    lab._loop.call_soon(asyncio.ensure_future, lab._stop_host("mx2.example.net"))
            for start in range(0, 200, 20):
                await asyncio.gather(*(one(i) for i in range(start, start + 20)))
        asyncio.run(send_all())
        time.sleep(0.3)
        assert any(lab.queue("smtp.example.org"))  # some are waiting for a hop
        lab.start_host("mx1.example.net")
        lab.start_host("mx2.example.net")
        assert lab.wait_for_queue(30)
        got = subjects(lab, "bob@example.net")
        assert len(got) == 200 and sorted(got) == [f"#{i:03d}" for i in range(200)]


# --- longer roads, proxies, loops ---------------------------------------------------------------

def test_a_chain_of_relays_leaves_a_received_header_per_hop(tmp_path):
    with Lab(relay_chain(3), state_dir=tmp_path) as lab:
        result = lab.send("alice@example.org", "bob@example.net", subject="far")
        assert lab.wait_for_queue(10)
        hops = [h.split("by ")[1].split()[0] for h in lab.inbox("bob@example.net")[0].get_all("Received")]
        assert hops == ["mx1.example.net", "relay3.example.org", "relay2.example.org", "relay1.example.org",
                        "smtp.example.org"]
        trace = lab.trace(result)
        assert [h.host for h in trace.hops] == list(reversed(hops))
        assert all(h.tls_in for h in trace.hops) and trace.total > 0


def test_chain_scenario_outbound_filter_and_internal_mailbox_server(tmp_path):
    with Lab("chain", state_dir=tmp_path) as lab:
        lab.send("alice@example.org", "bob@example.net", subject="through the filter")
        assert lab.wait_for_queue(10)
        msg = lab.inbox("bob@example.net")[0]
        assert msg["X-Outbound-Filter"] == "scanned, clean"
        assert msg["Received"].split("by ")[1].startswith("mailbox.example.net")
        assert len(msg.get_all("Received")) == 4


def test_the_proxy_blocks_tags_and_passes_on_in_the_same_session(tmp_path):
    with Lab("proxy", state_dir=tmp_path) as lab:
        lab.send("alice@example.org", "bob@example.net", subject="Win the lottery")
        lab.send("alice@example.org", "bob@example.net", subject="Lunch?")
        assert lab.wait_for_queue(10)
        assert subjects(lab, "bob@example.net") == ["[EXTERNAL] Lunch?"]
        assert lab.inbox("bob@example.net")[0]["X-Scanned-By"] == "gate.example.net"
        bounce = lab.inbox("alice@example.org")
        assert len(bounce) == 1 and "554 5.7.1" in bounce[0].get_body(("plain",)).get_content()
        gate = lab.transcripts(host="gate.example.net", view="server")
        events = [e.line for t in gate for e in t if e.kind == "event"]
        assert any("blocked" in e for e in events) and any("tagged" in e for e in events)
        passed = [t for t in gate if any("passed on to mx1.example.net" in line for line in t.replies())]
        assert passed  # the 250 Alice's server heard came from behind the proxy


def test_a_mail_loop_is_caught_by_counting_hops(tmp_path):
    with Lab("loop", state_dir=tmp_path, retry=(0.1,)) as lab:
        lab.send("alice@example.org", "someone@loop.example", subject="round and round")
        assert lab.wait_for_queue(20)
        bounce = lab.inbox("alice@example.org")
        assert len(bounce) == 1
        assert "554 5.4.6" in bounce[0].get_body(("plain",)).get_content()


@pytest.mark.parametrize("scenario", scenario_names())
def test_no_host_in_any_scenario_is_an_open_relay(scenario, tmp_path):
    """Unless a scenario says so on purpose (open_relay = true, to study the misconfiguration)."""
    with Lab(scenario, state_dir=tmp_path) as lab:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # a spammer does not check certificates
        for host, port in lab.endpoints:
            if lab.topology.host(host).open_relay:
                continue
            with smtp_to(lab, host, port, context) as client:
                client.ehlo("spammer.example.com")
                if client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo("spammer.example.com")
                client.mail("someone@example.com")
                code, text = client.rcpt("victim@example.com")
                refusals = ((530, b"5.7.0"),) if lab.endpoint(host, port).listener.auth == "required" else (
                    (554, b"5.7.1"), (550, b"5.7.1"))  # a submission port: no mail at all before a login
                assert (code, text.split()[0]) in refusals, (host, port, code, text)


def test_greylisting_turns_away_each_new_sender_once_then_lets_the_retry_through(fresh):
    fresh.fault("mx1.example.net", "451 4.7.1 Greylisted: try again in a moment", greylist=True)
    fresh.fault("mx2.example.net", "451 4.7.1 Greylisted: try again in a moment", greylist=True)
    first = fresh.send("alice@example.org", "bob@example.net", subject="one")
    second = fresh.send("alice@example.org", "dave@example.net", subject="two")
    assert fresh.wait_for_queue(10)
    assert subjects(fresh, "bob@example.net") == ["one"] and subjects(fresh, "dave@example.net") == ["two"]
    for result in (first, second):  # each new (client, sender, recipient) waited once, on both MX
        assert [e.event for e in fresh.trace(result).events].count("deferred") == 1
    third = fresh.send("alice@example.org", "bob@example.net", subject="three")  # known now: straight through
    assert fresh.wait_for_queue(10)
    assert "deferred" not in [e.event for e in fresh.trace(third).events]
