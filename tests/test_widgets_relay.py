"""MXExplorer and ChainExplorer, driven as a student drives them: pick, type, click, read."""

from __future__ import annotations

import re

import pytest

from smtplab import Lab, relay_chain
from smtplab.widgets import ChainExplorer, MXExplorer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mx_lab(tmp_path_factory: pytest.TempPathFactory):
    with Lab("mx-cases", seed=1, state_dir=tmp_path_factory.mktemp("mx-lab")) as running:
        yield running


@pytest.fixture
def explorer(mx_lab: Lab) -> MXExplorer:
    return MXExplorer(mx_lab)


def look_up(w: MXExplorer, name: str, rdtype: str = "MX") -> str:
    w.domain.value = name
    w.rdtype.value = rdtype
    w.lookup_button.click()
    return w.text


def verdict(w: MXExplorer) -> str:
    found = re.findall(r'class="smtplab-verdict smtplab-(\w+)"', w.output.value)
    assert len(found) == 1, w.output.value
    return found[0]


def test_offers_the_scenarios_domains_and_record_types(explorer):
    values = [v for _label, v in explorer.choices.options]
    for domain in ("example.net", "tiny.example", "nomail.example", "flaky-dns.example"):
        assert domain in values
    assert list(explorer.rdtype.options) == ["MX", "A", "AAAA", "TXT", "CNAME"]
    explorer.choices.value = "tiny.example"
    assert explorer.domain.value == "tiny.example", "picking a domain puts it in the box"


def test_mx_of_example_net_lists_mx1_before_mx2(explorer):
    text = look_up(explorer, "example.net")
    assert "status: NOERROR" in text, "the dig-style answer is shown"
    assert "IN MX 10 mx1.example.net." in text and "IN MX 20 mx2.example.net." in text
    rows = re.findall(r"<tr><td>(\d)</td><td>(\d+)</td><td><code>([^<]+)</code>", explorer.output.value)
    assert rows == [("1", "10", "mx1.example.net"), ("2", "20", "mx2.example.net")]
    assert verdict(explorer) == "ok"
    assert "Deliverable" in text
    assert text.index("mx1.example.net  (10)") < text.index("mx2.example.net  (20)")
    assert explorer.last_mx.hosts[0].name == "mx1.example.net"


def test_null_mx_is_a_permanent_failure_with_556(explorer):
    text = look_up(explorer, "nomail.example")
    assert "MX 0 ." in text
    assert verdict(explorer) == "permanent"
    assert "Permanent failure" in text and "bounce" in text
    assert "556 5.1.10" in text


def test_servfail_is_a_temporary_failure(explorer):
    text = look_up(explorer, "flaky-dns.example")
    assert "status: SERVFAIL" in text
    assert verdict(explorer) == "temporary"
    assert "try again later" in text and "451 4.4.3" in text


def test_a_typo_domain_is_nxdomain(explorer):
    text = look_up(explorer, "exampel.net")
    assert "status: NXDOMAIN" in text
    assert verdict(explorer) == "permanent"
    assert "does not exist (NXDOMAIN)" in text and "550 5.1.2" in text


def test_implicit_mx_and_the_a_record_of_tiny_example(explorer):
    text = look_up(explorer, "tiny.example", "MX")
    assert "implicit MX" in text and verdict(explorer) == "ok"
    text = look_up(explorer, "tiny.example", "A")
    assert "tiny.example. 300 IN A 127.0.0.5" in text or "tiny.example. 300 IN A" in text
    assert "1 record: " + explorer.last_dig.records()[0] in text
    assert explorer.last_mx is None, "an A lookup is not an MX lookup"


def test_nodata_and_cname(explorer):
    text = look_up(explorer, "mx1.example.net", "AAAA")
    assert "NODATA" in text
    text = look_up(explorer, "mail.example.net", "CNAME")
    assert "mx1.example.net." in text


def test_enter_in_the_box_looks_up(explorer):
    explorer.domain.value = "example.org"
    explorer.rdtype.value = "MX"
    explorer.domain._handle_custom_msg({"event": "submit"}, [])  # what the browser sends on Enter
    assert "smtp.example.org" in explorer.text


@pytest.mark.parametrize("typed, says", [
    ("", "Nothing to look up"),
    ("bob@example.net", "the part after the @"),
    ("two words", "Not a domain name"),
    ("a" * 70 + ".example", "Could not look that up"),
])
def test_bad_input_becomes_a_message(explorer, typed, says):
    assert says in look_up(explorer, typed)


def test_a_stopped_lab_is_said_not_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(Lab, "_current", None)  # and no other lab runs (else the widget would carry on with it)
    lab = Lab("mx-cases", state_dir=tmp_path / "lab", replace=False)
    w = MXExplorer(lab)
    lab.stop()
    assert "not running" in look_up(w, "example.net")


