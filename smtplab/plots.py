"""matplotlib figures of what the lab measured. A plot takes results and draws; it never sends mail.

    from smtplab.plots import hop_times, chain_lengths
    hop_times(lab.trace(result))                 # one message: where its time went, hop by hop
    hop_times([trace0, trace1, trace2])          # several messages: end-to-end time, stacked
    chain_lengths([0, 1, 2], [trace0, trace1, trace2])   # the same, against the number of relays

    from smtplab.plots import ladder, waterfall, compare, by_size, round_trips
    ladder(result)                   # one SMTP session as a sequence diagram, time running down
    waterfall(result)                # the same session as one bar per wait (command and reply)
    compare({"587": r1, "465": r2, "HTTP API": api_result}, rtt_ms=80)   # total times, round trips written on
    by_size([1_000, 50_000], {"SMTP": [r1, r2], "HTTP API": [a1, a2]})   # time against message size
    round_trips(result)              # how many times the client waited for the other side

The numbers come from :mod:`smtplab.timing` (how a trace splits into queue waits and
handovers, how a session splits into round trips); this module only draws them.
``segments``, ``exchanges`` and ``round_trips`` are re-exported here for notebooks
that import them from ``smtplab.plots``.

Figures are made with :class:`matplotlib.figure.Figure`, never with pyplot, so
nothing touches pyplot's global state or the backend: they work headless in
tests and scripts. The figures these functions make show themselves as a PNG
when they are the last value of a notebook cell (``_repr_png_``); ``savefig``
works as usual. Given ``ax=``, a function draws into that axes and returns
``ax.figure`` (a :class:`~matplotlib.figure.SubFigure` if the axes is in one).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Rectangle

from .timing import (
    ROUND_TRIP_KINDS,
    client_transcript,
    elapsed_ms,
    end_to_end_ms,
    exchanges,
    is_api_result,
    ladder_arrows,
    median_run,
    round_trips,
    segments,
    succeeded,
    to_ms,
)

__all__ = ["LabFigure", "by_size", "chain_lengths", "compare", "exchanges", "hop_times", "ladder", "round_trips", "segments",
           "waterfall"]

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


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure | SubFigure, Axes]:
    if ax is not None:
        return ax.figure, ax
    figure = LabFigure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _fmt(ms: float) -> str:
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def hop_times(trace_or_traces: Any, ax: Axes | None = None, *, labels: Sequence[str] | None = None,
              title: str | None = None) -> Figure | SubFigure:
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


def _waterfall(trace: Any, ax: Axes | None, title: str | None) -> Figure | SubFigure:
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


def chain_lengths(lengths: Sequence[int], results: Sequence[Any], ax: Axes | None = None, *,
                  title: str | None = None) -> Figure | SubFigure:
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
    chosen = [median_run(r) for r in results]
    many = max(runs) > 1
    figure = _stacked(chosen, [str(n) for n in lengths], "relays between smtp.example.org and Bob's MX", ax,
                      title or ("More relays, more time: end-to-end delivery time"
                                + (f" (median of {max(runs)} messages)" if many else "")))
    axes = ax if ax is not None else figure.axes[0]
    totals = [end_to_end_ms(t) for t in chosen]
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


def _stacked(traces: list[Any], names: list[str], xlabel: str, ax: Axes | None, title: str) -> Figure | SubFigure:
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


# --- one session: waterfalls, ladders, comparisons -------------------------------------------------
#
# :func:`waterfall` and :func:`ladder` draw the steps :func:`exchanges` finds (each a wait of the
# client), and :func:`compare` and :func:`by_size` set several sessions (or HTTP API calls) side by side.

CLIENT_COLOUR = "#0072B2"  # blue: what the client sends
SERVER_COLOUR = "#D55E00"  # vermillion: what the server sends
TLS_COLOUR = "#009E73"  # green: the TLS handshake, and what travels inside TLS
PLAIN_STEP_COLOUR = "#56B4E9"  # sky blue: an exchange in plain text
TLS_STEP_COLOUR = "#0072B2"  # blue: an exchange inside TLS
GREETING_COLOUR = "#999999"  # grey: waiting for the server to speak first
FAILED_COLOUR = "#D55E00"
SMTP_COLOUR = "#0072B2"
API_COLOUR = "#E69F00"

#: Longest command or reply written on a ladder's arrow (the rest is cut, with an ellipsis).
LABEL_CHARS = 34


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = text.replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step_colour(step: dict[str, Any]) -> str:
    return {"tls": TLS_COLOUR, "greeting": GREETING_COLOUR, "failed": FAILED_COLOUR,
            "unanswered": FAILED_COLOUR}.get(step["kind"], TLS_STEP_COLOUR if step["tls"] else PLAIN_STEP_COLOUR)


def waterfall(session: Any, ax: Axes | None = None, *, title: str | None = None) -> Figure | SubFigure:
    """One bar per step of a session: when the client began to wait, and for how long (ms).

    ``session``: a send result, a client transcript or an HTTP API result (see
    :func:`exchanges`). Top to bottom in the order they happened: the greeting (grey), each
    command with its reply (light blue in plain text, dark blue inside TLS), the TLS handshake
    (green). On a link with a delay every exchange lasts about one round trip, and the bars
    line up like a staircase: the session's time is the sum of its waits.
    """
    steps = exchanges(session)
    owned = ax is None
    figure, ax = _new_axes(ax, (8.0, 1.9 + 0.34 * max(len(steps), 1)))
    if not steps:
        ax.text(0.5, 0.5, "This transcript holds no exchange: nothing to draw.", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    ys = list(range(len(steps)))
    span = max([s["end"] for s in steps] + [1e-3])
    labelled: set[str] = set()
    asked = "request and response" if is_api_result(session) else "command and reply"
    legend_names = {TLS_COLOUR: "TLS handshake", GREETING_COLOUR: "waiting for the server's greeting",
                    PLAIN_STEP_COLOUR: f"{asked} in plain text", TLS_STEP_COLOUR: f"{asked} inside TLS",
                    FAILED_COLOUR: "no answer (failed or cut short)"}
    for y, step in zip(ys, steps):
        colour = _step_colour(step)
        label = legend_names[colour] if colour not in labelled else None
        labelled.add(colour)
        width = step["end"] - step["start"]
        bars = ax.barh([y], [width], left=[step["start"]], height=0.6, color=colour, label=label,
                       hatch="//" if step["kind"] == "tls" else None, edgecolor="white" if step["kind"] == "tls" else None)
        bars.patches[0].set_gid(f"step:{y}:{step['name']}")
        ax.text(step["end"] + span * 0.01, y, _fmt(width), va="center", fontsize=8, color="#333")
    ax.set_yticks(ys, [s["name"] for s in steps])
    ax.set_ylim(len(steps) - 0.4, -0.6)  # first step at the top
    ax.set_xlim(0, span * 1.12)
    ax.set_xlabel("time since the client began to connect (ms)")
    counted = sum(s["kind"] in ROUND_TRIP_KINDS for s in steps)
    what = "HTTP API calls" if is_api_result(session) else "One SMTP session"
    ax.set_title(title or f"{what}, step by step: {counted} round trip{'s' if counted != 1 else ''}, "
                          f"{_fmt(elapsed_ms(session))} in all")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if owned:
        figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    else:
        ax.legend(loc="lower right", fontsize=7)
    return figure


def _group_label(g: dict[str, Any]) -> str:
    """What a ladder writes on an arrow (a group of lines, or an arrow of :func:`ladder_arrows`)."""
    lines = [e.line for e in g["entries"]]
    if len(lines) == 1:
        return _short(lines[0])
    if g["direction"] == "client":  # the message and its final dot
        return f"message ({len(lines) - 1} lines) and \".\""
    code = lines[-1][:3]
    words = [line[4:].split(" ", 1)[0] for line in lines[1:]]  # a multi-line reply: its keywords (EHLO's extensions)
    return _short(f"{code} {' '.join(w for w in words if w)}") + f" ({len(lines)} lines)"


def ladder(transcript: Any, ax: Axes | None = None, server_transcript: Any = None, *, group: bool = True,
           title: str | None = None) -> Figure | SubFigure:
    """A sequence (ladder) diagram of one SMTP session: time runs down the page, in ms.

    ``transcript`` is the client's view (a send result, whose own server transcript is then
    used too, or a client transcript). The client's lifeline is on the left, the server's on
    the right; each line is an arrow from the one who sent it to the one who received it,
    with the command or reply written on it (shortened). With ``group=True`` a multi-line
    reply is one arrow, and so is the message with its final dot. The TLS handshake is a
    hatched green band, everything inside TLS lies on a green background, and events
    (connecting, TLS established, closing) are marked on the lifeline that recorded them.

    Where the arrows end on the far side: the client's transcript says when the client sent
    and received each line, not when the server did. With the server's transcript (passed as
    ``server_transcript``, or taken from a send result), the same lines are matched in both,
    and the two clocks are aligned as NTP does: assuming the delay is the same both ways, the
    shortest trip client to server and the shortest trip server to client give the clocks'
    offset; each arrow then ends where the server's own record puts it. Without it, each
    command is taken to reach the server half way through its round trip (and its reply to
    leave then), and other lines take half the median round trip.
    """
    if server_transcript is None and hasattr(transcript, "server_transcript") and not hasattr(transcript, "entries"):
        server_transcript = transcript.server_transcript
    session = client_transcript(transcript)
    arrows, info = ladder_arrows(session, server_transcript, group)
    steps = exchanges(session)
    owned = ax is None
    height = min(14.0, max(5.0, 2.4 + 0.3 * len(arrows)))
    figure, ax = _new_axes(ax, (9.0, height))
    times = [a[k] for a in arrows for k in ("sent", "received")] + [to_ms(e.t) for e in session]
    top, bottom = min(times + [0.0]), max(times + [1e-3])
    span = max(bottom - top, 1e-3)

    # TLS: the handshake as a hatched band, then a green background while lines travel inside TLS
    handshakes = [s for s in steps if s["kind"] == "tls"]
    for k, s in enumerate(handshakes):
        ax.add_patch(Rectangle((0, s["start"]), 1, s["end"] - s["start"], facecolor=TLS_COLOUR, alpha=0.25,
                               hatch="//", edgecolor=TLS_COLOUR, linewidth=0, gid=f"tls-handshake:{k}",
                               label="TLS handshake (no SMTP lines)" if k == 0 else None, zorder=1))
        ax.text(0.5, (s["start"] + s["end"]) / 2, f"TLS handshake: {_fmt(s['end'] - s['start'])}", ha="center",
                va="center", fontsize=8, color="#004d38", zorder=5,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": TLS_COLOUR, "alpha": 0.9})
    if handshakes:
        start = handshakes[0]["end"]
        ax.add_patch(Rectangle((0, start), 1, bottom - start, facecolor=TLS_COLOUR, alpha=0.07, linewidth=0,
                               gid="encrypted", label="inside TLS: encrypted on the network", zorder=0))

    # the lifelines
    lifelines = [ax.plot([x, x], [top, bottom], color="#444", linewidth=1.5, zorder=2)[0] for x in (0, 1)]
    client_name = "client" + (f" ({session.client})" if getattr(session, "client", "") else " (your program)")
    port = getattr(session, "port", None)
    server_name = f"server: {session.host}" + (f" port {port}" if port else "")
    for x, name in ((0, client_name), (1, server_name)):
        ax.text(x, 1.005, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=9,
                fontweight="bold")

    # the arrows, and what they carry written on them
    label_ys = []
    for i, a in enumerate(arrows):
        x0, x1 = (0, 1) if a["direction"] == "client" else (1, 0)
        colour = CLIENT_COLOUR if a["direction"] == "client" else SERVER_COLOUR
        arrow = ax.annotate("", xy=(x1, a["received"]), xytext=(x0, a["sent"]), zorder=4,
                            arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.3,
                                        "shrinkA": 0, "shrinkB": 0})
        arrow.set_gid(f"arrow:{i}:{a['direction']}")
        label_ys.append((a["sent"] + a["received"]) / 2)
    axes_height = max(height - 2.0, 1.0)  # inches the axes get, roughly (title, headers and legend take the rest)
    gap = span * 1.12 * 0.15 / axes_height  # a label is about 0.15 inch high
    placed: list[float] = []
    for y in label_ys:  # keep labels from piling up (on a link without delay, lines come close together)
        placed.append(max(y, placed[-1] + gap) if placed else y)
    for i, (a, y, want) in enumerate(zip(arrows, placed, label_ys)):
        colour = CLIENT_COLOUR if a["direction"] == "client" else SERVER_COLOUR
        label_x = 0.42 if a["direction"] == "client" else 0.58
        if abs(y - want) > gap * 0.5:  # moved away from its arrow: a thin line back to it
            ax.plot([label_x, 0.5], [y, want], color="#aaa", linewidth=0.6, zorder=3)
        ax.text(label_x, y, _group_label(a), ha="center", va="center", fontsize=7.5, color=colour, zorder=6, gid=f"label:{i}",
                fontfamily="monospace",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    bottom = max([bottom] + [y + gap for y in placed])

    # events: on the lifeline of the side that recorded them (those at the same moment share one mark)
    marked = [(0, to_ms(e.t), _event_name(e.line)) for e in session if e.kind == "event"]
    if server_transcript is not None and info["how"] == "server transcript":
        marked += [(1, to_ms(e.t) - info["offset"], _event_name(e.line)) for e in server_transcript if e.kind == "event"]
    merged: list[list[Any]] = []
    for x, y, text in marked:
        same = next((m for m in merged if m[0] == x and abs(m[1] - y) < gap), None)
        if same is not None:
            same[2] += f", {text}"
        else:
            merged.append([x, y, text])
    for k, (x, y, text) in enumerate(merged):
        ax.plot([x], [y], marker="D", markersize=5, color="#333", zorder=5, label="event (not an SMTP line)" if k == 0 else None)
        ax.text(x - 0.03 if x == 0 else x + 0.03, y, text, ha="right" if x == 0 else "left", va="center",
                fontsize=7.5, color="#333", gid=f"event:{k}")
    if merged:
        bottom = max([bottom] + [y for _, y, _ in merged])
    for line in lifelines:
        line.set_ydata([top, bottom])

    ax.plot([], [], color=CLIENT_COLOUR, linewidth=1.3, label="client → server")
    ax.plot([], [], color=SERVER_COLOUR, linewidth=1.3, label="server → client")
    ax.set_xlim(-0.42, 1.42)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_ylim(bottom + span * 0.03, top - span * 0.03)  # time runs down
    ax.set_ylabel("time since the client began to connect (ms)  ↓")
    ax.grid(axis="y", alpha=0.25)
    counted = sum(s["kind"] in ROUND_TRIP_KINDS for s in steps)
    where = "server ends placed from the server's own transcript" if info["how"] == "server transcript" else \
        "server ends estimated (half the round trip)"
    second = f"one-way delay about {_fmt(info['delay'])}; {where}" if arrows else "no SMTP line was exchanged"
    ax.set_title(title or f"Ladder diagram of one SMTP session: {counted} round trips, {_fmt(to_ms(session.duration))}\n"
                          f"{second}", fontsize=10, pad=24)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: ("→" not in labels[k], k))
    handles, labels = [handles[k] for k in order], [labels[k] for k in order]
    if owned:
        figure.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    else:
        ax.legend(handles, labels, loc="lower right", fontsize=7)
    return figure


def _event_name(text: str) -> str:
    low = text.lower()
    if low.startswith("tls established"):
        return "TLS established"
    if low.startswith(("connecting", "connected")):
        return "connect"
    if low.startswith("connection from"):
        return "connection accepted"
    if low.startswith("connection closed"):
        return "closed"
    if low.startswith("could not connect"):
        return "could not connect"
    return _short(text, 22)


def compare(results: dict[str, Any], ax: Axes | None = None, *, rtt_ms: float | None = None,
            title: str | None = None) -> Figure | SubFigure:
    """Total time of each variant as a bar, with its number of round trips written on it.

    ``results`` maps a name to a send result, a client transcript, an HTTP API result, or a
    list of these (several messages: their times and round trips add up), for example
    ``{"plain 25": r1, "STARTTLS 587": r2, "implicit TLS 465": r3, "HTTP API": api}``.
    SMTP bars are blue, HTTP API bars orange; a variant that failed (a refusal, a time-out)
    is hatched and says so. With ``rtt_ms`` (the link's round trip, twice its one-way delay)
    a black tick on each bar marks round trips × ``rtt_ms``: how much of the time the round
    trips alone explain. Round trips are counted by :func:`round_trips`.
    """
    if not results:
        raise ValueError("nothing to compare: give {name: result, ...}")
    names = list(results)
    figure, ax = _new_axes(ax, (max(6.0, 1.6 * len(names) + 2.0), 4.6))
    positions = list(range(len(names)))
    heights = [elapsed_ms(results[n]) for n in names]
    trips = [round_trips(results[n]) for n in names]
    top = max(heights + [1e-3])
    seen: set[str] = set()
    for x, name, h, n in zip(positions, names, heights, trips):
        item = results[name]
        first = item[0] if isinstance(item, (list, tuple)) and item else item
        api = is_api_result(first)
        ok = succeeded(item)
        kind = ("HTTP API" if api else "SMTP") + ("" if ok else ": failed")
        bar = ax.bar([x], [h], width=0.6, color=(API_COLOUR if api else SMTP_COLOUR) if ok else "#cccccc",
                     hatch=None if ok else "xx", edgecolor=None if ok else "#777",
                     label=kind if kind not in seen else None)
        seen.add(kind)
        bar.patches[0].set_gid(f"total:{name}")
        text = f"{_fmt(h)}\n{n} round trip{'s' if n != 1 else ''}" + ("" if ok else "\n(failed)")
        ax.text(x, h + top * 0.02, text, ha="center", va="bottom", fontsize=8.5, gid=f"roundtrips:{name}",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.9})
        if rtt_ms:
            ax.plot([x - 0.3, x + 0.3], [n * rtt_ms] * 2, color="black", linewidth=2.2, zorder=4, gid=f"rtt:{name}",
                    label=f"round trips × {rtt_ms:g} ms (the time of one round trip)" if x == 0 else None)
    ax.set_xticks(positions, ["\n".join(textwrap.fill(part, 24) for part in n.split("\n")) for n in names])
    ax.set_ylabel("time from connecting to the end (ms)")
    ax.set_ylim(0, top * 1.28)
    ax.set_title(title or "Time to send, and the round trips it took")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper right", fontsize=8)
    return figure


def by_size(sizes: Sequence[float], results: Any, ax: Axes | None = None, *, title: str | None = None) -> Figure | SubFigure:
    """Time to send against the size of the message (on a link with a bandwidth limit, size costs time).

    ``sizes`` are message sizes in bytes. ``results`` holds one result per size (a send
    result, client transcript or HTTP API result, or a list of them: then the median time is
    drawn), or a dict ``{name: [one per size]}`` for several series, e.g. SMTP and the HTTP
    API. A dotted line fits each series: its slope is what each extra kilobyte costs, and the
    legend turns it into the rate the link really gave (kbit/s).
    """
    sizes = list(sizes)
    series = dict(results) if isinstance(results, dict) else {"time to send": list(results)}
    figure, ax = _new_axes(ax, (8.0, 4.6))
    colours = [SMTP_COLOUR, API_COLOUR, TLS_COLOUR, SERVER_COLOUR, "#CC79A7"]
    kb = [s / 1000 for s in sizes]
    for k, (name, runs) in enumerate(series.items()):
        runs = list(runs)
        if len(runs) != len(sizes):
            raise ValueError(f"{name!r}: {len(runs)} results for {len(sizes)} sizes: give one result (or list) per size")
        times = []
        for run in runs:
            values = sorted(elapsed_ms(r) for r in run) if isinstance(run, (list, tuple)) else [elapsed_ms(run)]
            times.append(values[(len(values) - 1) // 2])
        colour = colours[k % len(colours)]
        label = name
        if len(set(kb)) >= 2:
            n = len(kb)
            mx, my = sum(kb) / n, sum(times) / n
            slope = sum((x - mx) * (y - my) for x, y in zip(kb, times)) / sum((x - mx) ** 2 for x in kb)
            intercept = my - slope * mx
            rate = f", about {8000 / slope:,.0f} kbit/s" if slope > 0 else ""
            label = f"{name}: {intercept:.0f} ms + {slope:.2f} ms per kB{rate}"
            ax.plot([min(kb), max(kb)], [intercept + slope * min(kb), intercept + slope * max(kb)], linestyle=":",
                    color=colour, linewidth=1.2, gid=f"fit:{name}")
        line, = ax.plot(kb, times, marker="o", color=colour, label=label, linewidth=1.5)
        line.set_gid(f"series:{name}")
    ax.set_xlabel("message size (kB, 1 kB = 1000 bytes)")
    ax.set_ylabel("time to send (ms)")
    ax.set_ylim(0, None)
    ax.set_xlim(0, None)
    ax.set_title(title or "Bigger messages take longer on a slow link")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return figure
