"""Section 2: how long ``Lab()`` takes to start and ``lab.stop()`` to stop (target: start under 1 s)."""

from __future__ import annotations

import gc
import statistics

from common import ms, not_measured, perf, say, section, verdict


def startup(runs: int) -> None:
    """Print section 2: `runs` labs made and stopped one after another."""
    section(f"2. Lab() start-up and lab.stop() (median of {runs}; construction timed alone, each stopped before the next)")
    from smtplab import Lab
    try:
        current = Lab._current
        if current is not None:
            current.stop()
        starts, stops = [], []
        for _ in range(runs):
            gc.collect()
            t0 = perf()
            lab = Lab()
            starts.append(perf() - t0)
            t0 = perf()
            lab.stop()
            stops.append(perf() - t0)
        say(f"Lab():      median {ms(statistics.median(starts))}   min {ms(min(starts))}   max {ms(max(starts))}   "
            f"(first {ms(starts[0])})   target < 1 s: {verdict(statistics.median(starts) < 1)}")
        say(f"lab.stop(): median {ms(statistics.median(stops))}   min {ms(min(stops))}   max {ms(max(stops))}")
    except Exception as err:  # noqa: BLE001
        not_measured("start-up", err)
    # Where the start-up time goes, roughly: the CA (trustme) is one visible part.
    try:
        import trustme
        t0 = perf()
        ca = trustme.CA(organization_name="smtplab", organization_unit_name="lab CA")
        for name in ("smtp.example.org", "mx1.example.net", "mx2.example.net"):
            ca.issue_cert(name)
        say(f"of which, roughly: a trustme CA and 3 host certificates take {ms(perf() - t0)}")
    except Exception as err:  # noqa: BLE001
        not_measured("trustme CA", err)
