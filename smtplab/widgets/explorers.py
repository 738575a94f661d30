"""MXExplorer, ChainExplorer and PortExplorer: ask the lab a question with a few clicks, and see why."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from .common import (
    LEGEND,
    LabWidget,
    _box,
    _error_text,
    _not_running_text,
    _notice,
    _replace_options,
    render_entries,
)

RECORD_TYPES = ("MX", "A", "AAAA", "TXT", "CNAME")

_VERDICT_STYLE = {
    "ok": "border-left:4px solid #009E73;background:#eef8f3",
    "temporary": "border-left:4px solid #E69F00;background:#fdf5e6",
    "permanent": "border-left:4px solid #D55E00;background:#fbeee8",
    "info": "border-left:4px solid #999;background:#f5f5f5",
}


def _verdict_box(kind: str, title: str, text: str) -> str:
    return (f'<div class="smtplab-verdict smtplab-{kind}" style="{_VERDICT_STYLE[kind]};padding:4px 8px;'
            f'margin:6px 0"><b>{html.escape(title)}</b> {text}</div>')


def mx_verdict(lookup: Any) -> tuple[str, str]:
    """(kind, HTML) saying what a sending server does with an :class:`~smtplab.mx.MXLookup`.

    kind is "ok" (deliverable), "temporary" (queue it and retry) or "permanent" (bounce).
    """
    if lookup.ok:
        order = " then ".join(f"<code>{html.escape(h.name)}</code> ({h.preference})" for h in lookup.hosts
                              if h.addresses)
        return "ok", _verdict_box("ok", "Deliverable:", f"a sending server connects to port 25 of {order}, "
                                  "in that order, until one accepts the message.")
    reply = f"<br>The reply it records: <code>{html.escape(lookup.reply)}</code>" if lookup.reply else ""
    error = html.escape(lookup.error[:1].upper() + lookup.error[1:])
    if lookup.permanent:
        return "permanent", _verdict_box(
            "permanent", "Permanent failure: bounce.",
            f"{error}. Retrying cannot help, so the sending server returns the message "
            f"to its sender at once.{reply}")
    return "temporary", _verdict_box(
        "temporary", "Temporary failure: try again later.",
        f"{error}. The answer may be different in a minute, so the sending server keeps "
        f"the message in its queue and retries.{reply}")


def _dig_note(answer: Any) -> str:
    """One plain sentence about a dig answer that is not about MX."""
    if answer.response is None:
        return "No reply at all: the DNS server did not answer in time (a temporary problem)."
    status = answer.status
    if status == "NXDOMAIN":
        return f"NXDOMAIN: the name {answer.name} does not exist at all."
    if status == "SERVFAIL":
        return "SERVFAIL: the DNS server could not answer for now (a temporary problem)."
    if status != "NOERROR":
        return f"The DNS server answered {status}."
    records = answer.records()
    if not records:
        return (f"NOERROR with an empty answer (NODATA): {answer.name} exists, but has no {answer.rdtype} "
                "record.")
    return f"{len(records)} record{'s' if len(records) != 1 else ''}: " + ", ".join(records)


class MXExplorer(LabWidget, widgets.VBox):
    """Ask the lab DNS about a domain, and see what a sending server would do with the answer.

    Pick a domain in ``choices`` (the lab's domains) or type any name in ``domain``,
    choose a record type in ``rdtype`` and click ``lookup_button`` (or press Enter
    in the box). ``output`` (HTML) shows the dig-style answer and, for MX, the
    lookup's steps, the hosts in the order they will be tried, and the verdict:
    deliverable, temporary failure (queue and retry) or permanent failure (bounce,
    with the reply code). ``last_dig`` and ``last_mx`` keep the last answers. The
    starting ``domain`` is looked up as soon as the widget is made. If its lab stops
    because a newer ``Lab()`` replaced it, the next look-up asks the newer lab.
    """

    about = "ask the lab DNS about a domain, and see what a sending server does"

    def __init__(self, lab: Any, domain: str = "example.net", rdtype: str = "MX") -> None:
        self.lab = lab
        self.last_dig: Any = None
        self.last_mx: Any = None
        options = self._domain_options()
        values = [v for _label, v in options]
        self.choices = widgets.Dropdown(options=options, value=domain if domain in values else "",
                                        description="Domain:", layout=widgets.Layout(width="36em"))
        self.domain = widgets.Text(value=domain, description="Name:",
                                   placeholder="any name, e.g. nowhere.example or mx1.example.net",
                                   layout=widgets.Layout(width="28em"))
        self.rdtype = widgets.Dropdown(options=list(RECORD_TYPES), value=rdtype if rdtype in RECORD_TYPES else "MX",
                                       description="Type:", layout=widgets.Layout(width="12em"))
        self.lookup_button = widgets.Button(description="Look up", button_style="primary", icon="search",
                                            layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML()
        self.choices.observe(self._on_choice, names="value")
        self.domain.on_msg(self._on_domain_msg)  # Enter in the box (the Text widget's "submit" message)
        self.lookup_button.on_click(self._on_lookup)
        super().__init__(children=[
            self.choices,
            widgets.HBox([self.domain, self.rdtype, self.lookup_button]),
            self.output,
        ])
        self._on_lookup()  # show the starting domain's answer straight away

    def _domain_options(self) -> list[tuple[str, str]]:
        options = [("(type a name below)", "")]
        try:
            options += [(f"{d.name}: {d.about}" if d.about else d.name, d.name) for d in self.lab.topology.domains]
        except Exception:
            pass
        return options

    def _on_new_lab(self) -> None:
        _replace_options(self, self.choices, self._domain_options())

    def lookup(self, name: str | None = None, rdtype: str | None = None) -> str:
        """Look up `name` (default: the box) and show it; returns the HTML shown."""
        name = (self.domain.value if name is None else name).strip().rstrip(".")
        rdtype = rdtype or self.rdtype.value
        if not name:
            self.output.value = _verdict_box("info", "Nothing to look up:", "type a domain name first.")
            return self.output.value
        if " " in name or ".." in name or "@" in name:
            hint = " (a domain, not an address: the part after the @)" if "@" in name else ""
            self.output.value = _verdict_box("info", "Not a domain name:", html.escape(name) + hint)
            return self.output.value
        followed = self._follow_current_lab()
        if not getattr(self.lab, "running", False):
            self.output.value = _verdict_box("info", "The lab is not running:", html.escape(_not_running_text()))
            return self.output.value
        self.output.value = f"<p><i>Asking the lab DNS about {html.escape(name)} {html.escape(rdtype)}...</i></p>"
        parts = [_notice(followed)]
        try:
            self.last_dig = answer = self.lab.dig(name, rdtype)
            parts.append(f"<p><b>The DNS answer</b> (as <code>dig</code> shows it)</p><pre style='margin:0'>"
                         f"{html.escape(str(answer))}</pre>")
            if rdtype == "MX":
                self.last_mx = found = self.lab.mx(name)
                steps = "".join(f"<li>{html.escape(s)}</li>" for s in found.steps)
                parts.append(f"<p><b>What a sending server does with it</b></p><ol>{steps}</ol>")
                if found.hosts:
                    rows = "".join(
                        f"<tr><td>{i}</td><td>{h.preference}</td><td><code>{html.escape(h.name)}</code></td>"
                        f"<td>{html.escape(', '.join(h.addresses) or '(no address)')}</td></tr>"
                        for i, h in enumerate(found.hosts, 1))
                    parts.append("<table class='smtplab-mx-hosts'><thead><tr><th>try</th><th>preference</th>"
                                 f"<th>host</th><th>address</th></tr></thead><tbody>{rows}</tbody></table>")
                parts.append(mx_verdict(found)[1])
            else:
                self.last_mx = None
                parts.append(_verdict_box("info", f"{rdtype}:", html.escape(_dig_note(answer))))
        except Exception as err:  # a name dnspython refuses, a stopped lab, ...: say so in the widget
            parts.append(_verdict_box("info", "Could not look that up:", html.escape(_error_text(err))))
        self.output.value = "".join(parts)
        return self.output.value

    @property
    def text(self) -> str:
        """The output as plain text (tags removed), for tests and for copying."""
        return html.unescape(re.sub(r"<[^>]+>", " ", self.output.value))

    def _on_choice(self, change: dict) -> None:
        if change.get("new") and not self._refreshing:
            self.domain.value = change["new"]

    def _on_domain_msg(self, _widget: Any, content: dict, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self._on_lookup()

    def _on_lookup(self, _button: Any = None) -> None:
        try:
            self.lookup()
        except Exception as err:  # never into the notebook
            self.output.value = _verdict_box("info", "Something went wrong:", html.escape(_error_text(err)))




#: Messages sent through a chain per click. One message can be unlucky (the first through a fresh lab
#: also pays for setting things up, and a busy machine adds a few ms at random); the median of five is not.
CHAIN_REPEATS = 5

#: The lengths "Compare" sends through: spread over the whole slider, so that the few ms each relay
#: adds stand out of the noise (two lengths one relay apart can come out in the wrong order).
COMPARE_LENGTHS = (0, 2, 4, 6)


def _side_lab(relays: int) -> Any:
    """A chain lab that runs beside the notebook's lab without replacing it (ChainExplorer's default)."""
    from ..lab import Lab
    from ..topology import relay_chain

    return Lab(relay_chain(relays), replace=False)  # not "current": the notebook's next Lab() replaces its own


def per_relay_ms(runs: dict[int, list]) -> float | None:
    """Milliseconds each extra relay adds: the least-squares slope of median end-to-end time against length.

    Fitted on each length's median (not on every message), so that one slow message
    cannot tilt the line; this is the dotted line :func:`smtplab.plots.chain_lengths`
    draws. None with fewer than two lengths.
    """
    from ..timing import end_to_end_ms, median_run

    lengths = sorted(runs)
    if len(lengths) < 2:
        return None
    totals = [end_to_end_ms(median_run(runs[n])) for n in lengths]
    mean_x, mean_y = sum(lengths) / len(lengths), sum(totals) / len(totals)
    sxx = sum((x - mean_x) ** 2 for x in lengths)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(lengths, totals, strict=True)) / sxx


def _show_figure(image: widgets.Image, figure: Any) -> None:
    """Put `figure` in `image` exactly as a notebook shows a plot: a PNG at 100 dpi, at its own pixel size.

    An Image in a VBox is otherwise stretched to the width of the output area, which
    blurs it and blows its fonts up past those of the other plots; a narrow window
    may still shrink it (max-width), never enlarge it.
    """
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # what LabFigure._repr_png_ does
    png = buffer.getvalue()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # the IHDR chunk
    image.value = png
    image.layout.width, image.layout.height, image.layout.max_width = f"{width}px", "auto", "100%"
    image.layout.align_self = "flex-start"
    image.layout.aspect_ratio = f"{width} / {height}"


class ChainExplorer(LabWidget, widgets.VBox):
    """Send messages through a chain of 0 to 6 relays and see how long each hop took.

    Set ``relays`` (an IntSlider) and click ``send_button``. The widget starts its own
    lab, ``Lab(relay_chain(n))``, *beside* the notebook's lab (which keeps running and
    is not replaced), sends ``repeats`` messages from Alice to Bob one after the other,
    waits for each to be delivered, reads their traces and stops that lab again.
    ``output`` (HTML) shows the trace of the median message, ``plot`` (an Image) its
    hop-by-hop times. ``compare_button`` does the same for 0, 2, 4 and 6 relays.
    Once two lengths have run, ``comparison`` (an Image) sets the median end-to-end
    time of each length side by side, and ``fit`` says what each relay adds
    (``per_relay``, in ms: fitted on the medians, so that one slow message cannot tilt it).
    ``last_trace`` is the last median trace and ``runs`` maps a length to its traces.

    ``factory(n)`` makes the lab for n relays (default: a side lab as described); the
    widget stops each lab it made once it has read the traces.
    """

    about = "send through 0 to 6 relays, and plot where the time goes"

    def __init__(self, factory: Any = None, relays: int = 2, max_relays: int = 6, *,
                 repeats: int = CHAIN_REPEATS) -> None:
        self.factory = factory or _side_lab
        self.repeats = max(1, int(repeats))
        self.compare_lengths = tuple(n for n in COMPARE_LENGTHS if n <= max_relays) or (0, max_relays)
        self.last_trace: Any = None
        self.last_result: Any = None
        self.per_relay: float | None = None
        self.runs: dict[int, list] = {}
        self.relays = widgets.IntSlider(value=max(0, min(relays, max_relays)), min=0, max=max_relays,
                                        description="Relays:", continuous_update=False)
        self.send_button = widgets.Button(description="Send through the chain", button_style="primary",
                                          icon="paper-plane", layout=widgets.Layout(width="auto"))
        self.compare_button = widgets.Button(
            description="Compare " + ", ".join(map(str, self.compare_lengths[:-1])) + f" and {self.compare_lengths[-1]}"
            " relays", icon="bar-chart", layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML("<p>Choose a number of relays and click <i>Send through the chain</i>.</p>")
        self.plot = widgets.Image(format="png")
        self.fit = widgets.HTML()
        self.comparison = widgets.Image(format="png")
        self.send_button.on_click(self._on_send)
        self.compare_button.on_click(self._on_compare)
        self._controls = widgets.HBox([self.relays, self.send_button, self.compare_button])
        super().__init__(children=self._parts())

    def _parts(self) -> list[widgets.Widget]:
        """The children to show: an Image joins once it holds a figure (an empty one shows as a broken image)."""
        shown: list[widgets.Widget] = [self._controls, self.output]
        if self.plot.value:
            shown.append(self.plot)
        shown.append(self.fit)
        if self.comparison.value:
            shown.append(self.comparison)
        return shown

    def send(self, relays: int | None = None) -> Any:
        """Run the chain with `relays` relays (default: the slider); return the median trace (None if it failed)."""
        n = self.relays.value if relays is None else int(relays)
        trace = self._run(n)
        if trace is not None:
            self._draw_comparison()
        return trace

    def compare(self, lengths: Iterable[int] | None = None) -> float | None:
        """Run every chain length in `lengths` (default: 0, 2, 4, 6); return the ms each relay adds."""
        for n in lengths if lengths is not None else self.compare_lengths:
            if self._run(n) is None:
                break
        return self._draw_comparison()

    def _run(self, n: int) -> Any:
        """Send ``repeats`` messages through a chain of `n` relays; show the median one and keep all traces."""
        from ..plots import hop_times
        from ..timing import end_to_end_ms, median_run

        many = f"{self.repeats} messages" if self.repeats > 1 else "a message"
        self.output.value = (f"<p><i>Starting a lab with {n} relay{'s' if n != 1 else ''} and sending {many}..."
                             "</i></p>")
        try:
            results, traces, delivered = self._send_through(n)
        except Exception as err:
            self.output.value = _verdict_box("info", "The chain did not run:", html.escape(_error_text(err)))
            return None
        self.runs[n] = traces
        self.last_trace = trace = median_run(traces)
        self.last_result = results[traces.index(trace)]
        times = sorted(end_to_end_ms(t) for t in traces)
        spread = f" (the median of {len(times)}: fastest {times[0]:.1f} ms, slowest {times[-1]:.1f} ms)" \
            if len(times) > 1 else ""
        path = " &rarr; ".join(f"<code>{html.escape(h.host)}</code>" for h in trace.hops)
        note = "" if delivered else "<p style='color:#a15c00'><b>Not delivered within 10 s.</b></p>"
        self.output.value = (f"<p><b>{n} relay{'s' if n != 1 else ''}: {len(trace.hops)} hops</b>, "
                             f"{end_to_end_ms(trace):.1f} ms from the first acceptance to delivery{spread}."
                             f"<br>{path}</p>" + note + trace.table_html())
        _show_figure(self.plot, hop_times(trace))
        self.children = self._parts()
        return trace

    def _send_through(self, n: int) -> tuple[list, list, bool]:
        """One lab for `n` relays, ``repeats`` messages, one at a time (so they do not queue behind each other)."""
        lab = self.factory(n)
        try:
            results, traces, delivered = [], [], True
            for number in range(1, self.repeats + 1):
                result = lab.send("alice@example.org", "bob@example.net", subject=f"Through {n} relays, {number}",
                                  body=f"This message went through a chain of {n} relays.\n")
                if not result.ok:
                    raise RuntimeError(f"smtp.example.org did not accept the message: {result.summary()}")
                delivered = lab.wait_for_queue(timeout=10) and delivered
                results.append(result)
                traces.append(lab.trace(result))
            return results, traces, delivered
        finally:
            try:
                lab.stop()
            except Exception:
                pass

    def _draw_comparison(self) -> float | None:
        """Plot the medians of every length run so far, and say what each relay adds; return that (ms)."""
        from ..plots import chain_lengths

        self.per_relay = slope = per_relay_ms(self.runs)
        if slope is None:
            return None
        lengths = sorted(self.runs)
        _show_figure(self.comparison, chain_lengths(lengths, [self.runs[k] for k in lengths]))
        self.children = self._parts()
        if slope > 0:
            self.fit.value = (f"<p>Each extra relay adds about <b>{slope:.1f} ms</b>: the slope of a straight line "
                              f"through the median times of {len(lengths)} chain lengths.</p>")
        else:
            self.fit.value = ("<p>No clear trend yet: the lengths tried are too close together for the few "
                              "milliseconds a relay adds to stand out of the noise. Try lengths further apart, "
                              "or click <i>Compare</i>.</p>")
        return slope

    def _on_send(self, _button: Any = None) -> None:
        self._busy(self.send)

    def _on_compare(self, _button: Any = None) -> None:
        self._busy(self.compare)

    def _busy(self, action: Any) -> None:
        """Run `action` with the buttons disabled (one chain at a time); never raise into the notebook."""
        self.send_button.disabled = self.compare_button.disabled = True
        try:
            action()
        except Exception as err:
            self.output.value = _verdict_box("info", "Something went wrong:", html.escape(_error_text(err)))
        finally:
            self.send_button.disabled = self.compare_button.disabled = False


# --- ports, networks and TLS modes: PortExplorer -------------------------------------

#: The ports the explorer offers: a short label, and what each one is for.


PORT_ROLES = {
    25: ("relay between servers", "the relay port (RFC 5321), where mail servers hand mail to each other, "
         "without a login"),
    465: ("submission, implicit TLS", "the submission port with implicit TLS (RFC 8314), where mail programs hand "
          "new mail to their own server, encrypted from the first byte"),
    587: ("submission, STARTTLS", "the submission port (RFC 6409), where mail programs hand new mail to their own "
          "server, with a login"),
    2525: ("unofficial spare submission", "not an official port, but many providers accept submission there too, "
           "for networks that block 587"),
}

#: The TLS modes the explorer offers ("auto" is whatever the port expects).
TLS_MODES = (
    ("what the port expects", "auto"),
    ("STARTTLS, required", "starttls"),
    ("implicit TLS (from the first byte)", "implicit"),
    ("none (plain text)", "none"),
    ("opportunistic (STARTTLS only if offered)", "opportunistic"),
)

#: A blocked port, as a client meets it.
_BLOCK_HOW = {
    "timeout": ("its firewall silently drops the packets, so nothing ever answers: the client waits for its whole "
                "timeout ({timeout:g} s here; real mail programs often wait a minute) and gives up"),
    "refuse": "its firewall answers with a reset, so the client hears \"connection refused\" at once",
}


def _port_list(ports: Iterable[int], conjunction: str = "or") -> str:
    ports = list(ports)
    if len(ports) <= 1:
        return "".join(str(p) for p in ports)
    return ", ".join(str(p) for p in ports[:-1]) + f" {conjunction} {ports[-1]}"


class PortExplorer(LabWidget, widgets.VBox):
    """Pick where you send from, which port and which TLS mode; click; read what happened and why.

    ``network`` (a Dropdown of ``lab.places()``), ``port`` (25, 465, 587, 2525) and
    ``tls`` ("auto" = what the port expects, "starttls", "implicit", "none",
    "opportunistic") choose the attempt; ``try_button`` sends one message from
    ``sender`` to ``to`` through ``server`` with :meth:`Lab.send` (a short
    ``timeout``, 1 s, so a blocked port answers fast). ``output`` (HTML) shows the
    outcome, a plain-English explanation and the client's transcript.
    ``last_result`` is the :class:`~smtplab.result.SendResult`, ``outcome`` one of
    "ok", "timeout", "refused" (connection refused), "server" (the server refused
    something), "tls" (the two sides disagreed about TLS), "stopped" (a client that
    requires TLS gave up: no STARTTLS was offered) or "error", and ``explanation``
    the explanation as plain text. It never raises into the notebook. If its lab
    stops because a newer ``Lab()`` replaced it, the next try uses the newer lab.
    """

    about = "try ports 25, 465, 587 and 2525 from several networks, and read why"

    def __init__(self, lab: Any, *, network: str = "student", port: int = 587, tls: str = "auto",
                 sender: str = "alice@example.org", to: str = "carol@example.org",
                 server: str = "smtp.example.org", timeout: float = 1.0) -> None:
        self.lab = lab
        self.sender = sender
        self.to = to
        self.server = server
        self.timeout = timeout
        self.last_result: Any = None
        self.outcome = ""
        self.explanation = ""
        self.elapsed = 0.0
        net_options = self._network_options()
        values = [v for _label, v in net_options]
        self.network = widgets.Dropdown(options=net_options, value=network if network in values else values[0],
                                        description="From:", layout=widgets.Layout(width="44em"))
        port_options = [(f"{p}: {label}", p) for p, (label, _role) in PORT_ROLES.items()]
        self.port = widgets.Dropdown(options=port_options, value=port if port in PORT_ROLES else 587,
                                     description="Port:", layout=widgets.Layout(width="28em"))
        modes = [v for _label, v in TLS_MODES]
        self.tls = widgets.Dropdown(options=list(TLS_MODES), value=tls if tls in modes else "auto",
                                    description="TLS:", layout=widgets.Layout(width="28em"))
        self.try_button = widgets.Button(description="Try it", button_style="primary", icon="paper-plane",
                                         layout=widgets.Layout(width="auto"))
        self.output = widgets.HTML(
            f"<p>Choose where you are, a port and a TLS mode, then click <i>Try it</i>: the lab sends one message "
            f"from {html.escape(sender)} to {html.escape(to)} through {html.escape(server)}.</p>")
        self.try_button.on_click(self._on_try)
        super().__init__(children=[self.network, widgets.HBox([self.port, self.tls, self.try_button]), self.output])

    def _network_options(self) -> list[tuple[str, str]]:
        """The lab's places (networks) as dropdown options; reads them into ``_places`` too."""
        try:
            self._places = dict(self.lab.places())
        except Exception:
            self._places = {}
        options = [(f"{name}: {p.about}" if getattr(p, "about", "") else name, name)
                   for name, p in self._places.items()]
        return options or [("student", "student")]

    def _on_new_lab(self) -> None:
        _replace_options(self, self.network, self._network_options())

    # --- trying ----------------------------------------------------------------
    def try_it(self) -> Any:
        """Send with the chosen settings, show what happened; returns the SendResult (None if none was made)."""
        followed = self._follow_current_lab()
        place, port, mode = self.network.value, int(self.port.value), self.tls.value
        self.last_result, self.outcome, self.explanation = None, "", ""
        if not getattr(self.lab, "running", False):
            self.outcome, self.explanation = "error", _not_running_text()
            self.output.value = _verdict_box("info", "The lab is not running:", html.escape(self.explanation))
            return None
        self.output.value = (f"<p><i>Sending from {html.escape(place)} to {html.escape(self.server)} port {port}"
                             "...</i></p>")
        started = time.perf_counter()
        try:
            result = self.lab.send(self.sender, self.to, subject=f"Through port {port}",
                                   body=f"Sent from the {place} network to port {port}.\n", server=self.server,
                                   port=port, tls=None if mode == "auto" else mode, network=place,
                                   timeout=self.timeout)
        except Exception as err:  # no such listener, a stopped lab, ...: say so in the widget
            self.outcome, self.explanation = "error", f"The lab could not try this: {_error_text(err)}"
            self.output.value = _verdict_box("info", "Could not try it:", html.escape(self.explanation))
            return None
        self.elapsed = time.perf_counter() - started
        self.last_result = result
        self.outcome = self._classify(result)
        self.explanation = self._explain(result, place, port, mode)
        self.output.value = _notice(followed) + self._render(result, place, port)
        return result

    def _expected_tls(self, port: int) -> str:
        try:
            return self.lab.endpoint(self.server, port).listener.tls
        except Exception:
            return {25: "starttls", 465: "implicit"}.get(port, "starttls")

    @staticmethod
    def _classify(result: Any) -> str:
        """ok, timeout or refused (no connection), stopped (STARTTLS missing), server (a refusal), tls, or error."""
        failure = result.failure
        if result.ok:
            return "ok"
        if result.refused or (failure is not None and failure.kind == "reply"):
            return "server"
        if failure is None:
            return "error"
        if failure.stage == "connect":
            return failure.kind if failure.kind in ("timeout", "refused") else "error"
        if failure.kind == "not-offered":
            return "stopped"
        if failure.kind == "tls" or (failure.kind in ("timeout", "closed") and failure.stage in ("greeting", "tls")):
            return "tls"  # a TLS mismatch: both sides wait, or one cannot read the other
        return "error"

    def _explain(self, result: Any, place_name: str, port: int, mode: str) -> str:
        """Plain English: why it worked or failed, and what to try instead."""
        place = self._places.get(place_name)
        expected = self._expected_tls(port)
        mode = expected if mode == "auto" else mode
        role = PORT_ROLES.get(port, ("", ""))[1]
        parts = [f"Port {port} is {role}." if role else ""]
        outcome = self.outcome
        stripped = (place is not None and getattr(place, "attack", "") == "strip-starttls"
                    and expected == "starttls" and mode in ("starttls", "opportunistic"))
        if outcome in ("timeout", "refused") and place is not None and not place.lets_out(port):
            open_ports = [p for p in (587, 465, 2525) if place.lets_out(p)]
            how = _BLOCK_HOW.get(place.how, "").format(timeout=self.timeout)
            if place.allowed is not None:
                parts.append(f"The {place_name} network only lets ports {_port_list(sorted(place.allowed), 'and')} "
                             f"out, not {port}: {how}.")
            else:
                parts.append(f"The {place_name} network blocks port {port}: {how}.")
            if open_ports:
                parts.append(f"Try {_port_list(open_ports)}: a mail program submits there anyway."
                             if port == 25 else f"Try {_port_list(open_ports)}.")
            if port == 25:
                parts.append("Networks block port 25 so that infected computers cannot send spam straight to other "
                             "people's mail servers; mail programs submit on 587 or 465, with a login.")
            return " ".join(p for p in parts if p)
        if outcome == "timeout":
            parts.append("Nothing answered at all before the timeout: a firewall may be dropping the packets, "
                         "or the server is down.")
        elif outcome == "refused":
            parts.append("The connection was refused at once: nothing listens there, or a firewall rejects the port.")
        elif outcome == "tls" or (outcome != "ok" and mode != expected and "implicit" in (mode, expected)):
            if expected == "implicit":
                parts.append(f"{port} is TLS from the first byte: the server waits for the client's TLS hello, "
                             "while a client that expects plain text waits for the server's 220 greeting. "
                             "Nobody speaks, and the client gives up. STARTTLS on 465 makes no sense: choose "
                             "implicit TLS there (or use 587 with STARTTLS).")
            else:
                parts.append(f"{port} starts in plain text: the server's first line is a readable 220 greeting, "
                             "which a client speaking TLS from the first byte cannot understand (\"wrong version "
                             "number\"). STARTTLS is how this port gets encrypted; implicit TLS belongs on 465.")
        elif outcome == "stopped":
            parts.append("The client stopped by itself: it requires TLS, but the EHLO reply it received did not "
                         "offer STARTTLS. Either the server has no TLS, or someone on the path deleted the offer "
                         "(STARTTLS stripping). Stopping is the safe choice: no password was sent.")
        elif outcome == "server":
            reply = result.last_reply or next(iter(result.refused.values()), "") or result.error or ""
            parts.append(f"The connection worked, but the server refused: {reply.strip()}.")
            if stripped and mode == "opportunistic":
                parts.append("The attacker on this network deleted STARTTLS from the EHLO reply, so this "
                             "opportunistic client carried on in plain text. This server takes nothing but "
                             "STARTTLS before TLS and offers no AUTH there, so no password was sent.")
            elif "STARTTLS" in reply and mode in ("none", "opportunistic"):
                parts.append(f"Port {port} starts in plain text, and this server insists on STARTTLS before "
                             "anything else: without TLS it does not even offer AUTH, so no password is ever "
                             "sent in clear.")
            elif reply.startswith("554") and "5.7.1" in reply:
                parts.append("Port 25 takes mail only for the server's own domains when nobody logs in: "
                             "anything else would make it an open relay. Mail programs submit on 587 or 465.")
            elif "5.4.5" in reply:
                parts.append("A sending limit: the provider caps how many messages one user may send.")
        elif outcome == "ok":
            if port == 465:
                parts.append("No STARTTLS, and not one readable byte on the wire. "
                             "RFC 8314 (2018) recommends this for submission: \"465 is obsolete\" is out of date.")
            elif not result.tls:
                logged_in = result.transcript is not None and any(
                    line.startswith("AUTH") for line in result.transcript.commands())
                parts.append("Delivered in plain text all the way: anyone on the path could read (or change) "
                             f"every line{', the login included' if logged_in else ''}.")
                if port == 25:
                    parts.append("Port 25 offers STARTTLS but cannot insist, because servers must still reach "
                                 "servers that have no TLS.")
            elif port in (587, 2525):
                parts.append(f"{port} starts in plain text: STARTTLS is how it gets encrypted. Only after the "
                             "upgrade does the server offer AUTH, and the client logs in.")
                if mode == "opportunistic":
                    parts.append("An opportunistic client upgrades only because STARTTLS was offered: if an "
                                 "attacker deleted that line, it would carry on in plain text (notebook 06).")
            elif port == 25:
                parts.append(f"Accepted without a login because {self.to} lives on this server; mail for "
                             "anyone elsewhere would be refused (no open relay). The session was upgraded with "
                             "STARTTLS." if result.tls else
                             f"Accepted without a login because {self.to} lives on this server.")
        else:
            parts.append(f"It failed: {result.error}.")
        if stripped and outcome == "ok" and not result.tls:
            parts.append(f"Why: the attacker on the {place_name} network deleted STARTTLS from the EHLO reply, and "
                         "this client carries on without it. A client that requires TLS would have stopped.")
        return " ".join(p for p in parts if p)

    def _render(self, result: Any, place: str, port: int) -> str:
        kind, title = {
            "ok": ("ok", "Accepted."),
            "timeout": ("temporary", "Timed out: no answer at all."),
            "refused": ("permanent", "Connection refused."),
            "server": ("permanent", "Refused by the server."),
            "tls": ("permanent", "The two sides disagree about TLS."),
            "stopped": ("permanent", "The client stopped: no STARTTLS on offer."),
        }.get(self.outcome, ("info", "It did not work."))
        waited = f"{self.elapsed * 1000:.0f} ms"
        when = {"timeout": f"no answer; the client gave up after {waited}",
                "refused": f"refused after {waited}"}.get(self.outcome, f"answered after {waited}")
        head = (f"<p><b>From {html.escape(place)} to {html.escape(self.server)} port {port}</b>: {when}. "
                f"{html.escape(result.summary())}</p>")
        parts = [head, _verdict_box(kind, title, html.escape(self.explanation))]
        if result.transcript is not None:
            parts.append(f"<p><b>The client's transcript</b><br><small>{LEGEND}</small></p>")
            parts.append(_box(render_entries(result.transcript.entries)))
        return "".join(parts)

    @property
    def text(self) -> str:
        """The output as plain text (tags removed), for tests and for copying."""
        return html.unescape(re.sub(r"<[^>]+>", " ", self.output.value))

    def _on_try(self, _button: Any = None) -> None:
        self.try_button.disabled = True
        try:
            self.try_it()
        except Exception as err:  # never into the notebook
            self.outcome = "error"
            self.output.value = _verdict_box("info", "Something went wrong:", html.escape(_error_text(err)))
        finally:
            self.try_button.disabled = False
