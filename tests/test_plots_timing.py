"""The timing plots draw what the transcripts measured: checked on the data the arrows and bars carry.

Most tests build a session by hand, with a known one-way delay and a server clock that runs
a little ahead, so every arrow and bar has one right place; one test runs a real lab with a
delay on the student's link.
"""

from __future__ import annotations

import base64

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from smtplab import Lab, SendResult, plots, timing
from smtplab.httpapi import ApiResult
from smtplab.plots import LabFigure, by_size, compare, ladder, waterfall
from smtplab.timing import exchanges, round_trips
from smtplab.transcript import Entry, Transcript

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOST = "smtp.example.org"
D = 30.0  # ms: the one-way delay of the made-up link
THETA = 2.0  # ms: the server's clock runs this much ahead of the client's

# A STARTTLS submission, line by line: (who sent it, the line, when it left the sender in client-clock ms).
# Each command leaves 0.1 ms after the reply before it arrived; every line takes D to cross.
SCRIPT = [
    ("server", "220 smtp.example.org ESMTP", 0.0),
    ("client", "EHLO me", 30.1),
    ("server", "250-smtp.example.org", 60.2),
    ("server", "250-STARTTLS", 60.2),
    ("server", "250 HELP", 60.2),
    ("client", "STARTTLS", 90.3),
    ("server", "220 Ready to start TLS", 120.4),
    # the TLS handshake: 150.4 -> 210.5 on the client (no SMTP lines)
    ("client", "EHLO me", 210.6),
    ("server", "250-smtp.example.org", 240.7),
    ("server", "250 AUTH PLAIN", 240.7),
    ("client", "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=", 270.8),
    ("server", "235 2.7.0 Authentication successful", 300.9),
    ("client", "MAIL FROM:<alice@example.org>", 331.0),
    ("server", "250 2.1.0 Sender OK", 361.1),
    ("client", "RCPT TO:<bob@example.net>", 391.2),
    ("server", "250 2.1.5 Recipient OK", 421.3),
    ("client", "DATA", 451.4),
    ("server", "354 End data with <CR><LF>.<CR><LF>", 481.5),
    ("client", "Subject: hi", 511.6),
    ("client", "", 511.6),
    ("client", "Hello", 511.6),
    ("client", ".", 511.7),
    ("server", "250 2.0.0 OK: queued as ABCDEF0123", 541.8),
    ("client", "QUIT", 571.9),
    ("server", "221 2.0.0 Bye", 602.0),
]
TLS_CLIENT = 210.5  # the client's "TLS established" (ms)
TLS_FROM = 150.4  # when the 220 to STARTTLS reached the client: the handshake began
CLOSED = 632.1


def entry(t_ms: float, direction: str, line: str, tls: bool, kind: str = "line") -> Entry:
    return Entry(t_ms / 1000, HOST, direction, line, tls, "", kind)


def build(script=SCRIPT) -> tuple[Transcript, Transcript]:
    """Both views of the scripted session: the client's clock, and the server's (THETA ahead)."""
    client = Transcript(HOST, "client", port=587, peer="127.0.0.1:1")
    server = Transcript(HOST, "server", port=587, peer="127.0.0.1:2")
    client.entries.append(entry(0.0, "client", "connecting to smtp.example.org port 587", False, "event"))
    server.entries.append(entry(0.0 + THETA, "client", "connection from 127.0.0.1:2", False, "event"))
    for who, line, sent in script:
        tls = sent > TLS_CLIENT
        mine, theirs = (client, server) if who == "client" else (server, client)
        mine.entries.append(entry(sent + (THETA if mine is server else 0.0), who, line, tls))
        theirs.entries.append(entry(sent + D + (THETA if theirs is server else 0.0), who, line, tls))
    client.entries.append(entry(TLS_CLIENT, "client", "TLS established: TLSv1.3, TLS_AES_256_GCM_SHA384", True, "event"))
    server.entries.append(entry(TLS_CLIENT + D + THETA, "client", "TLS established: TLSv1.3, X", True, "event"))
    client.entries.append(entry(CLOSED, "server", "connection closed", True, "event"))
    for transcript in (client, server):
        transcript.entries.sort(key=lambda e: e.t)
    return client, server


