"""The fault drills: a symptom, the step where the checklist fails, and the diagnosis (scenario ``drills``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from .checklist import check
from .report import CheckReport

DIAGNOSES = {
    "port": "nothing listens on that port: the server uses another one",
    "password": "the user name or password is wrong",
    "expired": "the server's certificate has expired",
    "wrong-name": "the certificate is made out to another name",
    "untrusted": "the certificate is signed by an authority the client does not trust",
    "mx": "the domain's MX record points to a name with no address",
    "greylist": "greylisting: the server wants the sender to try again later",
    "full": "the recipient's mailbox is full",
    "size": "the message is bigger than the server accepts",
    "no-such-user": "the recipient address does not exist",
    "down": "the server is down",
    "firewall": "a firewall silently drops the connection",
}


@dataclass(frozen=True)
class Drill:
    """A planted fault of the ``drills`` scenario: what a student sees, and what `check` finds."""

    id: str
    title: str  # the symptom in a few words (never the diagnosis: students see it first)
    symptom: str  # what the student is told
    host: str
    port: int | None
    check_args: Mapping[str, Any]  # more keyword arguments for check()
    fails_at: str  # the step where check fails
    evidence: str  # text the failing step's detail shows
    fix: str  # what makes it work (for instructors; the notebook does not show it)
    reproduce_args: Mapping[str, Any] | None = None  # lab.send(...) keywords that show the symptom
    bounce: bool = False  # the symptom arrives as a bounce in the sender's inbox
    passes_on_retry: bool = False  # greylisting: a second check passes

    @property
    def diagnosis(self) -> str:
        return DIAGNOSES[self.id]

    @property
    def exercise(self) -> str:
        return f"troubleshooting.{self.id}"

    def check(self, lab: Any, **overrides: Any) -> CheckReport:
        """Run the checklist against this drill's server, as a student would."""
        return check(lab, self.host, self.port, **{**self.check_args, **overrides})

    def command(self) -> str:
        """The same check from a terminal (against ``smtplab serve --scenario drills``)."""
        target = f"{self.host}:{self.port}" if self.port else self.host
        parts = ["smtplab check", target]
        flags = {"mx": "--mx", "try_ports": "--try-ports"}
        for key, value in self.check_args.items():
            if key in flags:
                parts.append(flags[key])
            elif key == "send_to":
                parts.append(f"--send-to {value}")
            else:
                parts.append(f"--{key.replace('_', '-')} {value}")
        return " ".join(parts)

    def reproduce(self, lab: Any) -> str:
        """What the student's mail program shows: a live send through `lab` (the drills scenario)."""
        if not self.reproduce_args:
            return self.symptom
        args = dict(self.reproduce_args)
        sender, to = args.pop("sender"), args.pop("to")
        before = len(lab.inbox(sender)) if self.bounce else 0
        result = lab.send(sender, to, **args)
        lines = [result.summary()]
        if self.bounce:
            lab.wait_for_queue(10)
            bounces = lab.inbox(sender)[before:]
            if bounces:
                lines.append(f"...and then a bounce arrives in {sender}'s inbox: {bounces[-1]['Subject']}")
                lines += [f"    {line}" for line in _bounce_reasons(bounces[-1])]
        return "\n".join(lines)


def _bounce_reasons(message: EmailMessage) -> list[str]:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_content()
            reasons = text.split("could not be delivered to:", 1)[-1]
            return [ln.strip() for ln in reasons.strip().splitlines() if ln.strip()][:3]
    return []


_ALICE_TO_BOB = {"sender": "alice@example.org", "to": "bob@example.net"}

