"""The one catalogue of what SMTP reply codes, enhanced codes, commands and EHLO keywords mean.

Reply codes (RFC 5321, RFC 4954, RFC 7504, ...), enhanced status codes (RFC 3463
and the IANA registry that grew from it), client commands and EHLO keywords, each
a :class:`CodeInfo` (meaning, usual causes, what to try next), and the look-ups
that explain a code or a whole reply line (``explain``, behind ``smtplab explain``).

Pure data and rules: it knows nothing of sessions. :mod:`smtplab.annotate` reads it
to write the note on every transcript line, so nothing else hard-codes what "354" means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "CAPABILITIES",
    "COMMANDS",
    "ENHANCED_CLASSES",
    "ENHANCED_DETAILS",
    "ENHANCED_SUBJECTS",
    "AUTH_RESULTS",
    "REPLY_CODES",
    "CodeInfo",
    "Reply",
    "describe_capability",
    "describe_digits",
    "explain",
    "explain_auth_result",
    "explain_enhanced",
    "explain_reply_code",
    "parse_reply",
    "reply_kind",
]


@dataclass(frozen=True)
class CodeInfo:
    """What one code, command or EHLO keyword means, in plain words."""

    code: str
    title: str
    meaning: str
    causes: tuple[str, ...] = ()
    action: str = ""
    rfc: str = ""


@dataclass(frozen=True)
class Reply:
    """One server reply line, split into its parts.

    ``text`` is what follows the code and, when present, the enhanced code.
    A line that is not ``DDD``, ``DDD text`` or ``DDD-text`` has ``code=None``,
    the whole line as ``text`` and ``last=True``.
    """

    code: int | None
    enhanced: str | None
    text: str
    last: bool


# ---------------------------------------------------------------------------
# Reply codes
# ---------------------------------------------------------------------------

_R5321 = "RFC 5321 section 4.2.3"
_R4954 = "RFC 4954 section 6"

_RETRY = "Wait and try again later; a real mail server keeps the message queued and retries on its own."
_FIX = "Do not resend unchanged: read the text and enhanced code, fix the cause, then try again."


def _ci(code, title, meaning, causes=(), action="", rfc=""):
    return CodeInfo(str(code), title, meaning, tuple(causes), action, rfc)


REPLY_CODES: dict[int, CodeInfo] = {
    int(c.code): c
    for c in (
        _ci(211, "System status",
            "A status or help reply; the text is meant for a human reading it.", rfc=_R5321),
        _ci(214, "Help message",
            "The answer to HELP: text for a human explaining commands or where to find help.", rfc=_R5321),
        _ci(220, "Service ready",
            "The server is ready. It is the greeting right after you connect, and also the go-ahead "
            "for the TLS handshake after STARTTLS.", rfc=_R5321 + "; RFC 3207 section 4"),
        _ci(221, "Closing connection",
            "The server says goodbye and closes the connection, normally in answer to QUIT.", rfc=_R5321),
        _ci(250, "Requested action completed",
            "The command worked. After EHLO the lines list the server's extensions; after the final "
            "dot of DATA it means the server has taken responsibility for the message.", rfc=_R5321),
        _ci(251, "User not local; will forward",
            "The recipient does not live on this server, but the server knows where to send the "
            "mail and will forward it.", rfc=_R5321),
        _ci(252, "Cannot verify user; will try delivery",
            "The server will not say whether the address exists (VRFY is often switched off for "
            "privacy), but it will accept mail for it and try to deliver.", rfc=_R5321),
        _ci(354, "Start mail input",
            "Go ahead and send the message: headers, a blank line, the body, and finally a line "
            "holding only a dot.", rfc=_R5321),
        _ci(421, "Service not available, closing connection",
            "The server is closing the connection. It can send this in answer to any command, for "
            "example when it shuts down or decides it is too busy to talk to you.",
            ("The server is restarting or shutting down.",
             "Too many connections, from your address or in total.",
             "The client was idle too long and the server timed out.",
             "Rate limiting of a sender it does not trust yet."),
            "Reconnect later. A mail server treats this as temporary and retries automatically.", _R5321),
        _ci(450, "Mailbox unavailable (for now)",
            "The action was not taken because the mailbox cannot be used at the moment, for example "
            "it is busy or temporarily blocked by policy.",
            ("The mailbox is locked or busy.",
             "Greylisting: the server turns away first attempts from unknown senders.",
             "A temporary policy block such as a rate limit."), _RETRY, _R5321),
        _ci(451, "Local error in processing",
            "The server hit a problem on its side and aborted the action. Many servers also use it "
            "for greylisting.",
            ("Greylisting: the server wants to see a retry before accepting mail from a new sender.",
             "A temporary failure such as a DNS lookup or a content-filter timeout.",
             "A server fault, such as a full disk or a broken configuration."), _RETRY, _R5321),
        _ci(452, "Insufficient system storage",
            "The server cannot take this right now because it lacks space or hit a limit. After RCPT "
            "it usually means too many recipients in this transaction.",
            ("The server's disk is full.",
             "The mailbox is over quota (enhanced code 4.2.2).",
             "Too many recipients for one message (enhanced code 4.5.3)."),
            "Retry later. For too many recipients, send the remaining ones in a new transaction.", _R5321),
        _ci(455, "Server unable to accommodate parameters",
            "The server understood the parameters given on MAIL or RCPT but cannot satisfy them at "
            "the moment.",
            ("A parameter such as SIZE= asks for more than the server can take right now.",),
            "Retry later, or send without the parameter.", _R5321),
        _ci(500, "Syntax error, command unrecognized",
            "The server did not understand the line: an unknown command, or a line that is too long.",
            ("A typo in the command name.",
             "A line from another protocol, such as HTTP, sent to an SMTP port.",
             "A command line longer than the 512-character limit.",
             "An AUTH answer longer than the server allows (enhanced code 5.5.6)."),
            "Check the spelling and use only commands the server offers (see its EHLO reply).", _R5321),
        _ci(501, "Syntax error in parameters or arguments",
            "The command is known, but what follows it is wrong, such as a malformed address.",
            ("An address without the required <angle brackets>, as in MAIL FROM:alice@example.org.",
             "A missing or invalid hostname after HELO or EHLO.",
             "An AUTH answer that is not valid base64, or an exchange cancelled with '*'.",
             "Arguments given to a command that takes none, such as STARTTLS."),
            "Fix the arguments: compare the command with the syntax in RFC 5321.", _R5321),
        _ci(502, "Command not implemented",
            "The server recognises the command but does not offer it.",
            ("VRFY or EXPN switched off to stop address harvesting.",
             "An extension command used although the server did not advertise it in EHLO."),
            "Use only commands listed in the EHLO reply.", _R5321 + " and section 4.2.4"),
        _ci(503, "Bad sequence of commands",
            "The command is valid but came at the wrong moment in the conversation.",
            ("MAIL sent before HELO or EHLO.",
             "RCPT before MAIL, or DATA before any recipient was accepted.",
             "A second MAIL inside a transaction without RSET first.",
             "AUTH sent again after a successful login."),
            "Follow the order EHLO, (STARTTLS, EHLO, AUTH), MAIL, RCPT..., DATA.", _R5321),
        _ci(504, "Command parameter not implemented",
            "The command is fine but the server does not support the parameter you gave, such as an "
            "AUTH mechanism it does not offer.",
            ("An AUTH mechanism not listed in the EHLO reply.",),
            "Pick a parameter or mechanism the server advertises.", _R5321),
        _ci(550, "Mailbox unavailable",
            "The action was refused: usually the mailbox does not exist, or the server's policy "
            "rejects the request (relaying denied, sender blocked).",
            ("No such user at this domain (enhanced code 5.1.1).",
             ("Relaying denied: the server does not handle mail for that domain and you have not "
              "logged in (5.7.1)."),
             "The sender or its IP address is blocked by policy, a blocklist, SPF or DMARC.",
             "The sender's domain publishes a null MX (5.7.27).",
             "A sending limit was reached (Gmail answers its daily limit with 5.4.5)."),
            "Check the address for typos; log in before relaying; read the text. Do not retry unchanged.",
            _R5321),
        _ci(551, "User not local; please try another path",
            "The recipient is not here. The server may say where to send instead, but will not "
            "forward the mail itself.",
            ("The user moved to another address or server.",),
            "Send to the address the server suggests, if any.", _R5321),
        _ci(552, "Exceeded storage allocation",
            "The message was refused because it is too big for the mailbox or the system, or the "
            "mailbox is out of space.",
            ("The message is larger than the SIZE limit from EHLO (enhanced code 5.3.4).",
             "The mailbox is over its quota (5.2.2).",
             "Old servers used 552 for 'too many recipients'; RFC 5321 says to treat that case as 452."),
            "Send a smaller message (link big files instead of attaching them), or ask the recipient "
            "to free space.", _R5321),
        _ci(553, "Mailbox name not allowed",
            "The address is not acceptable, for example its syntax is wrong or you may not use that "
            "sender address.",
            ("An address with invalid syntax.",
             "A submission server refusing a sender address that is not yours.",
             "Non-ASCII characters in an address without the SMTPUTF8 extension."),
            "Correct the address, or use a sender address your account may send from.", _R5321),
        _ci(554, "Transaction failed",
            "The transaction failed for good. As the greeting it means 'no SMTP service here': the "
            "server will not talk to you at all.",
            ("The message content was rejected as spam or malware.",
             "The connecting IP address is on a blocklist.",
             "A mail loop was detected (enhanced code 5.4.6).",
             "The message is too big (5.3.4)."),
            _FIX, _R5321),
        _ci(555, "MAIL FROM/RCPT TO parameters not recognized or not implemented",
            "A parameter after the address in MAIL FROM or RCPT TO (such as SIZE= or BODY=) is "
            "unknown to the server or not supported.",
            ("A parameter for an extension that the server did not advertise in EHLO.",),
            "Use only parameters for extensions listed in the EHLO reply.", _R5321),
        # RFC 4954 (AUTH)
        _ci(235, "Authentication succeeded",
            "The login worked (usually with enhanced code 2.7.0): the server now knows who the client "
            "is and may let it send mail to other domains.", rfc=_R4954),
        _ci(334, "Authentication challenge",
            "Part of AUTH: the server sends a base64-encoded challenge (possibly empty) and waits for "
            "the client's base64 answer on the next line.", rfc="RFC 4954 section 4"),
        _ci(432, "Password transition needed",
            "The server wants you to log in once with PLAIN (over TLS) so that it can set up the "
            "mechanism you asked for (enhanced code 4.7.12).",
            ("The account has no stored secret for the requested mechanism yet.",),
            "Log in once with AUTH PLAIN over an encrypted connection, then retry.", _R4954),
        _ci(454, "Temporary failure (authentication or TLS)",
            "After AUTH: a temporary authentication failure (4.7.0), e.g. the password database is "
            "unreachable. After STARTTLS: TLS is not available right now.",
            ("The authentication back end is down.",
             "The server's TLS certificate or keys could not be loaded."),
            _RETRY, _R4954 + "; RFC 3207 section 4"),
        _ci(530, "Authentication required",
            "The server will not do this before you log in (5.7.0). RFC 3207 also uses 530 to say "
            "'issue a STARTTLS command first'.",
            ("MAIL sent to a submission server without AUTH.",
             "A server that requires TLS before anything else, and STARTTLS was not done."),
            "Use STARTTLS if needed, then AUTH, then try again.", _R4954 + "; RFC 3207 section 4"),
        _ci(534, "Authentication mechanism too weak",
            "The chosen AUTH mechanism, or the kind of password, is weaker than the server's policy "
            "allows for this user (5.7.9). Large providers answer 534 5.7.9 'Application-specific "
            "password required' when an account with 2-step verification logs in with its own password.",
            ("The account has 2-step verification on: a mail program must log in with an app password "
             "made for it in the provider's account settings, not with the account password.",
             "For example CRAM-MD5 or PLAIN refused where a stronger mechanism is required."),
            "Make an app password for this program (or use OAuth 2.0, XOAUTH2) and log in with it; "
            "or retry with a stronger mechanism from the EHLO AUTH list.", _R4954),
        _ci(535, "Authentication credentials invalid",
            "The login failed: the username or password is wrong (5.7.8).",
            ("A mistyped username or password.",
             "An account that needs an app password or a different login method.",
             "Username and password swapped in AUTH LOGIN."),
            "Check the credentials, then try again.", _R4954),
        _ci(538, "Encryption required for this authentication mechanism",
            "This AUTH mechanism may only be used over an encrypted connection (5.7.11).",
            ("AUTH PLAIN or LOGIN tried before STARTTLS.",),
            "Run STARTTLS (or connect with TLS on port 465) and log in again.", _R4954),
        # RFC 7504
        _ci(521, "Host does not accept mail",
            "This host accepts no mail at all. It may say so in its greeting, or answer every "
            "command with 521.",
            ("A host that exists only to turn away mail sent to it by mistake.",),
            "Do not retry: find the right mail server for the domain (check its MX records).",
            "RFC 7504"),
        _ci(556, "Domain does not accept mail",
            "The domain of the address accepts no mail, typically because it publishes a null MX "
            "(an 'MX 0 .' record), often with 5.1.10.",
            ("The recipient's domain has a null MX (RFC 7505).",),
            "Do not retry: the address cannot receive mail. Check it for typos.",
            "RFC 7504; RFC 7505"),
        # RFC 5248 lists 523 as the basic code that goes with X.7.10.
        _ci(523, "Encryption needed",
            "A rare code: the server needs encryption before it can accept this. RFC 5248 pairs it "
            "with enhanced code X.7.10; for AUTH most servers send 538 5.7.11 instead.",
            ("Cleartext login or message refused where the server's policy demands encryption.",),
            "Turn on encryption (STARTTLS or TLS on port 465, or an encrypted message) and try again.",
            "RFC 5248 section 2.4 (registry entry X.7.10)"),
    )
}

_FIRST_DIGIT = {
    "2": ("success", "the command succeeded"),
    "3": ("intermediate", "the server accepted the start and waits for more from the client"),
    "4": ("transient failure", "a temporary failure (the same command may work later)"),
    "5": ("permanent failure", "a permanent failure (repeating the same command will not help)"),
}
_SECOND_DIGIT = {
    "0": "syntax (syntax errors and commands that fit no other group)",
    "1": "information (replies to requests such as status or help)",
    "2": "the connection (the transmission channel)",
    "3": "nothing in particular (x3z is unspecified)",
    "4": "nothing in particular (x4z is unspecified)",
    "5": "the mail system (how the receiver's mail system handles the request)",
}
_DIGITS = frozenset("0123456789")


def describe_digits(code: str) -> list[str]:
    """What the first two digits of a reply code say on their own (RFC 5321 section 4.2.1)."""
    notes = []
    first, second = _FIRST_DIGIT.get(code[:1]), _SECOND_DIGIT.get(code[1:2])
    if first:
        notes.append(f"First digit {code[0]}: {first[1]}.")
    if second:
        notes.append(f"Second digit {code[1]}: about {second}.")
    return notes


def reply_kind(code: int) -> str:
    """What the first digit of ``code`` (200 to 599) makes it: "success", "intermediate",
    "transient failure" or "permanent failure"."""
    return _FIRST_DIGIT[str(code // 100)][0]


def _check_reply_code(code: int | str) -> str:
    # ValueError (not TypeError) for anything that is no code: callers such as the CLI catch just that
    if isinstance(code, bool):
        raise ValueError(f"{code!r} is not an SMTP reply code: expected three digits such as 250 or 550")  # noqa: TRY004
    if isinstance(code, int):
        s = str(code)
    elif isinstance(code, str):
        s = code.strip()
    else:
        raise ValueError(f"{code!r} is not an SMTP reply code: expected three digits such as 250 or 550")  # noqa: TRY004
    if len(s) != 3 or not all(ch in _DIGITS for ch in s):
        raise ValueError(f"{s!r} is not an SMTP reply code: expected three digits such as 250 or 550")
    if s[0] not in _FIRST_DIGIT:
        raise ValueError(
            f"{s} is not an SMTP reply code: the first digit must be 2 (success), 3 (intermediate), "
            f"4 (temporary failure) or 5 (permanent failure)"
        )
    return s


@lru_cache(maxsize=256)
def _generic_reply_info(s: str) -> CodeInfo:
    kind, first = _FIRST_DIGIT[s[0]]
    second = _SECOND_DIGIT.get(s[1])
    if second is None:
        digit2 = f"its second digit {s[1]} is outside the 0-5 range the grammar allows, so it tells nothing"
    else:
        digit2 = f"its second digit {s[1]} says it concerns {second}"
    meaning = (f"{s} is not a standard SMTP reply code. Its first digit {s[0]} means {first}; "
               f"{digit2}.")
    if s[0] == "4":
        action = "Treat it like any 4xx reply: wait and try again later; the text may say more."
    elif s[0] == "5":
        action = "Treat it like any 5xx reply: change something before trying again; read the text."
    else:
        action = ""
    causes = ("A server-specific or experimental reply; the text after the code is the best clue.",)
    return CodeInfo(s, f"Non-standard reply code ({kind})", meaning, causes, action, "RFC 5321 section 4.2.1")


def explain_reply_code(code: int | str) -> CodeInfo:
    """Explain a 3-digit reply code; unknown but well-formed codes get an honest generic answer.

    Raises ValueError when ``code`` is not three digits starting with 2 to 5.
    """
    s = _check_reply_code(code)
    info = REPLY_CODES.get(int(s))
    return info if info is not None else _generic_reply_info(s)


# ---------------------------------------------------------------------------
# Enhanced status codes (RFC 3463 and the IANA registry, RFC 5248)
# ---------------------------------------------------------------------------

_R3463_2 = "RFC 3463 section 2"

ENHANCED_CLASSES: dict[int, CodeInfo] = {
    2: _ci("2.X.X", "Success", "The action succeeded; the rest of the code can add detail about it.", rfc=_R3463_2),
    4: _ci("4.X.X", "Persistent transient failure",
           "A temporary failure: the message itself is fine, but something got in the way for now. "
           "Trying again later may work.", action=_RETRY, rfc=_R3463_2),
    5: _ci("5.X.X", "Permanent failure",
           "A permanent failure: sending the same message again will not work. Something about the "
           "message, the address or the setup has to change first.", action=_FIX, rfc=_R3463_2),
}

ENHANCED_SUBJECTS: dict[int, CodeInfo] = {
    s: _ci(f"X.{s}.X", title, meaning, rfc=_R3463_2)
    for s, title, meaning in (
        (0, "Other or undefined status", "No further information about what kind of problem it is."),
        (1, "Addressing status",
         ("Something about an address, the sender's or a recipient's: its syntax or whether it exists. "
          "The sender can usually fix these.")),
        (2, "Mailbox status",
         ("Something about the recipient's mailbox, such as being full or disabled. The recipient "
          "usually controls these.")),
        (3, "Mail system status",
         ("Something about the receiving mail system as a whole, such as its size limit or its "
          "configuration. Its administrator controls these.")),
        (4, "Network and routing status",
         "Something about the network or about finding the route to the destination, including DNS."),
        (5, "Mail delivery protocol status",
         ("Something went wrong in the SMTP conversation itself: bad commands, bad syntax, protocol "
          "limits.")),
        (6, "Message content or media status",
         "Something about the message content: its format, its encoding or a needed conversion."),
        (7, "Security or policy status",
         "Security or policy: authentication, encryption, relaying rules, spam and sender checks."),
    )
}


def _d(key, title, meaning, causes=(), action="", rfc=""):
    subject = int(key.split(".")[0])
    rfc = rfc or f"RFC 3463 section 3.{subject + 1}"
    return key, CodeInfo(f"X.{key}", title, meaning, tuple(causes), action, rfc)


ENHANCED_DETAILS: dict[str, CodeInfo] = dict((
    _d("0.0", "Other or undefined status",
       "Only the class is known: success, temporary or permanent failure, with no more detail.",
       rfc="RFC 3463 section 3.1"),
    # X.1 addressing
    _d("1.0", "Address problem", "Something about an address caused this; no more precise detail is given.",
       ("A problem with the sender or recipient address.",), "Check both envelope addresses."),
    _d("1.1", "No such mailbox",
       "The mailbox does not exist: the part of the address before the @ is unknown at the destination.",
       ("A typo in the user name.", "The account was deleted."),
       "Check the spelling of the address; ask the recipient for the right one."),
    _d("1.2", "Bad destination domain",
       "The part after the @ names a system that does not exist or cannot take mail.",
       ("A typo in the domain name.", "The domain has no mail servers."),
       "Check the domain part of the address."),
    _d("1.3", "Bad recipient address syntax",
       "The recipient address is not written correctly.",
       ("Missing @, spaces or forbidden characters in the address.",),
       "Correct the address syntax, e.g. RCPT TO:<user@example.org>."),
    _d("1.4", "Ambiguous recipient address",
       "The address matches more than one mailbox at the destination, so the server cannot pick one.",
       ("A fuzzy name lookup that found several users.",), "Use the full, exact address."),
    _d("1.5", "Recipient address valid",
       "The recipient address is fine; this detail mostly appears in success replies."),
    _d("1.6", "Mailbox moved, no forwarding address",
       "The address used to work, but mail is no longer accepted for it and no new address is known.",
       ("The person left the organisation.",), "Find the person's new address by other means."),
    _d("1.7", "Bad sender address syntax",
       "The sender address is not written correctly.",
       ("A malformed MAIL FROM address.",), "Correct the MAIL FROM address syntax."),
    _d("1.8", "Bad sender domain",
       "The domain of the sender address does not exist or cannot receive replies, so bounces "
       "could not come back.",
       ("The sender domain has no DNS records or no mail servers.",),
       "Send from an address whose domain can receive mail."),
    _d("1.9", "Relayed to a non-compliant mailer",
       "The address was valid, but the message went on to a system that does not report delivery "
       "status, so nothing more can be said.", rfc="RFC 3886"),
    _d("1.10", "Recipient domain has a null MX",
       "The recipient's domain publishes a null MX ('MX 0 .'), which says it accepts no mail at all.",
       ("Mail sent to a domain that only exists for the web, or that never takes mail.",),
       "Do not retry: the address cannot receive mail. Check it for typos.", "RFC 7505"),
    # X.2 mailbox
    _d("2.0", "Mailbox problem", "The mailbox exists, but something about it caused this; no more detail."),
    _d("2.1", "Mailbox disabled",
       "The mailbox exists but is not accepting messages, for now or for good.",
       ("The account is suspended or closed.",), "Contact the recipient another way."),
    _d("2.2", "Mailbox full",
       "The recipient's mailbox is over its quota. Usually sent as a temporary failure, since the "
       "owner can delete mail to make room.",
       ("The recipient has not cleaned up their mailbox.",),
       "Retry later, or ask the recipient to free space."),
    _d("2.3", "Message too long for this mailbox",
       "The message is larger than this mailbox's own size limit, which is smaller than the system's.",
       ("A big attachment.",), "Send a smaller message, or share large files by link."),
    _d("2.4", "Mailing list expansion problem",
       "The address is a mailing list and the list could not be expanded into its members.",
       ("A broken list definition on the server.",), "Tell the list owner."),
    # X.3 mail system
    _d("3.0", "Mail system problem",
       "The destination normally accepts mail, but something about the system caused this; no more detail."),
    _d("3.1", "Mail system full",
       "The mail system has run out of storage; the recipient cannot fix it by deleting mail.",
       ("A full disk on the receiving server.",), _RETRY),
    _d("3.2", "System not accepting network messages",
       "The destination host is not taking messages, e.g. during shutdown, overload or maintenance.",
       ("Server maintenance or overload.",), "Retry later; if permanent, the host takes no mail."),
    _d("3.3", "System lacks the selected features",
       "The message asks for features the destination does not support.",
       ("An extension or feature missing on the next hop.",), "Send without the feature."),
    _d("3.4", "Message too big for the system",
       "The message is larger than the server's size limit (the SIZE value in its EHLO reply).",
       ("Large attachments.", "A SIZE= parameter above the advertised limit."),
       "Make the message smaller, e.g. share files by link."),
    _d("3.5", "System incorrectly configured",
       "The receiving system is not set up in a way that lets it accept this message.",
       ("A configuration mistake on the server.",), "Tell the server's administrator."),
    _d("3.6", "Requested priority was changed",
       "The message was accepted, but not with the priority the client asked for; the text gives "
       "the new priority.", rfc="RFC 6710"),
    # X.4 network and routing
    _d("4.0", "Network or routing problem",
       "Something went wrong with the network or routing, without more detail.", (), _RETRY),
    _d("4.1", "No answer from host",
       "The next server did not answer the connection attempt.",
       ("The host is down, busy or firewalled.",), _RETRY),
    _d("4.2", "Bad connection",
       "The connection was made but broke before the transaction finished, by a timeout or a poor link.",
       ("A timeout or dropped connection.",), _RETRY),
    _d("4.3", "Directory server failure",
       "A directory server, typically DNS, could not be reached, so the message could not be routed.",
       ("The DNS resolver is down or timing out.",), _RETRY),
    _d("4.4", "Unable to route",
       "The mail system could not work out the next hop for the message, e.g. DNS has no usable "
       "records for the domain.",
       ("The domain has no MX, A or AAAA records.", "A DNS answer with only an SOA record."),
       "Check the domain's DNS records."),
    _d("4.5", "Mail system congestion",
       "The mail system is congested and cannot handle the message now. Some providers also use it "
       "for sending limits.",
       ("Too much mail in the queue.", "A sending limit (Gmail's daily limit answers 550 5.4.5)."),
       _RETRY),
    _d("4.6", "Routing loop detected",
       "The message was passed around too many times, because of wrong routing or forwarding that "
       "points back at itself.",
       ("Two servers forwarding to each other.", "Too many Received: header lines."),
       "Fix the forwarding or MX set-up that sends the mail in a circle."),
    _d("4.7", "Delivery time expired",
       "The message waited too long in queues (or outlived its time limit) and was given up.",
       ("The destination was unreachable for days.",), "Check why the destination was unreachable."),
    # X.5 protocol
    _d("5.0", "Protocol problem",
       "Something went wrong in the SMTP exchange, without more detail."),
    _d("5.1", "Invalid command",
       "A command was unsupported or sent at the wrong moment.",
       ("A command out of sequence or not offered by the server.",), "Follow the SMTP command order."),
    _d("5.2", "Syntax error",
       "A command could not be understood: the syntax is wrong or the command is unknown.",
       ("A typo, or missing angle brackets around an address.",), "Correct the command syntax."),
    _d("5.3", "Too many recipients",
       "More recipients than the server takes in one message.",
       ("A recipient list above the server's limit.",),
       "Send the remaining recipients in another transaction."),
    _d("5.4", "Invalid command arguments",
       "A valid command had arguments that are out of range or name unknown features.",
       ("An unknown parameter on MAIL or RCPT, or an unsupported AUTH mechanism.",),
       "Use only arguments the server supports."),
    _d("5.5", "Wrong protocol version",
       "Client and server speak incompatible versions of the protocol."),
    _d("5.6", "Authentication exchange line too long",
       "An AUTH answer was longer than the server can buffer for this mechanism.",
       ("A very long token, e.g. an OAuth token.",), "Use a mechanism or token the server can handle.",
       "RFC 4954"),
    # X.6 content and media
    _d("6.0", "Message content or media problem",
       "Something about the content made the message undeliverable, without more detail."),
    _d("6.1", "Media not supported",
       "The kind of content in the message is not supported along the delivery path.",
       ("Content the next system cannot carry.",), "Send the content in another format."),
    _d("6.2", "Conversion required but prohibited",
       "The content must be converted to be delivered, but conversion is forbidden by the sender or policy."),
    _d("6.3", "Conversion required but not supported",
       "The content must be converted to go on (e.g. 8-bit text to 7-bit), but this hop cannot do it.",
       ("8-bit content sent towards a hop without 8BITMIME.",), "Encode the message for 7-bit transport."),
    _d("6.4", "Conversion performed with loss",
       "The message was delivered, but a conversion lost some data on the way."),
    _d("6.5", "Conversion failed",
       "A needed conversion of the content was attempted and failed."),
    _d("6.6", "Message content not available",
       "The message content could not be fetched from the remote system it refers to.",
       rfc="RFC 4468"),
    _d("6.7", "Non-ASCII addresses not permitted",
       "An address with non-ASCII characters is not allowed for this sender or recipient.",
       ("A UTF-8 address sent without SMTPUTF8 support.",), "Use an ASCII address.", "RFC 6531"),
    _d("6.8", "UTF-8 reply needed but client does not allow it",
       "The server would need to answer with UTF-8 text, but the client did not ask for SMTPUTF8.",
       rfc="RFC 6531"),
    _d("6.9", "UTF-8 message cannot be delivered to some recipients",
       "The message uses UTF-8 headers and cannot be passed on to one or more recipients, so it is "
       "rejected after the final dot.", rfc="RFC 6531"),
    _d("6.10", "Duplicate of X.6.8 (deprecated)",
       "Registered by mistake as a copy of X.6.8; do not use it.", rfc="RFC 6531"),
    # X.7 security and policy
    _d("7.0", "Security or policy problem",
       "Something about security or policy stopped this, without more detail. Used with 530 for "
       "'authentication required'.",
       ("Authentication or TLS required first.", "A policy rule the server does not spell out."),
       "Log in (AUTH) or turn on TLS if the text asks for it."),
    _d("7.1", "Delivery not authorized",
       "The sender is not allowed to send to this destination: relaying denied or a per-host or "
       "per-recipient filter.",
       ("Relaying denied: the server is not responsible for the recipient's domain and you did not log in.",
        "The sender or its IP address is blocked.", "Greylisting (as 4.7.1)."),
       "Log in before sending to other domains, or send through the right server."),
    _d("7.2", "Mailing list expansion prohibited",
       "The sender may not send to this mailing list."),
    _d("7.3", "Security conversion required but not possible",
       "Delivery needed a conversion between secure messaging formats that could not be done."),
    _d("7.4", "Security features not supported",
       "The message uses security features the delivery path cannot support."),
    _d("7.5", "Cryptographic failure",
       "A system that should decrypt or check the message could not, e.g. a key was missing or invalid."),
    _d("7.6", "Cryptographic algorithm not supported",
       "A system that should decrypt or check the message does not support the algorithm used."),
    _d("7.7", "Message integrity failure",
       "A check showed that the message was corrupted or altered on the way."),
    _d("7.8", "Authentication credentials invalid",
       "The login failed: the username or password is wrong or not enough.",
       ("A wrong username or password.",), "Check the credentials and log in again.", "RFC 4954"),
    _d("7.9", "Authentication mechanism too weak",
       "The chosen login mechanism, or the kind of password, is weaker than the server allows for this user.",
       ("2-step verification is on for the account: the provider wants an app password, not the account's own.",),
       "Log in with an app password made for this program (or OAuth 2.0), or a stronger mechanism.", "RFC 4954"),
    _d("7.10", "Encryption needed",
       "An encryption layer such as TLS is needed first, mainly for cleartext login mechanisms.",
       ("Login attempted over an unencrypted connection.",),
       "Turn on TLS (STARTTLS), then log in again.", "RFC 5248"),
    _d("7.11", "Encryption required for this authentication mechanism",
       "This login mechanism may only be used on an encrypted connection.",
       ("AUTH PLAIN or LOGIN before STARTTLS.",), "Run STARTTLS first, then AUTH.", "RFC 4954"),
    _d("7.12", "Password transition needed",
       "The user must log in once with PLAIN so the server can set up the requested mechanism.",
       (), "Log in once with AUTH PLAIN over TLS.", "RFC 4954"),
    _d("7.13", "User account disabled",
       "The login worked, but the account is disabled; only its administrator can turn it back on.",
       ("Unpaid account, abuse or a suspected break-in.",), "Contact the account's administrator.",
       "RFC 5248"),
    _d("7.14", "Trust relationship required",
       "The submission server needs a configured trust relationship with another server to fetch "
       "the content.", rfc="RFC 5248"),
    _d("7.15", "Priority level too low",
       "The requested priority is below the lowest the server accepts right now.", rfc="RFC 6710"),
    _d("7.16", "Message too big for the requested priority",
       "At this priority, the server only accepts smaller messages.", rfc="RFC 6710"),
    _d("7.17", "Mailbox owner has changed",
       "The mailbox changed hands since the date the sender gave, so the message is refused.",
       rfc="RFC 7293"),
    _d("7.18", "Domain owner has changed",
       "The recipient's domain changed hands since the date the sender gave.", rfc="RFC 7293"),
    _d("7.19", "RRVS test cannot be completed",
       "The server cannot check since when the mailbox has been owned, because it did not record that.",
       rfc="RFC 7293"),
    _d("7.20", "No passing DKIM signature",
       "The message carried no DKIM signature that verified.",
       ("Missing DKIM signing, or a signature broken in transit.",), "Set up DKIM signing for the sender domain.",
       "RFC 7372"),
    _d("7.21", "No acceptable DKIM signature",
       "Some DKIM signatures verified, but none were acceptable to the receiver.", rfc="RFC 7372"),
    _d("7.22", "No valid author-matched DKIM signature",
       "No valid DKIM signature matched the domain in the From: header.", rfc="RFC 7372"),
    _d("7.23", "SPF validation failed",
       "The sending IP address is not allowed by the sender domain's SPF record.",
       ("Sending through a server the domain's SPF record does not list.",),
       "Send through an authorised server, or fix the SPF record.", "RFC 7372"),
    _d("7.24", "SPF validation error",
       "Checking SPF for the sender domain produced an error, e.g. a broken record or DNS trouble.",
       rfc="RFC 7372"),
    _d("7.25", "Reverse DNS validation failed",
       "The client's IP address failed the reverse DNS check (PTR record missing or not matching).",
       ("No PTR record for the sending IP address.",), "Give the sending IP a matching PTR record.",
       "RFC 7372"),
    _d("7.26", "Multiple authentication checks failed",
       "The message failed more than one authentication check (such as SPF and DKIM).", rfc="RFC 7372"),
    _d("7.27", "Sender domain has a null MX",
       "The sender's domain publishes a null MX, so it cannot receive bounces, and the server refuses "
       "mail from it.",
       ("A sender address at a domain that declares it takes no mail.",),
       "Send from an address whose domain can receive mail.", "RFC 7505"),
    _d("7.28", "Mail flood detected",
       "The message looks like part of a flood of similar abusive messages.",
       rfc="IANA SMTP Enhanced Status Codes registry"),
    _d("7.29", "ARC validation failure",
       "The message failed ARC (Authenticated Received Chain) validation.", rfc="RFC 8617"),
    _d("7.30", "REQUIRETLS support required",
       "The message demands TLS on every hop (REQUIRETLS), but the next hop does not support it.",
       rfc="RFC 8689"),
))

_CLASS_PHRASE = {
    "2": "Class 2: this reports success.",
    "4": "Class 4: a transient (temporary) failure, so trying again later may work.",
    "5": "Class 5: a permanent failure, so something must change before trying again.",
}
_ENH_FULL_RE = re.compile(r"([245Xx])\.([0-9]{1,3})\.([0-9]{1,3})")
_ENH_IN_REPLY_RE = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3})(?=[ \t]|$)")


def explain_enhanced(code: str) -> CodeInfo:
    """Explain an enhanced status code such as ``5.7.1`` (or ``X.7.1`` for the detail alone).

    Raises ValueError when ``code`` is not ``class.subject.detail`` with class 2, 4 or 5.
    """
    if not isinstance(code, str):
        raise ValueError(f"{code!r} is not an enhanced status code: expected e.g. 5.7.1")  # noqa: TRY004
    return _explain_enhanced(code.strip())


@lru_cache(maxsize=512)
def _explain_enhanced(s: str) -> CodeInfo:
    m = _ENH_FULL_RE.fullmatch(s)
    if m is None:
        raise ValueError(
            f"{s!r} is not an enhanced status code: expected class.subject.detail with class 2, 4 or 5, "
            f"e.g. 5.7.1"
        )
    cls, subject, detail = m.group(1).upper(), int(m.group(2)), int(m.group(3))
    key = f"{subject}.{detail}"
    info = ENHANCED_DETAILS.get(key)
    if cls == "X":
        if info is not None:
            return info
        return _unregistered(f"X.{key}", None, subject, detail)
    full = f"{cls}.{key}"
    if info is None:
        return _unregistered(full, cls, subject, detail)
    class_info = ENHANCED_CLASSES[int(cls)]
    action = "" if cls == "2" else (info.action or class_info.action)
    if cls == "4" and info.action and info.action != _RETRY and "retry" not in info.action.lower():
        action = f"{info.action} Since it is temporary, a retry later may also work."
    title = info.title.replace("problem", "status") if cls == "2" else info.title  # 2.7.0 is good news
    return CodeInfo(full, title, f"{info.meaning} {_CLASS_PHRASE[cls]}",
                    info.causes if cls != "2" else (), action, f"{info.rfc}; {_R3463_2}")


def _unregistered(code: str, cls: str | None, subject: int, detail: int) -> CodeInfo:
    subj = ENHANCED_SUBJECTS.get(subject)
    if subj is None:
        about = f"subject {subject} is not a defined subject either (0 to 7 are)"
    else:
        about = f"subject {subject} says it concerns: {subj.title.lower()}"
    meaning = f"{subject}.{detail} is not a registered detail code; {about}."
    action = ""
    if cls is not None:
        meaning = f"{meaning} {_CLASS_PHRASE[cls]}"
        action = ENHANCED_CLASSES[int(cls)].action
    return CodeInfo(code, f"Unregistered detail {subject}.{detail}", meaning,
                    ("A server-specific code; the reply text is the best clue.",), action, _R3463_2)


# ---------------------------------------------------------------------------
# Commands and EHLO keywords
# ---------------------------------------------------------------------------

COMMANDS: dict[str, CodeInfo] = {
    c.code: c
    for c in (
        _ci("HELO", "Hello (basic)",
            "The client introduces itself by hostname. Old-style greeting: no extensions are offered.",
            rfc="RFC 5321 section 4.1.1.1"),
        _ci("EHLO", "Extended hello",
            "The client introduces itself and asks which extensions (ESMTP) the server supports; the "
            "reply lists them, one per line.", rfc="RFC 5321 section 4.1.1.1"),
        _ci("MAIL", "Start a mail transaction",
            "MAIL FROM:<address> gives the envelope sender, where bounces go. It can differ from the "
            "From: header the reader sees.", rfc="RFC 5321 section 4.1.1.2"),
        _ci("RCPT", "Add a recipient",
            "RCPT TO:<address> names one envelope recipient; repeat it for each. These, not the To: "
            "header, decide where the mail goes.", rfc="RFC 5321 section 4.1.1.3"),
        _ci("DATA", "Send the message",
            "Asks to send the message itself. After 354, the client sends headers, a blank line, the "
            "body, and a line with only a dot.", rfc="RFC 5321 section 4.1.1.4"),
        _ci("RSET", "Reset",
            "Cancels the current transaction: the server forgets the sender, recipients and data so "
            "far. The connection stays open.", rfc="RFC 5321 section 4.1.1.5"),
        _ci("VRFY", "Verify an address",
            "Asks whether an address is a real mailbox. Often disabled (252 or 502) because spammers "
            "used it to harvest addresses.", rfc="RFC 5321 section 4.1.1.6"),
        _ci("EXPN", "Expand a mailing list",
            "Asks for the members of a mailing list. Nearly always disabled for privacy.",
            rfc="RFC 5321 section 4.1.1.7"),
        _ci("HELP", "Help",
            "Asks the server for help text, optionally about one command.", rfc="RFC 5321 section 4.1.1.8"),
        _ci("NOOP", "No operation",
            "Does nothing except get a 250 reply: a way to check the connection is alive.",
            rfc="RFC 5321 section 4.1.1.9"),
        _ci("QUIT", "Quit",
            "Asks the server to say goodbye (221) and close the connection.", rfc="RFC 5321 section 4.1.1.10"),
        _ci("STARTTLS", "Start TLS",
            "Asks to turn this plain connection into an encrypted TLS one. After 220 the TLS handshake "
            "runs, and the client must send EHLO again.", rfc="RFC 3207"),
        _ci("AUTH", "Authenticate",
            "Logs in with a SASL mechanism such as PLAIN or LOGIN. Credentials travel in base64, which "
            "anyone can decode, so use it only over TLS.", rfc="RFC 4954"),
        _ci("BDAT", "Binary data chunk",
            "BDAT <size> [LAST] sends the next piece of the message as exactly that many bytes: no "
            "dot-stuffing and no final dot. Needs CHUNKING.", rfc="RFC 3030"),
        _ci("ETRN", "Start queue run",
            "Asks the server to start delivering mail it holds queued for a domain, e.g. for a site "
            "that is only online at times.", rfc="RFC 1985"),
    )
}

CAPABILITIES: dict[str, CodeInfo] = {
    c.code: c
    for c in (
        _ci("SIZE", "Message size declaration",
            "Announces the largest message the server accepts, in bytes (0 or no number: no fixed "
            "limit). The client may declare the size with MAIL FROM:<...> SIZE=n.", rfc="RFC 1870"),
        _ci("8BITMIME", "8-bit MIME transport",
            "The client may send messages with 8-bit bytes (e.g. UTF-8 text bodies) after MAIL FROM "
            "with BODY=8BITMIME.", rfc="RFC 6152"),
        _ci("SMTPUTF8", "Internationalised email",
            "Addresses and headers may contain UTF-8, so names in any script work; the client asks "
            "for it with the SMTPUTF8 parameter on MAIL.", rfc="RFC 6531"),
        _ci("STARTTLS", "TLS upgrade",
            "The client may switch the connection to TLS encryption with the STARTTLS command. If an "
            "attacker removes this line, an opportunistic client stays in plain text.", rfc="RFC 3207"),
        _ci("AUTH", "Authentication",
            "The client may log in with AUTH; the words after AUTH are the mechanisms offered, such "
            "as PLAIN or LOGIN.", rfc="RFC 4954"),
        _ci("PIPELINING", "Command pipelining",
            "The client may send several commands at once (e.g. MAIL and all RCPTs) without waiting "
            "for each reply, which saves round trips.", rfc="RFC 2920"),
        _ci("CHUNKING", "Chunked message data",
            "The client may send the message with BDAT in sized chunks instead of DATA.", rfc="RFC 3030"),
        _ci("BINARYMIME", "Binary MIME",
            "Together with CHUNKING, the client may send message bodies as raw binary (BODY=BINARYMIME).",
            rfc="RFC 3030"),
        _ci("ENHANCEDSTATUSCODES", "Enhanced status codes",
            "Replies carry an extra detailed code such as 5.1.1 after the three-digit code.",
            rfc="RFC 2034"),
        _ci("DSN", "Delivery status notifications",
            "The client may ask for delivery reports (NOTIFY=SUCCESS,FAILURE,DELAY on RCPT; RET and "
            "ENVID on MAIL).", rfc="RFC 3461"),
        _ci("HELP", "Help available",
            "The server answers the HELP command.", rfc="RFC 5321 section 4.1.1.8"),
        _ci("REQUIRETLS", "Require TLS on every hop",
            "The client may mark a message (MAIL FROM:<...> REQUIRETLS) so that every server on its "
            "way must use verified TLS or refuse it.", rfc="RFC 8689"),
        _ci("ETRN", "Remote queue start",
            "The client may ask the server, with ETRN, to deliver mail queued for a domain.",
            rfc="RFC 1985"),
        _ci("VRFY", "Address verification",
            "The server answers VRFY questions about whether an address exists.",
            rfc="RFC 5321 section 4.1.1.6"),
        _ci("EXPN", "List expansion",
            "The server answers EXPN requests for the members of a mailing list.",
            rfc="RFC 5321 section 4.1.1.7"),
        _ci("DELIVERBY", "Deliver by",
            "The client may give a delivery deadline with BY= on MAIL; a number after the keyword is "
            "the shortest deadline accepted, in seconds.", rfc="RFC 2852"),
        _ci("LIMITS", "Limits",
            "The server states its limits, such as RCPTMAX (recipients per message) and MAILMAX "
            "(messages per session).", rfc="RFC 9422"),
    )
}


def _size_text(n: int) -> str:
    mib = 1 << 20
    if n >= mib:
        text = f"{n // mib} MiB" if n % mib == 0 else f"{n / mib:.1f} MiB"
    elif n >= 1024:
        text = f"{n // 1024} KiB" if n % 1024 == 0 else f"{n / 1024:.1f} KiB"
    else:
        return f"{n} bytes"
    return f"{text} ({n} bytes)"


_CAP_STATIC = {
    "8BITMIME": "8BITMIME: the client may send 8-bit message text (e.g. UTF-8 bodies) with BODY=8BITMIME.",
    "SMTPUTF8": "SMTPUTF8: addresses and headers may contain UTF-8, such as names in any script.",
    "STARTTLS": "STARTTLS: the client may upgrade this connection to TLS encryption.",
    "PIPELINING": "PIPELINING: the client may send several commands without waiting for each reply.",
    "CHUNKING": "CHUNKING: the client may send the message in sized pieces with BDAT instead of DATA.",
    "BINARYMIME": "BINARYMIME: with CHUNKING, the client may send raw binary message bodies.",
    "ENHANCEDSTATUSCODES": "ENHANCEDSTATUSCODES: replies add a detailed code such as 5.1.1 after the 3-digit code.",
    "DSN": "DSN: the client may ask for delivery reports (NOTIFY=SUCCESS,FAILURE on RCPT).",
    "HELP": "HELP: the server answers the HELP command.",
    "REQUIRETLS": "REQUIRETLS: the client may demand verified TLS on every hop of this message's journey.",
    "ETRN": "ETRN: the client may ask the server to deliver mail queued for its domain.",
    "VRFY": "VRFY: the server answers questions about whether an address exists.",
    "EXPN": "EXPN: the server lists the members of mailing lists on request.",
}


def describe_capability(keyword_line: str) -> str:
    """One-sentence note for an EHLO keyword line such as ``SIZE 33554432`` or ``AUTH LOGIN PLAIN``."""
    line = keyword_line.strip()
    if not line:
        return "An empty line in the extension list: says nothing."
    kw, _, rest = line.partition(" ")
    if "=" in kw:  # old "AUTH=LOGIN PLAIN" form, kept by some servers for old clients
        kw, _, first = kw.partition("=")
        rest = f"{first} {rest}".strip()
    kw = kw.upper()
    rest = rest.strip()
    note = _CAP_STATIC.get(kw)
    if note is not None:
        return note
    if kw == "SIZE":
        if rest.isdigit() and int(rest) > 0:
            return f"SIZE: the largest message the server accepts is {_size_text(int(rest))}."
        return "SIZE: the client may declare the message size; the server announces no fixed limit."
    if kw == "AUTH":
        mechs = rest.upper().split()
        if not mechs:
            return "AUTH: the server supports login, but lists no mechanisms."
        return f"AUTH: login mechanisms offered: {', '.join(mechs)}."
    if kw == "DELIVERBY":
        extra = f" (at least {rest} seconds)" if rest else ""
        return f"DELIVERBY: the client may set a delivery deadline{extra}."
    if kw == "LIMITS":
        return f"LIMITS: the server states its limits: {rest}." if rest else "LIMITS: the server states its limits."
    if kw[:1] == "X":
        return f"{kw}: a private extension (keywords starting with X are not standardised)."
    return f"{kw}: an extension this catalogue does not describe."


# ---------------------------------------------------------------------------
# Parsing and explaining
# ---------------------------------------------------------------------------

def parse_reply(line: str) -> Reply:
    """Split a server line into code, enhanced code, text and whether it is the last line."""
    if line[-1:] in ("\n", "\r"):
        line = line.rstrip("\r\n")
    if len(line) >= 3 and line[0] in _DIGITS and line[1] in _DIGITS and line[2] in _DIGITS:
        sep = line[3:4]
        if sep == "":
            return Reply(int(line), None, "", True)
        if sep == " " or sep == "-":
            rest = line[4:]
            enhanced = None
            if rest[1:2] == "." and rest[:1] in "245":
                m = _ENH_IN_REPLY_RE.match(rest)
                if m is not None:
                    enhanced = m.group(1)
                    rest = rest[m.end():].lstrip(" \t")
            return Reply(int(line[:3]), enhanced, rest, sep == " ")
    return Reply(None, None, line, True)


def explain(text: str) -> list[CodeInfo]:
    """Explain ``"550"``, ``"5.7.1"``, a whole reply line, or a command / EHLO keyword name.

    Returns the reply-code entry and, when present, the enhanced-code entry.
    Raises ValueError with a clear message on anything else.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("nothing to explain: give a reply code (550), an enhanced code (5.7.1) or a reply line")
    s = text.strip()
    reply = parse_reply(s)
    if reply.code is not None:
        infos = [explain_reply_code(s[:3])]
        if reply.enhanced:
            infos.append(explain_enhanced(reply.enhanced))
        return infos
    first = s.split(None, 1)[0]
    if "." in first:
        return [explain_enhanced(first)]  # raises ValueError with a precise message
    key = s.upper()
    found = [d[key] for d in (COMMANDS, CAPABILITIES) if key in d]
    if found:
        return found
    raise ValueError(
        f"cannot explain {s!r}: give a reply code (e.g. 550), an enhanced code (e.g. 5.7.1), "
        f"a reply line (e.g. '421 4.7.0 Try again later') or a command name (e.g. MAIL)"
    )


