"""Where the time went, worked out from what the lab recorded: no drawing, and no matplotlib.

Two kinds of record, two kinds of answer:

* A message's trace across relays (:class:`smtplab.journal.MessageTrace`): each hop
  *arrived* when that server accepted the message (its 250 after DATA), then the
  message *waited in its queue* until the server set off for the next hop, then the
  *handover* (connect, EHLO, STARTTLS, MAIL, RCPT, DATA) lasted until the next server
  accepted it. Queue waits plus handovers add up exactly to the end-to-end time:
  :func:`segments`.
* One SMTP session's client transcript: its time is mostly waiting, since the client
  sends a command and can do nothing until the reply has crossed the network back.
  :func:`exchanges` cuts the transcript into those waits, :func:`round_trips` counts
  them, and :func:`ladder_arrows` places each line's departure and arrival, aligning
  the server's clock with the client's when the server's transcript is at hand.

Everything is in milliseconds. :mod:`smtplab.plots` draws these numbers; kept apart so
that widgets, checks and scripts can measure without importing matplotlib.
"""

from __future__ import annotations

import difflib
import itertools
from typing import Any

__all__ = [
    "ROUND_TRIP_KINDS",
    "client_transcript",
    "elapsed_ms",
    "end_to_end_ms",
    "exchanges",
    "is_api_result",
    "ladder_arrows",
    "median_run",
    "round_trips",
    "segments",
    "succeeded",
    "to_ms",
]

#: The kinds of step (see :func:`exchanges`) that each cost the client one round trip.
ROUND_TRIP_KINDS = ("tls", "exchange", "message")

_STEP_NAMES = {"MAIL": "MAIL FROM", "RCPT": "RCPT TO"}


def to_ms(seconds: float) -> float:
    """Seconds, as transcripts and traces store time, in milliseconds, as every plot shows it."""
    return seconds * 1000.0


# --- a message's trace, hop by hop ----------------------------------------------------------------

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
        arrived = to_ms(hop.arrived - start)
        nxt = hops[i + 1] if i + 1 < len(hops) else None
        until = nxt.arrived if nxt is not None else float("inf")
        mine = [e for e in events if e.host == hop.host and hop.arrived <= e.time <= until]
        queued = handover = ended = None
        if nxt is not None:
            left = hop.left if hop.left is not None else hop.arrived
            left = min(max(left, hop.arrived), nxt.arrived)  # clocks of one process: only guard rounding
            queued = to_ms(left - hop.arrived)
            handover = to_ms(nxt.arrived - left)
        else:
            final = [e.time for e in mine if e.event in ("delivered", "bounced")]
            ended = to_ms(max(final) - start) if final else None
        out.append({"host": hop.host, "arrived": arrived, "queued": queued, "handover": handover,
                    "retries": sum(e.event == "deferred" for e in mine), "ended": ended,
                    "outcome": hop.outcome})
    return out


def end_to_end_ms(trace: Any) -> float:
    """A trace's time from the first server's acceptance to the last one's: its queue waits plus handovers."""
    rows = segments(trace)
    return sum((r["queued"] or 0) + (r["handover"] or 0) for r in rows[:-1])