DRILLS: dict[str, Drill] = {d.id: d for d in (
    Drill("port", "Connection refused",
          "A new mail program is set up for drill-port.example, port 587, the usual port for sending. "
          "Sending fails at once with 'Connection refused'. The server is up: other people send through it "
          "every day.",
          "drill-port.example", 587, {"try_ports": True}, "connect", "refused",
          "Its provider's help page says: port 2526. smtplab check drill-port.example:2526 passes."),
    Drill("password", "Authentication failed",
          "Erin's mail program stopped sending this morning with 'Authentication failed'. She is sure she "
          "typed her password, Correct-Horse, carefully.",
          "smtp.example.org", 587, {"user": "erin", "password": "Correct-Horse"}, "login", "535 5.7.8",
          "Her password is correct-horse, all in lower case: Caps Lock was on.",
          {"sender": "erin@example.org", "to": "bob@example.net", "login": ("erin", "Correct-Horse")}),
    Drill("expired", "It worked last week",
          "Since the weekend, every message Alice sends through drill-cert.example fails before she is even "
          "asked for her password.",
          "drill-cert.example", 587, {}, "tls", "expired",
          "The server's administrator renews the certificate; nothing to change in Alice's settings.",
          {**_ALICE_TO_BOB, "server": "drill-cert.example", "port": 587}),
    Drill("wrong-name", "A warning about the server's identity",
          "Alice's mail program refuses to send through drill-name.example and shows a warning about the "
          "server's identity.",
          "drill-name.example", 587, {}, "tls", "other.drill-name.example",
          "The administrator installs a certificate made out to drill-name.example (or the settings use the "
          "name the certificate carries, if that is the real server).",
          {**_ALICE_TO_BOB, "server": "drill-name.example", "port": 587}),
    Drill("untrusted", "The volunteer's new server",
          "drill-self.example was set up last week by a volunteer. Mail programs refuse to send through it "
          "on port 465, with a security warning.",
          "drill-self.example", 465, {}, "tls", "does not trust",
          "The volunteer gets a certificate from a real authority (Let's Encrypt) instead of making one."),
    Drill("mx", "A bounce for Gina",
          "Alice wrote to gina@drill-mx.example. Her server accepted the message (250), but a moment later a "
          "bounce arrived.",
          "drill-mx.example", None, {"mx": True}, "resolve", "mail.drill-mx.example",
          "drill-mx.example's owner gives mail.drill-mx.example an address (an A record).",
          {"sender": "alice@example.org", "to": "gina@drill-mx.example"}, bounce=True),
    Drill("greylist", "Turned away once",
          "smtp.example.org tried to deliver a message for hank@drill-grey.example and was turned away with "
          "a 4xx reply; the message waits in its queue.",
          "drill-grey.example", 25, {"send_to": "hank@drill-grey.example"}, "send", "451 4.7.1",
          "Nothing: try again in a moment. A mail server retries queued mail on its own.",
          passes_on_retry=True),
    Drill("full", "Messages to Ivy come back",
          "Alice's messages to ivy@drill-full.example come back after some days of retrying; messages to "
          "other people arrive.",
          "drill-full.example", 25, {"send_to": "ivy@drill-full.example"}, "send", "452 4.2.2",
          "Ivy deletes old mail (or her provider raises her quota); Alice can reach her another way meanwhile.",
          {"sender": "alice@example.org", "to": "ivy@drill-full.example", "server": "drill-full.example",
           "port": 25}),
    Drill("size", "A letter for Jo",
          "Alice sent Jo a scanned letter (about 5 kB: a lab-sized big attachment). It was refused; short "
          "messages to Jo arrive.",
          "drill-size.example", 25, {"send_to": "jo@drill-size.example", "size": 5000}, "send", "552 5.3.4",
          "Send the scan as a link, or smaller; the server's EHLO reply says SIZE 2000.",
          {"sender": "alice@example.org", "to": "jo@drill-size.example", "server": "drill-size.example",
           "port": 25, "body": "A scanned letter.\n" + "X" * 76 * 64 + "\n"}),
    Drill("no-such-user", "A bounce for Bob",
          "Alice wrote to Bob at bobb@example.net. Her server accepted it (250), then a bounce arrived.",
          "example.net", None, {"mx": True, "send_to": "bobb@example.net"}, "send", "550 5.1.1",
          "A typo: Bob's address is bob@example.net.",
          {"sender": "alice@example.org", "to": "bobb@example.net"}, bounce=True),
)}


def drill(name: str) -> Drill:
    """The drill called `name` (e.g. ``"expired"``); KeyError lists the drills."""
    try:
        return DRILLS[name]
    except KeyError:
        raise KeyError(f"no drill called {name!r}; the drills are: {', '.join(DRILLS)}") from None


# ---------------------------------------------------------------------------
# The command line: smtplab check / explain / talk / drills
# ---------------------------------------------------------------------------
