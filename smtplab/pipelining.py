"""A client that pipelines (RFC 2920): the whole envelope in one write, then every reply.

Without PIPELINING a client waits a round trip for each of MAIL, every RCPT and DATA. With it,
once the server has said ``250-PIPELINING``, the client sends ``MAIL``, the ``RCPT``s and
``DATA`` together and reads their replies in order: one round trip instead of 2 + N. The
message itself still waits for ``354`` (RFC 2920 section 3.1: DATA is the last command of a
group). This is the lesson, so it is written here in full; aiosmtplib does not pipeline (its
protocol keeps one reply at a time and drops what arrives while one waits for pickup).

The transcript shows which commands travelled together: an event before the group names them.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
from collections.abc import Sequence

from .result import Failure, SendResult
from .tls import TLSInfo, describe_tls
from .transcript import Recorder

__all__ = ["pipelined_session"]

_BARE_ENDS = re.compile(rb"\r\n|\r|\n")


class _Refused(Exception):
    def __init__(self, stage: str, reply: str) -> None:
        super().__init__(reply)
        self.stage, self.reply = stage, reply


async def pipelined_session(rec: Recorder, result: SendResult, sock: socket.socket, *, sender: str,
                            recipients: Sequence[str], raw: bytes, ehlo: str, tls: str,
                            credentials: tuple[str, str] | None, timeout: float, tls_context: ssl.SSLContext,
                            server_hostname: str) -> SendResult:
    """One whole session over the connected `sock`, the envelope pipelined when the server offers it."""
    implicit = tls == "implicit"
    stage = "tls" if implicit else "greeting"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            sock=sock, ssl=tls_context if implicit else None,
            server_hostname=server_hostname if implicit else None), timeout)
    except (OSError, ssl.SSLError, TimeoutError) as err:
        sock.close()
        result.error = f"{type(err).__name__}: {err}"
        result.failure = Failure(stage, "timeout" if isinstance(err, TimeoutError) else "tls")
        return result
    if implicit:
        rec.tls = True
        rec.event("client", describe_tls(writer.transport), "Implicit TLS: encrypted before the first SMTP line.")

    async def reply() -> tuple[int, str]:
        lines = []
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                raise ConnectionError("the server closed the connection")
            rec.feed("server", line)
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if line[3:4] != b"-":
                code = lines[-1][:3]
                return (int(code) if code.isdigit() else 0), "\n".join(lines)

    def send(data: bytes) -> None:
        rec.feed("client", data)
        writer.write(data)

    async def command(line: str, stage_name: str, ok: tuple[int, ...]) -> str:
        send(line.encode() + b"\r\n")
        code, text = await reply()
        if code not in ok:
            raise _Refused(stage_name, text)
        return text

    try:
        code, text = await reply()
        if code != 220:
            raise _Refused("greeting", text)
        stage = "ehlo"
        offer = await command(f"EHLO {ehlo}", "ehlo", (250,))
        if tls == "starttls" or (tls == "opportunistic" and "STARTTLS" in offer):
            stage = "tls"
            await command("STARTTLS", "tls", (220,))
            await writer.start_tls(tls_context, server_hostname=server_hostname)
            rec.tls = True
            rec.event("client", describe_tls(writer.transport), "TLS handshake complete: every line is encrypted.")
            stage = "ehlo"
            offer = await command(f"EHLO {ehlo}", "ehlo", (250,))
        result.tls_info = TLSInfo.of(writer.transport)
        if credentials and "AUTH" in offer:
            stage = "auth"
            token = base64.b64encode(f"\0{credentials[0]}\0{credentials[1]}".encode()).decode()
            await command(f"AUTH PLAIN {token}", "auth", (235,))
        envelope = [f"MAIL FROM:<{sender}>", *(f"RCPT TO:<{r}>" for r in recipients), "DATA"]
        if "PIPELINING" in offer.upper():
            rec.event("client", f"pipelined: {', '.join(c.split()[0] for c in envelope)} in one write",
                      "RFC 2920: the whole envelope travels together; the replies come back in the same order.")
            stage = "mail"
            send("".join(f"{c}\r\n" for c in envelope).encode())
            replies = [await reply() for _ in envelope]
        else:  # the server did not offer it: one command, one round trip, as any client must
            replies = []
            for line in envelope:
                send(line.encode() + b"\r\n")
                replies.append(await reply())
                if replies[-1][0] >= 400 and line.startswith("MAIL"):
                    break
        if replies[0][0] != 250:
            raise _Refused("mail", replies[0][1])
        for rcpt, (code, text) in zip(recipients, replies[1:-1]):
            (result.accepted.append(rcpt) if code in (250, 251) else result.refused.__setitem__(rcpt, text))
        data_code, data_text = replies[-1] if len(replies) == len(envelope) else (0, "")
        if not result.accepted:
            result.error = "the server refused every recipient"
            first = next(iter(result.refused.values()), "")
            result.failure = Failure("rcpt", "reply", int(first[:3]) if first[:3].isdigit() else None, first)
            if data_code == 354:  # it should have said 503; end the empty message rather than leave it open
                send(b".\r\n")
                await reply()
        elif data_code != 354:
            raise _Refused("data", data_text)
        else:
            stage = "data"
            body = _BARE_ENDS.sub(b"\r\n", raw)
            body = re.sub(rb"(?m)^\.", b"..", body)  # dot-stuffing (RFC 5321 section 4.5.2)
            send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            code, text = await reply()
            if code != 250:
                raise _Refused("data", text)
            result.reply = text
        stage = "quit"
        await command("QUIT", "quit", (221,))
    except _Refused as refusal:
        result.error = f"The server said {refusal.reply}"
        result.error_code = int(refusal.reply[:3]) if refusal.reply[:3].isdigit() else None
        result.last_reply = refusal.reply
        result.failure = Failure(refusal.stage, "reply", result.error_code, refusal.reply)
        result.accepted = [] if refusal.stage != "quit" else result.accepted
    except (OSError, ssl.SSLError, TimeoutError) as err:
        result.error = f"{type(err).__name__}: {err}"
        result.failure = Failure(stage, "timeout" if isinstance(err, TimeoutError) else
                                 "tls" if isinstance(err, ssl.SSLError) else "closed")
    finally:
        rec.event("server", "connection closed", "")
        writer.close()
    result.tls = rec.tls
    return result
