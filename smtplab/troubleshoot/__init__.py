"""Troubleshooting: the checklist a mail administrator runs when mail does not go out, as tools.

    smtplab check HOST[:PORT]      the checklist, step by step; exit status 0 only if every step passed
    smtplab explain CODE           a reply code (550), an enhanced code (5.7.1) or a whole reply line
    smtplab talk HOST PORT         type SMTP by hand, like telnet (STARTTLS included), each reply annotated
    smtplab drills                 the fault drills of the ``drills`` scenario

and in a notebook ``check(lab, "smtp.example.org", 587)``, ``explain("550 5.1.1")``, ``DRILLS``.
The checklist's theory of operation is at the top of :mod:`smtplab.troubleshoot.checklist`.
"""

from .checklist import check, split_target
from .commands import add_commands
from .drills import DIAGNOSES, DRILLS, Drill, drill
from .explain import COMMON_CODES, CodeTable, Explanation, code_table, explain
from .report import CheckReport, Step

__all__ = [
    "COMMON_CODES",
    "DIAGNOSES",
    "DRILLS",
    "CheckReport",
    "CodeTable",
    "Drill",
    "Explanation",
    "Step",
    "add_commands",
    "check",
    "code_table",
    "drill",
    "explain",
    "split_target",
]
