"""matplotlib figures of what the lab measured. A plot takes results and draws; it never sends mail.

    from smtplab.plots import hop_times, chain_lengths
    hop_times(lab.trace(result))                 # one message: where its time went, hop by hop
    hop_times([trace0, trace1, trace2])          # several messages: end-to-end time, stacked
    chain_lengths([0, 1, 2], [trace0, trace1, trace2])   # the same, against the number of relays

How a trace splits into time (see :class:`smtplab.journal.MessageTrace`): each hop
*arrived* when that server accepted the message (its 250 after DATA), then the
message *waited in its queue* until the server set off for the next hop, then the
*handover* (connect, EHLO, STARTTLS, MAIL, RCPT, DATA) lasted until the next server
accepted it. Queue waits plus handovers add up exactly to the end-to-end time.

Figures are made with :class:`matplotlib.figure.Figure`, never with pyplot, so
nothing touches pyplot's global state or the backend: they work headless in
tests and scripts. The figures these functions make show themselves as a PNG
when they are the last value of a notebook cell (``_repr_png_``); ``savefig``
works as usual.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["LabFigure", "hop_times", "chain_lengths", "segments"]

#: Okabe-Ito colours: told apart by colour-blind readers too.
QUEUE_COLOUR = "#E69F00"  # orange: waiting in a server's queue
HANDOVER_COLOUR = "#0072B2"  # blue: the SMTP session to the next server
DELIVERED_COLOUR = "#009E73"  # green
BOUNCED_COLOUR = "#D55E00"  # vermillion

QUEUE_LABEL = "waiting in this server's queue"
HANDOVER_LABEL = "handing over to the next server (one SMTP session)"


class LabFigure(Figure):
    """A Figure that shows itself as a PNG in Jupyter, without pyplot or a backend being chosen."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def segments(trace: Any) -> list[dict[str, Any]]:
    """One dict per hop, in milliseconds since the first server accepted the message.

    Keys: ``host``, ``arrived``, ``queued`` (waiting here, or None for the last hop),
    ``handover`` (from leaving here to the next server's acceptance, or None),
    ``retries`` (how many times this server was told "try later" and waited),
    ``ended`` (for the last hop: when it delivered or bounced the message, if known)
    and ``outcome``. A hop whose departure is unknown (a trace cut short) counts as
    leaving when it arrived.
    """
    hops = list(getattr(trace, "hops", []) or [])
    if not hops:
        return []
    events = list(getattr(trace, "events", []) or [])
    start = hops[0].arrived
    out = []
    for i, hop in enumerate(hops):
        arrived = _ms(hop.arrived - start)
        nxt = hops[i + 1] if i + 1 < len(hops) else None
        until = nxt.arrived if nxt is not None else float("inf")
        mine = [e for e in events if e.host == hop.host and hop.arrived <= e.time <= until]
        queued = handover = ended = None
        if nxt is not None:
            left = hop.left if hop.left is not None else hop.arrived
            left = min(max(left, hop.arrived), nxt.arrived)  # clocks of one process: only guard rounding
            queued = _ms(left - hop.arrived)
            handover = _ms(nxt.arrived - left)
        else:
            final = [e.time for e in mine if e.event in ("delivered", "bounced")]
            ended = _ms(max(final) - start) if final else None
        out.append({"host": hop.host, "arrived": arrived, "queued": queued, "handover": handover,
                    "retries": sum(e.event == "deferred" for e in mine), "ended": ended,
                    "outcome": hop.outcome})
    return out


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    figure = LabFigure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _fmt(ms: float) -> str:
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def hop_times(trace_or_traces: Any, ax: Axes | None = None, *, labels: Sequence[str] | None = None,
              title: str | None = None) -> Figure:
    """Where a message's time went, hop by hop; or, for a list of traces, their end-to-end times.

    One trace: a row per server the message passed, top to bottom in the order it
    travelled. An orange bar is the time the message waited in that server's queue,
    a blue bar the SMTP session that handed it to the next server; the last row's
    marker is where it was delivered (or bounced). The x axis is milliseconds since
    the first server accepted the message.

    A list of traces: one stacked bar per trace (``labels`` names them; by default
    their number of hops): total queue time and total handover time, end to end.
    """
    if isinstance(trace_or_traces, (list, tuple)):
        traces = list(trace_or_traces)
        names = list(labels) if labels is not None else [f"{len(t.hops)} hops" for t in traces]
        return _stacked(traces, names, "messages (number of servers that accepted each one)", ax,
                        title or "End-to-end time of each message")
    return _waterfall(trace_or_traces, ax, title)


