"""PortExplorer, driven as a student drives it: pick a network, a port and a TLS mode, click, read."""

from __future__ import annotations

import time

import ipywidgets as widgets
import pytest

from smtplab import Lab
from smtplab.widgets import PortExplorer


@pytest.fixture
def explorer(lab: Lab) -> PortExplorer:
    return PortExplorer(lab)


def attempt(w: PortExplorer, network: str, port: int, tls: str = "auto") -> float:
    """Set the three choices, click "Try it"; return how long the click took (seconds)."""
    w.network.value = network
    w.port.value = port
    w.tls.value = tls
    started = time.perf_counter()
    w.try_button.click()
    return time.perf_counter() - started


def test_offers_the_places_ports_and_tls_modes(explorer, lab):
    assert isinstance(explorer, widgets.Widget)
    assert [v for _label, v in explorer.network.options] == list(lab.places())
    assert {"student", "home", "hotel", "campus"} <= {v for _label, v in explorer.network.options}
    assert [v for _label, v in explorer.port.options] == [25, 465, 587, 2525]
    assert [v for _label, v in explorer.tls.options] == ["auto", "starttls", "implicit", "none", "opportunistic"]
    assert explorer.network.value == "student" and explorer.port.value == 587 and explorer.tls.value == "auto"
    assert explorer.last_result is None and "Try it" in explorer.output.value


def test_student_587_is_accepted_over_starttls(explorer):
    attempt(explorer, "student", 587)
    result = explorer.last_result
    assert result is not None and result.ok and result.tls
    assert explorer.outcome == "ok"
    assert "smtplab-ok" in explorer.output.value
    assert "STARTTLS is how it gets encrypted" in explorer.text
    assert "STARTTLS" in explorer.text and "AUTH PLAIN" in explorer.text, "the transcript is shown"


def test_hotel_587_times_out_and_the_advice_is_2525(explorer):
    took = attempt(explorer, "hotel", 587)
    assert explorer.outcome == "timeout"
    assert not explorer.last_result.ok and "timed out" in explorer.last_result.error
    assert 0.8 < took < 3, "a blocked port answers after the short (1 s) timeout"
    assert "2525" in explorer.explanation and "Try 2525" in explorer.text
    assert "drops the packets" in explorer.explanation
    assert "smtplab-temporary" in explorer.output.value


def test_hotel_2525_gets_through(explorer):
    attempt(explorer, "hotel", 2525)
    assert explorer.outcome == "ok" and explorer.last_result.ok and explorer.last_result.port == 2525


def test_campus_25_is_refused_at_once(explorer):
    took = attempt(explorer, "campus", 25)
    assert explorer.outcome == "refused"
    assert "connection refused" in explorer.last_result.error
    assert took < 0.5, "a reset comes back at once"
    assert "587 or 465" in explorer.explanation and "at once" in explorer.explanation


def test_home_25_times_out(explorer):
    attempt(explorer, "home", 25)
    assert explorer.outcome == "timeout"
    assert "blocks port 25" in explorer.explanation and "spam" in explorer.explanation
    assert "587" in explorer.explanation


def test_starttls_on_465_is_a_sensible_failure(explorer):
    attempt(explorer, "student", 465, "starttls")
    assert explorer.outcome == "tls"
    assert not explorer.last_result.ok
    assert "first byte" in explorer.explanation and "makes no sense" in explorer.explanation
    assert "implicit" in explorer.explanation


def test_implicit_tls_on_587_is_a_sensible_failure(explorer):
    attempt(explorer, "student", 587, "implicit")
    assert explorer.outcome == "tls"
    assert "starts in plain text" in explorer.explanation and "465" in explorer.explanation


def test_student_25_in_plain_text_to_carol_is_accepted(explorer):
    attempt(explorer, "student", 25, "none")
    result = explorer.last_result
    assert explorer.outcome == "ok" and result.ok and not result.tls
    assert result.accepted == ["carol@example.org"]
    assert "plain text" in explorer.explanation


def test_587_without_tls_is_refused_by_the_server_with_its_reply(explorer):
    attempt(explorer, "student", 587, "none")
    assert explorer.outcome == "server"
    assert "530 5.7.0" in explorer.explanation and "STARTTLS" in explorer.explanation


def test_port_25_to_another_domain_is_relay_denied(lab):
    w = PortExplorer(lab, port=25, to="bob@example.net")
    w.try_button.click()
    assert w.outcome == "server" and "554 5.7.1" in w.explanation and "open relay" in w.explanation


def test_a_stopped_lab_is_a_message_not_an_exception(tmp_path, monkeypatch):
    monkeypatch.setattr(Lab, "_current", None)  # and no other lab runs (else the widget would carry on with it)
    with Lab(state_dir=tmp_path, replace=False) as side:  # beside the module's lab, not replacing it
        w = PortExplorer(side)
    w.try_button.click()  # the lab stopped when the with block ended
    assert w.outcome == "error" and w.last_result is None
    assert "stopped" in w.text
    assert not w.try_button.disabled


def test_a_missing_listener_is_a_message_not_an_exception(lab):
    w = PortExplorer(lab, server="mx1.example.net", to="bob@example.net")  # mx1 has only port 25
    w.try_button.click()
    assert w.outcome == "error" and w.last_result is None
    assert "could not try" in w.text.lower()


@pytest.fixture(scope="module")
def security_lab(tmp_path_factory: pytest.TempPathFactory):
    with Lab("security", replace=False, state_dir=tmp_path_factory.mktemp("security")) as running:
        yield running


def test_the_evil_cafe_network_is_offered(security_lab):
    w = PortExplorer(security_lab, network="evil-cafe")
    assert w.network.value == "evil-cafe"


def test_a_client_that_requires_tls_stops_in_the_evil_cafe(security_lab):
    w = PortExplorer(security_lab, network="evil-cafe", tls="starttls")
    w.try_button.click()
    assert w.outcome == "stopped" and not w.last_result.ok
    assert "STARTTLS stripping" in w.explanation and "no password was sent" in w.explanation
    assert "server refused" not in w.explanation, "the client stopped, not the server"


def test_an_opportunistic_client_in_the_evil_cafe(security_lab):
    alice = PortExplorer(security_lab, network="evil-cafe", tls="opportunistic")
    alice.try_button.click()
    assert alice.outcome == "server" and "530" in alice.explanation
    assert "deleted STARTTLS" in alice.explanation and "no password was sent" in alice.explanation
    olga = PortExplorer(security_lab, network="evil-cafe", tls="opportunistic", sender="olga@oldmail.example",
                        to="bob@example.net", server="oldmail.example")
    olga.try_button.click()
    assert olga.outcome == "ok" and not olga.last_result.tls
    assert "the login included" in olga.explanation and "deleted STARTTLS" in olga.explanation


def test_implicit_tls_in_the_evil_cafe_is_fine(security_lab):
    w = PortExplorer(security_lab, network="evil-cafe", port=465)
    w.try_button.click()
    assert w.outcome == "ok" and w.last_result.tls
    assert "RFC 8314" in w.explanation
