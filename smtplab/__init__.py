"""smtplab: an interactive SMTP teaching lab.

Real mail servers, a DNS server and relays run on loopback inside your Python
process; every line of every SMTP session is recorded and explained.

    >>> from smtplab import Lab
    >>> lab = Lab()
    >>> result = lab.send("alice@example.org", "bob@example.net", subject="Hi")
    >>> print(result.transcript)
"""

from .annotate import Annotator
from .dns import DigAnswer
from .journal import MessageTrace
from .lab import Endpoint, Lab, Session
from .mx import MXLookup
from .replycodes import CodeInfo, explain
from .result import Failure, LabError, SendError, SendResult
from .topology import ScenarioError, Topology, load_scenario, relay_chain, scenario_names
from .transcript import Entry, Transcript

__all__ = [
    "Annotator",
    "CodeInfo",
    "DigAnswer",
    "Endpoint",
    "Entry",
    "Failure",
    "Lab",
    "LabError",
    "MXLookup",
    "MessageTrace",
    "ScenarioError",
    "SendError",
    "SendResult",
    "Session",
    "Topology",
    "Transcript",
    "explain",
    "load_scenario",
    "relay_chain",
    "scenario_names",
]

__version__ = "0.1.0"
