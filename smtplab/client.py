"""The lab's clients, which record their own view of each session.

aiosmtplib keeps no record of what it says, so :class:`RecordingProtocol`
wraps its protocol: ``write()`` sees every command and the message as sent,
``data_received()`` every reply (after STARTTLS, already decrypted).
:class:`RawSession` is the other client: it sends exactly the lines a student
types, for the step-through widget and the console, and explains each reply.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from .connections import ConnectionKey, key_of
from .pipelining import pipelined_session
from .result import Failure, SendResult
from .tls import TLSInfo, describe_tls
from .topology import Host, Listener
from .transcript import Entry, Recorder, Transcript

__all__ = ["Endpoint", "RawSession", "RecordingSMTPClient", "SendPlan", "submit"]


class RecordingProtocol(SMTPProtocol):
    """aiosmtplib's protocol, feeding a :class:`Recorder` as bytes go out and come in."""

    def __init__(self, recorder: Recorder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorder = recorder

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._over_ssl:
            self.recorder.tls = True
            self.recorder.event("client", describe_tls(transport), "Implicit TLS: encrypted before the first SMTP line.")

    def write(self, data: bytes) -> None:
        self.recorder.feed("client", data)
        super().write(data)

    def data_received(self, data: bytes) -> None:
        self.recorder.feed("server", data)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.recorder.event("server", "connection closed", "")
        super().connection_lost(exc)

    async def start_tls(self, tls_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> Any:
        response = await super().start_tls(tls_context, server_hostname=server_hostname, timeout=timeout)
        self.recorder.tls = True
        self.recorder.event("client", describe_tls(self.transport),
                            "TLS handshake complete: the certificate checked out, and from here on every line is encrypted.")
        return response


class RecordingSMTPClient(aiosmtplib.SMTP):
    """An aiosmtplib client over a socket the lab connected, recording the session."""

    def __init__(self, recorder: Recorder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorder = recorder

    async def _create_connection(self, timeout: float | None) -> Any:
        # aiosmtplib builds its protocol here; this is its sock= branch with our protocol.
        if self.loop is None:  # connect() sets it before calling this, as in aiosmtplib's own version
            raise RuntimeError("No event loop set")
        protocol = RecordingProtocol(self.recorder, loop=self.loop, connection_lost_callback=self._on_connection_lost)
        tls_context = await self._get_tls_context() if self.use_tls else None
        transport, _ = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: protocol, sock=self.sock, ssl=tls_context,
                server_hostname=self.hostname if self.use_tls else None,
                ssl_handshake_timeout=timeout if self.use_tls else None),
            timeout=timeout)
        self.protocol = protocol
        self.transport = transport
        response = await protocol.read_response(timeout=timeout)
        if response.code != 220:
            raise aiosmtplib.SMTPConnectResponseError(response.code, response.message)
        return response


async def open_socket(address: str, port: int, timeout: float, source: str | None = None,
                      before_connect: Callable[[ConnectionKey], None] | None = None,
                      source_port: int = 0) -> socket.socket:
    """A connected non-blocking TCP socket (from `source`, if given); OSError (refused, timed out) otherwise.

    The socket is bound before it connects, so `before_connect` learns the connection's
    full address pair before the server can see it (see connections.py). A `source_port`
    may be shared with other connections to other servers, as the OS itself does.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if source_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if source is None and address.startswith("127."):
            source = "127.0.0.1"  # what the kernel would choose for a loopback peer anyway
        if source is not None:
            sock.bind((source, source_port))
            if before_connect is not None:
                before_connect(key_of(sock.getsockname(), (address, port)))
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (address, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock


class RawSession:
    """A hand-typed SMTP session: send one line, get the reply lines with their notes."""

    def __init__(self, recorder: Recorder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 server_hostname: str, tls_context: ssl.SSLContext, reply_timeout: float = 3.0) -> None:
        self.recorder = recorder
        self._reader = reader
        self._writer = writer
        self._server_hostname = server_hostname
        self._tls_context = tls_context
        self.reply_timeout = reply_timeout
        self.closed = False

    @property
    def transcript(self):  # noqa: ANN201 - Transcript
        return self.recorder.transcript

    async def read_reply(self) -> list[Entry]:
        """Read one whole reply (every line up to the one with a space after the code)."""
        start = len(self.transcript.entries)
        while True:
            try:
                raw = await asyncio.wait_for(self._reader.readline(), self.reply_timeout)
            except TimeoutError:
                self.recorder.event("server", f"(no reply within {self.reply_timeout:g} s)",
                                    "The server is still waiting for something, or has stopped answering.")
                break
            if not raw:
                self._mark_closed()
                break
            self.recorder.feed("server", raw)
            if len(raw) < 4 or raw[3:4] != b"-":
                if raw[:3] in (b"221", b"421"):  # the server is closing the connection
                    self._mark_closed()
                    self._writer.close()
                break
        return self.transcript.entries[start:]

    async def send(self, line: str) -> list[Entry]:
        """Send one line as typed; return the entries it produced (the line, then the reply)."""
        if self.closed:
            raise ConnectionError("this session is closed: open a new one")
        start = len(self.transcript.entries)
        in_data_before = self.recorder.annotator.in_data
        data = line.encode("utf-8", "surrogateescape") + b"\r\n"
        self.recorder.feed("client", data)
        self._writer.write(data)
        await self._writer.drain()
        # Inside DATA the server answers nothing until the lone dot.
        if not (in_data_before and self.recorder.annotator.in_data):
            await self.read_reply()
            if line.strip().upper() == "STARTTLS" and self._last_code() == 220:
                await self.start_tls()
        return self.transcript.entries[start:]

    async def send_bytes(self, data: bytes, *, reply: bool = True) -> list[Entry]:
        """Send `data` exactly as given (bare LF, NULs, several commands in one packet); read one reply if `reply`."""
        if self.closed:
            raise ConnectionError("this session is closed: open a new one")
        start = len(self.transcript.entries)
        self.recorder.feed("client", data)
        self._writer.write(data)
        await self._writer.drain()
        if reply:
            await self.read_reply()
        return self.transcript.entries[start:]

    def last_reply(self) -> str:
        """The lines of the server's latest reply, joined with newlines."""
        lines: list[str] = []
        for entry in reversed(self.transcript.entries):
            if entry.kind != "line":
                continue
            if entry.direction != "server":
                break
            if lines and entry.line[3:4] != "-":  # the last line of an earlier reply: this one starts after it
                break
            lines.append(entry.line)
        return "\n".join(reversed(lines))

    def _last_code(self) -> int | None:
        for entry in reversed(self.transcript.entries):
            if entry.kind == "line" and entry.direction == "server":
                return int(entry.line[:3]) if entry.line[:3].isdigit() else None
        return None

    async def start_tls(self) -> None:
        """Begin the TLS handshake (after the server's 220 to STARTTLS)."""
        try:
            await self._writer.start_tls(self._tls_context, server_hostname=self._server_hostname)
        except (ssl.SSLError, ConnectionError) as err:
            self.recorder.event("client", f"TLS handshake failed: {err}", "The client gave up: it could not verify the server.")
            self._mark_closed()
            return
        self.recorder.tls = True
        self.recorder.event("client", describe_tls(self._writer.transport),
                            "TLS handshake complete: say EHLO again, the server forgot everything said in plain text.")

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            self.recorder.event("server", "connection closed", "")

    async def close(self) -> None:
        if not self.closed:
            self._mark_closed()
            self._writer.close()
            try:
                await asyncio.wait_for(self._writer.wait_closed(), 1)
            except (TimeoutError, ConnectionError, ssl.SSLError):
                pass


_STAGE_OF_ERROR = {aiosmtplib.SMTPSenderRefused: "mail", aiosmtplib.SMTPRecipientRefused: "rcpt",
                   aiosmtplib.SMTPDataError: "data"}


def _stage(stage: str, err: BaseException, transcript: Transcript) -> str:
    """Where a session failed: the step it was in, and within sendmail, the last envelope command sent."""
    if stage != "mail":
        return stage
    for error_type, which in _STAGE_OF_ERROR.items():
        if isinstance(err, error_type):
            return which
    for command in reversed(transcript.commands()):
        verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
        if verb in ("MAIL", "RCPT", "DATA"):
            return verb.lower()
    return "data" if transcript.commands() else "mail"


def _kind(err: BaseException) -> str:
    if isinstance(err, aiosmtplib.SMTPNotSupported) or "not supported by server" in str(err):
        return "not-offered"  # aiosmtplib says so when a required STARTTLS (or AUTH) is missing
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(err, ssl.SSLError) or "SSL" in type(err).__name__:
        return "tls"
    if isinstance(err, (aiosmtplib.SMTPServerDisconnected, ConnectionError)):
        return "closed"
    return "error"


@dataclass(frozen=True)
class Endpoint:
    """Where a logical listener (host, port) really is."""

    host: Host
    listener: Listener
    address: str
    bound_port: int

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host.name, "port": self.listener.port, "address": self.address,
                "bound_port": self.bound_port, "role": self.listener.role, "tls": self.listener.tls,
                "auth": self.listener.auth}