CLIENT, SERVER = build()


def result_of(client: Transcript = CLIENT, server: Transcript | None = SERVER, **kw) -> SendResult:
    fields = {"accepted": ["bob@example.net"], "reply": "250 2.0.0 OK", **kw}
    return SendResult("alice@example.org", ["bob@example.net"], HOST, 587, transcript=client,
                      server_transcript=server, **fields)


def ms(value, tol=1e-6):
    return pytest.approx(value, abs=tol)


def arrows(figure: Figure) -> list[Annotation]:
    return sorted((t for ax in figure.axes for t in ax.texts if (t.get_gid() or "").startswith("arrow:")),
                  key=lambda a: int(a.get_gid().split(":")[1]))


def texts(figure: Figure, prefix: str) -> dict[str, str]:
    return {t.get_gid(): t.get_text() for ax in figure.axes for t in ax.texts if (t.get_gid() or "").startswith(prefix)}


def patches(figure: Figure, prefix: str) -> dict[str, object]:
    return {p.get_gid(): p for ax in figure.axes for p in ax.patches if (p.get_gid() or "").startswith(prefix)}


def lines_sent(direction: str) -> list[float]:
    return [sent for who, _, sent in SCRIPT if who == direction]


# --- exchanges and round trips -----------------------------------------------------------------

def test_exchanges_cut_the_session_into_waits():
    steps = exchanges(CLIENT)
    assert [s["name"] for s in steps] == ["greeting", "EHLO", "STARTTLS", "TLS handshake", "EHLO", "AUTH",
                                          "MAIL FROM", "RCPT TO", "DATA", "message", "QUIT"]
    assert [s["kind"] for s in steps] == ["greeting", "exchange", "exchange", "tls"] + ["exchange"] * 5 + [
        "message", "exchange"]
    # each command: from when it left the client to when the last line of its reply arrived
    assert (steps[0]["start"], steps[0]["end"]) == ms((0.0, D))
    assert (steps[1]["start"], steps[1]["end"]) == ms((30.1, 60.2 + D))
    assert (steps[3]["start"], steps[3]["end"]) == ms((TLS_FROM, TLS_CLIENT)), "the handshake: after 220, until TLS"
    assert (steps[9]["start"], steps[9]["end"]) == ms((511.6, 541.8 + D)), "the message: first line to its 250"
    assert steps[9]["lines"] == 4 and steps[9]["reply"].startswith("250 2.0.0")
    assert [s["tls"] for s in steps[4:]] == [True] * 7
    assert not any(s["tls"] for s in steps[:4])


def test_round_trips_count_the_waits_not_the_greeting():
    assert round_trips(CLIENT) == 10
    assert round_trips(result_of()) == 10, "a send result counts its client transcript"
    assert round_trips([result_of(), CLIENT]) == 20, "a list adds up"
    api = ApiResult(statuses=[202, 202, 202], bodies=[{}] * 3, connect=0.061, requests=[0.06, 0.06, 0.06])
    assert round_trips(api) == 4, "the TLS handshake, then one per request"
    assert [s["name"] for s in exchanges(api)] == ["TLS handshake", "POST /v1/send #1", "POST /v1/send #2",
                                                   "POST /v1/send #3"]
    assert round_trips(ApiResult(error="timed out connecting to smtp.example.org:443")) == 0


