"""Links: real delay on real TCP, blocked ports that look as they do in life, and a tap on the wire."""

from __future__ import annotations

import json
import signal
import smtplib
import statistics
import subprocess
import sys
import time

import pytest

from smtplab import Lab, LabError

D = 0.025  # one-way delay under test, seconds


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    with Lab(state_dir=tmp_path_factory.mktemp("slow"), latency_ms=D * 1000) as lab:
        yield lab


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_every_round_trip_costs_two_delays(slow):
    server = next(s for s in slow.info()["servers"] if s["port"] == 25)
    client = smtplib.SMTP(timeout=10)
    banner = timed(lambda: client.connect(server["address"], server["bound_port"]))
    trips = [timed(client.noop) for _ in range(8)] + [timed(lambda: client.ehlo("me"))]
    client.quit()
    assert 1.0 * D <= banner <= 1.1 * D + 0.01  # connect (local) then the banner: one way
    for rtt in trips:
        assert 2 * D <= rtt <= 1.1 * 2 * D + 0.010, trips


def test_a_session_costs_its_round_trips(slow):
    result = slow.send("alice@example.org", "carol@example.org", server="smtp.example.org", port=25, tls="none")
    assert result.ok
    # banner (half a trip after the connect), then EHLO, MAIL, RCPT, DATA, the message, QUIT: 6 round trips
    expected = D + 6 * 2 * D
    assert expected <= result.elapsed <= 1.1 * expected + 0.03, result.elapsed
    gaps = [e.t for e in result.transcript if e.kind == "line" and e.direction == "server"]
    assert gaps[0] >= D  # the greeting crossed the link


def test_the_published_endpoints_carry_the_delay(slow):
    info = slow.info()
    assert info["latency_ms"] == D * 1000
    assert all("server_port" in s for s in info["servers"])


def test_serve_with_latency_ms(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "smtplab.cli", "serve", "--json", "--latency-ms", "30",
                             "--state-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        server = next(s for s in info["servers"] if s["port"] == 25)
        client = smtplib.SMTP(server["address"], server["bound_port"], timeout=10)
        rtt = statistics.median(timed(client.noop) for _ in range(5))
        client.quit()
        assert 0.060 <= rtt <= 0.085
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    with Lab(state_dir=tmp_path_factory.mktemp("places")) as lab:
        yield lab


@pytest.mark.parametrize("network, port, outcome", [
    ("home", 25, "timed out"), ("home", 587, "ok"),
    ("hotel", 587, "timed out"), ("hotel", 2525, "ok"), ("hotel", 25, "timed out"),
    ("campus", 25, "refused"), ("campus", 465, "ok"), ("student", 25, "ok"),
])
def test_networks_block_ports_the_way_real_ones_do(places, network, port, outcome):
    started = time.perf_counter()
    result = places.send("alice@example.org", "carol@example.org", port=port, network=network, timeout=1.0,
                         tls="none" if port == 25 else None)
    took = time.perf_counter() - started
    if outcome == "ok":
        assert result.ok, result.summary()
    else:
        assert not result.ok and outcome in result.error
        assert took < (0.5 if outcome == "refused" else 2.0)  # a reset is at once; a drop waits for the timeout


def test_an_unknown_network_is_a_clear_error(places):
    with pytest.raises(LabError, match="no network 'airport'"):
        places.send("alice@example.org", "carol@example.org", network="airport")


def test_the_tap_sees_plain_smtp_then_tls_records(places):
    result = places.send("alice@example.org", "carol@example.org", tap=True)
    assert result.ok and result.wire is not None
    from_client = result.wire.bytes_from("client")
    assert from_client.startswith(b"EHLO client.lab\r\nSTARTTLS\r\n")
    after = from_client[len(b"EHLO client.lab\r\nSTARTTLS\r\n"):]
    assert after[:1] == b"\x16" and after[1:3] == b"\x03\x01"  # a TLS record: handshake (ClientHello)
    assert b"AUTH" not in from_client and b"alice" not in from_client  # the login went encrypted
    assert b"220 Ready to start TLS" in result.wire.bytes_from("server")
