"""Troubleshooting: the checklist a mail administrator runs when mail does not go out, as tools.

    smtplab check HOST[:PORT]      the checklist, step by step; exit status 0 only if every step passed
    smtplab explain CODE           a reply code (550), an enhanced code (5.7.1) or a whole reply line
    smtplab talk HOST PORT         type SMTP by hand, like telnet (STARTTLS included), each reply annotated
    smtplab drills                 the fault drills of the ``drills`` scenario

and in a notebook ``check(lab, "smtp.example.org", 587)``, ``explain("550 5.1.1")``, ``DRILLS``.

Theory of operation
-------------------
:func:`check` walks the checklist in the order a connection goes: find the mail
server (MX, only when asked), resolve the name, connect, read the greeting, EHLO,
TLS (STARTTLS, or implicit TLS before the greeting on port 465) with the
certificate checked, the login mechanisms offered, and, when asked, a login and
a test message. Each step becomes a :class:`Step` (name, ok, detail, meaning,
next_step); the first failure ends the check, because every later step needs
the earlier ones. Nothing here prints: the CLI prints the :class:`CheckReport`,
a notebook shows it as HTML.

Names are found in one of two worlds (:class:`_World`). A *lab name* is one the
lab DNS knows (the name, or a parent domain of it, exists there): it is resolved
by the lab DNS, its logical port (587) is mapped to the port the lab really
bound, and the lab CA is trusted. Any other name goes to the system resolver,
its port is used as given, and the system trust store (plus ``cafile``) is
trusted. A lab name with no listener on the asked port meets a real closed port
on the host's address, so "connection refused" is what the kernel says, not a
made-up message.

The client is small and synchronous on purpose: blocking sockets with a timeout
work the same in a terminal and in a Jupyter kernel (whose own event loop is
busy), and the timeout a report states is the one each network wait had. Every
line goes through the lab's :class:`~smtplab.transcript.Recorder`, so a check
leaves an annotated transcript like any other session. Meanings come from the
one catalogue, :mod:`smtplab.codes`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import email.utils
import errno
import html
import ipaddress
import socket
import ssl
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from .. import codes
from ..mx import lookup_mx
from ..result import LabError
from ..transcript import Recorder, Transcript

#: Seconds each network wait (DNS, connect, a reply) may take before a check calls it a timeout.
DEFAULT_TIMEOUT = 5.0
#: The ports mail programs and servers use; ``try_ports`` probes these.
USUAL_PORTS = (25, 465, 587, 2525)
LAB_EHLO = "client.lab"

STEP_TITLES = {
    "mx": "Find the mail servers (MX)",
    "resolve": "Resolve the name",
    "connect": "Connect (TCP)",
    "banner": "Read the greeting",
    "ehlo": "Say EHLO",
    "tls": "TLS and the certificate",
    "auth": "Login mechanisms offered",
    "login": "Log in",
    "send": "Send a test message",
}


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------

@dataclass
class Step:
    """One step of the checklist: what happened, what it means, and what to try next."""

    name: str
    ok: bool
    detail: str
    meaning: str = ""
    next_step: str = ""
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.name, self.name)


@dataclass
class CheckReport:
    """The result of :func:`check`: the steps run, in order; ``ok`` only if every one passed."""

    host: str
    port: int
    where: str  # how names, ports and trust were found ("the lab: ..." or "the system's DNS ...")
    timeout: float
    steps: list[Step] = field(default_factory=list)
    transcript: Transcript | None = None
    capabilities: list[str] = field(default_factory=list)  # the last EHLO reply's keywords
    not_run: list[str] = field(default_factory=list)  # the steps a failure left out

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> Step | None:
        """The step that failed (a check stops at the first), or None."""
        return next((s for s in self.steps if not s.ok), None)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def verdict(self) -> str:
        if self.ok:
            return f"All {len(self.steps)} steps passed."
        bad = self.failed
        if bad is None:
            return "Nothing was checked."
        later = (f" Not run, since each step needs the ones before: {', '.join(self.not_run)}."
                 if self.not_run else "")
        return f"Failed at step {self.steps.index(bad) + 1} ({bad.name}): {bad.title}.{later}"

    def text(self, width: int | None = None) -> str:
        """Plain text, one block per step (wrapped to `width` columns if given)."""
        out = [f"Checking {self.host} port {self.port} ({self.where}; timeout {self.timeout:g} s per network wait)"]
        for number, s in enumerate(self.steps, 1):
            mark = "PASS" if s.ok else "FAIL"
            head = f"{mark}  {number}. {s.name:<8} "
            pad = " " * len(head)
            timing = _ms(s.seconds).replace(" ", "\0")  # never split "7.4 ms" across lines
            out.append(_wrap(head + f"{s.detail} ({timing})", width, pad).replace("\0", " "))
            if s.meaning:
                out.append(_wrap(pad + ("" if s.ok else "What it means: ") + s.meaning, width, pad))
            if s.next_step:
                out.append(_wrap(pad + "Try next: " + s.next_step, width, pad))
        out.append(self.verdict)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<CheckReport {self.host} port {self.port}: {self.verdict}>"

    def _repr_html_(self) -> str:
        rows = []
        for number, s in enumerate(self.steps, 1):
            style = "" if s.ok else ' style="background:#fff5e1"'
            mark = '<span style="color:#1e7b34">&#10004; pass</span>' if s.ok else \
                '<span style="color:#a15c00"><b>&#10008; FAIL</b></span>'
            meaning = html.escape(s.meaning)
            nxt = f"<br><b>Try next:</b> {html.escape(s.next_step)}" if s.next_step else ""
            rows.append(f"<tr{style}><td>{number}</td><td>{mark}</td><td><b>{html.escape(s.name)}</b><br>"
                        f"<small>{html.escape(s.title)}</small></td><td>{html.escape(s.detail)}"
                        f"<br><small>{_ms(s.seconds)}</small></td><td>{meaning}{nxt}</td></tr>")
        colour = "#1e7b34" if self.ok else "#a15c00"
        return (f'<div class="smtplab-check"><p><b>Checking {html.escape(self.host)} port {self.port}</b><br>'
                f"<small>{html.escape(self.where)}; timeout {self.timeout:g} s per network wait</small></p>"
                '<table style="text-align:left"><thead><tr><th>#</th><th>result</th><th>step</th>'
                "<th>what happened</th><th>what it means</th></tr></thead>"
                f'<tbody>{"".join(rows)}</tbody></table>'
                f'<p style="color:{colour}"><b>{html.escape(self.verdict)}</b></p></div>')


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _wrap(text: str, width: int | None, indent: str) -> str:
    if not width:
        return text
    return textwrap.fill(text, width=width, subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=False)


# ---------------------------------------------------------------------------
# Where names, ports and trust come from
# ---------------------------------------------------------------------------

@dataclass
class _Resolved:
    addresses: list[str]
    canonical: str
    source: str
    kind: str = "ok"  # ok, nxdomain, nodata, timeout, servfail, temporary, error
    error: str = ""


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


class _World:
    """Names, ports and trust: the lab's for lab names, the system's for the rest."""

    def __init__(self, info: Mapping[str, Any] | None, cafile: str | None, timeout: float) -> None:
        self.info = info
        self.cafile = cafile
        self.timeout = timeout
        self.servers: list[dict[str, Any]] = list(info["servers"]) if info else []
        self._answers: dict[tuple[str, str], dns.message.Message | None] = {}

    # --- lab DNS ------------------------------------------------------------
    def _lab_query(self, name: str, rdtype: str) -> dns.message.Message | None:
        """The lab DNS's reply (None: no answer in time)."""
        key = (name, rdtype)
        if key not in self._answers:
            dns_info = self.info["dns"]
            query = dns.message.make_query(name, rdtype)
            try:
                self._answers[key] = dns.query.udp(query, dns_info["address"], port=dns_info["port"],
                                                   timeout=self.timeout)
            except (dns.exception.Timeout, OSError):
                self._answers[key] = None
        return self._answers[key]

    def is_lab_name(self, name: str) -> bool:
        if not self.info or _is_address(name):
            return False
        name = name.lower().rstrip(".")
        if any(s["host"] == name for s in self.servers):
            return True
        labels = name.split(".")
        for i in range(max(len(labels) - 1, 1)):  # the name, then its parents, down to two labels
            reply = self._lab_query(".".join(labels[i:]) + ".", "A")
            if reply is None or reply.rcode() != dns.rcode.NXDOMAIN:
                return True  # the lab DNS knows it (or fails on it on purpose: a scenario's DNS fault)
        return False

    def where(self, lab_name: bool) -> str:
        if lab_name:
            return "a lab name: the lab DNS, the lab's real ports, the lab CA"
        return "not a lab name: the system's DNS, the port as given, the system's trusted certificates" + (
            f" and {self.cafile}" if self.cafile else "")

    # --- resolving ----------------------------------------------------------
    def resolve(self, name: str, lab_name: bool) -> _Resolved:
        if _is_address(name):
            return _Resolved([name], name, "an address: nothing to look up")
        if lab_name:
            return self._resolve_lab(name)
        return self._resolve_system(name)

    def _resolve_lab(self, name: str) -> _Resolved:
        fqdn = name.lower().rstrip(".") + "."
        reply = self._lab_query(fqdn, "A")
        if reply is None:
            return _Resolved([], name, "lab DNS", "timeout", f"the lab DNS did not answer within {self.timeout:g} s")
        rcode = reply.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return _Resolved([], name, "lab DNS", "nxdomain", f"{name} does not exist in DNS (NXDOMAIN)")
        if rcode != dns.rcode.NOERROR:
            return _Resolved([], name, "lab DNS", "servfail",
                             f"the DNS server failed to answer ({dns.rcode.to_text(rcode)})")
        canonical = name
        addresses = []
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                canonical = str(rrset[0].target).rstrip(".")
            elif rrset.rdtype == dns.rdatatype.A:
                addresses += [r.address for r in rrset]
        if not addresses:
            return _Resolved([], canonical, "lab DNS", "nodata",
                             f"{name} exists in DNS but has no address (no A record)")
        return _Resolved(addresses, canonical, "lab DNS")

    def _resolve_system(self, name: str) -> _Resolved:
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["infos"] = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except socket.gaierror as err:
                box["error"] = err
            except UnicodeError as err:
                box["error"] = socket.gaierror(socket.EAI_NONAME, str(err))

        worker = threading.Thread(target=work, name="smtplab-resolve", daemon=True)  # getaddrinfo has no timeout
        worker.start()
        worker.join(self.timeout)
        source = "system DNS"
        if worker.is_alive():
            return _Resolved([], name, source, "timeout", f"the system's DNS did not answer within {self.timeout:g} s")
        err = box.get("error")
        if err is not None:
            if err.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
                return _Resolved([], name, source, "nxdomain", f"{name} does not exist in DNS ({err.strerror})")
            if err.errno == socket.EAI_AGAIN:
                return _Resolved([], name, source, "temporary",
                                 f"the name could not be looked up now ({err.strerror}): no working DNS")
            return _Resolved([], name, source, "error", f"the lookup failed: {err.strerror or err}")
        addresses: list[str] = []
        for family, *_rest, sockaddr in box["infos"]:
            if sockaddr[0] not in addresses:
                addresses.append(sockaddr[0])
        addresses.sort(key=lambda a: ":" in a)  # IPv4 first: more often reachable
        return _Resolved(addresses, name, source)

    def mx_records(self, name: str, lab_name: bool) -> list[str]:
        """The MX targets of `name`, if it has any (to spot a mail domain given as a server)."""
        try:
            if lab_name:
                reply = self._lab_query(name.rstrip(".") + ".", "MX")
                return [f"{r.preference} {str(r.exchange).rstrip('.')}" for rrset in (reply.answer if reply else [])
                        if rrset.rdtype == dns.rdatatype.MX for r in rrset]
            resolver = dns.resolver.Resolver()
            resolver.lifetime = resolver.timeout = min(self.timeout, 3.0)
            return [f"{r.preference} {str(r.exchange).rstrip('.')}" for r in resolver.resolve(name, "MX")]
        except Exception:  # noqa: BLE001 - only a hint: any trouble means no hint
            return []

    def lookup_mx(self, domain: str, lab_name: bool) -> Any:
        if lab_name:
            coro = lookup_mx(domain, self.info["dns"]["address"], self.info["dns"]["port"], lifetime=self.timeout)
        else:
            coro = lookup_mx(domain, None, lifetime=self.timeout, source="system DNS")
        return _run_coroutine(coro, self.timeout * 4 + 5)

    # --- lab listeners ------------------------------------------------------
    def listener(self, names: Sequence[str], address: str, port: int) -> dict[str, Any] | None:
        """The lab listener for logical `port` of the host called `names` (or at `address`)."""
        wanted = {n.lower().rstrip(".") for n in names}
        for s in self.servers:
            if s["host"] in wanted and s["port"] == port:
                return s
        hosts_there = {s["host"] for s in self.servers if s["address"] == address}
        if len(hosts_there) == 1:  # hosts with their own loopback address: the address says which host
            return next((s for s in self.servers if s["address"] == address and s["port"] == port), None)
        return None

    def host_of(self, names: Sequence[str], address: str) -> str | None:
        wanted = {n.lower().rstrip(".") for n in names}
        for s in self.servers:
            if s["host"] in wanted:
                return s["host"]
        hosts_there = {s["host"] for s in self.servers if s["address"] == address}
        return next(iter(hosts_there)) if len(hosts_there) == 1 else None

    def by_bound_address(self, address: str, port: int) -> dict[str, Any] | None:
        """The lab listener really at address:port (someone typed the bound port)."""
        return next((s for s in self.servers if s["address"] == address and s["bound_port"] == port), None)

    def ssl_context(self, lab_name: bool, check_hostname: bool = True) -> ssl.SSLContext:
        if lab_name:
            ctx = ssl.create_default_context(cafile=self.info["ca_cert"])
        else:
            ctx = ssl.create_default_context()
            if self.cafile:
                ctx.load_verify_locations(cafile=self.cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if not check_hostname:
            ctx.check_hostname = False
        return ctx


def _run_coroutine(coro: Any, timeout: float) -> Any:
    """Run a coroutine to its end on a fresh loop in a helper thread (works inside Jupyter too)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            box["error"] = err

    worker = threading.Thread(target=work, name="smtplab-async", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


@contextlib.contextmanager
def closed_port(address: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A port on `address` where nothing listens: connecting there is refused at once.

    The port is held (bound, never listening) while the block runs, so nothing else takes it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
        yield sock.getsockname()[:2]
    finally:
        sock.close()


@contextlib.contextmanager
def silent_port(address: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A port that never answers: connecting there times out, like a firewall that drops packets.

    A listening socket whose accept queue is full (``listen(0)`` plus one connection never
    accepted): Linux then drops further SYNs, so a client waits for its whole timeout.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind((address, 0))
        server.listen(0)
        where = server.getsockname()[:2]
        filler.settimeout(2)
        filler.connect(where)  # fills the accept queue
        yield where
    finally:
        filler.close()
        server.close()


# ---------------------------------------------------------------------------
# A small synchronous SMTP line client that records through the lab's Recorder
# ---------------------------------------------------------------------------

class _Closed(Exception):
    """The server closed the connection."""


class _Wire:
    def __init__(self, sock: socket.socket, recorder: Recorder, timeout: float) -> None:
        self.sock = sock
        self.rec = recorder
        self.timeout = timeout
        self._buffer = b""
        self.closed = False

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                self.rec.event("server", "connection closed", "The server hung up.")
                raise _Closed()
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def reply(self) -> list[str]:
        """One whole reply (every line up to the one with a space after the code)."""
        deadline = time.monotonic() + self.timeout
        lines = []
        while True:
            raw = self._line(deadline)
            self.rec.feed("server", raw)
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3:4] != "-" or not text[:3].isdigit():
                return lines

    def send(self, line: str) -> None:
        data = line.encode("utf-8", "surrogateescape") + b"\r\n"
        self.rec.feed("client", data)
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.rec.feed("client", data)
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def command(self, line: str) -> list[str]:
        self.send(line)
        return self.reply()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _code(lines: Sequence[str]) -> int:
    return int(lines[-1][:3]) if lines and lines[-1][:3].isdigit() else 0


def _last(lines: Sequence[str]) -> str:
    return lines[-1] if lines else ""


def _tls_text(sock: ssl.SSLSocket) -> str:
    cipher = sock.cipher()
    return f"{sock.version()}, {cipher[0]}" if cipher else str(sock.version())


def _plain_reply(lines: Sequence[str]) -> str:
    """A reply as one line: '550 5.1.1 <x>: no such mailbox here'."""
    if not lines:
        return ""
    return lines[0] if len(lines) == 1 else lines[0] + " ... " + lines[-1]


def _reply_meaning(line: str) -> tuple[str, str]:
    """(what it means, what to do) for a reply line, from the codes catalogue."""
    try:
        infos = codes.explain(line)
    except ValueError:
        return f"'{line}' is not a valid SMTP reply.", ""
    reply = infos[0]
    enhanced = infos[1] if len(infos) > 1 else None
    meaning = f"{reply.code} ({reply.title}): {reply.meaning}"
    if enhanced is not None:
        meaning += f" {enhanced.code} ({enhanced.title}): {enhanced.meaning}"
    action = reply.action
    if enhanced is not None and enhanced.action and (line[:1] == "5" or enhanced.code.split(".")[1] in "12356"):
        # The detail says best what to change; for temporary security/network trouble (4.7.x, 4.4.x)
        # the reply code's "wait and retry" is the better advice (4.7.1 is mostly greylisting).
        action = enhanced.action
    return meaning, action


# ---------------------------------------------------------------------------
# The checklist
# ---------------------------------------------------------------------------

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
    checker = _Checker(_World(_lab_info(lab, network), cafile, float(timeout)), host, port, user=user, password=password,
                       recipients=recipients, mail_from=mail_from, size=size, tls=tls, mx=mx,
                       try_ports=try_ports, ehlo=ehlo)
    return checker.run()


class _Checker:
    def __init__(self, world: _World, host: str, port: int, *, user: str | None, password: str | None,
                 recipients: list[str], mail_from: str | None, size: int | None, tls: str, mx: bool,
                 try_ports: bool, ehlo: str | None) -> None:
        self.world = world
        self.host = host.lower().rstrip(".") if not _is_address(host) else host
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
        bound = world.by_bound_address(host, port) if _is_address(host) else None
        if bound is not None:  # someone typed the lab's real address and port
            self.lab_name, self.lab_listener, self.server_name = True, bound, bound["host"]
        self.report = CheckReport(self.host, port, world.where(self.lab_name), self.timeout)
        self.wire: _Wire | None = None
        self.names = [self.host]
        self.address = ""
        self.caps: list[str] = []
        self.implicit = False

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
        if self.user is not None and not self._step_login():
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
        skipped = []
        for name in candidates:
            found = self.world.resolve(name, self.lab_name or self.world.is_lab_name(name))
            if found.addresses:
                self.address = found.addresses[0]
                self.server_name = name if not _is_address(name) else self.server_name
                self.names = [name, found.canonical]
                alias = f" (an alias of {found.canonical})" if found.canonical != name else ""
                others = f"; also {', '.join(found.addresses[1:])}" if len(found.addresses) > 1 else ""
                skip = f" ({'; '.join(skipped)}; skipped)" if skipped else ""
                if _is_address(name):
                    return self._add("resolve", True, f"{name} is an address: nothing to look up", "", started=started)
                return self._add("resolve", True, f"{name}{alias} is {self.address}{others} ({found.source}){skip}",
                                 "The name is in DNS, so programs can find the server.", started=started)
            skipped.append(found.error)
        return self._resolve_failed(candidates, skipped, found, started)

    def _resolve_failed(self, candidates: list[str], errors: list[str], found: _Resolved, started: float) -> bool:
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
                return self._connect_to(closed, port)
        return self._connect_to(real, port)

    def _connect_to(self, where: tuple[str, int], port: int) -> tuple[socket.socket | None, str, str]:
        shown = f"{where[0]}:{where[1]}" if ":" not in where[0] else f"[{where[0]}]:{where[1]}"
        try:
            sock = socket.create_connection(where, timeout=self.timeout)
        except ConnectionRefusedError:
            return None, "refused", shown
        except TimeoutError:
            return None, "timeout", shown
        except OSError as err:
            if err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                return None, "unreachable", shown
            return None, f"error: {err.strerror or err}", shown
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, "ok", shown

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
            self.wire = _Wire(sock, self.rec, self.timeout)
            mapped = f" (the lab's real port for {self.port})" if self.lab_name and shown.rsplit(":", 1)[1] != str(self.port) else ""
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
        hostname = None if _is_address(self.server_name) else self.server_name
        ctx = self.world.ssl_context(self.lab_name, check_hostname=hostname is not None)
        try:
            self.wire.sock.settimeout(self.timeout)
            self.wire.sock = ctx.wrap_socket(self.wire.sock, server_hostname=hostname)
        except ssl.SSLCertVerificationError as err:
            self.wire.closed = True  # a failed handshake ends the connection
            self._certificate_failed(err, step_started)
            return False, ""
        except (ssl.SSLError, OSError) as err:
            self.wire.closed = True
            reason = "timed out" if isinstance(err, socket.timeout) else str(getattr(err, "reason", None) or err)
            self.rec.event("client", f"TLS handshake failed: {reason}", "")
            self._add("tls", False, f"the TLS handshake failed: {reason}",
                      "Client and server could not agree on TLS: an old TLS version (SSL 3.0, TLS 1.0 and 1.1 "
                      "are deprecated), or something that is not TLS on this port.",
                      "Check the port and the encryption setting (STARTTLS on 587/25, TLS on 465).", step_started)
            return False, ""
        self.rec.tls = True
        sock = self.wire.sock
        self.rec.event("client", f"TLS established: {_tls_text(sock)}", "The certificate checked out.")
        cert = sock.getpeercert() or {}
        issuer = dict(x[0] for x in cert.get("issuer", ()))
        issued_by = ", ".join(v for v in (issuer.get("organizationName"), issuer.get("organizationalUnitName"))
                              if v) or issuer.get("commonName") or "?"
        until = cert.get("notAfter", "")
        left = ""
        if until:
            expires = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(until), datetime.UTC)
            days = (expires - datetime.datetime.now(datetime.UTC)).days
            left = f", expires in {days} days: renew soon" if days < 30 else ""
        name_part = f"made out to {hostname}" if hostname else "name not checked (an address was given)"
        return True, f"{_tls_text(sock)}; certificate {name_part}, signed by '{issued_by}' (trusted){left}"

    def _certificate_failed(self, err: ssl.SSLCertVerificationError, started: float) -> None:
        code = getattr(err, "verify_code", 0)
        message = getattr(err, "verify_message", "") or str(err)
        self.rec.event("client", f"TLS handshake failed: {message}", "The client refused the server's certificate.")
        cert = self._peek_certificate()
        names = ", ".join(cert.get("names", ())) if cert else ""
        if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            when = cert.get("not_after") if cert else None
            ago = ""
            if when is not None:
                days = (datetime.datetime.now(datetime.UTC) - when).days
                ago = f" on {when:%Y-%m-%d %H:%M:%S} UTC ({days} days ago)"
            detail = f"the server's certificate expired{ago}"
            meaning = ("A certificate is valid only between two dates. This one is past its end date, so the "
                       "client cannot trust it, even though it was once fine: the server's administrator forgot "
                       "to renew it.")
            nxt = ("Nothing to fix on your side: tell the server's administrator (renewing it, e.g. with "
                   "Let's Encrypt, fixes it). Do not switch certificate checks off.")
        elif code == 9:  # not yet valid
            detail = "the server's certificate is not valid yet"
            meaning = "Its start date is in the future: a wrong clock on the server or on this computer."
            nxt = "Check this computer's date and time, then tell the server's administrator."
        elif code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            detail = (f"the certificate is made out to {names or 'another name'}, not {self.server_name}")
            meaning = ("The certificate is genuine, but for another name: the client cannot tell whether it "
                       "talks to the right server, or to an impostor who has a certificate of their own.")
            nxt = ("Use the server name the certificate is made out to, if that is the provider's real server "
                   "name (often the settings name an alias); otherwise tell the administrator.")
        elif code in (18, 19, 20, 21):  # self-signed, or signed by an unknown authority
            issuer = cert.get("issuer", "") if cert else ""
            by = f" (signed by '{issuer}')" if issuer else ""
            detail = f"the certificate is signed by an authority this client does not trust{by}"
            meaning = ("Anyone can make a certificate for any name; a client trusts only those signed by an "
                       "authority it knows. This one is self-signed or signed by an unknown authority, so it "
                       "proves nothing.")
            nxt = ("If it is your own server, get a certificate from a real authority (Let's Encrypt). If you "
                   "run your own CA on purpose, give its certificate to the client (--cafile). Never click "
                   "'accept anyway' for a server you do not run.")
        else:
            detail = f"the certificate was refused: {message}"
            meaning = "The client could not verify the server's certificate."
            nxt = "Tell the server's administrator what the check says."
        self._add("tls", False, detail, meaning, nxt, started)

    def _peek_certificate(self) -> dict[str, Any] | None:
        """The certificate the server shows, fetched again without checking it (to describe it)."""
        try:
            from cryptography import x509
            from cryptography.x509.oid import NameOID
        except ImportError:  # pragma: no cover - cryptography comes with trustme
            return None
        sock, _how, _ = self._connect(self.port)
        if sock is None:
            return None
        try:
            wire = _Wire(sock, Recorder(Transcript(self.server_name, "client")), min(self.timeout, 3.0))
            if not self.implicit:
                wire.reply()
                wire.command(f"EHLO {self._ehlo()}")
                if _code(wire.command("STARTTLS")) != 220:
                    return None
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            tls_sock = ctx.wrap_socket(wire.sock, server_hostname=None if _is_address(self.server_name)
                                       else self.server_name)
            der = tls_sock.getpeercert(binary_form=True)
            tls_sock.close()
        except (OSError, _Closed, ssl.SSLError):
            return None
        finally:
            sock.close()
        cert = x509.load_der_x509_certificate(der)
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName)
        except x509.ExtensionNotFound:
            names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        issuer = (cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
                  or cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME))
        return {"names": list(names), "not_after": cert.not_valid_after_utc,
                "issuer": str(issuer[0].value) if issuer else ""}

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
            lines = self.wire.command("STARTTLS")
        except (OSError, _Closed) as err:
            return self._lost("tls", err, started)
        if _code(lines) != 220:
            meaning, action = _reply_meaning(_last(lines))
            return self._add("tls", False, f"STARTTLS was refused: {_plain_reply(lines)}", meaning, action, started)
        ok, detail = self._handshake(started)
        if not ok:
            return False
        try:
            lines = self.wire.command(f"EHLO {self._ehlo()}")
        except (OSError, _Closed) as err:
            return self._lost("tls", err, started)
        if _code(lines) == 250:
            self.caps = _keywords(lines)
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
            lines = self.wire.reply()
        except TimeoutError:
            nxt = ("If this port wants TLS from the first byte (465), the server waits for a TLS handshake and "
                   "never greets in plain text: check with TLS (tls='implicit', --tls implicit)."
                   if not self.implicit else "The server may be overloaded; try again later.")
            return self._add("banner", False, f"connected, but no greeting within {self.timeout:g} s",
                             "The server speaks first in SMTP; this one said nothing. Either it is not an SMTP "
                             "server, it is stuck, or it expects something else first.", nxt, started)
        except (OSError, _Closed) as err:
            return self._lost("banner", err, started)
        first = lines[0]
        if not first[:3].isdigit():
            return self._add("banner", False, f"the server said '{first[:80]}', which is not SMTP",
                             "Another kind of server listens on this port (a web server, SSH, ...).",
                             "Check the port number in the mail settings.", started)
        code = _code(lines)
        if code == 220:
            return self._add("banner", True, _plain_reply(lines),
                             "220: the server is ready; the first word is the name it calls itself.",
                             started=started)
        meaning, action = _reply_meaning(_last(lines))
        if code == 554:
            meaning = "554 as a greeting means 'no SMTP service here for you': the server will not talk. " + meaning
        return self._add("banner", False, f"the greeting is {_plain_reply(lines)}", meaning, action, started)

    def _ehlo(self) -> str:
        if self.ehlo_name:
            return self.ehlo_name
        if self.lab_name:
            return LAB_EHLO
        try:
            local = self.wire.sock.getsockname()[0]
        except (OSError, AttributeError):
            local = "127.0.0.1"
        return f"[IPv6:{local}]" if ":" in local else f"[{local}]"

    def _step_ehlo(self) -> bool:
        started = time.perf_counter()
        try:
            lines = self.wire.command(f"EHLO {self._ehlo()}")
        except (OSError, _Closed) as err:
            return self._lost("ehlo", err, started)
        if _code(lines) != 250:
            meaning, action = _reply_meaning(_last(lines))
            return self._add("ehlo", False, f"EHLO was answered {_plain_reply(lines)}", meaning,
                             "A very old server may know only HELO (no STARTTLS, no AUTH then); " + action, started)
        self.caps = _keywords(lines)
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

    def _step_login(self) -> bool:
        started = time.perf_counter()
        password = self._login_password()
        if password is None:
            return self._add("login", False, f"no password for {self.user}",
                             "A login needs a password; none was given and the lab knows no such user.",
                             "Give the password (password=..., --password).", started)
        mechanisms = self._auth_mechanisms()
        try:
            if "PLAIN" in mechanisms:
                token = base64.b64encode(f"\0{self.user}\0{password}".encode()).decode()
                lines = self.wire.command(f"AUTH PLAIN {token}")
            elif "LOGIN" in mechanisms:
                lines = self.wire.command("AUTH LOGIN")
                if _code(lines) == 334:
                    lines = self.wire.command(base64.b64encode(self.user.encode()).decode())
                if _code(lines) == 334:
                    lines = self.wire.command(base64.b64encode(password.encode()).decode())
            else:
                return self._add("login", False, f"the server offers {' '.join(mechanisms) or 'no mechanism'}, "
                                 "and this check speaks PLAIN and LOGIN only",
                                 "A mechanism this tool cannot try.", "Use a mail client that supports it.", started)
        except (OSError, _Closed) as err:
            return self._lost("login", err, started)
        code = _code(lines)
        if code == 235:
            return self._add("login", True, f"logged in as {self.user}: {_plain_reply(lines)}",
                             "The server knows who you are, and will take mail from you for any domain.",
                             started=started)
        meaning, action = _reply_meaning(_last(lines))
        if code == 535:
            action = ("Check the user name (often the whole address) and the password in the mail settings: "
                      "case matters (Caps Lock?). Providers such as Gmail refuse the account password from "
                      "other programs: create an app password.")
        return self._add("login", False, f"login as {self.user} refused: {_plain_reply(lines)}", meaning, action,
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
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = ", ".join(self.recipients)
        msg["Subject"] = "smtplab check: a test message"
        msg["Date"] = email.utils.localtime()
        msg["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or "smtplab.invalid")
        body = "This test message was sent by smtplab check.\n"

        def build(padding: int) -> bytes:
            line = "This line pads the test message to the size asked for, like an attachment.\n"
            pad = (line * (padding // len(line) + 1))[:padding]
            msg.set_content(body + (pad[:-1] + "\n" if pad else ""))
            return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))

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
            lines = self.wire.command(f"MAIL FROM:<{sender}>{size_param}")
            if _code(lines) != 250:
                return self._send_refused("MAIL FROM", lines, started, len(raw), limit)
            for rcpt in self.recipients:
                lines = self.wire.command(f"RCPT TO:<{rcpt}>")
                if _code(lines) not in (250, 251):
                    return self._send_refused(f"RCPT TO:<{rcpt}>", lines, started, len(raw), limit)
            lines = self.wire.command("DATA")
            if _code(lines) != 354:
                return self._send_refused("DATA", lines, started, len(raw), limit)
            body = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in raw.split(b"\r\n"))
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            self.wire.send_raw(body + b".\r\n")
            lines = self.wire.reply()
        except (OSError, _Closed) as err:
            return self._lost("send", err, started)
        if _code(lines) != 250:
            return self._send_refused("the message", lines, started, len(raw), limit)
        to = ", ".join(self.recipients)
        return self._add("send", True, f"a {len(raw):,}-byte test message from {sender} to {to}: {_plain_reply(lines)}",
                         "250 after the final dot: the server has taken responsibility for delivering it.",
                         started=started)

    def _send_refused(self, what: str, lines: list[str], started: float, size: int, limit: str) -> bool:
        meaning, action = _reply_meaning(_last(lines))
        detail = f"{what} was refused: {_plain_reply(lines)}"
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
            except (OSError, _Closed):
                pass
            if not wire.closed:
                self.rec.event("client", "connection closed", "")
        wire.close()


def _keywords(lines: Sequence[str]) -> list[str]:
    """The extension keywords of an EHLO reply (every line after the first)."""
    return [ln[4:].strip().upper() for ln in lines[1:] if ln[4:].strip()]


# ---------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------
