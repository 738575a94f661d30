"""smtplab: an interactive SMTP teaching lab.

Real mail servers, a DNS server and relays run on loopback inside your Python
process; every line of every SMTP session is recorded and explained.

    >>> from smtplab import Lab
    >>> lab = Lab()
    >>> result = lab.send("alice@example.org", "bob@example.net", subject="Hi")
    >>> print(result.transcript)
"""

from .codes import Annotator, CodeInfo, explain
from .lab import Endpoint, Lab, Session
from .result import LabError, SendError, SendResult
from .topology import ScenarioError, Topology, load_scenario
from .transcript import Entry, Transcript

__all__ = [
    "Annotator",
    "CodeInfo",
    "Endpoint",
    "Entry",
    "Lab",
    "LabError",
    "ScenarioError",
    "SendError",
    "SendResult",
    "Session",
    "Topology",
    "Transcript",
    "explain",
    "load_scenario",
]

__version__ = "0.1.0"
