"""Raw network probes: connect and say how it went.

:func:`connect` turns what the kernel says into the four outcomes a checklist
tells apart (ok, refused, timeout, unreachable). The ports that refuse or never
answer on purpose live in :mod:`smtplab.testing`.
"""

from __future__ import annotations

import errno
import socket


def connect(where: tuple[str, int], timeout: float) -> tuple[socket.socket | None, str, str]:
    """A TCP connection to `where`, and how it went; never raises for a network fault.

    Returns (the socket or None; ``"ok"``, ``"refused"``, ``"timeout"``, ``"unreachable"`` or
    ``"error: ..."``; the address as people read it, an IPv6 one in brackets).
    """
    shown = f"{where[0]}:{where[1]}" if ":" not in where[0] else f"[{where[0]}]:{where[1]}"
    try:
        sock = socket.create_connection(where, timeout=timeout)
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
