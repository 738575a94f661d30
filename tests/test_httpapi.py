"""The HTTP sending API, tested with the standard library's HTTPS client over real TLS."""

from __future__ import annotations

import http.client
import json
import socket
import ssl

import pytest

from smtplab import Lab

GOOD = {"from": "alice@example.org", "to": ["bob@example.net", "carol@example.org"], "subject": "via the API",
        "text": "Hello over HTTPS."}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with Lab(state_dir=tmp_path_factory.mktemp("api")) as lab:
        yield lab


class LabHTTPS(http.client.HTTPSConnection):
    """Connects to the lab's real address, and checks the certificate against the logical name."""

    def __init__(self, address: str, port: int, name: str, context: ssl.SSLContext) -> None:
        super().__init__(address, port, context=context, timeout=10)
        self.name = name

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(socket.create_connection((self.host, self.port), self.timeout),
                                              server_hostname=self.name)


def post(lab: Lab, body: bytes | dict, key: str | None = "lab-key-alice", method: str = "POST",
         path: str = "/v1/send", headers: dict | None = None) -> tuple[int, dict]:
    ep = lab.endpoint("smtp.example.org", 443)
    conn = LabHTTPS(ep.address, ep.bound_port, "smtp.example.org", ssl.create_default_context(cafile=str(lab.ca.cert_path)))
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    hdrs = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    conn.request(method, path, body=payload, headers=hdrs)
    response = conn.getresponse()
    data = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, data


def counts(lab: Lab) -> tuple[int, int]:
    lab.wait_for_queue(10)
    return len(lab.inbox("bob@example.net")), len(lab.inbox("carol@example.org"))


def test_a_good_request_delivers(api):
    before = counts(api)
    status, body = post(api, GOOD)
    assert status == 202 and body["accepted"] == GOOD["to"] and body["id"].startswith("<")
    assert counts(api) == (before[0] + 1, before[1] + 1)
    msg = api.inbox("bob@example.net")[-1]
    assert msg["Subject"] == "via the API" and "with HTTPS" in msg.get_all("Received")[-1]
    assert [h.host for h in api.trace(body["id"]).hops] == ["smtp.example.org", "mx1.example.net"]


@pytest.mark.parametrize("body, key, status, error", [
    (GOOD, "lab-key-mallory", 401, "unauthorized"),
    (GOOD, None, 401, "unauthorized"),
    (b"{not json", "lab-key-alice", 400, "bad_json"),
    (b"[1, 2]", "lab-key-alice", 400, "bad_json"),
    ({k: v for k, v in GOOD.items() if k != "subject"}, "lab-key-alice", 422, "missing_field"),
    ({**GOOD, "to": ["not-an-address"]}, "lab-key-alice", 422, "bad_address"),
    ({**GOOD, "from": "carol@example.org"}, "lab-key-alice", 403, "forbidden"),
    ({**GOOD, "subject": "hi\r\nBcc: everyone@example.net"}, "lab-key-alice", 422, "bad_field"),
    ({**GOOD, "to": ["carol2@example.org"]}, "lab-key-alice", 422, "unknown_recipient"),
    (b"x" * (1024 * 1024 + 1), "lab-key-alice", 413, "too_large"),
])
def test_mistakes_get_a_clear_json_error_and_deliver_nothing(api, body, key, status, error):
    before = counts(api)
    got_status, got = post(api, body, key=key)
    assert (got_status, got["error"]) == (status, error) and got["detail"]
    assert counts(api) == before


def test_wrong_method_and_path(api):
    assert post(api, GOOD, method="GET")[0] == 405
    assert post(api, GOOD, path="/v2/mail")[0] == 404


def test_many_messages_on_one_connection_and_through_a_network(api):
    result = api.api_send("alice@example.org", "bob@example.net", count=3, network="hotel")
    assert result.ok and result.statuses == [202, 202, 202]  # the hotel lets 443 out, not 587


def test_the_api_is_published(api):
    [entry] = api.info()["http_api"]
    assert entry["port"] == 443 and entry["url"] == "https://smtp.example.org/v1/send"
