"""Scenarios as data: the domains, hosts, listeners, routes, DNS records and users of a lab world.

A scenario is a TOML file (see ``scenarios/default.toml``); ``extends = "default"``
starts from another scenario and adds to it. Instructors write new ones
without touching server code; :func:`load_scenario` checks them and says
clearly what is wrong with a bad one.

What a host does with a message for a recipient's domain, in order:

1. ``domains``: final delivery here, into the recipient's Maildir;
2. ``proxy_to``: passed on at once, inside the same session, to that host
   (an SMTP proxy: the sender's reply comes from the server behind it);
3. ``forward`` (domain or ``"*"`` -> host): queued and relayed to that host
   (a smarthost, an internal mailbox server, an outbound filter);
4. otherwise queued and relayed by the domain's MX records.

Who may hand a host mail for a domain that is not its own: users who logged
in, hosts listed in ``relay_from`` (trusted neighbours), and anyone for the
``relay_domains`` it is a gateway or backup MX for. Nobody else: no open relays.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mailboxes import mailbox_problem

__all__ = [
    "DKIMSetting",
    "Domain",
    "Host",
    "Listener",
    "MailingList",
    "ScenarioError",
    "Topology",
    "User",
    "load_scenario",
    "relay_chain",
    "scenario_names",
]

SCENARIO_DIR = Path(__file__).parent / "scenarios"

ROLES = {
    "mx": "server-to-server relay: takes mail for its own domains from anyone",
    "submission": "message submission (RFC 6409): users log in and hand over mail to send",
    "submissions": "submission over implicit TLS (RFC 8314): TLS from the first byte",
}
TLS_MODES = {"none", "starttls", "implicit"}
AUTH_MODES = {"none", "optional", "required"}
FILTER_ACTIONS = {"block", "tag", "add_header", "monitor"}
DNS_FAULTS = {"servfail", "timeout"}
CERTIFICATE_FAULTS = {"", "expired", "wrong-name", "self-signed"}


class ScenarioError(ValueError):
    """A scenario file that cannot describe a lab; the message says what to fix."""


@dataclass(frozen=True)
class Listener:
    """One port a host listens on, and the rules that port enforces."""

    port: int
    role: str
    tls: str = "none"
    auth: str = "none"
    plaintext_auth: bool = False  # a misconfiguration to study: AUTH allowed before TLS

    @property
    def about(self) -> str:
        return ROLES[self.role]


@dataclass(frozen=True)
class DKIMSetting:
    """A domain a host signs for: its key is made at lab start and published at ``selector._domainkey.domain``."""

    domain: str
    selector: str = "lab"
    algorithm: str = "rsa"  # or "ed25519" (RFC 8463)


@dataclass(frozen=True)
class MailingList:
    """A list address whose mail the host re-sends to each member (with a footer: it changes the message)."""

    address: str
    members: tuple[str, ...]
    footer: str = ""
    arc: bool = True  # seal what it received with ARC before re-sending


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    listeners: tuple[Listener, ...]
    domains: tuple[str, ...] = ()  # final delivery into Maildirs
    about: str = ""
    relay_domains: tuple[str, ...] = ()  # accepted from anyone and passed on (gateway, backup MX)
    relay_from: tuple[str, ...] = ()  # hosts that may relay through this one without logging in
    forward: tuple[tuple[str, str], ...] = ()  # (domain or "*", next-hop host)
    proxy_to: str = ""  # pass every message on, in-line, to this host
    filters: tuple[dict[str, Any], ...] = ()  # rules applied to each message (proxies, filters)
    certificate: str = ""  # "" (good), or a planted fault: "expired", "wrong-name", "self-signed"
    faults: tuple[dict[str, Any], ...] = ()  # planted replies: {command, reply, times (default: always)}
    max_size: int = 32 * 1024 * 1024  # the SIZE it advertises and enforces, in bytes
    open_relay: bool = False  # a misconfiguration to study: relays for anyone
    limit: tuple[int, float] | None = None  # (messages, per seconds) each user may send: a sending quota
    http_api: bool = False  # also offers an HTTP sending API (JSON over HTTPS, logical port 443)
    dkim: tuple[DKIMSetting, ...] = ()  # domains whose submitted mail this host signs (and seals, as a list)
    verify: bool = False  # checks SPF, DKIM, ARC and DMARC on mail from other servers, and applies DMARC
    trusted_arc: tuple[str, ...] = ()  # ARC sealers (forwarders) whose word overrides a DMARC fail
    lists: tuple[MailingList, ...] = ()  # mailing lists this host runs for its own domains

    def listener(self, port: int) -> Listener | None:
        return next((lst for lst in self.listeners if lst.port == port), None)

    def next_hop(self, domain: str) -> str | None:
        """The host this one forwards `domain` to, if a route says so (else: MX lookup)."""
        routes = dict(self.forward)
        return routes.get(domain.lower()) or routes.get("*")


@dataclass(frozen=True)
class Domain:
    name: str
    about: str = ""


@dataclass(frozen=True)
class User:
    address: str
    username: str
    password: str
    two_factor: bool = False  # 2-step verification on: mail programs must log in with an app password
    app_passwords: tuple[str, ...] = ()

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
    zone: str = ""  # DNS records in zone-file text (absolute names); hosts' A records are added by the lab
    dns_faults: tuple[tuple[str, str], ...] = ()  # (name, "servfail" | "timeout")
    retry: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)  # seconds between a relay's tries, lab-scaled
    max_hops: int = 30  # Received headers a message may carry before it is taken for a loop
    networks: tuple[dict[str, Any], ...] = ()  # places clients send from: delay, blocked or allowed ports
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

    def submission_host(self, domain: str) -> Host | None:
        """The host where users of `domain` submit mail (a host with a submission port)."""
        for host in self.hosts:
            if domain.lower() in host.domains and any(
                lst.role.startswith("submission") for lst in host.listeners
            ):
                return host
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Topology:
        """Build and check a topology from parsed scenario data."""
        try:
            hosts = tuple(_host(h) for h in data["hosts"])
            for d in data.get("domains", ()):
                if set(d) - {"name", "about"}:
                    raise ScenarioError(
                        f"domain {d.get('name')}: unknown field(s) {sorted(set(d) - {'name', 'about'})}. A domain has "
                        "a name and an about; top-level keys such as zone must come before the first [[table]]")
            domains = tuple(Domain(d["name"].lower(), d.get("about", "")) for d in data.get("domains", ()))
            users = tuple(_user(u) for u in data.get("users", ()))
        except KeyError as missing:
            raise ScenarioError(f"scenario is missing the field {missing}") from None
        for user in users:  # the same rule as every other entrance: an address becomes a Maildir path
            problem = mailbox_problem(user.address)
            if problem:
                raise ScenarioError(f"user {user.address!r}: not a mailbox address: {problem}")
        relay = data.get("relay", {})
        faults = tuple((name.lower().rstrip("."), kind) for name, kind in data.get("dns_faults", {}).items())
        topo = cls(data.get("name", "unnamed"), hosts, domains, users, data.get("description", ""),
                   zone=data.get("zone", ""), dns_faults=faults,
                   retry=tuple(float(s) for s in relay.get("retry", cls.retry)),
                   max_hops=int(relay.get("max_hops", cls.max_hops)),
                   networks=tuple(_network(n) for n in data.get("networks", ())))
        _check(topo)
        return topo


def _user(u: dict[str, Any]) -> User:
    known = {"address", "username", "password", "two_factor", "app_passwords"}
    if set(u) - known:
        raise ScenarioError(f"user {u.get('address')}: unknown field(s) {sorted(set(u) - known)}; known: {sorted(known)}")
    return User(u["address"].lower(), u.get("username", u["address"]), u["password"], bool(u.get("two_factor", False)),
                tuple(str(p) for p in u.get("app_passwords", ())))


def _dkim(name: str, d: dict[str, Any]) -> DKIMSetting:
    if not isinstance(d, dict) or "domain" not in d or set(d) - {"domain", "selector", "algorithm"}:
        raise ScenarioError(f"{name}: a dkim entry is {{domain = 'example.org', selector = 'lab', "
                            f"algorithm = 'rsa' | 'ed25519'}}, not {d!r}")
    setting = DKIMSetting(d["domain"].lower(), d.get("selector", "lab"), d.get("algorithm", "rsa"))
    if setting.algorithm not in ("rsa", "ed25519"):
        raise ScenarioError(f"{name}: dkim algorithm must be 'rsa' or 'ed25519', not {setting.algorithm!r}")
    return setting


def _list(name: str, d: dict[str, Any]) -> MailingList:
    known = {"address", "members", "footer", "arc"}
    if not isinstance(d, dict) or "address" not in d or set(d) - known:
        raise ScenarioError(f"{name}: a list is {{address = 'friends@lists.example.com', members = [...], "
                            f"footer = '...', arc = true}}, not {d!r}")
    for address in (d["address"], *d.get("members", ())):
        problem = mailbox_problem(address)
        if problem:
            raise ScenarioError(f"{name}: list address {address!r}: {problem}")
    return MailingList(d["address"].lower(), tuple(m.lower() for m in d.get("members", ())), d.get("footer", ""),
                       bool(d.get("arc", True)))


def _network(n: dict[str, Any]) -> dict[str, Any]:
    known = {"name", "about", "delay_ms", "jitter_ms", "bandwidth_kbps", "blocked", "allowed", "how", "attack"}
    if "name" not in n or set(n) - known:
        raise ScenarioError(f"network {n.get('name')}: fields are {sorted(known)} (name required), "
                            f"not {sorted(set(n) - known)}")
    if n.get("attack", "") not in ("", "strip-starttls"):
        raise ScenarioError(f"network {n['name']}: the attack a network can mount is 'strip-starttls'")
    if n.get("how", "timeout") not in ("timeout", "refuse"):
        raise ScenarioError(f"network {n['name']}: how a blocked port looks is 'timeout' or 'refuse'")
    return n


def _host(h: dict[str, Any]) -> Host:
    known = {"name", "address", "listeners", "domains", "about", "relay_domains", "relay_from", "forward",
             "proxy_to", "filters", "certificate", "faults", "max_size", "open_relay", "limit", "http_api",
             "dkim", "verify", "trusted_arc", "lists"}
    unknown = set(h) - known
    if unknown:
        raise ScenarioError(f"host {h.get('name')}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    listeners = []
    for raw in h.get("listeners", ()):
        lst = Listener(int(raw["port"]), raw["role"], raw.get("tls", "none"), raw.get("auth", "none"),
                       bool(raw.get("plaintext_auth", False)))
        if lst.role not in ROLES:
            raise ScenarioError(f"{h['name']} port {lst.port}: unknown role {lst.role!r} (known: {', '.join(ROLES)})")
        if lst.tls not in TLS_MODES:
            raise ScenarioError(f"{h['name']} port {lst.port}: tls must be one of {sorted(TLS_MODES)}")
        if lst.auth not in AUTH_MODES:
            raise ScenarioError(f"{h['name']} port {lst.port}: auth must be one of {sorted(AUTH_MODES)}")
        listeners.append(lst)
    if h.get("certificate", "") not in CERTIFICATE_FAULTS:
        raise ScenarioError(f"{h['name']}: certificate must be one of {sorted(CERTIFICATE_FAULTS)}")
    for fault in h.get("faults", ()):
        if fault.get("command", "RCPT").upper() not in ("MAIL", "RCPT", "DATA") or str(fault.get("reply", ""))[:1] not in "45" \
                or not fault.get("reply"):
            raise ScenarioError(f"{h['name']}: a fault is {{command = MAIL|RCPT|DATA, reply = '4xx or 5xx ...', "
                                "times = N}} (or greylist = true, on RCPT)")
    for rule in h.get("filters", ()):
        if rule.get("action") not in FILTER_ACTIONS:
            raise ScenarioError(f"{h['name']}: filter action must be one of {sorted(FILTER_ACTIONS)}, not {rule.get('action')!r}")
    lower = lambda names: tuple(n.lower() for n in names)  # noqa: E731
    return Host(
        name=h["name"].lower(),
        address=h.get("address", "127.0.0.1"),
        listeners=tuple(listeners),
        domains=lower(h.get("domains", ())),
        about=h.get("about", ""),
        relay_domains=lower(h.get("relay_domains", ())),
        relay_from=lower(h.get("relay_from", ())),
        forward=tuple((d.lower(), nxt.lower()) for d, nxt in h.get("forward", {}).items()),
        proxy_to=h.get("proxy_to", "").lower(),
        filters=tuple(h.get("filters", ())),
        certificate=h.get("certificate", ""),
        faults=tuple(h.get("faults", ())),
        max_size=int(h.get("max_size", Host.max_size)),
        open_relay=bool(h.get("open_relay", False)),
        http_api=bool(h.get("http_api", False)),
        limit=(int(h["limit"]["messages"]), float(h["limit"]["per_seconds"])) if "limit" in h else None,
        dkim=tuple(_dkim(h["name"], d) for d in h.get("dkim", ())),
        verify=bool(h.get("verify", False)),
        trusted_arc=lower(h.get("trusted_arc", ())),
        lists=tuple(_list(h["name"], d) for d in h.get("lists", ())),
    )


def _check(topo: Topology) -> None:
    names = [h.name for h in topo.hosts]
    if len(set(names)) != len(names):
        raise ScenarioError("two hosts share a name: " + ", ".join(sorted({n for n in names if names.count(n) > 1})))
    for host in topo.hosts:
        ports = [lst.port for lst in host.listeners]
        if len(set(ports)) != len(ports):
            raise ScenarioError(f"{host.name} lists the same port twice")
        if not host.address.startswith("127."):
            raise ScenarioError(f"{host.name}: lab hosts live on loopback (127.x.x.x), not {host.address}")
        for target in [host.proxy_to, *(nxt for _, nxt in host.forward)]:
            if target and topo.host(target) is None:
                raise ScenarioError(f"{host.name} passes mail to {target}, which is not a host of this scenario")
    for name, kind in topo.dns_faults:
        if kind not in DNS_FAULTS:
            raise ScenarioError(f"dns_faults: {name} = {kind!r}; use one of {sorted(DNS_FAULTS)}")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` on top of `base`: lists grow, tables merge, text (the zone) is appended, the rest replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if key == "extends":
            continue
        if isinstance(value, list) and isinstance(base.get(key), list):
            def key_of(item: Any) -> Any:  # hosts and domains by name, users by address
                return (item.get("name") or item.get("address")) if isinstance(item, dict) else None

            replaced = {key_of(item) for item in value} - {None}
            merged[key] = [item for item in base[key] if key_of(item) not in replaced]
            merged[key] += value  # a host or domain of the same name replaces the base's
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        elif key == "zone":
            merged[key] = base.get(key, "") + "\n" + value
        else:
            merged[key] = value
    return merged


def _scenario_path(name: str | Path) -> Path:
    path = Path(name)
    if path.suffix:
        return path
    path = SCENARIO_DIR / f"{name}.toml"
    if not path.exists():
        raise ScenarioError(f"no built-in scenario called {str(name)!r}; built-in scenarios: {', '.join(scenario_names())}")
    return path


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ScenarioError(f"{path} extends itself (through {' -> '.join(p.name for p in seen)})")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path} is not valid TOML: {err}") from None
    parent = data.get("extends")
    if parent:
        parent_path = _scenario_path(parent) if not Path(parent).suffix else (path.parent / parent)
        data = _merge(_read(parent_path, (*seen, path)), data)
    return data


def scenario_names() -> list[str]:
    """The built-in scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(scenario: str | Path | dict[str, Any] | Topology = "default") -> Topology:
    """A topology from a built-in scenario name, a TOML file, a dict or a Topology."""
    if isinstance(scenario, Topology):
        return scenario
    if isinstance(scenario, dict):
        data = scenario
        if data.get("extends"):
            data = _merge(_read(_scenario_path(data["extends"])), data)
        return Topology.from_dict(data)
    return Topology.from_dict(_read(_scenario_path(scenario)))


