"""The Lab: a small world of mail servers, a DNS server and a CA, running inside this process.

Theory of operation
-------------------
A :class:`Lab` owns one event loop, run by one background thread. Every
server, the DNS, the relay and every client session of the lab live on that
loop. Notebook code calls plain methods (``lab.send(...)``); each one hands a
coroutine to the lab's loop and waits for its result, which works the same in
a script, in pytest and inside a Jupyter kernel (whose own loop is busy
running the cell, which is why ``asyncio.run()`` fails there). The ``a``
methods (``await lab.asend(...)``) are the same work for asyncio code.

Ports below 1024 need root, so each *logical* port (587 on smtp.example.org)
is served from a real loopback address and a port the OS picks. Each host
gets its own loopback address (127.0.0.2, ...) where the system allows it
(Linux), so transcripts and Received headers look real; elsewhere (macOS)
every host shares 127.0.0.1 with distinct ports. Clients of the lab name the
logical host and port; :meth:`Lab.endpoint` maps them.

Only one lab runs per process by default: making a new one stops the old one
first, so re-running a notebook cell never meets "address already in use".
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import random
import shutil
import socket
import tempfile
import weakref
from collections.abc import Coroutine, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from . import relay as relay_mod
from .addresses import AddressBook
from .client import Endpoint, RawSession, SendPlan, open_socket, submit
from .connections import ConnectionKey, Watch
from .dns import DigAnswer, LabDNS, dig
from .httpapi import MAX_HEADERS, ApiResult, HttpApi, api_key, api_post
from .journal import MessageTrace
from .limits import raise_open_file_limit
from .loop import LoopThread
from .mailboxes import mailbox_problem
from .messages import compose, wire_bytes
from .mx import MXLookup, lookup_mx, recorded_mx
from .network import Network, Place
from .postoffice import Fault, PostOffice
from .result import LabError, SendResult
from .senderauth import SigningKey, signing_key
from .server import HostPolicy, RecordingSMTP
from .statefile import prepare_state_dir
from .store import MailStore
from .tls import LabCA
from .topology import Host, Listener, Topology, load_scenario
from .transcript import Entry, Recorder, Transcript

__all__ = ["Lab", "Endpoint", "Session"]

T = TypeVar("T")

# aiosmtpd logs warnings (unknown commands, and "Session.login_data is deprecated" on every
# successful AUTH in 1.4.6) that the lab records itself or that are not the student's concern:
# keep them out of notebook cells.
_mail_log = logging.getLogger("mail.log")
_mail_log.addHandler(logging.NullHandler())
_mail_log.addFilter(lambda record: "login_data is deprecated" not in record.getMessage())
_mail_log.propagate = False

DEFAULT_EHLO = "client.lab"
SERVER_VIEW_WAIT = 2.0  # seconds a send waits for the server to report the session it just ended


class Lab:
    """A running lab world. ``Lab()`` starts the default scenario and returns when every server accepts connections."""

    _current: Lab | None = None
    _all: weakref.WeakSet[Lab] = weakref.WeakSet()

    def __init__(self, scenario: str | Path | dict[str, Any] | Topology = "default", *,
                 state_dir: str | Path | None = None, replace: bool = True, durable: bool = False,
                 seed: int | None = None, retry: Sequence[float] | None = None,
                 latency_ms: float | None = None) -> None:
        self.topology = load_scenario(scenario)
        self.rng = random.Random(seed)  # equal-preference MX order: seed it for reproducible notebooks
        self.retry_delays = tuple(retry) if retry is not None else self.topology.retry
        self.address_book = AddressBook(self.topology)
        self.own_addresses = self.address_book.own_addresses
        self.addresses = self.address_book.addresses
        self.endpoints = self.address_book.endpoints  # SMTP listeners
        self.services = self.address_book.services  # other services (the HTTP sending API)
        self.dns = LabDNS(self.topology, self.addresses)  # before anything is made: it checks the zone text
        if replace and Lab._current is not None:
            Lab._current.stop()
        self._owns_state_dir = state_dir is None
        self.state_dir = Path(tempfile.mkdtemp(prefix="smtplab-")) if state_dir is None else Path(state_dir).resolve()
        prepare_state_dir(self.state_dir)  # 0700: passwords, transcripts and mail live here
        self.running = False
        self._servers: dict[str, list[asyncio.base_events.Server]] = {}  # host -> its listening servers

        self.ca = LabCA(self.state_dir / "tls", [h.name for h in self.topology.hosts],
                        {h.name: h.certificate for h in self.topology.hosts if h.certificate})
        self.client_tls = self.ca.client_context()
        self.store = MailStore(self.state_dir, durable=durable)  # durable: fsync before 250 (see store.py)
        self.dkim_keys = self._dkim_keys()  # made (or read back) before any server signs, published in the lab DNS
        self.post = PostOffice(self.topology, self.store, self.address_book, self.state_dir, send=self._send,
                               dns=self.dns, retry_delays=self.retry_delays, rng=self.rng,
                               signing_keys=self.dkim_keys)
        self.journal = self.post.journal_log
        self.errors = self.post.errors  # what went wrong inside the loop, kept quiet
        self.relays = self.post.relays
        self.network = Network({n["name"]: Place.from_dict(n) for n in self.topology.networks}, self.post.connections)
        if latency_ms:
            self.network.places["student"] = dataclasses.replace(self.network.places["student"], delay=latency_ms / 1000)

        raise_open_file_limit()  # a connection is a file: 1024 would stop the lab at ~1000 idle ones
        self._runner = LoopThread(self._on_loop_error)
        self._loop = self._runner.loop
        try:
            self._run(self._start(), timeout=30)
        except BaseException:
            self.stop()
            raise
        self.running = True
        if replace:  # a side lab (replace=False) is not the one the next Lab() replaces
            Lab._current = self
        Lab._all.add(self)

    # --- life --------------------------------------------------------------
    def _dkim_keys(self) -> dict[tuple[str, str], SigningKey]:
        """Each host's DKIM keys, kept in the state directory (a restart signs with the same key)."""
        keys = {}
        for host in self.topology.hosts:
            for setting in host.dkim:
                key = signing_key(self.state_dir / "dkim", setting.domain, setting.selector, setting.algorithm)
                keys[(host.name, setting.domain)] = key
                if not self.dns.records(key.record_name + ".", "TXT"):  # a scenario may publish (or break) it itself
                    self.dns.set_txt(key.record_name + ".", [key.record])
        return keys

    async def _start(self) -> None:
        await self.dns.start()
        for host in self.topology.hosts:
            await self._start_host(host)
            self.relays[host.name] = relay_mod.Relay(self.post, host)
        for relay in self.relays.values():
            relay.resume()

    async def _start_host(self, host: Host) -> None:
        servers = self._servers[host.name] = []
        if host.http_api:
            servers.append(await self._start_api(host))
        for listener in host.listeners:
            known = self.endpoints.get((host.name, listener.port))
            # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only for sockets that say TCP,
            # and with Nagle on every multi-line reply waits ~40 ms for a delayed ACK.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.addresses[host.name], known.bound_port if known else 0))  # a restart keeps its port
            servers.append(await self._loop.create_server(
                self._protocol_factory(host, listener), sock=sock,
                ssl=self.ca.server_context(host.name) if listener.tls == "implicit" else None))
            self.endpoints[(host.name, listener.port)] = Endpoint(host, listener, *sock.getsockname()[:2])

    async def _start_api(self, host: Host) -> asyncio.base_events.Server:
        """The host's HTTP sending API: its own certificate, logical port 443."""
        listener = Listener(443, "http-api", "implicit", "required")
        known = self.services.get((host.name, 443))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.addresses[host.name], known.bound_port if known else 0))
        api = HttpApi(self.post, host, listener)
        server = await asyncio.start_server(api.serve, sock=sock, ssl=self.ca.server_context(host.name),
                                            limit=MAX_HEADERS)
        self.services[(host.name, 443)] = Endpoint(host, listener, *sock.getsockname()[:2])
        return server

    async def _stop_host(self, name: str) -> None:
        for server in self._servers.pop(name, []):
            server.close()
        for conn in list(self.post.connections.live.values()):  # a host that goes down ends its sessions too
            if isinstance(conn, RecordingSMTP) and conn.policy.host.name == name:
                conn.stop_politely()

    def _protocol_factory(self, host: Host, listener: Listener) -> Any:
        policy = HostPolicy(self.post, host, listener)
        tls_context = self.ca.server_context(host.name) if listener.tls == "starttls" else None

        def make() -> RecordingSMTP:
            return RecordingSMTP(
                policy, implicit_tls=listener.tls == "implicit", tls_context=tls_context,
                require_starttls=(listener.tls == "starttls" and listener.role.startswith("submission")
                                  and not listener.plaintext_auth),
                # "auth required" is enforced at RCPT by the policy, so that a relay attempt
                # is refused as one (554 5.7.1) whatever the port.
                auth_required=False, auth_require_tls=not listener.plaintext_auth,
                authenticator=policy.authenticate, data_size_limit=host.max_size, timeout=300)
        return make

    def stop(self) -> None:
        """Stop every server and thread and free every port. Safe to call twice."""
        if self._runner.closed:
            return
        self.running = False
        if Lab._current is self:
            Lab._current = None
        try:
            self._runner.close(self._shutdown)
        except Exception as err:  # stopping must go on whatever failed
            self.errors.report("stop", f"during stop: {err!r}")
        self.store.close()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def _shutdown(self) -> None:
        for relay in self.relays.values():
            relay.stop()
        servers = [server for group in self._servers.values() for server in group]
        for server in servers:
            server.close()
        for conn in list(self.post.connections.live.values()):
            if getattr(conn, "transport", None) is not None:
                conn.transport.close()
        await self.dns.stop()
        await self.network.stop()
        await asyncio.sleep(0)  # let connection_lost callbacks run
        for server in servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except TimeoutError:
                pass
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.errors.report("loop", str(context.get("exception") or context.get("message")))

    # --- running coroutines on the lab's loop -------------------------------
    def _check_running(self) -> None:
        if not self.running:
            raise LabError("This lab has been stopped (perhaps a newer Lab() replaced it). "
                           "Use the newer lab, or make one with Lab().")

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        return self._runner.run(coro, timeout)

    async def _in_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        return await self._runner.in_loop(coro)

    # --- addresses ---------------------------------------------------------
    def _host(self, name: str, port: int = 25) -> Host:
        """The lab's host called `name`; the friendly "no such host" LabError if there is none."""
        host = self.topology.host(name)
        if host is None:
            self.endpoint(name, port)  # raises the friendly "no such host", with the lab's host names
            raise LabError(f"There is no host called {name!r} in this lab.")  # not reached: endpoint() raised
        return host

    def endpoint(self, host: str, port: int) -> Endpoint:
        """Where logical `host`:`port` is really served; a clear LabError if the lab has no such listener."""
        return self.address_book.endpoint(host, port)

    def endpoint_at(self, address: str, port: int, name: str = "") -> Endpoint | None:
        """The lab listener at a DNS answer's `address` (or, where hosts share 127.0.0.1, named `name`)."""
        return self.address_book.endpoint_at(address, port, name)

    def reverse_name(self, address: str) -> str:
        """What a PTR lookup would say about a lab address (for Received headers)."""
        return self.address_book.reverse_name(address)

    # --- the public API ------------------------------------------------------
    def send(self, sender: str, to: str | Sequence[str], subject: str = "Hello from smtplab",
             body: str = "This message travelled through the lab.\n", *, message: EmailMessage | str | bytes | None = None,
             server: str | None = None, port: int | None = None, tls: str | None = None,
             login: str | tuple[str, str] | bool | None = None, ehlo: str = DEFAULT_EHLO,
             timeout: float = 10.0, network: str = "student", tap: bool = False,
             pipelining: bool = False, from_host: str | None = None) -> SendResult:
        """Send one message through the lab, as a mail program would, and return what happened.

        By default it submits to the sender's provider (smtp.example.org port 587 for
        alice@example.org), upgrades with STARTTLS, and logs in as the sender. Pass
        ``server``/``port``/``tls``/``login`` to do otherwise; ``tls`` is one of
        ``"starttls"``, ``"implicit"``, ``"none"`` or ``"opportunistic"`` (upgrade only if offered).
        ``network`` is where the student sends from (``lab.places()``: "home", "hotel", ...);
        ``tap=True`` keeps the bytes as they crossed the wire in ``result.wire``; ``pipelining=True``
        sends MAIL, every RCPT and DATA in one write where the server offers PIPELINING (RFC 2920).
        ``from_host`` sends as that lab host does: from its address, greeting with its name (what a
        receiving server's SPF check sees; e.g. an outside sender forging someone else's domain).
        """
        self._check_running()
        plan = self._plan_send(sender, to, subject, body, message, server, port, tls, login, ehlo, timeout,
                               network, tap)
        plan.pipelining = pipelining
        self._send_from_host(plan, from_host)
        return self._run(self._send(plan), timeout=timeout * 3 + 5)

    def _send_from_host(self, plan: SendPlan, from_host: str | None) -> None:
        if from_host is None:
            return
        host = self.topology.host(from_host)
        if host is None:
            raise LabError(f"from_host={from_host!r}: there is no such lab host; hosts: "
                           f"{', '.join(h.name for h in self.topology.hosts)}.")
        plan.client = host.name
        if plan.ehlo == DEFAULT_EHLO:
            plan.ehlo = host.name

    async def asend(self, sender: str, to: str | Sequence[str], subject: str = "Hello from smtplab",
                    body: str = "This message travelled through the lab.\n", **kwargs: Any) -> SendResult:
        """:meth:`send` for asyncio code: ``await lab.asend(...)``."""
        self._check_running()
        kw = {"message": None, "server": None, "port": None, "tls": None, "login": None, "ehlo": DEFAULT_EHLO,
              "timeout": 10.0, "network": "student", "tap": False, "pipelining": False, "from_host": None, **kwargs}
        plan = self._plan_send(sender, to, subject, body, kw["message"], kw["server"], kw["port"], kw["tls"],
                               kw["login"], kw["ehlo"], kw["timeout"], kw["network"], kw["tap"])
        plan.pipelining = bool(kw["pipelining"])
        self._send_from_host(plan, kw["from_host"])
        return await self._in_loop(self._send(plan))

    def _plan_send(self, sender: str, to: str | Sequence[str], subject: str, body: str, message: Any,
                   server: str | None, port: int | None, tls: str | None, login: Any, ehlo: str,
                   timeout: float, network: str = "student", tap: bool = False) -> SendPlan:
        """Check a send's arguments and fill in the defaults, with errors a student can act on."""
        if network not in self.network.places:
            raise LabError(f"There is no network {network!r} in this lab; places: {', '.join(self.network.places)}.")
        recipients = [to] if isinstance(to, str) else list(to)
        for address in [sender, *recipients]:
            problem = mailbox_problem(address)
            if problem:
                raise LabError(f"{address!r} is not an email address like bob@example.net: {problem}.")
        if not recipients:
            raise LabError("A message needs at least one recipient: pass to='bob@example.net'.")
        if server is None:
            home = self.topology.submission_host(sender.rpartition("@")[2])
            if home is None:
                raise LabError(f"{sender.rpartition('@')[2]} has no submission server in this lab; "
                               "say where to send with server=... and port=....")
            server = home.name
        host = self._host(server, port or 25)
        if port is None:
            port = next((p for p in (587, 465, 2525, 25) if host.listener(p)), host.listeners[0].port)
        endpoint = self.endpoint(server, port)
        tls = endpoint.listener.tls if tls is None else tls
        if tls not in ("starttls", "implicit", "none", "opportunistic"):
            raise LabError(f"tls={tls!r}: use 'starttls', 'implicit', 'none' or 'opportunistic'.")
        credentials = self._credentials(sender, login, endpoint.listener)
        if isinstance(message, EmailMessage):
            msg = message
        elif message is not None:
            msg = None
        else:
            msg = compose(sender, recipients, subject, body)
        raw = wire_bytes(msg) if msg is not None else (
            message.encode() if isinstance(message, str) else bytes(message))
        return SendPlan(sender, recipients, raw, endpoint, tls, credentials, ehlo, timeout,
                        str(msg["Message-ID"] or "") if msg is not None else "", network=network, tap=tap)

    def _credentials(self, sender: str, login: Any, listener: Listener) -> tuple[str, str] | None:
        if login is False or (login is None and listener.auth == "none"):
            return None
        if isinstance(login, tuple):
            return login
        user = self.topology.user(login if isinstance(login, str) else sender)
        if user is None:
            if login is None:
                return None  # not a lab user: try without logging in, and let the server say
            raise LabError(f"There is no lab user {login!r}; pass login=('name', 'password') to try any login.")
        return (user.username, user.password)

    async def _send(self, plan: SendPlan) -> SendResult:
        source = self.addresses.get(plan.client) if self.own_addresses else None
        connections = self.post.connections
        key: ConnectionKey | None = None
        watch: Watch | None = None

        def watch_it(connection: ConnectionKey) -> None:  # before the SYN: the server cannot see it first
            nonlocal key, watch
            key, watch = connection, connections.watch(connection)

        routed, link = await self.network.route(plan.client or plan.network, plan.endpoint, force=plan.tap)
        if link is not None:
            plan = dataclasses.replace(plan, endpoint=routed)
        try:
            result = await submit(plan, self.client_tls, source=source, before_connect=watch_it)
            transcript = result.transcript
            assert transcript is not None, "submit() always records the session"
            self.post.record_session(transcript)
            if watch is not None:
                result.wire = watch.capture
                result.server_transcript = await _server_view(watch, transcript)
        finally:
            if key is not None:
                connections.unwatch(key)
        return result

    def session(self, server: str = "smtp.example.org", port: int = 587, *, timeout: float = 3.0,
                network: str = "student", source_port: int = 0) -> Session:
        """Open a hand-typed session (like telnet or ``openssl s_client``) with a lab listener.

        ``source_port`` fixes the client's own port: two sessions to two servers may share one,
        since a connection is known by both ends' addresses (the OS reuses ports the same way).
        """
        self._check_running()
        endpoint = self.endpoint(server, port)
        if network not in self.network.places:
            raise LabError(f"There is no network {network!r} in this lab; places: {', '.join(self.network.places)}.")
        raw, watch = self._run(self._open_session(endpoint, timeout, network, source_port), timeout=timeout + 5)
        return Session(self, raw, watch)

    async def _open_session(self, ep: Endpoint, timeout: float, network: str = "student",
                            source_port: int = 0) -> tuple[RawSession, Watch]:
        ep, _ = await self.network.route(network, ep)
        transcript = Transcript(ep.host.name, "client", port=ep.listener.port, peer=f"{ep.address}:{ep.bound_port}")
        rec = Recorder(transcript)
        implicit = ep.listener.tls == "implicit"
        connections = self.post.connections
        watched: list[tuple[ConnectionKey, Watch]] = []
        sock = await open_socket(ep.address, ep.bound_port, timeout,
                                 before_connect=lambda key: watched.append((key, connections.watch(key))),
                                 source_port=source_port)
        key, watch = watched[0]
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                sock=sock, ssl=self.client_tls if implicit else None,
                server_hostname=ep.host.name if implicit else None), timeout)
        except BaseException:
            sock.close()
            connections.unwatch(key)
            raise
        rec.event("client", f"connected to {ep.host.name} port {ep.listener.port}", "")
        if implicit:
            rec.tls = True
        raw = RawSession(rec, reader, writer, ep.host.name, self.client_tls, reply_timeout=timeout)
        await raw.read_reply()  # the greeting
        return raw, watch

    def inbox(self, address: str, folder: str = "") -> list[EmailMessage]:
        """The messages delivered to `address`, oldest first, as :class:`email.message.EmailMessage`.

        `folder` reads a subfolder instead, such as ``"Junk"`` (see :meth:`junk`).
        """
        return self.store.inbox(address, folder)

    def transcripts(self, host: str | None = None, view: str | None = None) -> list[Transcript]:
        """The lab's recent sessions (newest last), optionally only one host's or one view."""
        return [t for t in self.post.recent if host in (None, t.host) and view in (None, t.view)]

    def flush(self) -> None:
        """Wait until every finished session's transcript file is written."""
        self.store.flush()

    def wait_for_queue(self, timeout: float = 10.0) -> bool:
        """Wait until every relay queue is empty; True if it emptied in time."""
        return self._run(self._wait_queues(timeout), timeout=timeout + 5)

    async def _wait_queues(self, timeout: float) -> bool:
        deadline = self._loop.time() + timeout
        while any(r.pending for r in self.relays.values()):
            if self._loop.time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # --- the mail world: DNS, hosts going down, faults, traces -----------------
    def mx(self, domain: str, *, online: bool = False) -> MXLookup:
        """Where mail for `domain` goes, with the steps (RFC 5321 section 5.1).

        ``online=True`` asks the real DNS (a few seconds at most); without a network it says
        so and shows a recorded answer for a few well-known domains.
        """
        self._check_running()
        return self._run(self.alookup_mx(domain, online=online), timeout=15)

    async def alookup_mx(self, domain: str, *, online: bool = False) -> MXLookup:
        if not online:
            return await self._in_loop(self.post.lookup_mx(domain))
        found = await self._in_loop(lookup_mx(domain, None, rng=self.rng, lifetime=3.0, source="public DNS"))
        if found.ok or found.permanent:
            return found
        recorded = recorded_mx(domain)
        if recorded is None:
            found.step("no recorded answer for this domain either")
            return found
        recorded.steps[:0] = [f"online lookup failed ({found.error}): no outside DNS from here"]
        return recorded

    def dig(self, name: str, rdtype: str = "MX", *, tcp: bool = False) -> DigAnswer:
        """Ask the lab DNS one question, like ``dig @lab-dns name rdtype``, and show the real reply."""
        self._check_running()
        return self._run(dig(name, rdtype, self.dns.address, self.dns.port, tcp=tcp), timeout=10)

    def set_record(self, name: str, rdtype: str, *values: str) -> list[str]:
        """Replace the lab DNS records of `name` of one type; no values removes them. Returns the new records.

        TXT values are given as plain text (``lab.set_record("_dmarc.example.org", "TXT", "v=DMARC1; p=none")``);
        other types in zone-file form (``"10 mx1.example.net."``). A bad value raises ValueError.
        """
        self._check_running()
        owner = name if name.endswith(".") else name + "."
        rdtype = rdtype.upper()

        async def change() -> list[str]:  # on the loop, which is where the DNS server reads the zone
            if rdtype == "TXT":
                self.dns.set_txt(owner, list(values))
            else:
                self.dns.set_records(owner, rdtype, list(values))
            return self.dns.records(owner, rdtype)

        return self._run(change(), timeout=10)

    def records(self, name: str, rdtype: str = "TXT") -> list[str]:
        """The lab DNS records of `name` of one type, as zone-file text."""
        return self.dns.records(name if name.endswith(".") else name + ".", rdtype.upper())

    def junk(self, address: str) -> list[EmailMessage]:
        """The messages a receiving server put in `address`'s Junk folder (DMARC ``p=quarantine``)."""
        return self.store.inbox(address, "Junk")

    def app_password(self, user: str) -> str:
        """Make an app password for `user` (login or address), as a provider's account page does; it is shown once."""
        found = self.topology.user(user)
        if found is None:
            known = ", ".join(u.username for u in self.topology.users)
            raise LabError(f"no lab user {user!r}; the users are: {known}")
        return self.post.make_app_password(found)

    def dkim_key(self, domain: str) -> SigningKey:
        """The DKIM key a lab host signs `domain`'s mail with (its public half is in the lab DNS)."""
        for (_host, signed), key in self.dkim_keys.items():
            if signed == domain.lower():
                return key
        raise LabError(f"no lab host signs mail for {domain!r}; signing domains: "
                       f"{', '.join(sorted({d for _, d in self.dkim_keys})) or 'none in this scenario'}")

    def stop_host(self, name: str) -> None:
        """Take a host down: its ports refuse connections and its open sessions drop."""
        self._check_running()
        if self.topology.host(name) is None:
            self.endpoint(name, 25)  # the friendly "no such host"
        self._run(self._stop_host(name.lower()))

    def start_host(self, name: str) -> None:
        """Bring a host back up, on the same ports."""
        self._check_running()
        host = self._host(name)
        if host.name not in self._servers:
            self._run(self._start_host(host))

    def fault(self, host: str, reply: str, *, command: str = "RCPT", times: int = 1, greylist: bool = False) -> None:
        """Make `host` answer `command` (MAIL, RCPT or DATA) with `reply` the next `times` times.

        ``lab.fault("mx1.example.net", "451 4.7.1 Greylisted, try again later")`` makes the next
        delivery to mx1 wait in the queue and retry. With ``greylist=True`` (RCPT only) every new
        (client, sender, recipient) is told to come back later once, however many there are.
        """
        self._check_running()
        if self.topology.host(host) is None:
            self.endpoint(host, 25)
        if command.upper() not in ("MAIL", "RCPT", "DATA"):
            raise LabError(f"command={command!r}: a fault can answer MAIL, RCPT or DATA.")
        if not (reply[:3].isdigit() and reply[0] in "45"):
            raise LabError(f"reply={reply!r}: a fault is a 4xx or 5xx reply, like '451 4.7.1 Try again later'.")
        if greylist and command.upper() != "RCPT":
            raise LabError("greylist=True works on RCPT: greylisting looks at who sends to whom.")
        self.post.add_fault(host.lower(), Fault(command.upper(), reply, 10**9 if greylist else times, greylist))

    def queue(self, host: str = "smtp.example.org") -> list[relay_mod.QueuedMessage]:
        """What waits in `host`'s outbound queue now."""
        return self.relays[host.lower()].queued() if host.lower() in self.relays else []

    def trace(self, message: str | SendResult | EmailMessage) -> MessageTrace:
        """The hops a message made: a Message-ID, a send's result, or a delivered message."""
        if isinstance(message, SendResult):
            message = message.message_id
        elif isinstance(message, EmailMessage):
            message = str(message["Message-ID"] or "")
        return MessageTrace.build(self.journal, message)

    def api_send(self, sender: str, to: str | Sequence[str], subject: str = "Hello from smtplab",
                 body: str = "This message travelled through the lab.\n", *, count: int = 1,
                 server: str = "smtp.example.org", key: str | None = None, network: str = "student",
                 timeout: float = 10.0) -> ApiResult:
        """Send through the provider's HTTP API instead of SMTP: one HTTPS connection, `count` POSTs.

        The API key defaults to the sender's lab key (``lab-key-alice``): keys, like passwords, are public here.
        """
        self._check_running()
        endpoint = self.endpoint(server, 443)
        if network not in self.network.places:
            raise LabError(f"There is no network {network!r} in this lab; places: {', '.join(self.network.places)}.")
        recipients = [to] if isinstance(to, str) else list(to)
        payloads = [{"from": sender, "to": recipients, "subject": subject if count == 1 else f"{subject} #{i + 1}",
                     "text": body} for i in range(count)]
        key = key or api_key(sender.partition("@")[0])
        return self._run(self._api_send(endpoint, network, key, payloads, timeout), timeout=timeout * (count + 2))

    async def _api_send(self, endpoint: Endpoint, network: str, key: str, payloads: list[dict[str, Any]],
                        timeout: float) -> ApiResult:
        routed, _ = await self.network.route(network, endpoint)
        return await api_post(routed.address, routed.bound_port, endpoint.host.name, key, payloads,
                              self.client_tls, timeout)

    def places(self) -> dict[str, Place]:
        """Where a student can send from, and what each network lets through."""
        return dict(self.network.places)

    def set_link(self, place: str = "student", *, delay_ms: float | None = None, jitter_ms: float | None = None,
                 bandwidth_kbps: float | None = None) -> Place:
        """Change the network between `place` and every server: ``lab.set_link(delay_ms=40)``."""
        self._check_running()
        current = self.network.place(place)
        changes: dict[str, Any] = {}
        if delay_ms is not None:
            changes["delay"] = delay_ms / 1000
        if jitter_ms is not None:
            changes["jitter"] = jitter_ms / 1000
        if bandwidth_kbps is not None:
            changes["bandwidth"] = bandwidth_kbps * 1000 / 8 or None
        self.network.places[place] = dataclasses.replace(current, **changes)
        return self.network.places[place]

    def info(self) -> dict[str, Any]:
        """The lab's published state: what ``smtplab serve --json`` prints."""
        return {
            "scenario": self.topology.name,
            "dns": {"address": self.dns.address, "port": self.dns.port},
            "servers": [self._published(ep) for ep in self.endpoints.values()],
            "latency_ms": self.network.place("student").delay * 1000,
            "http_api": [{**self._published(ep), "url": f"https://{ep.host.name}/v1/send"}
                         for ep in self.services.values()],
            "users": [{"address": u.address, "username": u.username, "password": u.password} for u in self.topology.users],
            "ca_cert": str(self.ca.cert_path),
            "state_dir": str(self.state_dir),
        }

    def reach(self, host: str, port: int, network: str = "student") -> dict[str, Any]:
        """Where a client at `network` must connect for `host`:`port` (a link's address when its network acts)."""
        self._check_running()
        routed, _ = self._run(self.network.route(network, self.endpoint(host, port)))
        return {"address": routed.address, "bound_port": routed.bound_port}

    def _published(self, ep: Endpoint) -> dict[str, Any]:
        """A listener as outside clients must reach it: through the student's link when that has a delay."""
        entry = ep.as_dict()
        if self.running and not self.network.place("student").link_settings(ep.listener.port).plain:
            routed, _ = self._run(self.network.route("student", ep))
            entry.update(address=routed.address, bound_port=routed.bound_port,
                         server_address=ep.address, server_port=ep.bound_port)
        return entry

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Lab {self.topology.name!r} {state}: {len(self.endpoints)} listeners, state in {self.state_dir}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{ep.host.name}</td><td>{ep.listener.port}</td><td>{ep.listener.role}</td>"
            f"<td>{ep.listener.tls}</td><td>{ep.listener.auth}</td><td><code>{ep.address}:{ep.bound_port}</code></td></tr>"
            for ep in self.endpoints.values())
        return (f"<p><b>smtplab</b>: scenario <code>{self.topology.name}</code>, "
                f"{'running' if self.running else 'stopped'}</p><table><thead><tr><th>host</th><th>port</th>"
                f"<th>role</th><th>TLS</th><th>AUTH</th><th>really at</th></tr></thead><tbody>{rows}</tbody></table>")


