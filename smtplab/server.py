"""The lab's SMTP servers: aiosmtpd listeners that record every line and apply a host's rules.

:class:`RecordingSMTP` is aiosmtpd's protocol with three changes: it records
what the client sends (``data_received``) and what it answers (``push``); it
puts RFC 3463 enhanced status codes on aiosmtpd's own replies that lack them;
and on an implicit-TLS listener it tells aiosmtpd the session is encrypted,
which aiosmtpd 1.4.6 does not notice by itself (issues #274, #281), so AUTH is
offered there.

:class:`HostPolicy` is the aiosmtpd handler: who may send, to whom, and what
happens to an accepted message (a Maildir here, or the relay queue).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import time
import traceback
from typing import TYPE_CHECKING, Any, cast

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException, syntax

from .connections import ConnectionCap, ConnectionKey, key_of
from .filters import apply_filters
from .mailboxes import mailbox_problem
from .replycodes import explain_auth_result
from .senderauth import Answer, ArrivalVerdict, check_arrival, dkim_sign, from_domain, strip_claims_of
from .senderauth.lookup import dns_purpose
from .store import new_queue_id
from .tls import describe_tls
from .topology import Host, Listener, User
from .transcript import Recorder, Transcript

if TYPE_CHECKING:
    from .world import MailWorld

__all__ = ["RecordingSMTP", "HostPolicy"]

# The enhanced code (RFC 3463) to add to a reply of aiosmtpd's that has none.
_DEFAULT_ENHANCED = {
    214: "2.0.0", 221: "2.0.0", 250: "2.0.0", 421: "4.3.0", 451: "4.3.0", 454: "4.7.0",
    500: "5.5.2", 501: "5.5.4", 502: "5.5.1", 503: "5.5.1", 504: "5.5.4",
    530: "5.7.0", 552: "5.3.4", 554: "5.5.0", 555: "5.5.4",
}


SHUTTING_DOWN = "421 4.3.2 Service shutting down, closing the connection"
TOO_MANY = "421 4.7.0 Too many connections: closing the one idle longest (this one)"
#: Open sessions one listener keeps; past it, the longest idle one is closed (see ConnectionCap).
MAX_CONNECTIONS = 1000


def with_enhanced_code(reply: str) -> str:
    """``"503 Error: need RCPT command"`` -> ``"503 5.5.1 Error: need RCPT command"``."""
    if len(reply) > 4 and reply[3] == " " and not reply[4].isdigit() and reply[:3].isdigit():
        enhanced = _DEFAULT_ENHANCED.get(int(reply[:3]))
        if enhanced:
            return f"{reply[:3]} {enhanced} {reply[4:]}"
    return reply


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, recording both directions of the session."""

    def __init__(self, handler: HostPolicy, *, implicit_tls: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, hostname=handler.host.name, ident="smtplab ESMTP", **kwargs)
        self.policy = handler
        self._implicit_tls = implicit_tls
        self._greeting_done = False
        self._quiet_enhanced = False  # EHLO/HELO replies and the greeting carry no enhanced codes
        self.recorder: Recorder | None = None
        self.connection: ConnectionKey | None = None  # (client ip, port, server ip, port), as this side sees it
        self.client_connection: ConnectionKey | None = None  # the client's own, when a network link carried it
        self.committing = False  # between the end of a message and the reply to it
        self._close_after_reply = ""  # the 421 to send once the pending reply is out
        self._help_reply = False  # answering HELP (214, not aiosmtpd's 250)

    def __dir__(self) -> list[str]:
        # aiosmtpd's SMTP.__init__ finds a protocol's auth_ and smtp_ methods with dir() and
        # inspect.getmembers(), on every connection: two thirds of making one. Those are all it needs.
        cls: type = type(self)  # as a plain type: mypy checks type[Self] against Hashable wrongly
        return _protocol_names(cls)

    @property
    def rec(self) -> Recorder:
        """This session's recorder: connection_made() opens it, before any data or reply can happen."""
        if self.recorder is None:
            raise RuntimeError("no recorder: connection_made() has not run")
        return self.recorder

    # --- connection life ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        rec = self.recorder
        starttls_done = rec is not None
        if rec is None:
            rec = self.recorder = self._open_session(transport)
        else:
            leftover = len(self._reader._buffer)  # type: ignore[attr-defined]
            if leftover:  # aiosmtpd (>= 1.4.6) throws these away when TLS begins, as RFC 3207 says it must
                rec.event("client", f"{leftover} bytes sent before the TLS handshake were discarded",
                          "Commands sent in plain text behind STARTTLS are ignored: an injection defence.")
        super().connection_made(transport)
        session = self.session
        assert session is not None  # aiosmtpd's connection_made() made it
        if starttls_done:
            rec.tls = True
            rec.event("client", describe_tls(transport), "TLS handshake complete: from here on, every line is encrypted.")
        else:
            host, port = _peer(session)
            rec.event("client", f"connection from {host}:{port} to {self.policy.host.name} port {self.policy.listener.port}",
                      f"TCP connection open on the {self.policy.listener.role} port; the server speaks first.")
            if self._implicit_tls:
                # aiosmtpd only knows about TLS it started itself (STARTTLS); say it is on.
                self._tls_protocol = transport._ssl_protocol  # type: ignore[attr-defined]
                session.ssl = self._tls_protocol._extra
                rec.tls = True
                rec.event("client", describe_tls(transport),
                          "Implicit TLS: the handshake came before any SMTP, so every line is encrypted.")

    def data_received(self, data: bytes) -> None:
        rec = self.rec
        annotator = rec.annotator
        was_in_data = annotator.in_data
        rec.feed("client", data)
        self.policy.cap.touch(self)
        if was_in_data and not annotator.in_data:
            self.committing = True  # the final dot arrived: from now until the reply, the message is in flight
        super().data_received(data)

    def _client_gone(self) -> bool:
        """Whether the connection is closing, looking under TLS too (its app transport does not know)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return True
        inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
        return inner is not None and inner.is_closing()

    def shed(self) -> None:
        """Make room for a newcomer (ConnectionCap): the 421 says why."""
        self.stop_politely(TOO_MANY)

    def stop_politely(self, reason: str = SHUTTING_DOWN) -> None:
        """Close as a server that is shutting down does: never between storing a message and saying so.

        A message stored whose 250 never reached the client would be sent again: a duplicate.
        So a session in the middle of a message is closed right after its reply (or after 2 s);
        any other gets ``421`` and is closed at once.
        """
        if self.committing or self.rec.annotator.in_data:
            self._close_after_reply = reason
            self.loop.call_later(2.0, self._close_now, reason)
        else:
            self._close_now(reason)

    def _close_now(self, reason: str = SHUTTING_DOWN) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.rec.line("server", reason)
            transport = cast(asyncio.Transport, self.transport)  # aiosmtpd types it BaseTransport; a stream's can write
            transport.write(reason.encode() + b"\r\n")
            transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        rec = self.recorder
        if rec is not None and not getattr(self, "_closed_recorded", False):
            self._closed_recorded = True
            if rec.annotator.in_data:
                rec.event("client", "connection lost in the middle of DATA",
                          "The message never ended with a lone dot, so nothing was delivered.")
            else:
                rec.event("server", "connection closed", "")
            self._close_session(rec.transcript)
        super().connection_lost(error)

    def _open_session(self, transport: asyncio.BaseTransport) -> Recorder:
        peer = transport.get_extra_info("peername")
        world = self.policy.world
        self.connection = key_of(peer, transport.get_extra_info("sockname"))
        self.client_connection = world.connections.opened(self.connection, self)
        self.policy.cap.admit(self, self.shed)
        transcript = Transcript(self.policy.host.name, "server", port=self.policy.listener.port,
                                peer=f"{peer[0]}:{peer[1]}")
        return Recorder(transcript)

    def _close_session(self, transcript: Transcript) -> None:
        world = self.policy.world
        self.policy.cap.leave(self)
        world.record_session(transcript)
        if self.connection is not None and self.client_connection is not None:
            world.connections.closed(self.connection, self.client_connection, transcript)

    # --- replies -----------------------------------------------------------
    async def push(self, status: str | bytes) -> None:
        if isinstance(status, bytes):
            status = status.decode("utf-8", "replace")
        if self._help_reply and status.startswith("250 "):
            status = "214 " + status[4:]
        if self._client_gone():
            # The client has gone: writing would only make asyncio warn ("socket.send() raised
            # exception.") once per pipelined command it left behind, into the student's cell.
            return
        if not self._quiet_enhanced:
            status = with_enhanced_code(status)
        self.rec.line("server", status)
        await super().push(status)
        if self.committing and not status.startswith("354"):
            self.committing = False
            if self._close_after_reply:
                self._close_now(self._close_after_reply)

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        if _bad_name(hostname):
            await self.push(f"501 5.5.4 {_shown(hostname)} is not a host name: no control characters (a bare CR "
                            "could start a header in the Received line)")
            return
        self._quiet_enhanced = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._quiet_enhanced = False

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:
        if _bad_name(hostname):
            await self.push(f"501 5.5.4 {_shown(hostname)} is not a host name: no control characters")
            return
        self._quiet_enhanced = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._quiet_enhanced = False

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str) -> None:
        await self._parsing(super().smtp_MAIL, arg, "MAIL FROM:<name@domain>")

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str) -> None:
        await self._parsing(super().smtp_RCPT, arg, "RCPT TO:<name@domain>")

    async def _parsing(self, command: Any, arg: str, form: str) -> None:
        """aiosmtpd's address parser raises on some malformed input (``RCPT TO:<``): a 501, not a traceback."""
        try:
            await command(arg)
        except (IndexError, ValueError, TypeError, AttributeError) as err:
            if any(frame.filename == __file__ for frame in traceback.extract_tb(err.__traceback__)[1:]):
                raise  # a bug in our own handler: handle_exception() reports it, never hidden as a 501
            await self.push(f"501 5.5.4 Syntax error in {_shown(arg or '')}: expected {form}")

    async def handle_exception(self, error: Exception) -> str:
        """What aiosmtpd's catch-all answers: a proper SMTP error, never a Python exception's text."""
        if isinstance(error, TLSSetupException):
            if self.recorder is not None:
                self.recorder.event("client", "TLS handshake failed", "The client and the server could not agree on TLS.")
            return "454 4.7.0 TLS handshake failed"
        if isinstance(error, ValueError) and "longer than limit" in str(error):  # asyncio's readuntil, a huge line
            return "500 5.5.2 Line too long"
        where = f"{self.policy.host.name}:{self.policy.listener.port}"
        self.policy.world.report("server", f"{where}: {type(error).__name__}: {error}")
        if self.recorder is not None:
            self.recorder.event("server", f"the server met an error: {type(error).__name__}",
                                "A bug in the lab, not the client's fault: it is kept in lab.errors.")
        return "451 4.3.0 The server met an internal error with that command; try again"

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str) -> None:
        self._help_reply = True  # aiosmtpd answers HELP with 250; RFC 5321 section 4.2.2 says 214
        try:
            await super().smtp_HELP(arg)
        finally:
            self._help_reply = False

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        if self._tls_protocol is not None:  # RFC 3207 section 4.2: once TLS is on, STARTTLS is refused
            await self.push("503 5.5.1 TLS is already active: STARTTLS is allowed once per session")
            return
        await super().smtp_STARTTLS(arg)