def test_an_auth_challenge_and_a_failed_connect_are_named():
    login = [("server", "220 hi", 0.0), ("client", "AUTH LOGIN YWxpY2U=", 30.1), ("server", "334 UGFzc3dvcmQ6", 60.2),
             ("client", "d29uZGVybGFuZA==", 90.3), ("server", "235 2.7.0 OK", 120.4)]
    client, _ = build(login)
    assert [s["name"] for s in exchanges(client)][:3] == ["greeting", "AUTH", "AUTH (answer)"]
    failed = Transcript(HOST, "client", port=587)
    failed.entries = [entry(0.0, "client", "connecting to smtp.example.org port 587", False, "event"),
                      entry(500.0, "client", "Could not connect to smtp.example.org port 587: timed out", False, "event")]
    steps = exchanges(failed)
    assert [(s["name"], s["kind"], s["end"]) for s in steps] == [("connect (failed)", "failed", ms(500.0))]
    assert round_trips(failed) == 0


# --- the ladder --------------------------------------------------------------------------------

def test_ladder_arrows_match_both_transcripts():
    fig = ladder(result_of())  # the send result brings its server transcript along
    drawn = arrows(fig)
    # grouped: one arrow per command, one per (multi-line) reply, one for the message and its dot
    assert len(drawn) == 19
    client_arrows = [a for a in drawn if a.get_gid().endswith(":client")]
    server_arrows = [a for a in drawn if a.get_gid().endswith(":server")]
    assert len(client_arrows) == 9 and len(server_arrows) == 10
    firsts = [SCRIPT[i][2] for i in range(len(SCRIPT)) if SCRIPT[i][0] == "client"
              and not (i and SCRIPT[i - 1][0] == "client")]  # the first line of each client group
    for arrow, sent in zip(client_arrows, firsts):
        assert arrow.xyann == (0, ms(sent)), "a command leaves the client's lifeline when the client sent it"
        assert arrow.xy == (1, ms(sent + D)), "and reaches the server's when the server (its clock aligned) got it"
    replies = [SCRIPT[i][2] for i in range(len(SCRIPT)) if SCRIPT[i][0] == "server"
               and not (i and SCRIPT[i - 1][0] == "server")]
    for arrow, sent in zip(server_arrows, replies):
        assert arrow.xyann == (1, ms(sent)) and arrow.xy == (0, ms(sent + D))
    # time runs down the page
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert bottom > top
    assert "(ms)" in ax.get_ylabel()
    assert "10 round trips" in ax.get_title() and "30.0 ms" in ax.get_title()


def test_ladder_writes_each_line_on_its_arrow():
    labels = list(texts(ladder(result_of()), "label:").values())
    assert labels[:4] == ["220 smtp.example.org ESMTP", "EHLO me", "250 STARTTLS HELP (3 lines)", "STARTTLS"]
    assert 'message (3 lines) and "."' in labels
    assert all(len(text) <= 46 for text in labels), "shortened to fit on an arrow"
    assert any(text.startswith("AUTH PLAIN AGFsaWNl") and text.endswith("…") for text in labels)


def test_ladder_marks_tls_and_events():
    fig = ladder(result_of())
    band = patches(fig, "tls-handshake")["tls-handshake:0"]
    assert (band.get_y(), band.get_height()) == ms((TLS_FROM, TLS_CLIENT - TLS_FROM))
    inside = patches(fig, "encrypted")["encrypted"]
    assert inside.get_y() == ms(TLS_CLIENT)
    events = texts(fig, "event:")
    assert any("TLS established" in text for text in events.values())
    assert any("connect" in text for text in events.values())
    legend = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("client → server" in t for t in legend) and any("TLS handshake" in t for t in legend)


def test_ladder_without_the_server_transcript_takes_half_the_round_trip():
    fig = ladder(CLIENT)
    drawn = arrows(fig)
    assert len(drawn) == 19
    ehlo = drawn[1]
    assert ehlo.xyann == (0, ms(30.1))
    assert ehlo.xy[1] == ms((30.1 + 60.2 + D) / 2), "half way between the command and its reply"
    assert "half the round trip" in fig.axes[0].get_title()


def test_ladder_can_draw_every_line():
    fig = ladder(result_of(), group=False)
    assert len(arrows(fig)) == len(SCRIPT)
    assert sorted(a.xyann[1] for a in arrows(fig) if a.get_gid().endswith(":client")) == ms(sorted(lines_sent("client")))


