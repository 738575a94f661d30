"""The bare aiosmtpd servers the lab is compared with, each on its own event loop thread on 127.0.0.1.

Handlers:

* :class:`NullHandler` says 250 and keeps nothing: the do-nothing ceiling.
* :class:`MaildirHandler` adds each message to a standard-library ``mailbox.Maildir``
  on the loop, the way a plain aiosmtpd program would (``Maildir.add`` fsyncs).
* :class:`StoreHandler` writes with the lab's own ``MailStore.deliver`` (unsynced,
  in a worker thread): exactly the lab's promise before 250 and nothing else.

Servers:

* :class:`ControllerPeer`: aiosmtpd's own ``Controller`` (``create_server(host, port)``).
* :class:`BareServer`: ``loop.create_server(lambda: SMTP(...), sock=...)`` as the lab
  starts its own listeners; it can also do STARTTLS + AUTH.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import mailbox
import socket
import ssl
from pathlib import Path
from typing import Any

from common import LoopThread

BARE_HOSTNAME = "bare.example.net"


class NullHandler:
    """250 for every message; counts them."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


class MaildirHandler:
    """Each message added to one ``mailbox.Maildir`` (fsynced by the standard library), on the loop."""

    def __init__(self, root: Path) -> None:
        self.box = mailbox.Maildir(root, factory=None, create=True)
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.add(envelope.original_content)
        self.count += 1
        return "250 OK"


class StoreHandler:
    """The lab's promise before 250 (``MailStore.deliver``, unsynced, in a worker thread) and nothing else."""

    def __init__(self, root: Path) -> None:
        from smtplab.store import MailStore
        self.store = MailStore(root)
        self.pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="bare-maildir")
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        loop = asyncio.get_running_loop()
        for rcpt in envelope.rcpt_tos:
            await loop.run_in_executor(self.pool, self.store.deliver, rcpt, envelope.original_content)
        self.count += 1
        return "250 OK"

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.store.close()


def accept_any_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    """An aiosmtpd authenticator that lets everyone in."""
    from aiosmtpd.smtp import AuthResult
    return AuthResult(success=True)


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port free on `address` right now (Controller needs a real port: it probes it at start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class ControllerPeer:
    """aiosmtpd's ``Controller`` with `handler` on 127.0.0.1, an explicit hostname (no getfqdn per session)."""

    def __init__(self, label: str, handler: Any) -> None:
        from aiosmtpd.controller import Controller
        self.label = label
        self.handler = handler
        self.address = "127.0.0.1"
        self.port = free_port(self.address)
        self.controller = Controller(handler, hostname=self.address, port=self.port, server_hostname=BARE_HOSTNAME)
        self.controller.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.controller.loop

    @property
    def count(self) -> int:
        return int(self.handler.count)

    def close(self) -> None:
        self.controller.stop()
        if hasattr(self.handler, "close"):
            self.handler.close()


class BareServer:
    """aiosmtpd's ``SMTP`` started as the lab starts its listeners, on its own loop thread, on 127.0.0.1."""

    def __init__(self, tls_context: ssl.SSLContext | None = None, maildir: Path | None = None) -> None:
        from aiosmtpd.smtp import SMTP
        self.lt = LoopThread("bare-aiosmtpd")
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on an accepted connection only when the
        # socket's proto is IPPROTO_TCP (base_events._set_nodelay), which is what create_server(host, port)
        # gives. With proto 0, every multi-line reply (EHLO) waits ~40 ms on Nagle + delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.address, self.port = sock.getsockname()[:2]
        handler: Any = NullHandler() if maildir is None else StoreHandler(maildir)
        self.handler = handler
        # An explicit hostname, as the lab gives: otherwise aiosmtpd asks getfqdn() per connection.
        kwargs: dict[str, Any] = {"hostname": "smtp.example.org"}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True, authenticator=accept_any_login,
                          auth_required=True, auth_require_tls=True)

        async def start() -> Any:
            return await asyncio.get_running_loop().create_server(lambda: SMTP(handler, **kwargs), sock=sock)
        self.server = self.lt.run(start())

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.lt.loop

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        with contextlib.suppress(Exception):  # closing must go on
            self.lt.run(shut(), timeout=5)
        self.lt.stop()
        if isinstance(self.handler, StoreHandler):
            self.handler.close()
