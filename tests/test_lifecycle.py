"""Making, replacing and stopping labs: no port, socket or thread left behind; clear errors for wrong calls."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path

import pytest

from smtplab import Lab, LabError


def listening(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


def own_listening_sockets() -> set[str]:
    """Listening TCP sockets held by this process (Linux /proc), so other processes' labs do not count."""
    proc = Path("/proc/self/fd")
    if not proc.exists():
        pytest.skip("needs Linux /proc to tell this process's sockets from other processes'")
    inodes = set()
    for fd in proc.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            listening.add(fields[1])
    return listening


def lab_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("smtplab")]


def test_twenty_labs_in_a_row_leave_nothing_behind():
    threads_before = threading.active_count()
    sockets_before = own_listening_sockets()
    for _ in range(20):
        lab = Lab()
        assert len(own_listening_sockets() - sockets_before) == len(lab.endpoints) + len(lab.services) + 1  # + DNS
        assert lab.send("alice@example.org", "carol@example.org").ok
        lab.stop()
    assert own_listening_sockets() == sockets_before
    assert lab_threads() == []
    assert threading.active_count() == threads_before


def test_a_new_lab_replaces_the_old_one_like_a_rerun_cell():
    first = Lab()
    ep = first.endpoint("smtp.example.org", 587)
    second = Lab()  # the student re-ran the cell
    try:
        assert not first.running and second.running
        assert not listening(ep.address, ep.bound_port)
        with pytest.raises(LabError, match="stopped"):
            first.send("alice@example.org", "carol@example.org")
        assert second.send("alice@example.org", "carol@example.org").ok
    finally:
        second.stop()
    second.stop()  # twice is fine


def test_context_manager_and_state_dir_kept(tmp_path):
    with Lab(state_dir=tmp_path) as lab:
        assert lab.send("alice@example.org", "carol@example.org", subject="kept").ok
    assert not lab.running
    assert list((tmp_path / "maildir" / "carol@example.org" / "new").iterdir())  # a state dir you chose is yours
    assert (tmp_path / "tls" / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")


@pytest.fixture(scope="module")
def running():
    with Lab() as lab:
        yield lab


@pytest.mark.parametrize("call, message", [
    (lambda lab: lab.send("alice@example.org", "bob@example.net", server="smtp.example.com"), "no host called"),
    (lambda lab: lab.send("alice@example.org", "bob@example.net", port=26), "listens on: 25 \\(mx\\), 587"),
    (lambda lab: lab.send("alice", "bob@example.net"), "not an email address"),
    (lambda lab: lab.send("alice@example.org", []), "at least one recipient"),
    (lambda lab: lab.send("alice@example.org", "bob@example.net", tls="ssl"), "use 'starttls'"),
    (lambda lab: lab.send("alice@example.org", "bob@example.net", login="mallory"), "no lab user"),
    (lambda lab: lab.send("bob@example.net", "alice@example.org"), "no submission server"),
    (lambda lab: lab.session("smtp.example.org", 588), "no listener on port 588"),
])
def test_wrong_calls_get_messages_a_student_can_act_on(running, call, message):
    with pytest.raises(LabError, match=message) as err:
        call(running)
    # raised from the caller's thread, not from deep inside asyncio
    assert "asyncio" not in "".join(str(tb.path) for tb in err.traceback)


def test_refusals_are_results_not_exceptions(running):
    result = running.send("alice@example.org", "carol@example.org", login=("alice", "wrong"))
    assert not result.ok and result.error_code == 535 and "5.7.8" in result.error
    with pytest.raises(LabError, match="535"):
        result.raise_for_status()
    # Without TLS the server does not offer AUTH, so the client cannot log in, and the
    # submission port sends it to STARTTLS first.
    plain = running.send("alice@example.org", "carol@example.org", tls="none")
    assert not plain.ok and plain.error_code == 530 and "5.7.0" in plain.error
    assert "offers no AUTH" in plain.transcript.text()


def test_asend_from_another_event_loop(running):
    async def two_at_once():
        return await asyncio.gather(running.asend("alice@example.org", "carol@example.org", subject="a"),
                                    running.asend("alice@example.org", "carol@example.org", subject="b", port=465))
    results = asyncio.run(two_at_once())
    assert all(r.ok for r in results), results
    assert results[1].server_transcript.entries[1].line.startswith("TLS established")


def test_blocking_call_from_the_lab_loop_is_refused_with_advice(running):
    async def inside():
        return running.send("alice@example.org", "carol@example.org")
    with pytest.raises(LabError, match="await lab.asend"):
        running._run(inside())


def test_first_deliveries_to_a_new_mailbox_at_once_all_land(running):
    async def many():
        return await asyncio.gather(*(running.asend("alice@example.org", "dave@example.net", subject=f"#{i}",
                                                    server="mx2.example.net", port=25) for i in range(8)))
    results = asyncio.run(many())
    assert all(r.ok for r in results), [r.summary() for r in results if not r.ok]
    assert sorted(m["Subject"] for m in running.inbox("dave@example.net")) == [f"#{i}" for i in range(8)]


@pytest.mark.parametrize("port, tls", [(25, "none"), (25, "starttls"), (465, "implicit")])
def test_both_views_of_every_send(running, port, tls):
    result = running.send("alice@example.org", "carol@example.org", port=port, tls=tls)
    assert result.ok
    assert result.server_transcript is not None, "the server's view of the same session"
    assert result.server_transcript.commands() == result.transcript.commands()


def test_durable_lab_syncs_and_still_delivers(tmp_path):
    with Lab(state_dir=tmp_path, durable=True) as lab:
        assert lab.store.durable
        assert lab.send("alice@example.org", ["carol@example.org", "bob@example.net"], subject="synced").ok
        assert lab.wait_for_queue(10)
        assert [m["Subject"] for m in lab.inbox("bob@example.net")] == ["synced"]
        assert [m["Subject"] for m in lab.inbox("carol@example.org")] == ["synced"]


def test_labs_with_links_and_the_api_leave_nothing_behind():
    sockets_before = own_listening_sockets()
    for _ in range(5):
        lab = Lab(latency_ms=5)
        assert lab.send("alice@example.org", "carol@example.org", tap=True).ok
        assert lab.send("alice@example.org", "carol@example.org", network="campus", port=25, tls="none",
                        timeout=0.5).error
        assert "timed out" in lab.send("alice@example.org", "carol@example.org", network="home", port=25,
                                        tls="none", timeout=0.3).error  # a blocker that listens, then drops
        assert lab.api_send("alice@example.org", "carol@example.org").ok
        lab.stop()
    assert own_listening_sockets() == sockets_before
    assert lab_threads() == []
