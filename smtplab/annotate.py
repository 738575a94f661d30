"""Follow one SMTP session line by line and say, in plain words, what each line does.

The same line means different things at different moments: 250 after EHLO lists
the extensions, 250 after the final dot means the server took the message; a
base64 line is a command nowhere but an AUTH answer after 334. So the
:class:`Annotator` keeps just enough of the session to know what each line is:

* the commands still waiting for their final reply, oldest first (a client may
  pipeline several), so each reply is read as the answer to its own command;
* whether the greeting came, and which line of a multi-line reply this is;
* an AUTH exchange under way: the mechanism, the last challenge, and whether the
  next client line answers it (usernames are shown, passwords never);
* the message: inside DATA (headers, a blank line, the body, up to the lone dot)
  or the bytes still due in a BDAT chunk;
* ``tls`` and ``authenticated``, which a 220 to STARTTLS resets, as RFC 3207 asks.

It runs for every line the lab records, so its hot paths are dict look-ups and
simple string operations. What codes mean comes from :mod:`smtplab.replycodes`.
"""

from __future__ import annotations

import binascii
from collections import deque

from .replycodes import (
    COMMANDS,
    ENHANCED_DETAILS,
    REPLY_CODES,
    Reply,
    describe_capability,
    explain_reply_code,
    parse_reply,
    reply_kind,
)

__all__ = ["Annotator"]

_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _b64(text: str) -> bytes | None:
    """Strict base64 decode; None when ``text`` is not valid base64."""
    t = text.strip()
    try:
        raw = t.encode("ascii")
    except UnicodeEncodeError:
        return None
    if len(raw) % 4 or not all(ch in _B64 for ch in raw):
        return None
    try:
        return binascii.a2b_base64(raw)
    except (binascii.Error, ValueError):
        return None


def _show(data: bytes | str, limit: int = 48) -> str:
    """Printable, shortened form of a decoded value (for usernames and prompts only)."""
    s = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(s) <= limit and s.isprintable():
        return s
    s = "".join(ch if ch.isprintable() else "?" for ch in s[: limit + 1])
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _lc(title: str) -> str:
    return title[:1].lower() + title[1:] if title[1:2].islower() else title


_HEADER_NOTES = {
    name.lower(): f"Message header: {name} ({gloss})."
    for name, gloss in (
        ("From", "the author the reader sees; it may differ from MAIL FROM"),
        ("To", "recipients the reader sees; delivery follows RCPT TO, not this"),
        ("Cc", "visible copy recipients; delivery still follows RCPT TO"),
        ("Bcc", "hidden recipients; senders normally strip this header"),
        ("Subject", "the topic line the reader sees"),
        ("Date", "when the author sent it; every message needs one"),
        ("Message-ID", "a unique label for this message"),
        ("Reply-To", "where replies should go instead of From"),
        ("Sender", "who actually sent it, when not the author"),
        ("Received", "a trace line each server adds; read them bottom-up"),
        ("Return-Path", "the envelope sender, added at final delivery"),
        ("MIME-Version", "says the message uses MIME formatting"),
        ("Content-Type", "what kind of content the body holds"),
        ("Content-Transfer-Encoding", "how the body is encoded for transport"),
        ("DKIM-Signature", "a cryptographic signature from the sending domain"),
        ("Authentication-Results", "SPF/DKIM/DMARC results from a receiving server"),
        ("In-Reply-To", "the Message-ID this message answers"),
        ("References", "the Message-IDs of the conversation so far"),
    )
}

