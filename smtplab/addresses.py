"""Where each logical host and port of a lab really is, and the names its addresses have.

Ports below 1024 need root, so each logical port (587 on smtp.example.org) is
served from a port the OS picks, on the host's own loopback address
(127.0.0.2, ...) where the system allows it (Linux), else on 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from .client import Endpoint
from .result import LabError
from .topology import Topology

__all__ = ["AddressBook", "loopback_aliases_work"]


def loopback_aliases_work(addresses: Sequence[str]) -> bool:
    """Whether this system lets us bind every one of `addresses` (all of 127/8 on Linux, not on macOS)."""
    for address in addresses:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((address, 0))
        except OSError:
            return False
        finally:
            probe.close()
    return True


class AddressBook:
    """Logical (host, port) -> the real listener, and real address -> host name."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.own_addresses = loopback_aliases_work([h.address for h in topology.hosts])
        self.addresses = {h.name: (h.address if self.own_addresses else "127.0.0.1") for h in topology.hosts}
        self._by_address = {addr: name for name, addr in self.addresses.items()} if self.own_addresses else {}
        self.endpoints: dict[tuple[str, int], Endpoint] = {}  # SMTP listeners
        self.services: dict[tuple[str, int], Endpoint] = {}  # other services (the HTTP sending API)

    def endpoint(self, host: str, port: int) -> Endpoint:
        """Where logical `host`:`port` is really served; a clear LabError if the lab has no such listener."""
        name = host.lower().rstrip(".")
        found = self.endpoints.get((name, port)) or self.services.get((name, port))
        if found is not None:
            return found
        known = self.topology.host(name)
        if known is None:
            hosts = ", ".join(h.name for h in self.topology.hosts)
            raise LabError(f"There is no host called {host!r} in this lab. Its hosts are: {hosts}.")
        ports = ", ".join(f"{lst.port} ({lst.role})" for lst in known.listeners)
        raise LabError(f"{name} has no listener on port {port}. It listens on: {ports}.")

    def endpoint_at(self, address: str, port: int, name: str = "") -> Endpoint | None:
        """The lab listener at a DNS answer's `address` (or, where hosts share 127.0.0.1, named `name`)."""
        if self.own_addresses:
            host = self._by_address.get(address)
        else:
            host = name.lower() if address == "127.0.0.1" else None
        return self.endpoints.get((host, port)) if host else None

    def reverse_name(self, address: str) -> str:
        """What a PTR lookup would say about a lab address (for Received headers)."""
        return self._by_address.get(address, "localhost")
