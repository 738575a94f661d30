"""The old home of the catalogue and the annotator, kept so that ``smtplab.codes`` imports still work.

New code imports from where things live: :mod:`smtplab.replycodes` (what reply
codes, enhanced codes, commands and EHLO keywords mean) and :mod:`smtplab.annotate`
(the :class:`Annotator` that follows a session and explains each line).
"""

from __future__ import annotations

from .annotate import Annotator
from .replycodes import (
    AUTH_RESULTS,
    CAPABILITIES,
    COMMANDS,
    ENHANCED_CLASSES,
    ENHANCED_DETAILS,
    ENHANCED_SUBJECTS,
    REPLY_CODES,
    CodeInfo,
    Reply,
    describe_capability,
    describe_digits,
    explain,
    explain_auth_result,
    explain_enhanced,
    explain_reply_code,
    parse_reply,
)

__all__ = [
    "AUTH_RESULTS",
    "CAPABILITIES",
    "COMMANDS",
    "ENHANCED_CLASSES",
    "ENHANCED_DETAILS",
    "ENHANCED_SUBJECTS",
    "REPLY_CODES",
    "Annotator",
    "CodeInfo",
    "Reply",
    "describe_capability",
    "describe_digits",
    "explain",
    "explain_auth_result",
    "explain_enhanced",
    "explain_reply_code",
    "parse_reply",
]
