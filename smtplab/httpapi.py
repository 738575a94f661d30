"""An HTTP sending API, the way providers offer one: a JSON POST over HTTPS with an API key.

``POST https://smtp.example.org/v1/send`` (logical port 443), with
``Authorization: Bearer <key>`` and a JSON body::

    {"from": "alice@example.org", "to": ["bob@example.net"], "subject": "Hi", "text": "Hello"}

answers ``202 {"id": ..., "accepted": [...]}`` once the message is stored, and
hands it to the same delivery as SMTP submission (Maildirs, relay queue).
Every mistake gets a 4xx with a JSON body that says what to fix; nothing is
delivered then. The server is deliberately small (HTTP/1.1, keep-alive,
Content-Length bodies): just enough to compare with SMTP, measured, on the
same links.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from .connections import ConnectionCap
from .mailboxes import mailbox_problem
from .messages import compose
from .store import new_queue_id
from .transcript import Entry, Transcript

if TYPE_CHECKING:
    from .topology import Host, Listener
    from .world import MailWorld

__all__ = ["ApiResult", "HttpApi", "MAX_BODY", "api_post"]

MAX_BODY = 1024 * 1024  # bytes a request body may have
MAX_CONNECTIONS = 1000  # past it, the longest idle connection is closed (see ConnectionCap)
IDLE_TIMEOUT = 60.0  # seconds a connection may wait between requests (SMTP's is 300 s, RFC 5321 4.5.3.2)
MAX_HEADERS = 16 * 1024  # bytes a request's headers may have (the stream reader's limit)
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
           422: "Unprocessable Content", 500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class HttpApi:
    """The API of one host: a protocol factory for asyncio's create_server."""

    def __init__(self, world: MailWorld, host: Host, listener: Listener) -> None:
        self.world, self.host, self.listener = world, host, listener
        self.cap = ConnectionCap(MAX_CONNECTIONS)

    def keys(self) -> dict[str, str]:
        """API key -> the user it belongs to (the lab publishes them, like its passwords)."""
        return {api_key(u.username): u.username for u in self.world.topology.users if u.domain in self.host.domains}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        transcript = Transcript(self.host.name, "server", port=self.listener.port, peer=f"{peer[0]}:{peer[1]}")
        t0 = time.perf_counter()

        self.cap.admit(writer, writer.close)

        def note(direction: str, line: str, text: str) -> None:
            transcript.entries.append(Entry(time.perf_counter() - t0, self.host.name, direction, line, True, text))

        try:
            while True:
                try:
                    request = await asyncio.wait_for(_read_request(reader), IDLE_TIMEOUT)
                except TimeoutError:
                    note("server", "(idle: connection closed)", f"Nothing arrived for {IDLE_TIMEOUT:g} s.")
                    break
                except ApiError as err:
                    note("server", f"HTTP/1.1 {err.status} {REASONS[err.status]}", err.detail)
                    writer.write(_response(err.status, {"error": err.error, "detail": err.detail}, close=True))
                    await writer.drain()
                    break
                if request is None:
                    break
                self.cap.touch(writer)
                method, path, headers, body = request
                note("client", f"{method} {path} HTTP/1.1", "The client asks the API to do something: one request.")
                note("client", f"({len(body)} bytes of JSON)" if body else "(no body)", "The request body.")
                status, payload = await self.handle(method, path, headers, body)
                note("server", f"HTTP/1.1 {status} {REASONS[status]}", _explain(status, payload))
                keep = headers.get("connection", "").lower() != "close"
                writer.write(_response(status, payload, close=not keep))
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.cap.leave(writer)
            writer.close()
            self.world.record_session(transcript)

    async def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        """One request in, (status, JSON) out. Never raises: a mistake is a 4xx that says what to fix."""
        try:
            if path != "/v1/send":
                raise ApiError(404, "not_found", f"No such endpoint {path!r}; messages are sent with POST /v1/send.")
            if method != "POST":
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed here; use POST.")
            user = self._authenticate(headers)
            owner = self.world.topology.user(user)
            message, rcpts = _message(body, user, owner.address if owner is not None else "")
            for rcpt in rcpts:  # as SMTP's RCPT would: a local address must be a real mailbox
                if rcpt.rpartition("@")[2].lower() in self.host.domains and self.world.topology.user(rcpt) is None:
                    raise ApiError(422, "unknown_recipient", f"{rcpt} is not a mailbox here (SMTP would say 550 5.1.1).")
            queue_id = new_queue_id()
            raw = _received(self, user, queue_id) + message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
            self.world.journal("received", self.host.name, queue_id, str(message["Message-ID"]), client="HTTP API",
                               tls=True, rcpts=rcpts)
            await self.world.accept(self.host, message["From"].addresses[0].addr_spec, rcpts, raw, queue_id,
                                    str(message["Message-ID"]))
            return 202, {"id": str(message["Message-ID"]), "queue_id": queue_id, "accepted": rcpts}
        except ApiError as err:
            return err.status, {"error": err.error, "detail": err.detail}
        except OSError as err:
            return 503, {"error": "storage", "detail": f"Could not store the message now ({err.strerror}); retry."}

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise ApiError(401, "unauthorized", "Send your API key as 'Authorization: Bearer <key>'.")
        user = self.keys().get(auth[7:].strip())
        if user is None:
            raise ApiError(401, "unauthorized", "That API key is not valid here.")
        return user


def api_key(username: str) -> str:
    """The lab's published API key of a user (a classroom: keys, like passwords, are public)."""
    return f"lab-key-{username}"