# --- ChainExplorer -------------------------------------------------------------


def test_chain_explorer_with_0_and_3_relays():
    # The notebook's own lab, made current without stopping this module's fixture lab.
    module_lab, notebook_lab = Lab._current, Lab(replace=False)
    Lab._current = notebook_lab
    try:
        w = ChainExplorer()
        assert (w.relays.min, w.relays.max) == (0, 6)
        w.relays.value = 0
        w.send_button.click()
        assert len(w.last_trace.hops) == 2
        assert "<table class='smtplab-trace'>" in w.output.value
        assert "2 hops" in w.output.value and "smtp.example.org" in w.output.value
        assert bytes(w.plot.value).startswith(PNG_SIGNATURE)
        assert not bytes(w.comparison.value), "nothing to compare after one run"

        w.relays.value = 3
        w.send_button.click()
        assert [h.host for h in w.last_trace.hops] == [
            "smtp.example.org", "relay1.example.org", "relay2.example.org", "relay3.example.org", "mx1.example.net"]
        assert "5 hops" in w.output.value
        assert w.output.value.count("<tr>") == 1 + 5, "a header row and one row per hop"
        assert w.last_trace.hops[-1].outcome == "delivered to bob@example.net"
        assert bytes(w.comparison.value).startswith(PNG_SIGNATURE)
        assert sorted(w.runs) == [0, 3]
        assert [len(w.runs[n]) for n in (0, 3)] == [5, 5], "five messages per click"
        assert "the median of 5" in w.output.value
        assert "adds about" in w.fit.value or "No clear trend" in w.fit.value
        assert not w.send_button.disabled

        assert notebook_lab.running, "the notebook's lab keeps running"
        assert Lab._current is notebook_lab, "and the next Lab() still replaces it"
        assert notebook_lab.send("alice@example.org", "bob@example.net").ok
    finally:
        notebook_lab.stop()
        Lab._current = module_lab


def test_chain_explorer_takes_a_factory_and_stops_what_it_made(tmp_path):
    made = []

    def factory(n):
        lab = Lab(relay_chain(n), state_dir=tmp_path / f"chain{n}", replace=False)
        made.append(lab)
        return lab

    w = ChainExplorer(factory, relays=1)
    trace = w.send()
    assert len(trace.hops) == 3
    assert made and not made[0].running, "the widget stops the lab it used"


def test_chain_explorer_says_what_went_wrong():
    def broken(_n):
        raise OSError("no loopback for you")

    w = ChainExplorer(broken)
    w.send_button.click()
    assert "did not run" in w.output.value and "no loopback for you" in w.output.value
    assert w.last_trace is None and not w.send_button.disabled


def test_the_starting_domain_is_shown_straight_away(mx_lab):
    w = MXExplorer(mx_lab, domain="tiny.example")
    assert w.domain.value == "tiny.example" and w.choices.value == "tiny.example"
    assert "implicit MX" in w.text


def png_size(image) -> tuple[int, int]:
    data = bytes(image.value)
    assert data.startswith(PNG_SIGNATURE)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_each_extra_relay_adds_time_over_three_tries():
    """Three students click Compare: each sees a line that rises (robust: medians of five, lengths 0 to 6)."""
    slopes = []
    for _try in range(3):
        w = ChainExplorer()
        w.compare_button.click()
        assert sorted(w.runs) == [0, 2, 4, 6] and all(len(t) == 5 for t in w.runs.values())
        slopes.append(w.per_relay)
        assert "adds about" in w.fit.value
    assert all(slope is not None and slope > 0 for slope in slopes), f"ms per relay over three tries: {slopes}"


def test_plots_are_shown_at_their_own_size(tmp_path):
    w = ChainExplorer(lambda n: Lab(relay_chain(n), state_dir=tmp_path / f"c{n}", replace=False), repeats=1)
    assert w.plot not in w.children and w.comparison not in w.children, "no empty image (a broken-image icon)"
    w.send(0)
    assert w.plot in w.children and w.comparison not in w.children
    w.send(1)
    assert list(w.children).index(w.plot) < list(w.children).index(w.comparison)
    for image in (w.plot, w.comparison):
        width, _height = png_size(image)
        assert image.layout.width == f"{width}px", "at its pixel size, as inline plots are, not stretched"
        assert image.layout.max_width == "100%" and image.layout.height == "auto", "a narrow window may shrink it"
    from smtplab.plots import hop_times

    inline = hop_times(w.last_trace)._repr_png_()  # what a notebook cell showing the same plot shows
    assert png_size(w.plot) == (int.from_bytes(inline[16:20], "big"), int.from_bytes(inline[20:24], "big"))
