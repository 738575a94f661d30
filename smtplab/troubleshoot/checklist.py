"""The troubleshooting checklist: :func:`check` and the steps it runs, in order.

Theory of operation
-------------------
:func:`check` walks the checklist in the order a connection goes: find the mail
server (MX, only when asked), resolve the name, connect, read the greeting, EHLO,
TLS (STARTTLS, or implicit TLS before the greeting on port 465) with the
certificate checked, the login mechanisms offered, and, when asked, a login and
a test message. Each step becomes a :class:`~.report.Step` (name, ok, detail,
meaning, next_step); the first failure ends the check, because every later step
needs the earlier ones. Nothing here prints: the CLI prints the
:class:`~.report.CheckReport`, a notebook shows it as HTML.

Names are found in one of two worlds (:class:`~.lookup.World`): a *lab name*
(one the lab DNS knows) is resolved by the lab DNS, its logical port mapped to
the port the lab really bound, and the lab CA trusted; any other name goes to
the system's resolver and trust store. A lab name with no listener on the asked
port meets a real closed port on the host's address (:func:`~smtplab.testing.closed_port`),
so "connection refused" is what the kernel says, not a made-up message.

The client (:class:`~.wire.Wire`) is small and synchronous on purpose: blocking
sockets with a timeout work the same in a terminal and in a Jupyter kernel
(whose own event loop is busy), and the timeout a report states is the one each
network wait had. Every line goes through the lab's
:class:`~smtplab.transcript.Recorder`, so a check leaves an annotated transcript
like any other session. Meanings come from the one catalogue, :mod:`smtplab.codes`
(through :func:`~.explain.reply_meaning`); why a certificate was refused, from
:mod:`.certificates`.

Where each part lives, imports going one way only::

    report, lookup, probes, wire     what a check found; names and trust; raw probes; the line client
    certificates, explain            words for a refused certificate; for a reply code
    checklist                        check() and its steps (this module)
    drills, commands                 the fault drills; the smtplab CLI's check, explain, talk, drills
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..messages import compose, wire_bytes
from ..result import LabError
from ..testing import closed_port
from ..transcript import Recorder, Transcript
from .certificates import certificate_summary, peek_certificate, tls_text, why_refused
from .explain import reply_meaning
from .lookup import Resolved, World, is_address
from .probes import connect
from .report import CheckReport, Step
from .wire import Closed, Wire, ehlo_keywords, last_line, plain_reply, reply_code

#: Seconds each network wait (DNS, connect, a reply) may take before a check calls it a timeout.
DEFAULT_TIMEOUT = 5.0
#: The ports mail programs and servers use; ``try_ports`` probes these.
USUAL_PORTS = (25, 465, 587, 2525)
LAB_EHLO = "client.lab"


def _lab_info(lab: Any, network: str | None = None) -> dict[str, Any] | None:
    if lab is None:
        if network:
            raise LabError("network= needs a lab: the places are the lab's (check(lab, ..., network='hotel')).")
        return None
    if isinstance(lab, Mapping):
        if network:
            raise LabError("network= needs the Lab itself, not its published info.")
        return dict(lab)
    if not getattr(lab, "running", True):
        raise LabError("This lab has been stopped; make a new one with Lab() and check again.")
    info = lab.info()
    if network:  # the same servers, reached through that place's network (its blocked ports, its delay)
        if network not in lab.places():
            raise LabError(f"There is no network {network!r} in this lab; places: {', '.join(lab.places())}.")
        info["servers"] = [{**entry, **lab.reach(entry["host"], entry["port"], network)} for entry in info["servers"]]
    return info


def split_target(text: str, port: int | None = None) -> tuple[str, int | None]:
    """'host:587' -> ('host', 587); '[::1]:25' -> ('::1', 25); 'host' -> ('host', port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        given = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, given = text.split(":")
    else:
        host, given = text, ""
    if given:
        if not given.isdigit() or not 0 < int(given) < 65536:
            raise LabError(f"{given!r} is not a port number (1 to 65535)")
        if port is not None and port != int(given):
            raise LabError(f"two ports given: {given} in {text!r} and {port}")
        port = int(given)
    if not host:
        raise LabError("no server name given: say e.g. smtp.example.org:587")
    return host, port


def check(lab: Any = None, host: str = "", port: int | None = None, *, user: str | None = None,
          password: str | None = None, send_to: str | Sequence[str] = (), mail_from: str | None = None,
          size: int | None = None, tls: str = "auto", mx: bool = False, timeout: float = DEFAULT_TIMEOUT,
          try_ports: bool = False, cafile: str | None = None, ehlo: str | None = None,
          network: str | None = None) -> CheckReport:
    """Run the troubleshooting checklist against `host`:`port`, step by step; never raises for a network fault.

    ``lab`` is a :class:`~smtplab.Lab`, the dict ``lab.info()`` gives (what ``smtplab serve`` publishes),
    or None for servers outside the lab. ``host`` may be ``"name:port"``. Without a port: 587 (25 with
    ``mx=True``, which treats `host` as a mail domain and checks its best MX host).
    ``tls`` is ``"auto"`` (what the port expects), ``"starttls"``, ``"implicit"`` or ``"none"``.
    With ``user`` it logs in (a lab user's password is found in the lab); with ``send_to`` it sends a
    test message (of ``size`` bytes, if given). ``timeout`` bounds every network wait.
    ``network`` checks from one of the lab's places (``"hotel"``, ``"home"``...): through its firewall.
    """
    host, port = split_target(host, port)
    if port is None:
        port = 25 if mx else 587
    if tls not in ("auto", "starttls", "implicit", "none"):
        raise LabError(f"tls={tls!r}: use 'auto', 'starttls', 'implicit' or 'none'")
    if not timeout or timeout <= 0:
        raise LabError("the timeout must be a positive number of seconds")
    recipients = [send_to] if isinstance(send_to, str) else list(send_to or ())
    checker = _Checker(World(_lab_info(lab, network), cafile, float(timeout)), host, port, user=user, password=password,
                       recipients=recipients, mail_from=mail_from, size=size, tls=tls, mx=mx,
                       try_ports=try_ports, ehlo=ehlo)
    return checker.run()


class _Checker:
    def __init__(self, world: World, host: str, port: int, *, user: str | None, password: str | None,
                 recipients: list[str], mail_from: str | None, size: int | None, tls: str, mx: bool,
                 try_ports: bool, ehlo: str | None) -> None:
        self.world = world
        self.host = host.lower().rstrip(".") if not is_address(host) else host
        self.port = port
        self.user, self.password = user, password
        self.recipients = recipients
        self.mail_from = mail_from
        self.size = size
        self.tls_mode = tls
        self.mx = mx
        self.try_ports = try_ports
        self.ehlo_name = ehlo
        self.timeout = world.timeout
        self.lab_name = world.is_lab_name(host)
        self.server_name = self.host  # the name the certificate must carry
        self.lab_listener: dict[str, Any] | None = None
        bound = world.by_bound_address(host, port) if is_address(host) else None
        if bound is not None:  # someone typed the lab's real address and port
            self.lab_name, self.lab_listener, self.server_name = True, bound, bound["host"]
        self.report = CheckReport(self.host, port, world.where(self.lab_name), self.timeout)
        self.wire: Wire | None = None
        self.names = [self.host]
        self.address = ""
        self.caps: list[str] = []
        self.implicit = False

    @property
    def conn(self) -> Wire:
        """The connection to the server: the steps after "connect" run only once _step_connect() made it."""
        if self.wire is None:
            raise RuntimeError("no connection: a step ran before the connect step succeeded")
        return self.wire

    # --- running ------------------------------------------------------------
    def _add(self, name: str, ok: bool, detail: str, meaning: str = "", next_step: str = "",
             started: float | None = None) -> bool:
        seconds = time.perf_counter() - started if started is not None else 0.0
        self.report.steps.append(Step(name, ok, detail, meaning, next_step, seconds))
        return ok

    def run(self) -> CheckReport:
        recorder = Recorder(Transcript(self.server_name, "client", port=self.port, client="smtplab check"))
        self.rec = recorder
        self.report.transcript = recorder.transcript
        try:
            self._steps()
        finally:
            self._quit()
            self.report.capabilities = list(self.caps)
        if not self.report.ok:
            planned = ["mx"] * self.mx + ["resolve", "connect", "banner", "ehlo", "tls", "auth"]
            planned += ["login"] * (self.user is not None) + ["send"] * bool(self.recipients)
            done = {s.name for s in self.report.steps}
            self.report.not_run = [name for name in planned if name not in done]
        return self.report

    def _steps(self) -> None:
        candidates = [self.host]
        if self.mx:
            found = self._step_mx()
            if found is None:
                return
            candidates = found
        if not self._step_resolve(candidates):
            return
        if not self._step_connect():
            return
        if self.implicit and not self._step_tls_implicit():
            return
        if not self._step_banner():
            return
        if not self._step_ehlo():
            return
        if not self.implicit and not self._step_starttls():
            return
        if not self._step_auth():
            return
        if self.user is not None and not self._step_login(self.user):
            return
        if self.recipients:
            self._step_send()

    # --- mx -----------------------------------------------------------------
    def _step_mx(self) -> list[str] | None:
        started = time.perf_counter()
        try:
            lookup = self.world.lookup_mx(self.host, self.lab_name)
        except Exception as err:  # noqa: BLE001 - any failure is the step's finding
            self._add("mx", False, f"the MX lookup of {self.host} failed: {err}",
                      "Without DNS, no program can find where mail for the domain goes.",
                      "Check the Internet connection and the DNS settings, then try again.", started)
            return None
        if not lookup.hosts:
            permanent = "permanent" if lookup.permanent else "temporary"
            self._add("mx", False, f"{lookup.error} ({lookup.source}).",
                      f"A {permanent} failure: senders answer it with '{lookup.reply}'.",
                      ("Check the spelling of the domain." if lookup.permanent else
                       "Wait and try again: DNS trouble is usually temporary."), started)
            return None
        listed = ", ".join(f"{h.preference} {h.name}" for h in lookup.hosts)
        implicit = any("implicit MX" in s for s in lookup.steps)
        detail = (f"{self.host} has no MX record: its own address takes its mail (implicit MX)" if implicit else
                  f"{self.host} MX {listed} ({lookup.source})")
        first = lookup.hosts[0].name
        self._add("mx", True, detail + f"; trying {first} first.",
                  "DNS says which servers take mail for the domain; the lowest preference is tried first.",
                  started=started)
        self.server_name = first
        return [h.name for h in lookup.hosts]

    # --- resolve ------------------------------------------------------------
    def _step_resolve(self, candidates: list[str]) -> bool:
        started = time.perf_counter()
        if self.lab_listener is not None:
            s = self.lab_listener
            self.address = s["address"]
            return self._add("resolve", True, f"{self.host} is an address: it is the lab's {s['host']} port "
                             f"{s['port']}", "Nothing to look up; the certificate will be checked for "
                             f"{s['host']}.", started=started)
        skipped: list[str] = []
        for name in candidates:
            found = self.world.resolve(name, self.lab_name or self.world.is_lab_name(name))
            if found.addresses:
                self.address = found.addresses[0]
                self.server_name = name if not is_address(name) else self.server_name
                self.names = [name, found.canonical]
                alias = f" (an alias of {found.canonical})" if found.canonical != name else ""
                others = f"; also {', '.join(found.addresses[1:])}" if len(found.addresses) > 1 else ""
                skip = f" ({'; '.join(skipped)}; skipped)" if skipped else ""
                if is_address(name):
                    return self._add("resolve", True, f"{name} is an address: nothing to look up", "", started=started)
                return self._add("resolve", True, f"{name}{alias} is {self.address}{others} ({found.source}){skip}",
                                 "The name is in DNS, so programs can find the server.", started=started)
            skipped.append(found.error)
        return self._resolve_failed(candidates, skipped, found, started)

    def _resolve_failed(self, candidates: list[str], errors: list[str], found: Resolved, started: float) -> bool:
        name = candidates[0]
        detail = "; ".join(errors)
        if self.mx:
            meaning = (f"The MX record of {self.host} names {', '.join(candidates)}, but no such name has an "
                       f"address: no server can deliver mail to {self.host}. Sending servers bounce such mail "
                       f"(550 5.4.4, unable to route).")
            nxt = (f"The owner of {self.host} must fix its DNS: give {name} an address (A or AAAA record), or "
                   f"point the MX record at a host that has one. An MX target must be a name with an address, "
                   f"never an IP address nor an alias.")
            return self._add("resolve", False, detail, meaning, nxt, started)
        if found.kind in ("timeout", "temporary", "servfail"):
            return self._add("resolve", False, detail,
                             "The name could not be looked up right now: the DNS server is unreachable or failing. "
                             "That is temporary, and says nothing about the mail server itself.",
                             "Check the Internet connection (the first item of every checklist) and the DNS "
                             "settings, then try again.", started)
        mx_hint = self.world.mx_records(name, self.lab_name)
        if mx_hint:
            meaning = (f"{name} is a mail domain, not a server name: its mail goes to {', '.join(mx_hint)} (MX). "
                       "Mail programs submit to their provider's submission server instead.")
            nxt = (f"To see where mail for {name} goes, check it as a domain (smtplab check --mx {name}); to send, "
                   "use the server name your provider gives (often smtp.<domain>).")
        else:
            meaning = ("DNS does not know this name, so no program can find the server: usually a typo in "
                       "the server name of the mail settings.")
            nxt = "Check the spelling of the server name against your provider's help pages (e.g. smtp.<provider>)."
        return self._add("resolve", False, detail, meaning, nxt, started)

    # --- connect ------------------------------------------------------------
    def _real_port(self, port: int) -> tuple[str, int] | None:
        """Where logical `port` really is: the lab's bound port for lab names, else the port itself."""
        if not self.lab_name:
            return self.address, port
        if self.lab_listener is not None and port == self.port:
            return self.lab_listener["address"], self.lab_listener["bound_port"]
        found = self.world.listener(self.names, self.address, port)
        if found is None:
            return None
        return found["address"], found["bound_port"]

    def _connect(self, port: int) -> tuple[socket.socket | None, str, str]:
        """(socket, how it went: ok/refused/timeout/unreachable/error, where it really went)."""
        real = self._real_port(port)
        if real is None:  # a lab host with nothing on that port: meet a real closed port on its address
            with closed_port(self.address if self.address.startswith("127.") else "127.0.0.1") as closed:
                return connect(closed, self.timeout)
        return connect(real, self.timeout)

    def _step_connect(self) -> bool:
        started = time.perf_counter()
        listener = self.lab_listener or (self.world.listener(self.names, self.address, self.port)
                                         if self.lab_name else None)
        mode = self.tls_mode
        if mode == "auto":
            mode = listener["tls"] if listener else ("implicit" if self.port == 465 else "starttls")
        self.implicit = mode == "implicit"
        self.role = listener["role"] if listener else ("mx" if self.port == 25 else
                                                       "submissions" if self.port == 465 else "submission")
        sock, how, shown = self._connect(self.port)
        self.rec.event("client", f"connecting to {self.server_name} port {self.port} ({shown}): {how}", "")
        if sock is not None:
            self.wire = Wire(sock, self.rec, self.timeout)
            remapped = self.lab_name and shown.rsplit(":", 1)[1] != str(self.port)
            mapped = f" (the lab's real port for {self.port})" if remapped else ""
            return self._add("connect", True, f"connected to {shown}{mapped}",
                             "Something listens on this port and took the connection.", started=started)
        probe = self._probe_ports() if self.try_ports else ""
        if how == "refused":
            detail = f"connection to {self.server_name} port {self.port} refused at once"
            meaning = ("The host answered, but nothing listens on that port: the server is up, the port is "
                       "wrong (or the mail service on it is stopped). A firewall that blocks a port usually "
                       "stays silent instead.")
            nxt = ("Check the port in the mail settings (587 with STARTTLS or 465 with TLS for sending, 25 "
                   "between servers); try the others, e.g. --try-ports.")
        elif how == "timeout":
            detail = f"no answer from {self.server_name} port {self.port} within {self.timeout:g} s (timed out)"
            meaning = ("Nothing answered at all: the packets were dropped on the way. A firewall or a network "
                       "that blocks this port (many block port 25), or a host that is down or unreachable.")
            nxt = ("Try another port (587, 465, 2525) or another network; check the Internet connection; "
                   "ask whether a firewall blocks outgoing mail ports.")
        elif how == "unreachable":
            detail = f"no route to {self.server_name} ({shown})"
            meaning = "This computer has no network path to that address: no connection, or a wrong address."
            nxt = "Check the Internet connection first."
        else:
            detail = f"could not connect to {shown}: {how[7:]}"
            meaning = "The connection failed for a reason the network stack gave above."
            nxt = "Check the Internet connection and the server name."
        if probe:
            detail += f". {probe}"
        return self._add("connect", False, detail, meaning, nxt, started)

    def _probe_ports(self) -> str:
        others = [p for p in USUAL_PORTS if p != self.port]
        results: dict[int, str] = {}

        def probe(port: int) -> None:
            sock, how, _ = self._connect(port)
            if sock is not None:
                sock.close()
            results[port] = how

        workers = [threading.Thread(target=probe, args=(p,), daemon=True) for p in others]
        for w in workers:
            w.start()
        for w in workers:
            w.join(self.timeout + 1)
        answering = [str(p) for p in others if results.get(p) == "ok"]
        if answering:
            return f"Other usual ports: {', '.join(answering)} answer{'s' if len(answering) == 1 else ''}"
        return f"None of the other usual ports ({', '.join(map(str, others))}) answers either"

    # --- TLS ----------------------------------------------------------------
    def _handshake(self, step_started: float) -> tuple[bool, str]:
        """Wrap the connection in TLS, checking the certificate; (ok, detail) and a failed step if not."""
        hostname = None if is_address(self.server_name) else self.server_name
        ctx = self.world.ssl_context(self.lab_name, check_hostname=hostname is not None)
        wire = self.conn
        try:
            wire.sock.settimeout(self.timeout)
            wire.sock = ctx.wrap_socket(wire.sock, server_hostname=hostname)
        except ssl.SSLCertVerificationError as err:
            wire.closed = True  # a failed handshake ends the connection
            self._certificate_failed(err, step_started)
            return False, ""
        except (ssl.SSLError, OSError) as err:
            wire.closed = True
            reason = "timed out" if isinstance(err, socket.timeout) else str(getattr(err, "reason", None) or err)
            self.rec.event("client", f"TLS handshake failed: {reason}", "")
            self._add("tls", False, f"the TLS handshake failed: {reason}",
                      "Client and server could not agree on TLS: an old TLS version (SSL 3.0, TLS 1.0 and 1.1 "
                      "are deprecated), or something that is not TLS on this port.",
                      "Check the port and the encryption setting (STARTTLS on 587/25, TLS on 465).", step_started)
            return False, ""
        self.rec.tls = True
        sock = wire.sock
        self.rec.event("client", f"TLS established: {tls_text(sock)}", "The certificate checked out.")
        return True, f"{tls_text(sock)}; {certificate_summary(sock, hostname)}"

    def _certificate_failed(self, err: ssl.SSLCertVerificationError, started: float) -> None:
        message = getattr(err, "verify_message", "") or str(err)
        self.rec.event("client", f"TLS handshake failed: {message}", "The client refused the server's certificate.")
        self._add("tls", False, *why_refused(err, self._peek_certificate(), self.server_name), started)

    def _peek_certificate(self) -> dict[str, Any] | None:
        """The certificate the server shows, fetched again over a new connection without checking it."""
        sock, _how, _ = self._connect(self.port)
        if sock is None:
            return None
        return peek_certificate(sock, self.server_name, None if self.implicit else self._ehlo(),
                                min(self.timeout, 3.0))

    def _step_tls_implicit(self) -> bool:
        started = time.perf_counter()
        ok, detail = self._handshake(started)
        if not ok:
            return False
        return self._add("tls", True, f"TLS from the first byte (port {self.port}): {detail}",
                         "Everything, the greeting included, is encrypted, and the certificate proves the "
                         "server's name.", started=started)

    def _step_starttls(self) -> bool:
        started = time.perf_counter()
        if self.tls_mode == "none":
            return self._add("tls", True, "not tried (tls='none' was asked)",
                             "Everything, a password included, crosses the network in clear text.", started=started)
        if "STARTTLS" not in self.caps:
            return self._add("tls", False, "the EHLO reply does not offer STARTTLS",
                             "This server offers no encryption on this port: a password or a message would cross "
                             "the network in clear text. (Or someone on the path removed STARTTLS from the reply: "
                             "STARTTLS stripping.)",
                             "Use port 465 (TLS from the first byte) or 587; never log in without TLS.", started)
        try:
            lines = self.conn.command("STARTTLS")
        except (OSError, Closed) as err:
            return self._lost("tls", err, started)
        if reply_code(lines) != 220:
            meaning, action = reply_meaning(last_line(lines))
            return self._add("tls", False, f"STARTTLS was refused: {plain_reply(lines)}", meaning, action, started)
        ok, detail = self._handshake(started)
        if not ok:
            return False
        try:
            lines = self.conn.command(f"EHLO {self._ehlo()}")
        except (OSError, Closed) as err:
            return self._lost("tls", err, started)
        if reply_code(lines) == 250:
            self.caps = ehlo_keywords(lines)
        return self._add("tls", True, f"STARTTLS, then {detail}; EHLO again: {', '.join(self.caps) or '(nothing)'}",
                         "From here on every line is encrypted, and the certificate proves the server's name.",
                         started=started)

    # --- greeting and EHLO ----------------------------------------------------
    def _lost(self, step: str, err: BaseException, started: float) -> bool:
        if isinstance(err, socket.timeout):
            return self._add(step, False, f"no reply within {self.timeout:g} s",
                             "The server stopped answering in the middle of the conversation.",
                             "Try again; if it keeps happening, the server or the network is overloaded.", started)
        return self._add(step, False, "the server closed the connection",
                         "The server hung up without a reply: it may be overloaded, or it refuses this client.",
                         "Try again later; read the server's last reply, if there was one.", started)

    def _step_banner(self) -> bool:
        started = time.perf_counter()
        try:
            lines = self.conn.reply()
        except TimeoutError:
            nxt = ("If this port wants TLS from the first byte (465), the server waits for a TLS handshake and "
                   "never greets in plain text: check with TLS (tls='implicit', --tls implicit)."
                   if not self.implicit else "The server may be overloaded; try again later.")
            return self._add("banner", False, f"connected, but no greeting within {self.timeout:g} s",
                             "The server speaks first in SMTP; this one said nothing. Either it is not an SMTP "
                             "server, it is stuck, or it expects something else first.", nxt, started)
        except (OSError, Closed) as err:
            return self._lost("banner", err, started)
        first = lines[0]
        if not first[:3].isdigit():
            return self._add("banner", False, f"the server said '{first[:80]}', which is not SMTP",
                             "Another kind of server listens on this port (a web server, SSH, ...).",
                             "Check the port number in the mail settings.", started)
        code = reply_code(lines)
        if code == 220:
            return self._add("banner", True, plain_reply(lines),
                             "220: the server is ready; the first word is the name it calls itself.",
                             started=started)
        meaning, action = reply_meaning(last_line(lines))
        if code == 554:
            meaning = "554 as a greeting means 'no SMTP service here for you': the server will not talk. " + meaning
        return self._add("banner", False, f"the greeting is {plain_reply(lines)}", meaning, action, started)

    def _ehlo(self) -> str:
        if self.ehlo_name:
            return self.ehlo_name
        if self.lab_name:
            return LAB_EHLO
        local = "127.0.0.1"
        if self.wire is not None:
            try:
                local = self.wire.sock.getsockname()[0]
            except (OSError, AttributeError):
                pass
        return f"[IPv6:{local}]" if ":" in local else f"[{local}]"

    def _step_ehlo(self) -> bool:
        started = time.perf_counter()
        try:
            lines = self.conn.command(f"EHLO {self._ehlo()}")
        except (OSError, Closed) as err:
            return self._lost("ehlo", err, started)
        if reply_code(lines) != 250:
            meaning, action = reply_meaning(last_line(lines))
            return self._add("ehlo", False, f"EHLO was answered {plain_reply(lines)}", meaning,
                             "A very old server may know only HELO (no STARTTLS, no AUTH then); " + action, started)
        self.caps = ehlo_keywords(lines)
        limit = next((c.split()[1] for c in self.caps if c.startswith("SIZE ") and len(c.split()) > 1), "")
        size = f" The largest message it takes is {int(limit):,} bytes (SIZE)." if limit.isdigit() and int(limit) else ""
        return self._add("ehlo", True, f"the server offers: {', '.join(self.caps) or '(no extensions)'}",
                         "The server speaks extended SMTP and lists what it can do." + size, started=started)

    # --- AUTH ---------------------------------------------------------------
    def _auth_mechanisms(self) -> list[str]:
        for c in self.caps:
            words = c.replace("=", " ").split()
            if words and words[0] == "AUTH":
                return words[1:]
        return []

    def _step_auth(self) -> bool:
        started = time.perf_counter()
        mechanisms = self._auth_mechanisms()
        if mechanisms:
            clear = " (in clear text!)" if not self.rec.tls else ""
            return self._add("auth", True, f"AUTH {' '.join(mechanisms)}{clear}",
                             "The server lets users log in with these mechanisms" +
                             (": PLAIN and LOGIN send the password, so only inside TLS." if not clear else
                              ": offered without TLS, a password would cross the network readable."),
                             started=started)
        if self.role == "mx":
            return self._add("auth", True, "no AUTH offered: normal on port 25",
                             "Port 25 is where servers hand mail to each other; they do not log in. To send "
                             "mail as a user, use the submission port (587 or 465).", started=started)
        return self._add("auth", False, "the server offers no login (no AUTH in its EHLO reply)",
                         "A submission port without login cannot take mail from you for other domains.",
                         ("Some servers offer AUTH only after STARTTLS: check with TLS. Otherwise use the port "
                          "your provider names for sending (587 or 465)."), started)

    def _login_password(self) -> str | None:
        if self.password is not None:
            return self.password
        info = self.world.info
        if self.lab_name and info:
            user = next((u for u in info["users"] if self.user in (u["username"], u["address"])), None)
            if user is not None:
                return user["password"]
        return None

    def _step_login(self, user: str) -> bool:
        started = time.perf_counter()
        password = self._login_password()
        if password is None:
            return self._add("login", False, f"no password for {user}",
                             "A login needs a password; none was given and the lab knows no such user.",
                             "Give the password (password=..., --password).", started)
        mechanisms = self._auth_mechanisms()
        try:
            if "PLAIN" in mechanisms:
                token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
                lines = self.conn.command(f"AUTH PLAIN {token}")
            elif "LOGIN" in mechanisms:
                lines = self.conn.command("AUTH LOGIN")
                if reply_code(lines) == 334:
                    lines = self.conn.command(base64.b64encode(user.encode()).decode())
                if reply_code(lines) == 334:
                    lines = self.conn.command(base64.b64encode(password.encode()).decode())
            else:
                return self._add("login", False, f"the server offers {' '.join(mechanisms) or 'no mechanism'}, "
                                 "and this check speaks PLAIN and LOGIN only",
                                 "A mechanism this tool cannot try.", "Use a mail client that supports it.", started)
        except (OSError, Closed) as err:
            return self._lost("login", err, started)
        code = reply_code(lines)
        if code == 235:
            return self._add("login", True, f"logged in as {user}: {plain_reply(lines)}",
                             "The server knows who you are, and will take mail from you for any domain.",
                             started=started)
        meaning, action = reply_meaning(last_line(lines))
        if code == 535:
            action = ("Check the user name (often the whole address) and the password in the mail settings: "
                      "case matters (Caps Lock?). Providers such as Gmail refuse the account password from "
                      "other programs: create an app password.")
        return self._add("login", False, f"login as {user} refused: {plain_reply(lines)}", meaning, action,
                         started)

    # --- a test message -------------------------------------------------------
    def _sender(self) -> str:
        if self.mail_from:
            return self.mail_from
        info = self.world.info
        if self.user:
            if "@" in self.user:
                return self.user
            if info:
                found = next((u for u in info["users"] if u["username"] == self.user), None)
                if found:
                    return found["address"]
        if self.lab_name and info and info["users"]:
            return info["users"][0]["address"]
        return "postmaster@smtplab-check.invalid"

    def _message(self, sender: str) -> bytes:
        msg = compose(sender, self.recipients, "smtplab check: a test message", "")
        body = "This test message was sent by smtplab check.\n"

        def build(padding: int) -> bytes:
            line = "This line pads the test message to the size asked for, like an attachment.\n"
            pad = (line * (padding // len(line) + 1))[:padding]
            msg.set_content(body + (pad[:-1] + "\n" if pad else ""))
            return wire_bytes(msg)

        raw = build(0)
        padding = 0
        for _ in range(4):  # the size of a padded message grows with its padding: close in on the exact size
            if not self.size or len(raw) == self.size or (len(raw) > self.size and padding == 0):
                break
            padding = max(padding + self.size - len(raw), 0)
            raw = build(padding)
        return raw

    def _step_send(self) -> bool:
        started = time.perf_counter()
        sender = self._sender()
        raw = self._message(sender)
        size_param = f" SIZE={len(raw)}" if any(c.split()[0] == "SIZE" for c in self.caps if c) else ""
        limit = next((c.split()[1] for c in self.caps if c.startswith("SIZE ") and len(c.split()) > 1), "")
        try:
            lines = self.conn.command(f"MAIL FROM:<{sender}>{size_param}")
            if reply_code(lines) != 250:
                return self._send_refused("MAIL FROM", lines, started, len(raw), limit)
            for rcpt in self.recipients:
                lines = self.conn.command(f"RCPT TO:<{rcpt}>")
                if reply_code(lines) not in (250, 251):
                    return self._send_refused(f"RCPT TO:<{rcpt}>", lines, started, len(raw), limit)
            lines = self.conn.command("DATA")
            if reply_code(lines) != 354:
                return self._send_refused("DATA", lines, started, len(raw), limit)
            body = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in raw.split(b"\r\n"))
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            self.conn.send_raw(body + b".\r\n")
            lines = self.conn.reply()
        except (OSError, Closed) as err:
            return self._lost("send", err, started)
        if reply_code(lines) != 250:
            return self._send_refused("the message", lines, started, len(raw), limit)
        to = ", ".join(self.recipients)
        return self._add("send", True, f"a {len(raw):,}-byte test message from {sender} to {to}: {plain_reply(lines)}",
                         "250 after the final dot: the server has taken responsibility for delivering it.",
                         started=started)

    def _send_refused(self, what: str, lines: list[str], started: float, size: int, limit: str) -> bool:
        meaning, action = reply_meaning(last_line(lines))
        detail = f"{what} was refused: {plain_reply(lines)}"
        if limit.isdigit() and int(limit) and size > int(limit):
            detail += f" (the message is {size:,} bytes; the server's EHLO said SIZE {int(limit):,})"
        return self._add("send", False, detail, meaning, action, started)

    # --- the end --------------------------------------------------------------
    def _quit(self) -> None:
        wire = self.wire
        if wire is None:
            return
        if not wire.closed:
            try:
                wire.timeout = min(self.timeout, 2.0)
                wire.command("QUIT")
            except (OSError, Closed):
                pass
            if not wire.closed:
                self.rec.event("client", "connection closed", "")
        wire.close()