def _waterfall(trace: Any, ax: Axes | None, title: str | None) -> Figure:
    rows = segments(trace)
    owned = ax is None
    figure, ax = _new_axes(ax, (8.0, 1.8 + 0.5 * max(len(rows), 1)))
    if not rows:
        ax.text(0.5, 0.5, "No server has accepted this message (yet): nothing to draw.",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    ys = list(range(len(rows)))
    moving = [(y, r) for y, r in zip(ys, rows) if r["handover"] is not None]
    if moving:
        queue_bars = ax.barh([y for y, _ in moving], [r["queued"] for _, r in moving],
                             left=[r["arrived"] for _, r in moving], height=0.5, color=QUEUE_COLOUR,
                             label=QUEUE_LABEL)
        hand_bars = ax.barh([y for y, _ in moving], [r["handover"] for _, r in moving],
                            left=[r["arrived"] + r["queued"] for _, r in moving], height=0.5,
                            color=HANDOVER_COLOUR, label=HANDOVER_LABEL)
        for (_, row), q_bar, h_bar in zip(moving, queue_bars.patches, hand_bars.patches):
            q_bar.set_gid(f"queued:{row['host']}")
            h_bar.set_gid(f"handover:{row['host']}")
    last, y_last = rows[-1], ys[-1]
    bounced = last["outcome"].startswith("bounced")
    # delivered: the last server's acceptance, as MessageTrace.total counts; bounced: when the bounce was sent
    end = last["ended"] if bounced and last["ended"] is not None else last["arrived"]
    if bounced and end > last["arrived"]:
        bar = ax.barh([y_last], [end - last["arrived"]], left=[last["arrived"]], height=0.5, color="#bbbbbb",
                      label="trying to pass it on, until refused")
        bar.patches[0].set_gid(f"trying:{last['host']}")
    # each arrival: a tick where the server said 250 and took responsibility
    ax.scatter([r["arrived"] for r in rows], ys, marker="|", s=250, color="black", zorder=3,
               label="accepted by this server (250 after DATA)")
    ax.scatter([end], [y_last], marker="X" if bounced else "D", s=90, zorder=4,
               color=BOUNCED_COLOUR if bounced else DELIVERED_COLOUR,
               label="bounced: a report goes back to the sender" if bounced else "delivered into the mailbox")
    span = max([end] + [r["arrived"] + (r["queued"] or 0) + (r["handover"] or 0) for r in rows] + [1.0])
    for y, row in zip(ys, rows):  # write the numbers next to the bars
        if row["handover"] is not None:
            retries = f" ({row['retries']} {'retry' if row['retries'] == 1 else 'retries'})" if row["retries"] else ""
            text = f"queue {_fmt(row['queued'])}{retries}, handover {_fmt(row['handover'])}"
            x = row["arrived"] + row["queued"] + row["handover"]
        else:
            text = row["outcome"] if len(row["outcome"]) <= 48 else row["outcome"][:45] + "..."
            if bounced and row["retries"]:
                text = f"{text} ({row['retries']} {'retry' if row['retries'] == 1 else 'retries'})"
            x = end
        ax.text(x + span * 0.03, y, text, va="center", fontsize=8, color="#333")
    ax.set_yticks(ys, [f"{i}. {r['host']}" for i, r in enumerate(rows, 1)])
    ax.set_xlim(-span * 0.02, span * 1.5)  # room for the numbers on the right
    ax.set_ylim(len(rows) - 0.4, -0.6)  # first hop at the top, as the message travelled
    ax.set_xlabel(f"time since {rows[0]['host']} accepted the message (ms)")
    servers = f"{len(rows)} server{'s' if len(rows) != 1 else ''}"
    ax.set_title(title or (f"Hop by hop: {servers}, {_fmt(end)} from first acceptance to "
                           + ("the bounce" if bounced else "delivery")))
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if owned:
        figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    else:  # drawn on someone else's axes: keep the legend inside them
        ax.legend(loc="lower right", fontsize=7)
    return figure


def _total_ms(trace: Any) -> float:
    rows = segments(trace)
    return sum((r["queued"] or 0) + (r["handover"] or 0) for r in rows[:-1])


def _median_run(runs: Any) -> Any:
    """One trace, or the run with the median end-to-end time of a list of traces (the lower middle one)."""
    if not isinstance(runs, (list, tuple)):
        return runs
    if not runs:
        raise ValueError("an empty list of traces for one chain length")
    ordered = sorted(runs, key=_total_ms)
    return ordered[(len(ordered) - 1) // 2]


def chain_lengths(lengths: Sequence[int], results: Sequence[Any], ax: Axes | None = None, *,
                  title: str | None = None) -> Figure:
    """End-to-end time against the number of relays in the chain (``Lab(relay_chain(n))`` for each n).

    ``results`` holds, in the same order as ``lengths``, one trace per length, or a list
    of traces (several messages sent through the same chain): then the bar shows the run
    with the median end-to-end time, which a single slow first message cannot skew.
    Each bar is stacked: total queue waits (orange) and total handovers (blue). A dotted
    line fits the time each extra relay adds.
    """
    lengths, results = list(lengths), list(results)
    if len(lengths) != len(results):
        raise ValueError(f"{len(lengths)} lengths but {len(results)} results: give one trace (or one list of "
                         "traces) per chain length")
    runs = [len(r) if isinstance(r, (list, tuple)) else 1 for r in results]
    chosen = [_median_run(r) for r in results]
    many = max(runs) > 1
    figure = _stacked(chosen, [str(n) for n in lengths], "relays between smtp.example.org and Bob's MX", ax,
                      title or ("More relays, more time: end-to-end delivery time"
                                + (f" (median of {max(runs)} messages)" if many else "")))
    axes = ax if ax is not None else figure.axes[0]
    totals = [_total_ms(t) for t in chosen]
    if len(set(lengths)) >= 2:
        n = len(lengths)
        mean_x, mean_y = sum(lengths) / n, sum(totals) / n
        sxx = sum((x - mean_x) ** 2 for x in lengths)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(lengths, totals)) / sxx
        intercept = mean_y - slope * mean_x
        positions = list(range(n))
        axes.plot(positions, [intercept + slope * x for x in lengths], linestyle=":", color="#333", zorder=4,
                  label=f"fit: about {slope:.1f} ms more per relay")
        axes.legend(loc="upper left", fontsize=8)
    return figure


def _stacked(traces: list[Any], names: list[str], xlabel: str, ax: Axes | None, title: str) -> Figure:
    figure, ax = _new_axes(ax, (8.0, 4.2))
    positions = list(range(len(traces)))
    queued, handover = [], []
    for trace in traces:
        rows = segments(trace)
        queued.append(sum(r["queued"] or 0 for r in rows if r["handover"] is not None))
        handover.append(sum(r["handover"] or 0 for r in rows))
    q_bars = ax.bar(positions, queued, width=0.6, color=QUEUE_COLOUR, label="waiting in queues (all servers)")
    h_bars = ax.bar(positions, handover, width=0.6, bottom=queued, color=HANDOVER_COLOUR,
                    label="handovers between servers (SMTP sessions)")
    for bar, name in zip(q_bars.patches, names):
        bar.set_gid(f"queued:{name}")
    for bar, name in zip(h_bars.patches, names):
        bar.set_gid(f"handover:{name}")
    top = max([q + h for q, h in zip(queued, handover)] + [1e-3])
    for x, q, h in zip(positions, queued, handover):
        ax.text(x, q + h + top * 0.02, _fmt(q + h), ha="center", va="bottom", fontsize=8, zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9})
    ax.set_xticks(positions, names)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("time from first acceptance to delivery (ms)")
    ax.set_ylim(0, top * 1.15)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", fontsize=8)
    return figure