async def _server_view(watch: Watch, transcript: Transcript, wait: float = SERVER_VIEW_WAIT) -> Transcript | None:
    """The server's transcript of the session the client just ended (None if no server ever answered)."""
    heard = any(e.kind == "line" and e.direction == "server" for e in transcript)
    if not heard and not watch.server_view.done():  # no greeting (a failed TLS handshake, say): nobody to wait for
        return None
    try:
        return await asyncio.wait_for(asyncio.shield(watch.server_view), wait)
    except TimeoutError:
        return None


class Session:
    """A hand-typed SMTP session with a lab server, driven from plain (non-async) code.

    Lines go out exactly as given (``session.send("EHLO me")``), so it is also the way for
    a test or a notebook to send something no mail program would; after :meth:`close`,
    :attr:`server_transcript` is the server's own record of this very connection.
    """

    def __init__(self, lab: Lab, raw: RawSession, watch: Watch) -> None:
        self._lab = lab
        self._raw = raw
        self._watch = watch
        self._server_transcript: Transcript | None = None
        self._kept = False  # close() has recorded it

    @property
    def transcript(self) -> Transcript:
        """The client's view, as it happens."""
        return self._raw.transcript

    @property
    def closed(self) -> bool:
        return self._raw.closed

    @property
    def last_reply(self) -> str:
        """The server's latest reply, all its lines ("250-...\n250 ..."), or "" before any."""
        return self._raw.last_reply()

    @property
    def server_transcript(self) -> Transcript | None:
        """The server's view of this session, once it has ended (waits up to 2 s for the server to finish it)."""
        if not self._raw.closed:
            raise LabError("The server's view is complete only when the session ends: call session.close() first.")
        if self._server_transcript is None and self._lab.running:
            self._server_transcript = self._lab._run(_server_view(self._watch, self.transcript))
        return self._server_transcript

    def send(self, line: str) -> list[Entry]:
        """Send one line as typed; returns the new transcript entries (the line and the reply)."""
        self._lab._check_running()
        if self._raw.closed:
            raise LabError("This session is closed; open another with lab.session(...).")
        return self._lab._run(self._raw.send(line))

    def send_bytes(self, data: bytes, *, reply: bool = True) -> list[Entry]:
        """Send raw bytes (no CRLF added: bare LF, NULs, several commands at once); read one reply if `reply`."""
        self._lab._check_running()
        if self._raw.closed:
            raise LabError("This session is closed; open another with lab.session(...).")
        return self._lab._run(self._raw.send_bytes(data, reply=reply))

    def starttls(self) -> list[Entry]:
        """Do the TLS handshake now (``send("STARTTLS")`` does it by itself after a 220)."""
        self._lab._check_running()
        start = len(self.transcript.entries)
        self._lab._run(self._raw.start_tls())
        return self.transcript.entries[start:]

    def reply(self) -> list[Entry]:
        """Read one more reply (after pipelined commands, say)."""
        self._lab._check_running()
        return self._lab._run(self._raw.read_reply())

    def close(self) -> None:
        """Hang up (without QUIT, if it was not sent) and keep both views of the session."""
        if self._kept or not self._lab.running:
            return
        self._kept = True
        if not self._raw.closed:
            self._lab._run(self._raw.close())
        self._lab.post.record_session(self._raw.transcript)
        self._server_transcript = self._lab._run(_server_view(self._watch, self.transcript))
        self._lab.post.connections.unwatch(self._watch.key)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _stop_all_labs() -> None:
    for lab in list(Lab._all):
        lab.stop()