# --- sender authentication: what each result in an Authentication-Results header means (RFC 8601) ----------
AUTH_RESULTS: dict[tuple[str, str], str] = {
    ("spf", "pass"): "SPF pass: the connecting address is one the domain's SPF record lists as a sender.",
    ("spf", "fail"): "SPF fail: the domain says this address may not send its mail (-all).",
    ("spf", "softfail"): "SPF softfail: the domain says this address is probably not its sender (~all).",
    ("spf", "neutral"): "SPF neutral: the domain's record makes no claim about this address (?all).",
    ("spf", "none"): "SPF none: the domain publishes no SPF record; nothing can be said.",
    ("spf", "permerror"): "SPF permerror: the record is broken (too many lookups, two records, bad syntax); "
                          "under DMARC it counts as a fail.",
    ("spf", "temperror"): "SPF temperror: DNS did not answer; a receiver may ask the sender to try later.",
    ("dkim", "pass"): "DKIM pass: the signature verified with the public key the signing domain publishes: "
                      "the signed headers and the body are as that domain sent them.",
    ("dkim", "fail"): "DKIM fail: the signature does not verify: the message changed on the way, "
                      "or it was signed with another key.",
    ("dkim", "neutral"): "DKIM neutral: a signature is there but could not be checked.",
    ("dkim", "none"): "DKIM none: the message is not signed.",
    ("dkim", "permerror"): "DKIM permerror: the signature or its key record is unusable (no key published, "
                           "a revoked or rotated key, bad syntax).",
    ("dkim", "temperror"): "DKIM temperror: the key could not be fetched now (DNS did not answer).",
    ("dmarc", "pass"): "DMARC pass: SPF or DKIM passed for a domain aligned with the From: domain.",
    ("dmarc", "fail"): "DMARC fail: neither SPF nor DKIM passed for a domain aligned with the From: "
                       "domain; the domain's policy (p=) says what to do with it.",
    ("dmarc", "none"): "DMARC none: the From: domain publishes no DMARC record.",
    ("dmarc", "permerror"): "DMARC permerror: the domain's DMARC record is broken.",
    ("dmarc", "temperror"): "DMARC temperror: the DMARC record could not be fetched now.",
    ("arc", "pass"): "ARC pass: an intermediary (a forwarder, a mailing list) sealed what it saw on arrival, "
                     "and the chain of seals verifies.",
    ("arc", "fail"): "ARC fail: the chain of ARC seals does not verify.",
    ("arc", "none"): "ARC none: no intermediary sealed this message.",
}


def explain_auth_result(method: str, result: str) -> str:
    """What ``spf=fail``, ``dkim=pass``, ``dmarc=none`` or ``arc=pass`` means, in a sentence."""
    found = AUTH_RESULTS.get((method.lower(), result.lower()))
    if found is None:
        raise ValueError(f"no explanation for {method}={result}: methods are spf, dkim, dmarc and arc, results "
                         "pass, fail, softfail, neutral, none, permerror, temperror")
    return found
