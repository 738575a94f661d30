"""The lab DNS answers like a real authoritative server: over UDP and TCP, to dig and to dnspython."""

from __future__ import annotations

import socket
import subprocess
import threading

import dns.message
import dns.rcode
import dns.resolver
import pytest
from peers import need

from smtplab import Lab
from smtplab.dns import LabDNS
from smtplab.topology import load_scenario


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    with Lab("mx-cases", state_dir=tmp_path_factory.mktemp("dns")) as lab:
        yield lab


def resolver(lab: Lab) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port, res.lifetime = [lab.dns.address], lab.dns.port, 2.0
    return res


def test_records_of_every_kind(cases):
    res = resolver(cases)
    assert sorted(r.to_text() for r in res.resolve("example.net", "MX")) == ["10 mx1.example.net.", "20 mx2.example.net."]
    assert [r.address for r in res.resolve("mx1.example.net", "A")] == [cases.addresses["mx1.example.net"]]
    assert [r.to_text() for r in res.resolve("example.org", "TXT")] == ['"v=spf1 a:smtp.example.org -all"']
    alias = res.resolve("mail.example.net", "A")  # a CNAME, followed by the server in its answer
    assert str(alias.canonical_name) == "mx1.example.net." and alias[0].address == cases.addresses["mx1.example.net"]
    with pytest.raises(dns.resolver.NoAnswer):  # NODATA: the name exists, no AAAA
        res.resolve("mx1.example.net", "AAAA")
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("nowhere.example", "MX")
    with pytest.raises(dns.resolver.NoNameservers):  # SERVFAIL, said at once
        res.resolve("flaky-dns.example", "MX")


def test_dig_over_udp_and_tcp(cases):
    dig = need("dig")
    base = [dig, f"@{cases.dns.address}", "-p", str(cases.dns.port), "+tries=1", "+time=1"]
    run = lambda *args: subprocess.run([*base, *args], capture_output=True, text=True, timeout=10).stdout  # noqa: E731
    assert sorted(run("example.net", "MX", "+short").split("\n")) == ["", "10 mx1.example.net.", "20 mx2.example.net."]
    assert run("+tcp", "example.org", "MX", "+short").strip() == "10 smtp.example.org."
    assert "status: NXDOMAIN" in run("nowhere.example", "MX")
    assert "status: SERVFAIL" in run("flaky-dns.example", "MX")
    assert "flags: qr aa" in run("example.net", "MX")  # authoritative
    assert run("nomail.example", "MX", "+short").strip() == "0 ."
    assert "timed out" in run("slow-dns.example", "MX") or "no servers could be reached" in run("slow-dns.example", "MX")


def test_the_lab_dig_shows_the_real_reply(cases):
    answer = cases.dig("example.net", "MX")
    assert answer.status == "NOERROR" and sorted(answer.records()) == ["10 mx1.example.net.", "20 mx2.example.net."]
    assert ";; ANSWER SECTION:" in str(answer)
    assert cases.dig("nowhere.example").status == "NXDOMAIN"
    assert cases.dig("example.org", "MX", tcp=True).records() == ["10 smtp.example.org."]


def test_garbage_gets_no_answer_and_the_server_keeps_answering(cases):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.3)
        udp.sendto(b"\x00\x01garbage", (cases.dns.address, cases.dns.port))
        with pytest.raises(socket.timeout):
            udp.recv(512)
    assert resolver(cases).resolve("example.org", "MX")[0].exchange.to_text() == "smtp.example.org."


def test_an_internal_error_is_answered_with_servfail():
    server = LabDNS(load_scenario("default"), {"smtp.example.org": "127.0.0.2", "mx1.example.net": "127.0.0.3",
                                               "mx2.example.net": "127.0.0.4"})

    class Broken:
        def get_node(self, name):
            raise RuntimeError("a bug in the lab")

    server.zone = Broken()
    reply = dns.message.from_wire(server.answer(dns.message.make_query("example.net", "MX").to_wire()))
    assert reply.rcode() == dns.rcode.SERVFAIL


def test_a_bad_zone_in_a_scenario_says_so():
    from smtplab import ScenarioError
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(ScenarioError, match="zone text is not valid"):
        Lab({"extends": "default", "zone": "example.org. MX not-a-number"}, replace=False)
    assert {t.name for t in threading.enumerate()} == before  # a lab that could not start leaves nothing running
