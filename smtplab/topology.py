"""Scenarios as data: the domains, hosts, listeners and users of a lab world.

A scenario is a TOML file (see ``scenarios/default.toml``). Instructors write
new ones without touching server code; :func:`load_scenario` checks them and
says clearly what is wrong with a bad one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Domain",
    "Host",
    "Listener",
    "ScenarioError",
    "Topology",
    "User",
    "load_scenario",
]

SCENARIO_DIR = Path(__file__).parent / "scenarios"

ROLES = {
    "mx": "server-to-server relay: takes mail for its own domains from anyone",
    "submission": "message submission (RFC 6409): users log in and hand over mail to send",
    "submissions": "submission over implicit TLS (RFC 8314): TLS from the first byte",
}
TLS_MODES = {"none", "starttls", "implicit"}
AUTH_MODES = {"none", "optional", "required"}


class ScenarioError(ValueError):
    """A scenario file that cannot describe a lab; the message says what to fix."""


@dataclass(frozen=True)
class Listener:
    """One port a host listens on, and the rules that port enforces."""

    port: int
    role: str
    tls: str = "none"
    auth: str = "none"

    @property
    def about(self) -> str:
        return ROLES[self.role]


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    listeners: tuple[Listener, ...]
    domains: tuple[str, ...] = ()
    about: str = ""

    def listener(self, port: int) -> Listener | None:
        return next((lst for lst in self.listeners if lst.port == port), None)


@dataclass(frozen=True)
class Domain:
    name: str
    mx: tuple[tuple[int, str], ...]  # (preference, host name)
    about: str = ""


@dataclass(frozen=True)
class User:
    address: str
    username: str
    password: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class Topology:
    """A whole lab world."""

    name: str
    hosts: tuple[Host, ...]
    domains: tuple[Domain, ...] = ()
    users: tuple[User, ...] = ()
    description: str = ""
    _by_name: dict[str, Host] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({h.name: h for h in self.hosts})

    def host(self, name: str) -> Host | None:
        return self._by_name.get(name.lower().rstrip("."))

    def user(self, login_or_address: str) -> User | None:
        key = login_or_address.lower()
        return next((u for u in self.users if key in (u.username, u.address)), None)

    def domain(self, name: str) -> Domain | None:
        return next((d for d in self.domains if d.name == name.lower()), None)

    def home_host(self, domain: str) -> Host | None:
        """The host that delivers mail for `domain` into Maildirs, if any."""
        return next((h for h in self.hosts if domain.lower() in h.domains), None)

    def submission_host(self, domain: str) -> Host | None:
        """The host where users of `domain` submit mail (a host with a submission port)."""
        for host in self.hosts:
            if domain.lower() in host.domains and any(
                lst.role.startswith("submission") for lst in host.listeners
            ):
                return host
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Topology":
        """Build and check a topology from parsed scenario data."""
        try:
            hosts = tuple(_host(h) for h in data["hosts"])
            domains = tuple(
                Domain(
                    name=d["name"].lower(),
                    mx=tuple((int(m["preference"]), m["host"].lower()) for m in d.get("mx", ())),
                    about=d.get("about", ""),
                )
                for d in data.get("domains", ())
            )
            users = tuple(
                User(u["address"].lower(), u.get("username", u["address"]), u["password"])
                for u in data.get("users", ())
            )
        except KeyError as missing:
            raise ScenarioError(f"scenario is missing the field {missing}") from None
        topo = cls(data.get("name", "unnamed"), hosts, domains, users, data.get("description", ""))
        _check(topo)
        return topo


def _host(h: dict[str, Any]) -> Host:
    listeners = []
    for raw in h.get("listeners", ()):
        lst = Listener(int(raw["port"]), raw["role"], raw.get("tls", "none"), raw.get("auth", "none"))
        if lst.role not in ROLES:
            raise ScenarioError(f"{h['name']} port {lst.port}: unknown role {lst.role!r} (known: {', '.join(ROLES)})")
        if lst.tls not in TLS_MODES:
            raise ScenarioError(f"{h['name']} port {lst.port}: tls must be one of {sorted(TLS_MODES)}")
        if lst.auth not in AUTH_MODES:
            raise ScenarioError(f"{h['name']} port {lst.port}: auth must be one of {sorted(AUTH_MODES)}")
        listeners.append(lst)
    return Host(
        name=h["name"].lower(),
        address=h.get("address", "127.0.0.1"),
        listeners=tuple(listeners),
        domains=tuple(d.lower() for d in h.get("domains", ())),
        about=h.get("about", ""),
    )


def _check(topo: Topology) -> None:
    names = [h.name for h in topo.hosts]
    if len(set(names)) != len(names):
        raise ScenarioError("two hosts share a name")
    for host in topo.hosts:
        ports = [lst.port for lst in host.listeners]
        if len(set(ports)) != len(ports):
            raise ScenarioError(f"{host.name} lists the same port twice")
        if not host.address.startswith("127."):
            raise ScenarioError(f"{host.name}: lab hosts live on loopback (127.x.x.x), not {host.address}")
    for dom in topo.domains:
        for _, mx in dom.mx:
            if mx != "." and topo.host(mx) is None:
                raise ScenarioError(f"domain {dom.name}: MX host {mx} is not a host of this scenario")


def load_scenario(scenario: str | Path | dict[str, Any] | Topology = "default") -> Topology:
    """A topology from a built-in scenario name, a TOML file, a dict or a Topology."""
    if isinstance(scenario, Topology):
        return scenario
    if isinstance(scenario, dict):
        return Topology.from_dict(scenario)
    path = Path(scenario)
    if not path.suffix:
        path = SCENARIO_DIR / f"{scenario}.toml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
            raise ScenarioError(f"no built-in scenario called {scenario!r}; built-in scenarios: {known}")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path} is not valid TOML: {err}") from None
    return Topology.from_dict(data)
