"""MX resolution as RFC 5321 section 5.1 and RFC 7505 say, against the lab DNS."""

from __future__ import annotations

import pytest

from smtplab import Lab


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    with Lab("mx-cases", state_dir=tmp_path_factory.mktemp("mx"), seed=7) as lab:
        yield lab


def names(lookup) -> list[str]:
    return [h.name for h in lookup.hosts]


def test_lowest_preference_first(cases):
    lookup = cases.mx("example.net")
    assert lookup.ok and names(lookup) == ["mx1.example.net", "mx2.example.net"]
    assert [h.preference for h in lookup.hosts] == [10, 20]
    assert lookup.hosts[0].addresses == [cases.addresses["mx1.example.net"]]
    assert any("lowest preference first" in s for s in lookup.steps)


def test_equal_preferences_in_random_order_that_a_seed_makes_repeatable(cases):
    orders = set()
    for seed in range(12):
        cases.rng.seed(seed)
        first = names(cases.mx("equal.example"))
        cases.rng.seed(seed)
        assert names(cases.mx("equal.example")) == first  # same seed, same order
        orders.add(tuple(first))
    assert orders == {("mx1.example.net", "mx2.example.net"), ("mx2.example.net", "mx1.example.net")}


def test_implicit_mx_when_there_is_no_mx_record(cases):
    lookup = cases.mx("tiny.example")
    assert lookup.ok and names(lookup) == ["tiny.example"] and lookup.hosts[0].addresses
    assert any("implicit MX" in s for s in lookup.steps)


def test_null_mx_fails_at_once_with_the_standard_code(cases):
    lookup = cases.mx("nomail.example")
    assert not lookup.ok and lookup.permanent and lookup.reply.startswith("556 5.1.10")


def test_cname_is_followed(cases):
    lookup = cases.mx("alias.example")
    assert names(lookup) == ["mx1.example.net", "mx2.example.net"]
    assert any("CNAME" in s and "example.net" in s for s in lookup.steps)


def test_nxdomain_is_permanent(cases):
    lookup = cases.mx("nowhere.example")
    assert lookup.permanent and lookup.reply.startswith("550 5.1.2")


@pytest.mark.parametrize("domain", ["flaky-dns.example", "slow-dns.example"])
def test_servfail_and_timeout_are_temporary(cases, domain):
    lookup = cases.mx(domain)
    assert not lookup.ok and not lookup.permanent and lookup.reply.startswith("451 4.4.3")
    assert lookup.seconds < 5  # bounded: a time-out never hangs a cell


def test_mx_without_an_address_cannot_be_used(cases):
    lookup = cases.mx("ghost.example")
    assert lookup.permanent and "no address" in str(lookup)


def test_online_lookup_answers_or_falls_back_to_a_recorded_answer(cases):
    lookup = cases.mx("gmail.com", online=True)
    assert lookup.hosts and "google.com" in lookup.hosts[0].name
    assert lookup.source == "public DNS" or "recorded" in lookup.source
    assert lookup.seconds < 10


def test_online_lookup_of_an_unknown_domain_says_what_it_could_not_do(cases):
    lookup = cases.mx("no-such-domain.invalid", online=True)
    assert not lookup.ok and lookup.error


def test_html_view(cases):
    html = cases.mx("nomail.example")._repr_html_()
    assert "permanent failure" in html and "556 5.1.10" in html