@dataclass
class SendPlan:
    """Everything one send needs, checked: who, to whom, where, how."""

    sender: str
    recipients: list[str]
    raw: bytes
    endpoint: Endpoint
    tls: str  # "starttls", "implicit", "none" or "opportunistic"
    credentials: tuple[str, str] | None
    ehlo: str
    timeout: float
    message_id: str = ""
    client: str = ""  # the lab host sending (a relay), or "" for the student
    network: str = "student"  # the place the student sends from (its network may delay or block)
    tap: bool = False  # keep the bytes as they crossed the wire
    pipelining: bool = False  # send the envelope in one write where the server offers PIPELINING (RFC 2920)


async def submit(plan: SendPlan, tls_context: ssl.SSLContext, *, source: str | None = None,
                 before_connect: Callable[[ConnectionKey], None] | None = None) -> SendResult:
    """One whole SMTP session with aiosmtplib, recorded from the client's side."""
    ep = plan.endpoint
    result = SendResult(plan.sender, plan.recipients, ep.host.name, ep.listener.port, message_id=plan.message_id)
    transcript = Transcript(ep.host.name, "client", port=ep.listener.port, peer=f"{ep.address}:{ep.bound_port}",
                            client=plan.client)
    rec = Recorder(transcript)
    result.transcript = transcript
    rec.event("client", f"connecting to {ep.host.name} port {ep.listener.port} ({ep.address}:{ep.bound_port})",
              "Opening a TCP connection; the lab maps the logical port to the real one.")
    try:
        sock = await open_socket(ep.address, ep.bound_port, plan.timeout, source, before_connect)
    except (TimeoutError, OSError) as err:
        if isinstance(err, asyncio.TimeoutError):
            reason = f"timed out after {plan.timeout:g} s (no answer at all: a firewall may be dropping the packets)"
        elif isinstance(err, ConnectionRefusedError):
            reason = "connection refused (nothing listens there, or a firewall rejects the port)"
        else:
            reason = err.strerror or str(err)
        result.error = f"Could not connect to {ep.host.name} port {ep.listener.port}: {reason}"
        kind = "timeout" if isinstance(err, asyncio.TimeoutError) else "refused" if isinstance(
            err, ConnectionRefusedError) else "error"
        result.failure = Failure("connect", kind)
        rec.event("client", result.error, "Nothing is listening there, or the network blocks the port.")
        return result
    if plan.pipelining:
        return await pipelined_session(rec, result, sock, sender=plan.sender, recipients=plan.recipients,
                                       raw=plan.raw, ehlo=plan.ehlo, tls=plan.tls, credentials=plan.credentials,
                                       timeout=plan.timeout, tls_context=tls_context, server_hostname=ep.host.name)
    client = RecordingSMTPClient(rec, hostname=ep.host.name, sock=sock, use_tls=plan.tls == "implicit",
                                 start_tls=False, tls_context=tls_context, timeout=plan.timeout,
                                 local_hostname=plan.ehlo)
    stage = "tls" if plan.tls == "implicit" else "greeting"  # what the session is doing: where a failure happened
    try:
        await client.connect()
        stage = "ehlo"
        await client.ehlo()
        if plan.tls == "starttls" or (plan.tls == "opportunistic" and client.supports_extension("starttls")):
            stage = "tls"
            await client.starttls()
            stage = "ehlo"
            await client.ehlo()
        result.tls_info = TLSInfo.of(client.protocol.transport if client.protocol else None)
        if plan.credentials and client.supports_extension("auth"):
            stage = "auth"
            await client.login(*plan.credentials)
        elif plan.credentials:
            rec.event("client", "the server offers no AUTH here: going on without logging in",
                      "AUTH is offered only over TLS (and not at all on port 25); the server will decide.")
        stage = "mail"  # sendmail does MAIL, RCPT and DATA: _stage() tells them apart
        errors, reply = await client.sendmail(plan.sender, plan.recipients, plan.raw)
        stage = "quit"
        result.refused = {rcpt: f"{code} {text}" for rcpt, (code, text) in errors.items()}
        result.accepted = [r for r in plan.recipients if r not in result.refused]
        result.reply = f"250 {reply}"
        await client.quit()
    except aiosmtplib.SMTPRecipientsRefused as err:
        result.refused = {e.recipient: f"{e.code} {e.message}" for e in err.recipients}
        result.error = "the server refused every recipient"
        first = err.recipients[0] if err.recipients else None
        result.failure = Failure("rcpt", "reply", first.code if first else None,
                                 f"{first.code} {first.message}" if first else "")
    except aiosmtplib.SMTPResponseException as err:
        result.error = f"The server said {err.code} {err.message}"
        result.error_code = err.code
        result.last_reply = f"{err.code} {err.message}"
        result.failure = Failure(_stage(stage, err, transcript), "reply", err.code, result.last_reply)
    except (aiosmtplib.SMTPException, OSError) as err:
        result.error = f"{type(err).__name__}: {err}"
        result.failure = Failure(_stage(stage, err, transcript), _kind(err))
    finally:
        if client.is_connected:
            try:
                await asyncio.wait_for(client.quit(), 1)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                pass
        client.close()
    result.tls = rec.tls
    return result