# --- the waterfall -----------------------------------------------------------------------------

def test_waterfall_bars_are_the_exchanges():
    fig = waterfall(result_of())
    bars = patches(fig, "step:")
    steps = exchanges(CLIENT)
    assert len(bars) == len(steps) == 11
    for i, step in enumerate(steps):
        bar = bars[f"step:{i}:{step['name']}"]
        assert (bar.get_x(), bar.get_width()) == ms((step["start"], step["end"] - step["start"]))
        assert bar.get_y() + bar.get_height() / 2 == ms(i), "one row per step, in order"
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:4] == ["greeting", "EHLO", "STARTTLS", "TLS handshake"]
    assert "(ms)" in ax.get_xlabel()
    assert "10 round trips" in ax.get_title()


def test_waterfall_of_api_calls():
    api = ApiResult(statuses=[202, 202], bodies=[{}, {}], connect=0.08, requests=[0.09, 0.08])
    bars = patches(waterfall(api), "step:")
    assert (bars["step:0:TLS handshake"].get_x(), bars["step:0:TLS handshake"].get_width()) == ms((0.0, 80.0))
    assert (bars["step:2:POST /v1/send #2"].get_x(), bars["step:2:POST /v1/send #2"].get_width()) == ms((170.0, 80.0))


# --- comparisons -------------------------------------------------------------------------------

def test_compare_bars_are_elapsed_times_labelled_with_round_trips():
    api = ApiResult(statuses=[202], bodies=[{}], connect=0.0612, requests=[0.0607])
    failed = Transcript(HOST, "client", port=587)
    failed.entries = [entry(0.0, "client", "connecting to smtp.example.org port 587", False, "event"),
                      entry(500.0, "client", "Could not connect to smtp.example.org port 587: timed out", False, "event")]
    hotel = result_of(failed, None, accepted=[], error="Could not connect: timed out")
    fig = compare({"STARTTLS 587": result_of(), "3 sessions": [result_of()] * 3, "HTTP API": api, "hotel": hotel},
                  rtt_ms=2 * D)
    bars = patches(fig, "total:")
    assert bars["total:STARTTLS 587"].get_height() == ms(CLOSED)
    assert bars["total:3 sessions"].get_height() == ms(3 * CLOSED)
    assert bars["total:HTTP API"].get_height() == ms(121.9)
    assert bars["total:hotel"].get_height() == ms(500.0)
    labels = texts(fig, "roundtrips:")
    assert "10 round trips" in labels["roundtrips:STARTTLS 587"]
    assert "30 round trips" in labels["roundtrips:3 sessions"]
    assert "2 round trips" in labels["roundtrips:HTTP API"]
    assert "0 round trips" in labels["roundtrips:hotel"] and "failed" in labels["roundtrips:hotel"]
    ticks = {line.get_gid(): line.get_ydata()[0] for line in fig.axes[0].get_lines() if line.get_gid()}
    assert ticks["rtt:STARTTLS 587"] == ms(10 * 2 * D), "the tick: round trips × the round-trip time"
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["STARTTLS 587", "3 sessions", "HTTP API", "hotel"]
    assert "(ms)" in ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "SMTP" in legend and "HTTP API" in legend and any("failed" in t for t in legend)
    with pytest.raises(ValueError):
        compare({})


def test_by_size_draws_time_against_size_and_fits_the_rate():
    sizes = [1_000, 51_000, 101_000]
    # 100 ms of round trips, then 2 ms per kB: 4000 kbit/s
    api = [ApiResult(statuses=[202], bodies=[{}], connect=0.05, requests=[0.05 + 0.002 * s / 1000]) for s in sizes]
    fig = by_size(sizes, {"HTTP API": api})
    ax = fig.axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_gid() == "series:HTTP API")
    assert list(line.get_xdata()) == ms([1.0, 51.0, 101.0])
    assert list(line.get_ydata()) == ms([102.0, 202.0, 302.0])
    assert "2.00 ms per kB" in line.get_label() and "4,000 kbit/s" in line.get_label()
    assert "kB" in ax.get_xlabel() and "(ms)" in ax.get_ylabel()
    # a list per size: the median is drawn
    fig = by_size([1_000, 2_000], [[result_of(), CLIENT, result_of()], [CLIENT]])
    assert list(fig.axes[0].get_lines()[-1].get_ydata()) == ms([CLOSED, CLOSED])
    with pytest.raises(ValueError):
        by_size([1, 2, 3], [CLIENT])


