"""Property-based fuzzing of every entrance: SMTP listeners, the DNS server and the HTTP API.

Seeded (derandomized) and bounded, so a run takes well under a minute and fails the same way
twice. Each property: every input gets a proper answer (an SMTP reply with a code, a DNS reply
or none, an HTTP status with JSON), no reply carries a Python exception's text, the lab keeps no
error, nothing is written outside the state directory, and a normal send works afterwards.
"""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[test]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smtplab import Lab  # noqa: E402

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

VERBS = ["EHLO", "HELO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
         "AUTH", "AUTH PLAIN", "AUTH LOGIN", "STARTTLS", "BDAT", "ETRN", "XCLIENT", ""]
TEXT = st.binary(max_size=300) | st.text(max_size=120).map(lambda t: t.encode("utf-8", "surrogatepass"))
LINE = st.builds(lambda verb, arg, end: verb.encode() + b" " + arg + end, st.sampled_from(VERBS),
                 TEXT, st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\r\n", b""]))
SESSION = st.lists(LINE, min_size=1, max_size=8)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    with Lab(state_dir=root / "state", replace=False) as lab:
        yield lab, root


def outside(root: Path, state: Path) -> set[Path]:
    return {p for p in root.rglob("*") if state not in p.parents and p != state}


def reply_lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\r\n") if line]


@pytest.mark.parametrize("host, port", [("smtp.example.org", 25), ("smtp.example.org", 587),
                                        ("smtp.example.org", 2525), ("mx1.example.net", 25)])
def test_smtp_answers_everything_properly(fuzzed, host, port):
    lab, root = fuzzed
    ep = lab.endpoint(host, port)

    @FUZZ
    @given(SESSION)
    def probe(lines):
        with socket.create_connection((ep.address, ep.bound_port), timeout=5) as sock:
            sock.settimeout(3)
            data = b""
            # then an end of data (if DATA is open) and QUIT, so the server hangs up and we know it answered all
            sock.sendall(b"".join(lines) + b"\r\n.\r\nQUIT\r\n")
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except (TimeoutError, ConnectionError):
                pass
        for line in reply_lines(data):
            assert line[:3].isdigit() and line[:1] in b"2345", line  # a reply, nothing else
            assert b"Error: (" not in line and b"Traceback" not in line, line

    probe()
    assert list(lab.errors) == []
    assert outside(root, lab.state_dir) == set()
    assert lab.send("alice@example.org", "carol@example.org", subject="after fuzzing").ok


def test_dns_survives_any_packet(fuzzed):
    lab, _ = fuzzed

    @FUZZ
    @given(st.binary(max_size=600) | st.builds(lambda head, rest: head + rest, st.binary(min_size=12, max_size=12),
                                               st.binary(max_size=200)))
    def probe(packet):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(0.05)
            udp.sendto(packet, (lab.dns.address, lab.dns.port))
            try:
                udp.recv(65536)
            except TimeoutError:
                pass

    probe()
    assert list(lab.errors) == []
    assert lab.dig("example.net", "MX").records()


def test_the_http_api_answers_everything_with_a_status_and_json(fuzzed):
    lab, _ = fuzzed
    ep = lab.endpoint("smtp.example.org", 443)
    context = ssl.create_default_context(cafile=str(lab.ca.cert_path))
    header = st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"Authorization", b"Connection",
                              b"Content-Type", b"X"]).flatmap(
        lambda name: st.builds(lambda v: name + b": " + v + b"\r\n", TEXT.map(lambda b: b.replace(b"\n", b""))))
    request = st.builds(lambda method, path, headers, body: method + b" " + path + b" HTTP/1.1\r\n" + b"".join(headers)
                        + b"\r\n" + body,
                        st.sampled_from([b"POST", b"GET", b"PUT", b"", b"P\x00ST"]),
                        st.sampled_from([b"/v1/send", b"/", b"/v1/send?x=1", b"*"]),
                        st.lists(header, max_size=5), TEXT)

    @FUZZ
    @given(request)
    def probe(raw):
        with socket.create_connection((ep.address, ep.bound_port), timeout=5) as plain:
            with context.wrap_socket(plain, server_hostname="smtp.example.org") as tls:
                tls.settimeout(0.15)  # a whole request gets its answer at once; a partial one waits for more
                tls.sendall(raw)
                data = b""
                try:
                    while chunk := tls.recv(65536):
                        data += chunk
                except (TimeoutError, ssl.SSLError, ConnectionError):
                    pass
        while data:  # each response: a status line, a Content-Length, a JSON object
            head, _, rest = data.partition(b"\r\n\r\n")
            status = head[9:12]
            assert head.startswith(b"HTTP/1.1 ") and (status[:1] in b"24" or status == b"501"), head  # 500/503: broke
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            assert isinstance(json.loads(rest[:length]), dict)
            data = rest[length:]

    probe()
    assert list(lab.errors) == []
    assert lab.api_send("alice@example.org", "carol@example.org").ok