def relay_chain(relays: int, *, tls: str = "starttls") -> dict[str, Any]:
    """The default world with `relays` extra relays between Alice's provider and Bob's MX, as scenario data.

    ``Lab(relay_chain(3))``: smtp.example.org -> relay1 -> relay2 -> relay3 -> (MX) mx1.example.net.
    """
    if not 0 <= relays <= 40:
        raise ScenarioError(f"relays={relays}: choose 0 to 40 relays")
    names = [f"relay{i}.example.org" for i in range(1, relays + 1)]
    hosts: list[dict[str, Any]] = []
    if names:
        default = _read(_scenario_path("default"))
        submission = next(h for h in default["hosts"] if h["name"] == "smtp.example.org")
        hosts.append({**submission, "forward": {"*": names[0]}})
    for i, name in enumerate(names):
        host: dict[str, Any] = {"name": name, "address": f"127.0.1.{i + 1}", "about": f"relay {i + 1} of {relays}",
                                "relay_from": ["smtp.example.org" if i == 0 else names[i - 1]],
                                "listeners": [{"port": 25, "role": "mx", "tls": tls, "auth": "none"}]}
        if i + 1 < len(names):
            host["forward"] = {"*": names[i + 1]}
        hosts.append(host)
    return {"extends": "default", "name": f"chain of {relays} relays",
            "description": f"smtp.example.org, then {relays} relays, then Bob's MX", "hosts": hosts}