def _head(message: bytes) -> bytes:
    """The header section; ``split(b"\r\n\r\n", 1)`` would also copy the whole body, 30 MB for a 30 MB message."""
    end = message.find(b"\r\n\r\n")
    return message if end < 0 else message[:end]


def _count_received(message: bytes) -> int:
    """How many hops a message has made: its Received headers (RFC 5321 section 6.3)."""
    head = _head(message)
    return head.count(b"\nReceived:") + head.startswith(b"Received:")


def _message_id(message: bytes) -> str:
    head = _head(message)
    for line in head.split(b"\r\n"):
        if line[:11].lower() == b"message-id:":
            return line[11:].strip().decode("ascii", "replace")
    return ""


_date_cache: tuple[int, str] = (0, "")


def _now_for_headers() -> str:
    """RFC 5322 date of now; formatted once a second (email.utils takes ~0.1 ms, every message)."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, email.utils.format_datetime(email.utils.localtime()))
    return _date_cache[1]


def _dkim_summary(verdict: ArrivalVerdict) -> str:
    return ",".join(d.result for d in verdict.dkim) or "none"


def _bad_name(name: str | None) -> bool:
    """An EHLO/HELO name that must not reach a header: control characters (CR, NUL...) or overlong."""
    return name is not None and (not name.isprintable() or len(name) > 255)  # None: aiosmtpd's 501 says why


def _shown(address: str, limit: int = 80) -> str:
    """An address as a reply may quote it: escaped, and cut if long (a reply line has a limit too)."""
    text = repr(address)
    return text if len(text) <= limit else text[:limit - 5] + "...'"


def _peer(session: Session) -> tuple[str, int]:
    """The client's address and port. aiosmtpd types ``Session.peer`` as a str; it holds the socket's peername."""
    peer: Any = session.peer  # (host, port), or (host, port, flowinfo, scope_id) over IPv6
    return peer[0], peer[1]


def _user(session: Session) -> User | None:
    """The lab user logged in on this session: authenticate() puts them in ``auth_data`` (typed None by aiosmtpd)."""
    user: User | None = session.auth_data if session.authenticated else None
    return user


@functools.cache
def _protocol_names(cls: type) -> list[str]:
    """The names aiosmtpd looks up on a protocol or handler class: its command, auth and hook methods."""
    return sorted(n for n in dir(cls) if n.startswith(("smtp_", "auth_", "handle_")))


class HostPolicy:
    """The rules of one listener of one host, as an aiosmtpd handler."""

    def __dir__(self) -> list[str]:
        cls: type = type(self)  # see RecordingSMTP.__dir__
        return _protocol_names(cls)

    def __init__(self, world: MailWorld, host: Host, listener: Listener,
                 max_connections: int | None = None) -> None:
        self.world = world
        self.host = host
        self.listener = listener
        self.cap = ConnectionCap(max_connections or MAX_CONNECTIONS)  # this listener's open sessions

    # --- capabilities and login -------------------------------------------
    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler that has handle_EHLO
        if self.listener.auth == "none":
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        responses.insert(-1, "250-ENHANCEDSTATUSCODES")
        # RFC 2920: aiosmtpd reads one command at a time from its buffer and answers each in order,
        # so commands sent together are safe; a DATA whose every RCPT was refused gets 503, and
        # whatever follows STARTTLS in the same packet is thrown away (see connection_made).
        responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> Any:
        if self.listener.auth == "none":
            return "502 5.5.1 AUTH is not offered on this port: it is for server-to-server mail"
        return MISSING  # let aiosmtpd run the mechanism and call authenticate()

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = self.world.topology.user(auth_data.login.decode("utf-8", "replace"))
            if user is not None and self.host.domains and user.domain not in self.host.domains:
                user = None  # a provider knows its own users only
            verdict = self.world.login(user, auth_data.password) if user is not None else "wrong"
            if verdict == "ok":
                return AuthResult(success=True, auth_data=user)
            if verdict == "app password required":  # worded as large providers word it
                return AuthResult(success=False, handled=False, message=(
                    "534 5.7.9 Application-specific password required: 2-step verification is on for "
                    f"{auth_data.login.decode('utf-8', 'replace')[:64]}; make an app password at "
                    f"https://{self.host.name}/account/app-passwords and log in with it"))
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

    # --- envelope ----------------------------------------------------------
    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        problem = None if address == "<>" else mailbox_problem(address)  # "<>" is the null sender of bounces
        if problem:
            return f"501 5.1.7 Bad sender address {_shown(address)}: {problem}"
        fault = self.world.take_fault(self.host.name, "MAIL")
        if fault:
            return fault
        user = _user(session)
        if user is not None and address != "<>" and address.lower() != user.address:
            return f"553 5.7.1 <{address}>: sender address not owned by user {user.username}"
        if user is not None and self.host.limit and not self.world.quota_left(self.host, user.username):
            messages, seconds = self.host.limit
            return (f"550 5.4.5 Sending limit exceeded: {user.username} may send {messages} "
                    f"messages per {seconds:g} s here")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        problem = mailbox_problem(address)
        if problem:
            return f"501 5.1.3 Bad recipient address {_shown(address)}: {problem}"
        domain = address.rpartition("@")[2].lower()
        if self.listener.auth == "required" and not session.authenticated:
            # One cause, one answer, whatever the recipient's domain (RFC 4954 section 6): a submission
            # port takes no mail at all before a login, so it is never an open relay either.
            return "530 5.7.0 Authentication required: log in before sending from this port"
        if domain in self.host.domains:
            if self.world.topology.user(address) is None:
                return f"550 5.1.1 <{address}>: no such mailbox here"
            verdict = "250 2.1.5 Recipient OK"
        elif domain in self.host.relay_domains:
            verdict = f"250 2.1.5 Recipient OK, will pass it on ({self.host.name} is a gateway for {domain})"
        elif session.authenticated or self.client_host(session) in self.host.relay_from:
            verdict = "250 2.1.5 Recipient OK, will relay"
        elif self.host.open_relay:  # the misconfiguration spammers scan for
            verdict = "250 2.1.5 Recipient OK, will relay (for anyone at all: an open relay)"
        else:  # mail for someone else's domain from someone we do not know: never an open relay
            return f"554 5.7.1 <{address}>: Relay access denied"
        fault = self.world.take_fault(  # planted after the relay rules, as a policy would be
            self.host.name, "RCPT", (_peer(session)[0], envelope.mail_from or "", address.lower()))
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return verdict

    def client_host(self, session: Session) -> str:
        """Which lab host the client is: by its address where hosts have their own, else by its EHLO name."""
        if self.world.own_addresses:
            return self.world.reverse_name(_peer(session)[0])
        return (session.host_name or "").lower()

    async def handle_DATA(self, server: RecordingSMTP, session: Session, envelope: Envelope) -> str:
        fault = self.world.take_fault(self.host.name, "DATA")
        if fault:
            return fault
        content, mail_from = envelope.original_content, envelope.mail_from
        assert content is not None and mail_from is not None  # aiosmtpd calls this after MAIL and the final dot
        hops = _count_received(content)
        if hops >= self.world.topology.max_hops:
            return f"554 5.4.6 Too many hops ({hops} Received headers): a mail loop? Not accepted"
        queue_id = new_queue_id()
        # The trace header stays apart from the content all the way to the disk: prepending it would
        # copy the whole message (30 MB for a 30 MB message) just to add one line.
        trace, message = self.received_header(server, session, envelope, queue_id), content
        if self.host.filters:
            trace, message = b"", trace + content
            outcome = apply_filters(self.host.filters, message)
            for note in outcome.notes:
                server.rec.event("server", f"{self.host.name} {note}", "A rule of this host's filter acted.")
            if outcome.reply:
                return outcome.reply
            message = outcome.message
        rcpts = list(envelope.rcpt_tos)
        message_id = _message_id(content)
        self.world.journal("received", self.host.name, queue_id, message_id, client=self.client_host(session),
                           tls=session.ssl is not None, rcpts=rcpts)
        folder = ""
        if session.authenticated and self.host.dkim:
            trace += self._dkim_signature(server, message, queue_id, message_id)
        elif self.host.verify:
            message, removed = strip_claims_of(message, self.host.name)  # only our own word counts (RFC 8601 s. 5)
            if removed:
                server.rec.event("server", f"{self.host.name} removed {removed} Authentication-Results header(s) "
                                 "claiming to be its own", "Anyone can write such a header; a receiver drops "
                                 "forged ones before adding its own.")
            verdict = await self._check_sender(server, session, mail_from, message)
            self.world.journal("checked", self.host.name, queue_id, message_id, action=verdict.action, rcpts=rcpts,
                               summary=f"spf={verdict.spf.result} dkim={_dkim_summary(verdict)} "
                                       f"dmarc={verdict.dmarc.result}" + ("" if verdict.arc[0] == "none"
                                                                          else f" arc={verdict.arc[0]}"))
            if verdict.action == "reject":
                return verdict.reply
            trace += verdict.header
            folder = "Junk" if verdict.action == "junk" else ""
        if self.host.proxy_to:
            return await self._pass_on(mail_from, rcpts, trace + message, queue_id, message_id)
        try:
            await self.world.accept(self.host, mail_from, rcpts, message, queue_id, message_id, trace, folder)
        except OSError as err:  # a full disk must not become a 250
            return f"451 4.3.0 Could not store the message, try again later ({err.strerror})"
        user = _user(session)
        if user is not None and self.host.limit:
            self.world.count_sent(self.host, user.username)
        return f"250 2.0.0 OK: queued as {queue_id}"

    # --- sender authentication ----------------------------------------------------------
    def _dkim_signature(self, server: RecordingSMTP, message: bytes, queue_id: str, message_id: str) -> bytes:
        """Sign a user's submission for its From: domain, when this host holds that domain's key."""
        author = from_domain(message)
        key = self.world.signing_key(self.host, author) if author else None
        if key is None and self.host.dkim:  # a sending service signs with its own domain when not the author's
            key = self.world.signing_key(self.host, self.host.dkim[0].domain)
        if key is None:
            server.rec.event("server", f"{self.host.name} has no DKIM key for {author or '(no From: domain)'}: "
                             "not signed", explain_auth_result("dkim", "none"))
            return b""
        signature = dkim_sign(message, key)
        server.rec.event("server", f"{self.host.name} DKIM-signed it as {key.domain}, selector {key.selector} "
                         f"({key.algorithm}); the public key is at {key.record_name} TXT",
                         "DKIM (RFC 6376): the provider signs the headers and body; a receiver fetches the public "
                         "key from DNS and checks that nothing changed on the way.")
        self.world.journal("signed", self.host.name, queue_id, message_id, domain=key.domain, selector=key.selector)
        return signature

    async def _check_sender(self, server: RecordingSMTP, session: Session, mail_from: str,
                            message: bytes) -> ArrivalVerdict:
        """SPF, DKIM, ARC and DMARC, each DNS question and each verdict written into this session's transcript."""
        def heard(answer: Answer) -> None:
            server.rec.event("server", f"{self.host.name} asks DNS: {answer}", dns_purpose(answer.name, answer.rdtype))

        verdict = await check_arrival(message, authserv_id=self.host.name, ip=_peer(session)[0],
                                      helo=session.host_name or "", mail_from=mail_from,
                                      lookup=self.world.dns_lookup(heard), trusted_sealers=self.host.trusted_arc)
        for part in verdict.parts():
            server.rec.event("server", f"{self.host.name}: {part.text()}", part.meaning)
        server.rec.event("server", f"{self.host.name} decides: {verdict.action} ({verdict.reason})",
                         {"deliver": "The message goes to the inbox, with the results recorded in its header.",
                          "junk": "DMARC p=quarantine: the message goes to the recipient's Junk folder.",
                          "reject": "DMARC p=reject: the message is refused at the end of DATA (550 5.7.1)."}
                         [verdict.action])
        return verdict

    async def _pass_on(self, mail_from: str, rcpts: list[str], message: bytes, queue_id: str,
                       message_id: str) -> str:
        """The proxy's way: hand the message on inside this session, and answer with what came back."""
        upstream = self.host.proxy_to
        started = time.time()
        result = await self.world.deliver_once(self.host, self.world.endpoint(upstream, 25), mail_from, rcpts, message)
        if not result.accepted:
            if result.refused:
                return next(iter(result.refused.values()))
            if result.error_code:
                return result.last_reply
            return f"451 4.4.1 {upstream} is not answering; try again later"
        self.world.journal("relayed", self.host.name, queue_id, message_id, started=started, to=upstream,
                           tls=result.tls, rcpts=result.accepted)
        if result.refused:  # we said nothing yet, but the sender will hear 250: bounce what was refused
            await self.world.bounce(self.host, mail_from, result.refused, message)
        return f"250 2.0.0 OK: passed on to {upstream}, which said: {result.reply}"

    def received_header(self, server: SMTP, session: Session, envelope: Envelope, queue_id: str) -> bytes:
        """The trace line this hop adds (RFC 5321 section 4.4; ESMTPS/ESMTPA from RFC 3848)."""
        ip = _peer(session)[0]
        with_ = "ESMTP" if session.extended_smtp else "SMTP"
        with_ += "S" if session.ssl is not None else ""
        with_ += "A" if session.authenticated else ""
        rcpt = f"\r\n\tfor <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        helo = "".join(c if c.isprintable() else "?" for c in session.host_name or "")  # checked at EHLO; and here
        header = (f"Received: from {helo} ({self.world.reverse_name(ip)} [{ip}])\r\n"
                  f"\tby {self.host.name} (smtplab) with {with_} id {queue_id}{rcpt};\r\n"
                  f"\t{_now_for_headers()}\r\n")
        return header.encode()