# --- every figure is a PNG ---------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: ladder(result_of()),
    lambda: ladder(CLIENT),
    lambda: waterfall(result_of()),
    lambda: compare({"587": result_of(), "API": ApiResult(statuses=[202], bodies=[{}], connect=0.06, requests=[0.06])}),
    lambda: by_size([1_000, 2_000], [CLIENT, result_of()]),
], ids=["ladder", "ladder-client-only", "waterfall", "compare", "by_size"])
def test_each_figure_saves_as_png(make, tmp_path):
    fig = make()
    assert isinstance(fig, LabFigure)
    path = tmp_path / "figure.png"
    fig.savefig(path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert fig._repr_png_().startswith(PNG_SIGNATURE), "a notebook cell shows it as a PNG"


def test_draws_on_axes_it_is_given():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert waterfall(result_of(), ax=left) is fig
    assert ladder(result_of(), ax=right) is fig
    assert len(arrows(fig)) == 19 and len(patches(fig, "step:")) == 11


# --- a real lab, over a link with a delay ------------------------------------------------------

def test_a_real_session_over_a_slow_link(tmp_path):
    with Lab(latency_ms=10, state_dir=tmp_path / "lab") as lab:
        r587 = lab.send("alice@example.org", "carol@example.org", port=587)
        r465 = lab.send("alice@example.org", "carol@example.org", port=465)
        r25 = lab.send("alice@example.org", "carol@example.org", port=25, tls="none")
        api = lab.api_send("alice@example.org", "carol@example.org")
        token = base64.b64encode(b"\0alice\0wonderland").decode()
        with lab.session(HOST, 587) as session:  # two messages in one session, typed by hand
            for line in ["EHLO me", "STARTTLS", "EHLO me", f"AUTH PLAIN {token}"]:
                session.send(line)
            for n in (1, 2):
                for line in ["MAIL FROM:<alice@example.org>", "RCPT TO:<carol@example.org>", "DATA"]:
                    session.send(line)
                session.send(f"Subject: {n}\r\n\r\nHello\r\n.")
            session.send("QUIT")
    assert all(r.ok for r in (r587, r465, r25, api))
    assert [round_trips(r) for r in (r587, r465, r25, api)] == [10, 8, 6, 2]
    assert round_trips(session.transcript) == 5 + 2 * 4 + 1
    for r in (r587, r465, r25):  # each round trip crossed the link twice: at least 20 ms each
        assert r.elapsed * 1000 >= round_trips(r) * 20
    fig = ladder(r587)
    assert len(arrows(fig)) == 19
    assert "server's own transcript" in fig.axes[0].get_title() and "one-way delay about 1" in fig.axes[0].get_title()
    band = patches(fig, "tls-handshake")["tls-handshake:0"]
    assert 19 <= band.get_height() <= 40, "a TLS 1.3 handshake: one round trip"
    crossings = sorted(arrow.xy[1] - arrow.xyann[1] for arrow in arrows(fig))
    assert all(0 < c < 25 for c in crossings), crossings
    assert crossings[len(crossings) // 2] == pytest.approx(10, abs=2), "a line crosses in about the link's delay"
    fig.savefig(tmp_path / "ladder.png")
    assert (tmp_path / "ladder.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("name", ["exchanges", "round_trips", "segments"])
def test_plots_still_offers_the_timing_functions(name):
    assert name in plots.__all__
    assert getattr(plots, name) is getattr(timing, name)