def median_run(runs: Any) -> Any:
    """One trace, or the run with the median end-to-end time of a list of traces (the lower middle one)."""
    if not isinstance(runs, (list, tuple)):
        return runs
    if not runs:
        raise ValueError("an empty list of traces for one chain length")
    ordered = sorted(runs, key=end_to_end_ms)
    return ordered[(len(ordered) - 1) // 2]


# --- one SMTP session, wait by wait ---------------------------------------------------------------

def is_api_result(item: Any) -> bool:
    """Whether ``item`` is an HTTP API result (:class:`smtplab.httpapi.ApiResult`) rather than an SMTP one."""
    return all(hasattr(item, name) for name in ("statuses", "requests", "connect"))


def client_transcript(item: Any) -> Any:
    """The client's transcript of a send result, or the transcript itself."""
    transcript = getattr(item, "transcript", None) if not hasattr(item, "entries") else item
    if transcript is None:
        raise ValueError(f"{type(item).__name__} carries no transcript to draw")
    return transcript


def _short(text: str, limit: int) -> str:
    text = text.replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _final_reply_line(line: str) -> bool:
    """The last line of a reply: "250 OK" (code, space), not "250-SIZE" (code, dash: more follows)."""
    return len(line) < 4 or line[3] != "-"


def exchanges(session: Any) -> list[dict[str, Any]]:
    """The steps of one session, each a wait of the client, in milliseconds on the transcript's clock.

    ``session`` is a send result, a client :class:`~smtplab.transcript.Transcript` (for
    example a hand-typed ``lab.session(...)``'s), or an HTTP API result. One dict per step:

    * ``name``: ``greeting``, ``TLS handshake``, the command (``EHLO``, ``STARTTLS``, ``AUTH``,
      ``MAIL FROM``, ``RCPT TO``, ``DATA``, ``QUIT``...), ``message`` (the message's lines and
      the final dot), ``AUTH (answer)`` (a line answering a 334 challenge), or ``POST /v1/send``;
    * ``start`` and ``end``: when the client sent the command (or began to wait) and when the
      last line of the reply arrived, in ms since the transcript began (the client's connect);
    * ``kind``: ``greeting`` (waiting for the server to speak first: the client sent nothing),
      ``tls`` (the TLS handshake), ``exchange`` (a command and its reply), ``message`` (the
      message, then its reply), ``unanswered`` (no reply before the session ended) or
      ``failed`` (the connection could not be made);
    * ``tls`` (whether the step travelled inside TLS), ``command`` (the client's first line),
      ``reply`` (the reply's last line) and ``lines`` (how many lines the client sent).

    Each ``tls``, ``exchange`` and ``message`` step is one round trip: see :func:`round_trips`.
    """
    if is_api_result(session):
        return _api_exchanges(session)
    entries = list(client_transcript(session))
    steps: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    connected: float | None = None
    tls_from: float | None = None  # when a TLS handshake began (after STARTTLS's 220, or at connect)
    in_message = False

    def last_end() -> float:
        return steps[-1]["end"] if steps else (connected if connected is not None else 0.0)

    for e in entries:
        ms = to_ms(e.t)
        if e.kind == "event":
            low = e.line.lower()
            if connected is None and low.startswith("connect"):  # connecting to / connected to / connection from
                connected = ms
            elif low.startswith("tls established"):
                start = tls_from if tls_from is not None else last_end()
                steps.append({"name": "TLS handshake", "start": start, "end": ms, "kind": "tls", "tls": False,
                              "command": "", "reply": e.line, "lines": 0})
                tls_from = None
            elif low.startswith("could not connect"):
                steps.append({"name": "connect (failed)", "start": connected or 0.0, "end": ms, "kind": "failed",
                              "tls": False, "command": "", "reply": e.line, "lines": 0})
            continue
        if e.direction == "client":
            if pending is None:
                previous = steps[-1]["reply"][:3] if steps else ""
                if in_message:
                    name, kind = "message", "message"
                elif previous == "334":
                    name, kind = "AUTH (answer)", "exchange"
                else:
                    verb = e.line.split(" ", 1)[0].split(":", 1)[0].upper()
                    name, kind = _STEP_NAMES.get(verb, _short(verb, 12) or "(empty line)"), "exchange"
                pending = {"name": name, "start": ms, "end": ms, "kind": kind, "tls": e.tls, "command": e.line,
                           "reply": "", "lines": 0, "names": [], "finals": 0}
            elif pending["kind"] == "exchange" and not pending["finals"]:  # pipelined (RFC 2920): one wait for all
                verb = e.line.split(" ", 1)[0].split(":", 1)[0].upper()
                pending["names"].append(_STEP_NAMES.get(verb, _short(verb, 12)))
            pending["lines"] += 1
            if in_message and e.line == ".":
                in_message = False
            continue
        # a line from the server
        if pending is None:  # it speaks unasked: the greeting (or a 421 before it hangs up)
            pending = {"name": "greeting" if not any(s["kind"] != "tls" for s in steps) else "(unasked reply)",
                       "start": last_end(), "end": ms, "kind": "greeting", "tls": e.tls, "command": "", "reply": "",
                       "lines": 0}
        if _final_reply_line(e.line):
            pending.update(end=ms, reply=e.line)
            pending["finals"] = pending.get("finals", 0) + 1
            if pending["kind"] == "exchange" and pending["finals"] <= len(pending.get("names", ())):
                continue  # a pipelined group: its step ends with the reply to its last command
            if pending.get("names"):
                pending["name"] = " + ".join([pending["name"], *pending["names"]]) + " (pipelined)"
            pending.pop("names", None)
            pending.pop("finals", None)
            steps.append(pending)
            if pending["kind"] == "exchange" and pending["name"] == "STARTTLS" and e.line.startswith("220"):
                tls_from = ms
            in_message = pending["kind"] == "exchange" and e.line.startswith("354")
            pending = None
    if pending is not None:  # the session ended while the client waited
        pending.pop("names", None)
        pending.pop("finals", None)
        pending.update(end=to_ms(entries[-1].t) if entries else pending["start"], kind="unanswered")
        steps.append(pending)
    return steps


def _api_exchanges(result: Any) -> list[dict[str, Any]]:
    if not result.requests and not result.connect:
        return [{"name": "connect (failed)", "start": 0.0, "end": 0.0, "kind": "failed", "tls": False,
                 "command": "", "reply": result.error, "lines": 0}]
    steps = [{"name": "TLS handshake", "start": 0.0, "end": to_ms(result.connect), "kind": "tls", "tls": False,
              "command": "", "reply": "", "lines": 0}]
    t = result.connect
    many = len(result.requests) > 1
    for i, took in enumerate(result.requests):
        status = result.statuses[i] if i < len(result.statuses) else None
        steps.append({"name": "POST /v1/send" + (f" #{i + 1}" if many else ""), "start": to_ms(t), "end": to_ms(t + took),
                      "kind": "exchange", "tls": True, "command": "POST /v1/send HTTP/1.1",
                      "reply": f"HTTP/1.1 {status}" if status else "", "lines": 1})
        t += took
    return steps


def round_trips(result: Any) -> int:
    """How many times the client sent something and had to wait for the answer before going on.

    SMTP (a send result or a client transcript): each command (or message) the client waited
    a reply for, plus each TLS handshake (one round trip with TLS 1.3). The greeting is not
    counted: the client sends nothing to get it. An HTTP API result: the connection's TLS
    handshake plus one per request. A list: the sum of its items.

    The lab's links do not delay the TCP handshake (the kernel answers it locally), so it is not
    counted here; on a real network every new connection costs one more round trip for it.
    """
    if isinstance(result, (list, tuple)):
        return sum(round_trips(r) for r in result)
    return sum(step["kind"] in ROUND_TRIP_KINDS for step in exchanges(result))


def elapsed_ms(result: Any) -> float:
    """How long a send result, client transcript or HTTP API result took, end to end; a list adds up."""
    if isinstance(result, (list, tuple)):
        return sum(elapsed_ms(r) for r in result)
    if is_api_result(result) or hasattr(result, "elapsed"):
        return to_ms(result.elapsed)
    return to_ms(client_transcript(result).duration)


def succeeded(result: Any) -> bool:
    """Whether a result (or every result of a list) went through: by its ``ok``, else by its exchanges."""
    if isinstance(result, (list, tuple)):
        return all(succeeded(r) for r in result)
    if hasattr(result, "ok"):
        return bool(result.ok)
    return not any(s["kind"] in ("failed", "unanswered") for s in exchanges(result))


# --- a ladder: when each line left one side and reached the other ----------------------------------

def _groups(transcript: Any, group: bool) -> list[dict[str, Any]]:
    """The transcript's lines as arrows: one per line, or (``group``) one per reply and one per message.

    Each group: ``direction``, ``entries`` (the lines), ``tls``. Grouped, a multi-line reply
    (``250-...`` up to ``250 ...``) is one arrow, and so are the message's lines with the final dot.
    """
    out: list[dict[str, Any]] = []
    in_message = False
    open_group: dict[str, Any] | None = None
    for e in transcript:
        if e.kind != "line":
            open_group = None
            continue
        if e.direction == "server":
            if group and open_group is not None and open_group["direction"] == "server":
                open_group["entries"].append(e)
            else:
                open_group = {"direction": "server", "entries": [e], "tls": e.tls}
                out.append(open_group)
            if _final_reply_line(e.line):
                in_message = e.line.startswith("354")
                open_group = None
            continue
        if group and in_message and open_group is not None and open_group["direction"] == "client":
            open_group["entries"].append(e)
        else:
            open_group = {"direction": "client", "entries": [e], "tls": e.tls}
            out.append(open_group)
        if not (group and in_message) or e.line == ".":
            in_message = False if e.line == "." else in_message
            open_group = None
    return out


def _match(client: Any, server: Any) -> dict[int, float]:
    """id(client entry) -> the time (ms, server clock) of the same line in the server's transcript."""
    mine = [e for e in client if e.kind == "line"]
    theirs = [e for e in server if e.kind == "line"]
    matcher = difflib.SequenceMatcher(a=[(e.direction, e.line) for e in mine],
                                      b=[(e.direction, e.line) for e in theirs], autojunk=False)
    found = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            found[id(mine[block.a + k])] = to_ms(theirs[block.b + k].t)
    return found


def _clock_offset(client: Any, matched: dict[int, float]) -> tuple[float, float] | None:
    """(offset, one-way delay) in ms: server clock = client clock + offset, as NTP estimates it.

    A line the client sent reaches the server a one-way delay later; a line the server sent
    reaches the client a one-way delay later. If the delay is the same both ways (as on the
    lab's links), the shortest trip each way gives both the delay and the clocks' offset.
    """
    up = [matched[id(e)] - to_ms(e.t) for e in client if e.kind == "line" and e.direction == "client" and id(e) in matched]
    down = [to_ms(e.t) - matched[id(e)] for e in client if e.kind == "line" and e.direction == "server" and id(e) in matched]
    if not up or not down:
        return None
    return (min(up) - min(down)) / 2, (min(up) + min(down)) / 2


def ladder_arrows(transcript: Any, server_transcript: Any = None,
                  group: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Where each arrow of a ladder starts and ends, in ms on the client's clock.

    Returns (arrows, info). Each arrow: ``direction`` (who sent it), ``sent`` and ``received``
    (ms), ``entries`` (the transcript lines it carries), ``tls``, ``lines``. ``info``: ``offset`` (server clock minus client
    clock, ms), ``delay`` (the one-way delay used or estimated, ms) and ``how`` ("server
    transcript" or "half the round trip").
    """
    groups = _groups(transcript, group)
    matched = _match(transcript, server_transcript) if server_transcript is not None else {}
    aligned = _clock_offset(transcript, matched) if matched else None
    arrows: list[dict[str, Any]] = []
    if aligned is not None:
        offset, delay = aligned
        how = "server transcript"
    else:
        offset, how = 0.0, "half the round trip"
        trips = [(to_ms(b["entries"][-1].t) - to_ms(a["entries"][-1].t))
                 for a, b in itertools.pairwise(groups) if a["direction"] == "client" and b["direction"] == "server"]
        trips.sort()
        delay = trips[(len(trips) - 1) // 2] / 2 if trips else 0.0
    for i, g in enumerate(groups):
        first = g["entries"][0]
        own = to_ms(first.t)  # the client's time: when it sent this (client) or when it received it (server)
        other = matched.get(id(first)) if aligned is not None else None
        if other is not None:
            far = other - offset
        elif g["direction"] == "client":
            nxt = groups[i + 1] if i + 1 < len(groups) else None
            if aligned is None and nxt is not None and nxt["direction"] == "server":
                far = (to_ms(g["entries"][-1].t) + to_ms(nxt["entries"][-1].t)) / 2  # half way through the round trip
            else:
                far = own + delay
        else:
            prev = groups[i - 1] if i else None
            if aligned is None and prev is not None and prev["direction"] == "client":
                far = (to_ms(prev["entries"][-1].t) + to_ms(g["entries"][-1].t)) / 2
            else:
                far = own - delay
        sent, received = (own, far) if g["direction"] == "client" else (far, own)
        arrows.append({"direction": g["direction"], "sent": sent, "received": received, "entries": g["entries"],
                       "tls": g["tls"], "lines": len(g["entries"])})
    return arrows, {"offset": offset, "delay": delay, "how": how}
