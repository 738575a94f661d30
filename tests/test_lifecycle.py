"""Making, replacing and stopping labs: no port, socket or thread left behind; clear errors for wrong calls."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from smtplab import Lab, LabError


def listening(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


def lab_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("smtplab")]


def test_twenty_labs_in_a_row_leave_nothing_behind():
    threads_before = threading.active_count()
    endpoints = []
    for _ in range(20):
        lab = Lab()
        endpoints += [(ep.address, ep.bound_port) for ep in lab.endpoints.values()]
        endpoints.append((lab.dns.address, lab.dns.port))
        assert lab.send("alice@example.org", "carol@example.org").ok
        lab.stop()
    assert not [ep for ep in endpoints if listening(*ep)]
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
    # Without TLS the server does not even offer AUTH, so the client cannot log in...
    plain = running.send("alice@example.org", "carol@example.org", tls="none")
    assert not plain.ok and "AUTH" in plain.error
    # ...and without logging in, the submission port sends it to STARTTLS first.
    anonymous = running.send("alice@example.org", "carol@example.org", tls="none", login=False)
    assert not anonymous.ok and anonymous.error_code == 530 and "5.7.0" in anonymous.error


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
