"""smtplab.plots draws what a trace measured: checked on the data the bars carry, not by eye."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from smtplab import Lab, relay_chain
from smtplab.journal import Event, Hop, MessageTrace
from smtplab.plots import LabFigure, chain_lengths, hop_times
from smtplab.timing import segments

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = 1_800_000_000.0  # an arbitrary wall-clock start, in seconds (time.time() precision: ~0.2 µs)


def ms(value):
    """Milliseconds compared to within a microsecond (the trace stores wall-clock seconds)."""
    return pytest.approx(value, abs=1e-3)


def make_trace(hosts: list[str], arrived_ms: list[float], left_ms: list[float | None],
               outcome: str = "delivered to bob@example.net", deferred_at: list[tuple[str, float]] = ()) -> MessageTrace:
    """A MessageTrace from plain numbers (milliseconds after T0), as the journal would build it."""
    hops = []
    events = []
    for i, (host, arrived, left) in enumerate(zip(hosts, arrived_ms, left_ms)):
        last = i == len(hosts) - 1
        hops.append(Hop(host, hosts[i - 1] if i else "localhost", T0 + arrived / 1000,
                        None if left is None else T0 + left / 1000, True,
                        outcome if last else f"relayed to {hosts[i + 1]} over TLS"))
        events.append(Event(T0 + arrived / 1000, "received", host, f"Q{i}", "<m@x>", {}))
        if last:
            kind = "bounced" if outcome.startswith("bounced") else "delivered"
            events.append(Event(T0 + (arrived + 0.5) / 1000, kind, host, f"Q{i}", "<m@x>", {}))
    for host, at in deferred_at:
        events.append(Event(T0 + at / 1000, "deferred", host, "Q0", "<m@x>", {"why": "451 4.7.1 Greylisted"}))
    events.sort(key=lambda e: e.time)
    return MessageTrace("<m@x>", hops, events)


THREE_HOPS = make_trace(["smtp.example.org", "relay1.example.org", "mx1.example.net"],
                        arrived_ms=[0.0, 10.0, 25.0], left_ms=[4.0, 12.0, None])


def bars(figure: Figure, kind: str) -> dict[str, tuple[float, float, float]]:
    """{name: (x, width, y-centre)} of the bars whose gid is "kind:name"."""
    found = {}
    for ax in figure.axes:
        for patch in ax.patches:
            gid = patch.get_gid() or ""
            if gid.startswith(kind + ":"):
                found[gid.split(":", 1)[1]] = (patch.get_x(), patch.get_width(), patch.get_y() + patch.get_height() / 2)
    return found


def test_segments_split_the_time_exactly():
    rows = segments(THREE_HOPS)
    assert [r["host"] for r in rows] == ["smtp.example.org", "relay1.example.org", "mx1.example.net"]
    assert [r["arrived"] for r in rows] == ms([0.0, 10.0, 25.0])
    assert [r["queued"] for r in rows[:2]] == ms([4.0, 2.0])
    assert [r["handover"] for r in rows[:2]] == ms([6.0, 13.0])
    assert rows[-1]["queued"] is None and rows[-1]["handover"] is None
    assert rows[-1]["ended"] == ms(25.5)
    assert sum(r["queued"] + r["handover"] for r in rows[:2]) == ms(25.0), "queue + handover = end to end"


def test_one_trace_bars_match_its_times():
    fig = hop_times(THREE_HOPS)
    queued, handover = bars(fig, "queued"), bars(fig, "handover")
    assert set(queued) == set(handover) == {"smtp.example.org", "relay1.example.org"}, "no bar leaves the last hop"
    x, width, _ = queued["smtp.example.org"]
    assert (x, width) == ms((0.0, 4.0))
    x, width, _ = handover["smtp.example.org"]
    assert (x, width) == ms((4.0, 6.0)), "the handover starts when the queue wait ends"
    x, width, _ = queued["relay1.example.org"]
    assert (x, width) == ms((10.0, 2.0))
    x, width, _ = handover["relay1.example.org"]
    assert x + width == ms(25.0), "the last handover ends when the MX accepted the message"


def test_one_trace_is_labelled_with_host_names_in_travel_order():
    fig = hop_times(THREE_HOPS)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["1. smtp.example.org", "2. relay1.example.org", "3. mx1.example.net"]
    # first hop drawn at the top: its bars sit on the row of the first tick label
    ticks = list(ax.get_yticks())
    assert bars(fig, "queued")["smtp.example.org"][2] == ms(ticks[0])
    assert bars(fig, "queued")["relay1.example.org"][2] == ms(ticks[1])
    bottom, top = ax.get_ylim()
    assert bottom > top, "the y axis runs downwards, like the message"
    assert "(ms)" in ax.get_xlabel()
    assert "3 servers" in ax.get_title() and "25.0 ms" in ax.get_title()
    legend_texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("queue" in t for t in legend_texts) and any("handing over" in t for t in legend_texts)
    assert any("delivered" in t for t in legend_texts)


def test_retries_are_counted_and_a_bounce_is_marked():
    grey = make_trace(["smtp.example.org", "mx1.example.net"], [0.0, 320.0], [314.0, None],
                      deferred_at=[("smtp.example.org", 5.0)])
    assert segments(grey)[0]["retries"] == 1
    texts = [t.get_text() for t in hop_times(grey).axes[0].texts]
    assert any("(1 retry)" in t for t in texts)

    bounce = make_trace(["smtp.example.org"], [0.0], [None], outcome="bounced")
    fig = hop_times(bounce)
    assert "bounce" in fig.axes[0].get_title()
    trying = bars(fig, "trying")
    assert trying["smtp.example.org"][:2] == ms((0.0, 0.5)), "grey bar: until the bounce was sent"


def test_a_trace_without_hops_draws_a_message_not_an_error():
    fig = hop_times(MessageTrace("<none@x>", [], []))
    assert "nothing to draw" in fig.axes[0].texts[0].get_text()


def test_a_list_of_traces_stacks_queue_and_handover_per_message():
    short = make_trace(["smtp.example.org", "mx1.example.net"], [0.0, 8.0], [3.0, None])
    fig = hop_times([short, THREE_HOPS])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2 hops", "3 hops"]
    queued, handover = bars(fig, "queued"), bars(fig, "handover")
    # vertical bars: height is the time; handover sits on top of the queue time
    heights = {p.get_gid(): (p.get_y(), p.get_height()) for p in ax.patches if p.get_gid()}
    assert heights["queued:2 hops"] == ms((0.0, 3.0))
    assert heights["handover:2 hops"] == ms((3.0, 5.0))
    assert heights["queued:3 hops"] == ms((0.0, 6.0))
    assert heights["handover:3 hops"] == ms((6.0, 19.0))
    assert set(queued) == set(handover) == {"2 hops", "3 hops"}
    assert "(ms)" in ax.get_ylabel()


def test_chain_lengths_fits_the_time_per_relay():
    traces = [make_trace(["smtp.example.org"] + [f"relay{i}.example.org" for i in range(1, n + 1)]
                         + ["mx1.example.net"], [7.0 * i for i in range(n + 2)], [7.0 * i + 1 for i in range(n + 1)]
                         + [None]) for n in range(4)]
    fig = chain_lengths(range(4), traces)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3"]
    assert "relays" in ax.get_xlabel()
    fit = [line for line in ax.get_lines() if "per relay" in (line.get_label() or "")]
    assert fit and "7.0 ms more per relay" in fit[0].get_label()
    with pytest.raises(ValueError):
        chain_lengths([0, 1], traces)


def test_saves_a_png_and_shows_itself_as_one(tmp_path):
    fig = hop_times(THREE_HOPS)
    assert isinstance(fig, LabFigure)
    path = tmp_path / "hops.png"
    fig.savefig(path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert fig._repr_png_().startswith(PNG_SIGNATURE), "a notebook cell shows the figure as a PNG"


def test_draws_on_axes_it_is_given():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert hop_times(THREE_HOPS, ax=left) is fig
    assert bars(fig, "queued")["smtp.example.org"][:2] == ms((0.0, 4.0))
    assert not right.patches


def test_a_real_chain_is_drawn_from_its_trace(tmp_path):
    with Lab(relay_chain(2), state_dir=tmp_path / "lab") as lab:
        result = lab.send("alice@example.org", "bob@example.net", subject="plotted")
        assert lab.wait_for_queue()
        trace = lab.trace(result)
    fig = hop_times(trace)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["1. smtp.example.org", "2. relay1.example.org", "3. relay2.example.org", "4. mx1.example.net"]
    handover = bars(fig, "handover")
    last = handover["relay2.example.org"]
    assert last[0] + last[1] == ms(trace.total * 1000), "the bars end when the MX accepted it"
    fig.savefig(tmp_path / "chain.png")
    assert (tmp_path / "chain.png").read_bytes().startswith(PNG_SIGNATURE)


def test_chain_lengths_takes_the_median_of_several_runs():
    def run(total_ms):
        return make_trace(["smtp.example.org", "mx1.example.net"], [0.0, total_ms], [1.0, None])

    fig = chain_lengths([0, 1], [[run(30.0), run(10.0), run(12.0)], [run(20.0), run(18.0), run(90.0)]])
    ax = fig.axes[0]
    tops = {p.get_gid(): p.get_y() + p.get_height() for p in ax.patches if (p.get_gid() or "").startswith("handover")}
    assert tops == {"handover:0": ms(12.0), "handover:1": ms(20.0)}, "the median run of each length is drawn"
    assert "median of 3" in ax.get_title()
    with pytest.raises(ValueError):
        chain_lengths([0], [[]])