_N_BODY = "Message body."
_N_BODY_NUL = "Message body with NUL bytes, which SMTP text mail does not allow."
_N_BARE_EOL = "A bare CR or LF inside a line: servers may disagree where lines end (the SMTP smuggling trick)."
_N_BLANK = "Blank line: the headers end here and the body begins."
_N_FOLDED = "Header continuation: this line continues (folds) the header above."
_N_NOT_HEADER = "Not a 'Name: value' header, so readers take the body to start here (a blank line should come first)."
_N_END = "End of data: a lone dot on a line tells the server the message is complete."
_N_STUFFED = "A leading dot is doubled (dot-stuffing) so this line is not mistaken for the end."
_N_SINGLE_DOT = "Starts with one dot: the server removes it (the client should have doubled it: dot-stuffing)."
_N_BDAT_DATA = "Message data inside a BDAT chunk: counted in bytes, so no dot-stuffing and no final dot."
_N_UNKNOWN_CMD = "Not an SMTP command this server knows."
_N_EMPTY_CMD = "Empty line: not a command; the server will answer with a syntax error."
_N_NUL_CMD = "The line contains NUL bytes, which SMTP never allows in a command; expect an error reply."
_N_TLS_PLAIN = "Looks like a TLS handshake sent in plain text: this port expects STARTTLS first (or use port 465)."
_N_BINARY_CMD = "Control characters or binary data: not a valid SMTP command."

_FAIL_NOUN = {
    "MAIL": "Sender", "RCPT": "Recipient", ".": "Message", "BDAT-LAST": "Message", "BDAT": "Chunk",
    "DATA": "DATA", "AUTH": "Login", "STARTTLS": "TLS upgrade", "EHLO": "EHLO", "HELO": "HELO",
    "VRFY": "VRFY", "EXPN": "EXPN", "ETRN": "ETRN", "RSET": "RSET", "NOOP": "NOOP", "HELP": "HELP",
    "QUIT": "QUIT", "": "Command",
}
_FAIL_SHORT = {
    450: "mailbox unavailable for now", 451: "local error in processing",
    452: "insufficient system storage", 455: "cannot accommodate the parameters",
    500: "command not recognized", 501: "syntax error in the arguments", 502: "command not implemented",
    503: "bad sequence of commands", 504: "parameter not implemented", 521: "host does not accept mail",
    523: "encryption needed", 530: "authentication required", 534: "mechanism too weak",
    535: "wrong username or password", 538: "encryption required for this mechanism",
    550: "mailbox unavailable", 551: "user not local", 552: "storage allocation exceeded",
    553: "mailbox name not allowed", 554: "transaction failed", 555: "MAIL/RCPT parameters not recognized",
    556: "domain does not accept mail", 432: "password transition needed",
}
_ENH_SHORT = {"4.7.1": "often greylisting"}
_PERMANENT = "permanent: do not retry as is."
_TEMPORARY = "temporary: try again later."

_OK_NOTES = {
    "MAIL": "Sender accepted: the server now waits for the recipients (RCPT).",
    "RCPT": "Recipient accepted: the server will take mail for this address.",
    ".": "Message accepted: the server now takes responsibility for delivering it.",
    "BDAT-LAST": "Message accepted: the server now takes responsibility for delivering it.",
    "BDAT": "Chunk received: the server waits for the next BDAT.",
    "HELO": "The server says hello back; after HELO there is no list of extensions.",
    "RSET": "Transaction cleared: the server forgot the sender, recipients and data.",
    "NOOP": "OK: the connection is alive.",
    "VRFY": "The server confirms the address is a mailbox here.",
    "EXPN": "The server lists the members of the mailing list.",
    "ETRN": "The server starts delivering the queued mail.",
    "AUTH": "Login succeeded.",
}