def _message(body: bytes, user: str, own: str) -> tuple[EmailMessage, list[str]]:
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, "bad_json", f"The body is not valid JSON: {err}.") from None
    except RecursionError:
        raise ApiError(400, "bad_json", "The body's JSON is nested too deeply.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", 'The body must be a JSON object like {"from": ..., "to": [...], ...}.')
    missing = [name for name in ("from", "to", "subject", "text") if name not in data]
    if missing:
        raise ApiError(422, "missing_field", f"Missing field(s): {', '.join(missing)}.")
    to = data["to"] if isinstance(data["to"], list) else [data["to"]]
    for address in [data["from"], *to]:
        problem = mailbox_problem(address)
        if problem:
            raise ApiError(422, "bad_address", f"{str(address)[:80]!r} is not a mailbox address: {problem}.")
    if not to:
        raise ApiError(422, "missing_field", "'to' needs at least one address.")
    if data["from"].lower() != own:  # as 587 does (553 5.7.1): a key sends as its own address only
        raise ApiError(403, "forbidden", f"This key belongs to {user} ({own}); it cannot send as {data['from']}.")
    if not isinstance(data["subject"], str) or not isinstance(data["text"], str):
        raise ApiError(422, "bad_field", "'subject' and 'text' must be strings.")
    try:
        message = compose(data["from"], to, data["subject"], data["text"])
    except ValueError as err:  # e.g. a newline in the subject: header injection, refused by the email module
        raise ApiError(422, "bad_field", f"A header value is not allowed: {err}.") from None
    return message, to


def _received(api: HttpApi, user: str, queue_id: str) -> bytes:
    return (f"Received: from HTTP API (user {user})\r\n\tby {api.host.name} (smtplab) with HTTPS id {queue_id};\r\n"
            f"\t{email.utils.format_datetime(email.utils.localtime())}\r\n").encode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if err.partial.strip():
            raise ApiError(400, "bad_request", "The request ended before its headers did.") from None
        return None
    except asyncio.LimitOverrunError:
        raise ApiError(400, "bad_request", "The request headers are too long.") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ApiError(400, "bad_request", f"Not an HTTP/1.1 request line: {lines[0][:80]!r}.")
    headers: dict[str, str] = {}
    lengths: list[str] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():  # RFC 9112 section 5.1: no space before the colon
            raise ApiError(400, "bad_request", f"Not a header line: {line[:80]!r}.")
        name = name.lower()
        if name == "content-length":
            lengths.append(value.strip())
        headers[name] = value.strip()
    if "transfer-encoding" in headers:  # RFC 9112 section 6.1: this server reads Content-Length bodies only
        raise ApiError(501 if headers["transfer-encoding"].lower() != "chunked" else 411, "length_required",
                       "Transfer-Encoding is not supported here: send the body with a Content-Length.")
    if len(set(lengths)) > 1:  # RFC 9112 section 6.3: different lengths are an error, never "the last one"
        raise ApiError(400, "bad_request", "Two different Content-Length headers: which one is the body's?")
    length = lengths[0] if lengths else None
    if parts[0] == "POST" and length is None:
        raise ApiError(411, "length_required", "Send a Content-Length header with the body.")
    if length is not None and not (length.isascii() and length.isdigit() and len(length) <= 12):
        raise ApiError(400, "bad_request", f"Content-Length must be a number of bytes, not {length[:20]!r}.")
    size = int(length) if length else 0
    if size > MAX_BODY:
        if size <= 4 * MAX_BODY:  # read it first, so the client hears the 413 rather than a reset mid-upload
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while size > 0:
                    size -= len(await reader.readexactly(min(size, 65536)))
        raise ApiError(413, "too_large", f"The body is {int(length or 0):,} bytes; at most {MAX_BODY:,} are accepted.")
    body = await reader.readexactly(size) if size else b""
    return parts[0], parts[1], headers, body


def _response(status: int, payload: dict, close: bool = False) -> bytes:
    body = json.dumps(payload).encode()
    head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: {'close' if close else 'keep-alive'}\r\n\r\n")
    return head.encode() + body


def _explain(status: int, payload: dict) -> str:
    if status == 202:
        return "Accepted: the provider stored the message and will deliver it (one round trip did it all)."
    return f"Refused ({payload.get('error')}): {payload.get('detail')}"


# --- the client side ---------------------------------------------------------------------------

@dataclass
class ApiResult:
    """One or more API calls over one HTTPS connection, timed from the client's side."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    connect: float = 0.0  # TCP connect and TLS handshake, seconds
    requests: list[float] = field(default_factory=list)  # each request until its response, seconds
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.statuses) and all(s == 202 for s in self.statuses)

    @property
    def elapsed(self) -> float:
        return self.connect + sum(self.requests)


async def api_post(address: str, port: int, hostname: str, key: str, payloads: list[dict[str, Any]],
                   tls_context: ssl.SSLContext, timeout: float = 10.0) -> ApiResult:
    """POST each payload to /v1/send over one keep-alive HTTPS connection."""
    result = ApiResult()
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=tls_context, server_hostname=hostname), timeout)
    except (TimeoutError, OSError) as err:
        result.connect = time.perf_counter() - started  # the time it took to give up counts too
        result.error = ("timed out" if isinstance(err, asyncio.TimeoutError) else str(err)) + f" connecting to {hostname}:443"
        return result
    result.connect = time.perf_counter() - started
    try:
        for payload in payloads:
            body = json.dumps(payload).encode()
            t = time.perf_counter()
            writer.write((f"POST /v1/send HTTP/1.1\r\nHost: {hostname}\r\nAuthorization: Bearer {key}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status = int(head.split()[1])
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            result.bodies.append(json.loads(await reader.readexactly(length)))
            result.statuses.append(status)
            result.requests.append(time.perf_counter() - t)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as err:
        result.error = f"{type(err).__name__}: {err}"
    finally:
        writer.close()
    return result