class Annotator:
    """Follows one SMTP session, line by line, and explains each line in context.

    Attributes: ``in_data`` (inside DATA, after 354 until the lone dot),
    ``tls`` (True after the server's 220 to STARTTLS) and ``authenticated``
    (True after 235). ``note_for_summary`` keeps no state: a caller may skip
    body lines, but should pass the final "." through ``client``.
    """

    __slots__ = (
        "_auth_answers",
        "_auth_expect",
        "_auth_mech",
        "_auth_prompt",
        "_bdat_left",
        "_greeted",
        "_in_headers",
        "_line_no",
        "_pending",
        "_reply_code",
        "authenticated",
        "in_data",
        "tls",
    )

    in_data: bool
    tls: bool
    authenticated: bool

    def __init__(self) -> None:
        self.in_data = False
        self.tls = False
        self.authenticated = False
        self._in_headers = False
        self._pending: deque[str] = deque(maxlen=256)  # commands awaiting their final reply
        self._greeted = False
        self._line_no = 0          # index of the next line within the current server reply
        self._reply_code = 0
        self._auth_mech = ""
        self._auth_expect = False  # the next client line answers a 334 challenge
        self._auth_prompt = ""
        self._auth_answers = 0
        self._bdat_left = 0

    # -- client side -------------------------------------------------------

    def client(self, line: str) -> str:
        """Note for a line the client sent (without CRLF)."""
        if self.in_data:
            if not line or line[0] != ".":
                if self._in_headers:
                    return self._header_note(line)
                if "\r" in line or "\n" in line:
                    return _N_BARE_EOL
                if "\x00" in line:
                    return _N_BODY_NUL
                return _N_BODY
            if line == ".":
                self.in_data = False
                self._pending.append(".")
                return _N_END
            return _N_STUFFED if line[1:2] == "." else _N_SINGLE_DOT
        if self._bdat_left > 0:
            self._bdat_left -= len(line) + 2
            return _N_BDAT_DATA
        if self._auth_expect:
            self._auth_expect = False
            return self._auth_answer(line.strip())
        return self._command(line)

    def _header_note(self, line: str) -> str:
        if not line:
            self._in_headers = False
            return _N_BLANK
        if "\r" in line or "\n" in line:
            return _N_BARE_EOL
        if line[0] == " " or line[0] == "\t":
            return _N_FOLDED
        name, sep, _ = line.partition(":")
        if sep and name and name.isascii() and name.isprintable() and " " not in name:
            note = _HEADER_NOTES.get(name.lower())
            return note if note is not None else f"Message header: {name}."
        self._in_headers = False
        return _N_NOT_HEADER

    def _command(self, line: str) -> str:
        s = line.strip()
        if not s:
            self._pending.append("")
            return _N_EMPTY_CMD
        if "\x00" in s:
            self._pending.append("?")
            return _N_NUL_CMD
        if s[0] == "\x16":
            self._pending.append("?")
            return _N_TLS_PLAIN
        if not s.isprintable():
            self._pending.append("?")
            return _N_BINARY_CMD
        verb, _, arg = s.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        if verb not in COMMANDS:
            self._pending.append(verb)
            return _N_UNKNOWN_CMD
        if verb == "MAIL":
            self._pending.append(verb)
            return self._mail(arg)
        if verb == "RCPT":
            self._pending.append(verb)
            return self._rcpt(arg)
        if verb == "AUTH":
            self._pending.append(verb)
            return self._auth(arg)
        if verb == "BDAT":
            return self._bdat(arg)
        self._pending.append(verb)
        if verb == "EHLO":
            if not arg:
                return "EHLO without a name: the client should give its hostname or [IP address]."
            return f"Client says hello as {_show(arg, 60)} and asks for the extended (ESMTP) features."
        if verb == "HELO":
            if not arg:
                return "HELO without a name: the client should give its hostname."
            return f"Client says hello as {_show(arg, 60)} (old-style HELO: no extensions)."
        if verb == "DATA":
            return "Client asks to send the message itself (headers and body)."
        if verb == "QUIT":
            return "Client says goodbye and asks the server to close the connection."
        if verb == "STARTTLS":
            return "Client asks to switch this connection to TLS encryption."
        if verb == "RSET":
            return "Client cancels the current transaction: sender, recipients and data are forgotten."
        if verb == "NOOP":
            return "Does nothing: the client checks that the connection is still alive."
        if verb == "VRFY":
            return f"Client asks whether {_show(arg, 60) or 'an address'} is a real mailbox (often refused)."
        if verb == "EXPN":
            return f"Client asks for the members of the list {_show(arg, 60)} (usually refused)."
        if verb == "HELP":
            return "Client asks the server for help text."
        return f"Client asks the server to deliver mail queued for {_show(arg, 60) or 'a domain'}."  # ETRN

    @staticmethod
    def _path(arg: str, prefix: str) -> tuple[str | None, str, bool]:
        """(address or None, parameters, had angle brackets) from 'FROM:<a@b> SIZE=1'."""
        if arg[: len(prefix)].upper() != prefix:
            return None, "", False
        rest = arg[len(prefix):].lstrip()
        if rest[:1] == "<":
            end = rest.find(">")
            if end < 0:
                return None, "", True
            return rest[1:end], rest[end + 1:].strip(), True
        addr, _, params = rest.partition(" ")
        return addr, params.strip(), False

    def _mail(self, arg: str) -> str:
        addr, params, brackets = self._path(arg, "FROM:")
        if addr is None:
            return "MAIL needs FROM:<address>; expect a syntax error (501)."
        if addr == "":
            return "Empty envelope sender (<>): a bounce or auto-reply, which must never bounce back."
        extra = f" (parameters: {_show(params, 40)})" if params else ""
        if not brackets:
            extra += " - the address belongs in <angle brackets>"
        return f"Envelope sender: bounces for this message go to {_show(addr, 64)}{extra}."

    def _rcpt(self, arg: str) -> str:
        addr, params, brackets = self._path(arg, "TO:")
        if addr is None or addr == "":
            return "RCPT needs TO:<address>; expect a syntax error (501)."
        extra = f" (parameters: {_show(params, 40)})" if params else ""
        if not brackets:
            extra += " - the address belongs in <angle brackets>"
        return f"Envelope recipient: asks the server to accept mail for {_show(addr, 64)}{extra}."

    def _bdat(self, arg: str) -> str:
        parts = arg.split()
        if not parts or not parts[0].isdigit():
            self._pending.append("BDAT")
            return "BDAT needs a chunk size in bytes; expect a syntax error (501)."
        size = int(parts[0])
        last = len(parts) > 1 and parts[1].upper() == "LAST"
        self._pending.append("BDAT-LAST" if last else "BDAT")
        self._bdat_left = size
        tail = " (the last chunk)" if last else ""
        return f"Client sends the next {size} bytes of the message as a chunk{tail}."

    def _auth(self, arg: str) -> str:
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        initial = initial.strip()
        self._auth_mech = mech
        self._auth_answers = 0
        self._auth_prompt = ""
        if not mech:
            return "AUTH without a mechanism name: expect a syntax error (501)."
        if initial and initial != "=":
            return self._auth_data(initial, first=True)
        if mech == "PLAIN":
            return "Client starts AUTH PLAIN: it will send username and password together, in base64."
        if mech == "LOGIN":
            return "Client starts AUTH LOGIN: the server asks for username, then password, each in base64."
        if mech == "CRAM-MD5":
            return "Client starts CRAM-MD5: it proves the password with a keyed hash; the password never travels."
        if mech.startswith("SCRAM-"):
            return f"Client starts {mech}: a challenge-response login; the password never travels."
        return f"Client starts logging in with the {_show(mech, 30)} mechanism."

    def _auth_answer(self, line: str) -> str:
        if line == "*":
            return "The client cancels the login ('*'); the server will answer 501."
        return self._auth_data(line, first=False)

    def _auth_data(self, b64: str, first: bool) -> str:
        mech = self._auth_mech
        self._auth_answers += 1
        raw = _b64(b64)
        if raw is None:
            return "Authentication data that is not valid base64; expect an error (501)."
        if mech == "PLAIN":
            parts = raw.split(b"\x00")
            if len(parts) != 3:
                return "AUTH PLAIN data, but it does not decode to the expected authzid\\0user\\0password form."
            authz, user, _password = parts  # the password is never shown
            as_other = f" acting for '{_show(authz, 30)}'" if authz and authz != user else ""
            return (f"AUTH PLAIN: the base64 decodes to user '{_show(user, 40)}'{as_other} and their "
                    f"password (***): base64 is an encoding, not encryption.")
        if mech == "LOGIN":
            prompt = self._auth_prompt
            if "pass" in prompt or (first is False and "user" not in prompt and self._auth_answers > 1):
                return "LOGIN answer: base64 of the password (shown here as ***); anyone who sees it can decode it."
            return f"LOGIN answer: base64 of the username '{_show(raw, 40)}' (encoded, not encrypted)."
        if mech == "CRAM-MD5":
            user = raw.split(b" ", 1)[0]
            return f"CRAM-MD5 answer: user '{_show(user, 40)}' and a keyed hash of the challenge, not the password."
        if mech == "XOAUTH2":
            user = b""
            for field in raw.split(b"\x01"):
                if field.startswith(b"user="):
                    user = field[5:]
            who = f" for user '{_show(user, 40)}'" if user else ""
            return f"XOAUTH2: an OAuth access token{who} (hidden here as ***)."
        if mech.startswith("SCRAM-"):
            return f"{mech} step: nonces and proofs derived from the password, not the password itself."
        return f"Authentication data for {_show(mech, 30) or 'AUTH'} (base64; hidden here)."

    # -- server side -------------------------------------------------------

    def server(self, line: str) -> str:
        """Note for a line the server sent (without CRLF)."""
        r = parse_reply(line)
        code = r.code
        if code is None:
            return "Malformed reply: a server line must start with a 3-digit code and a space or '-'."
        if code < 200 or code >= 600:
            return f"Malformed reply: {line[:3]} is not an SMTP reply code (the first digit must be 2 to 5)."
        self._bdat_left = 0  # a reply means any BDAT chunk has been read
        idx = self._line_no
        ctx = "GREETING" if not self._greeted else (self._pending[0] if self._pending else "")
        if idx and code != self._reply_code:
            note = "Malformed reply: all lines of one multi-line reply must carry the same code."
        else:
            note = self._server_note(r, code, ctx, idx)
        if r.last:
            self._line_no = 0
            self._finish_reply(code, ctx)
        else:
            self._line_no = idx + 1
            self._reply_code = code
        return note

    def _finish_reply(self, code: int, ctx: str) -> None:
        if not self._greeted:
            self._greeted = True
            return
        if code == 334:
            self._auth_expect = True  # the AUTH command is still pending
            return
        if self._pending:
            self._pending.popleft()
        if ctx == "AUTH":
            self._auth_mech = ""
            self._auth_expect = False
            if code == 235:
                self.authenticated = True
        elif code == 221 or code == 421:
            self._pending.clear()  # the server is closing the connection
        elif ctx == "STARTTLS" and code == 220:
            self.tls = True
            self.authenticated = False
            self._pending.clear()  # RFC 3207: both sides forget everything from before TLS
        elif code == 354:
            self.in_data = True
            self._in_headers = True

    def _server_note(self, r: Reply, code: int, ctx: str, idx: int) -> str:
        if idx:
            if ctx == "EHLO" and code == 250:
                return describe_capability(r.text)
            return "More of the same reply: a '-' after the code means more lines follow."
        first = code // 100
        if first == 2 or first == 3:
            return self._positive_note(r, ctx, code)
        return self._failure_note(r, ctx, code, first)

    def _positive_note(self, r: Reply, ctx: str, code: int) -> str:
        if code == 250:
            if ctx == "EHLO":
                if r.last:
                    return "The server names itself but lists no extensions."
                return "The server names itself and lists its extensions below."
            if ctx == "GREETING":
                return "An unusual greeting (250 instead of 220), but the server is ready."
            return _OK_NOTES.get(ctx, "OK: the requested action is done.")
        if code == 220:
            if ctx == "STARTTLS":
                return "Go ahead with the TLS handshake: everything after this is encrypted (then EHLO again)."
            host = r.text.split(" ", 1)[0] if r.text else ""
            if ctx == "GREETING":
                if host:
                    return f"Greeting: {_show(host, 60)} is ready to talk SMTP."
                return "Greeting: the server is ready to talk SMTP."
            return "Service ready."
        if code == 354:
            return "Go ahead: send the message, then end it with a line holding only a dot."
        if code == 334:
            return self._challenge_note(r.text)
        if code == 235:
            return "Login succeeded: the server now knows who the client is and may let it relay."
        if code == 221:
            return "Goodbye: the server closes the connection."
        if code == 251:
            return "The user is not local, but the server will forward the mail."
        if code == 252:
            return "The server will not confirm the address, but will accept mail for it and try."
        if code == 211 or code == 214:
            return "Help or status text from the server, meant for a human reader."
        info = explain_reply_code(code)
        if code in REPLY_CODES:
            return f"{info.title}."
        return f"Non-standard reply code {code}; its first digit {code // 100} means {reply_kind(code)}."

    def _challenge_note(self, text: str) -> str:
        t = text.strip()
        if not t or t == "=":
            self._auth_prompt = ""
            return "AUTH challenge (empty): go ahead and send the credentials in base64."
        raw = _b64(t)
        if raw is None:
            self._auth_prompt = t.lower()
            return "AUTH challenge that is not valid base64; the client answers in base64 on the next line."
        shown = _show(raw, 60)
        self._auth_prompt = shown.lower()
        if self._auth_mech == "CRAM-MD5":
            return f"AUTH challenge: base64 for '{shown}'; CRAM-MD5 answers with a hash keyed by the password."
        return f"AUTH challenge: base64 for '{shown}'; the client answers in base64 on the next line."

    def _failure_note(self, r: Reply, ctx: str, code: int, first: int) -> str:
        suffix = _TEMPORARY if first == 4 else _PERMANENT
        enh = r.enhanced
        detail = ""
        if enh:
            short = _ENH_SHORT.get(enh)
            if short is None:
                info = ENHANCED_DETAILS.get(enh[2:])
                short = _lc(info.title) if info is not None else ""
            detail = f" ({enh}: {short})" if short else f" ({enh})"
        if code == 421:
            return f"The server is closing the connection{detail}; {suffix}"
        if code == 454:
            what = ("TLS is not available right now" if ctx == "STARTTLS"
                    else "temporary authentication failure" if ctx == "AUTH"
                    else "temporary failure")
        elif code == 530 and "TLS" in r.text.upper():
            what = "STARTTLS must come first"
        elif code == 554 and ctx == "GREETING":
            what = "no SMTP service here"
        else:
            what = _FAIL_SHORT.get(code) or f"non-standard code, a {reply_kind(code)}"
        if enh and detail[len(enh) + 4:-1] == what:  # detail is set exactly when enh is
            detail = f" ({enh})"
        what += detail
        if ctx == "GREETING":
            noun = "Connection"
        else:
            noun = _FAIL_NOUN.get(ctx, "Command")
        if code == 503:  # not a verdict on the sender or recipient: the command came at the wrong time
            wanted = next((f" the server wants {verb} first" for word, verb in
                           (("HELO", "EHLO (or HELO)"), ("MAIL", "MAIL FROM"), ("RCPT", "RCPT TO"))
                           if word in r.text.upper()), "")
            return f"{ctx or 'Command'} out of order: {what};{wanted or ' the session is in another state'}; {suffix}"
        verdict = "refused" if first == 5 else "not accepted yet"
        return f"{noun} {verdict}: {what}; {suffix}"

    def note_for_summary(self, lines: int, nbytes: int) -> str:
        """Note for a ``[N more lines of message data]`` entry (changes no state)."""
        n_lines = f"{lines} more line" if lines == 1 else f"{lines} more lines"
        size = "1 byte" if nbytes == 1 else f"{nbytes:,} bytes"
        return f"{n_lines} of message data ({size}) sent here, left out to keep the transcript short."
