"""Explaining reply codes, enhanced status codes and whole reply lines, from the one catalogue (codes.py).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import replycodes as codes
from .report import wrap

_REPLY_RE = re.compile(r"^[0-9]{3}$")
_CLASS_RE = re.compile(r"^([245])\.[Xx]\.[Xx]$")
_SUBJECT_RE = re.compile(r"^[Xx]\.([0-9]{1,3})\.[Xx]$")


class Explanation(list):
    """What :func:`explain` found: a list of :class:`~smtplab.codes.CodeInfo`, shown as text or HTML.

    ``standard`` says whether every code in it is a standard (registered) one; ``notes`` are
    extra lines, such as what each digit of a reply code means.
    """

    def __init__(self, query: str, infos: Sequence[codes.CodeInfo], standard: bool, notes: Sequence[str] = (),
                 reply_text: str = "") -> None:
        super().__init__(infos)
        self.query = query
        self.standard = standard
        self.notes = list(notes)
        self.reply_text = reply_text

    def text(self, width: int | None = None) -> str:
        out = []
        if self.reply_text:
            out.append(f'The words after the code{"s" if len(self) > 1 else ""} are for people: "{self.reply_text}".')
        for info in self:
            if out:
                out.append("")
            rfc = f"  [{info.rfc}]" if info.rfc else ""
            out.append(f"{info.code}  {info.title}{rfc}")
            out.append(wrap(f"  {info.meaning}", width, "  "))
            if info.causes:
                out.append("  Usual causes:")
                out += [wrap(f"    - {c}", width, "      ") for c in info.causes]
            if info.action:
                out.append(wrap(f"  What to do: {info.action}", width, "  "))
        if self.notes:
            out.append("")
            out += [wrap(f"{n}", width, "  ") for n in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Explanation of {self.query!r}: {', '.join(i.code for i in self)}>"

    def _repr_html_(self) -> str:
        parts = []
        if self.reply_text:
            parts.append(f"<p>The words after the code are for people: <i>{html.escape(self.reply_text)}</i></p>")
        for info in self:
            causes = "".join(f"<li>{html.escape(c)}</li>" for c in info.causes)
            parts.append(
                f'<div style="margin:6px 0"><b><code>{html.escape(info.code)}</code> {html.escape(info.title)}</b> '
                f"<small>{html.escape(info.rfc)}</small><br>{html.escape(info.meaning)}"
                + (f"<br>Usual causes:<ul style='margin:2px 0'>{causes}</ul>" if causes else "")
                + (f"<b>What to do:</b> {html.escape(info.action)}" if info.action else "") + "</div>")
        if self.notes:
            parts.append("<p>" + "<br>".join(html.escape(n) for n in self.notes) + "</p>")
        return '<div class="smtplab-explain">' + "".join(parts) + "</div>"


def _digit_notes(code: str) -> list[str]:
    return codes.describe_digits(code)


def _enhanced_notes(code: str) -> tuple[list[str], bool]:
    """Lines about the class and subject of an enhanced code, and whether both are standard."""
    cls, subject = code.split(".")[:2]
    notes = []
    standard = True
    if cls.isdigit():
        info = codes.ENHANCED_CLASSES.get(int(cls))
        if info is not None:
            notes.append(f"Class {cls} ({info.code}): {info.title}. {info.meaning}")
    subj = codes.ENHANCED_SUBJECTS.get(int(subject))
    if subj is not None:
        notes.append(f"Subject {subject} ({subj.code}): {subj.title}. {subj.meaning}")
    else:
        standard = False
    return notes, standard


def explain(text: str | int) -> Explanation:
    """Explain a reply code (``550``), an enhanced code (``5.7.1``, ``4.X.X``, ``X.7.X``), a whole reply
    line (``"421 4.7.0 Try again later"``) or a command or EHLO keyword, from the codes catalogue.

    A well-formed code that is not a standard one gets an honest answer (``.standard`` is False);
    something that is no code at all raises ValueError saying why.
    """
    query = str(text).strip()
    if not query:
        raise ValueError("nothing to explain: give a reply code (550), an enhanced code (5.7.1) or a reply line")
    m = _CLASS_RE.match(query)
    if m:
        info = codes.ENHANCED_CLASSES[int(m.group(1))]
        return Explanation(query, [info], True)
    m = _SUBJECT_RE.match(query)
    if m:
        subject = int(m.group(1))
        subject_info = codes.ENHANCED_SUBJECTS.get(subject)
        if subject_info is None:
            return Explanation(query, [codes.CodeInfo(query, "Not a standard subject",
                                                      f"Subject {subject} is not one of the subjects RFC 3463 "
                                                      f"defines (0 to 7).", rfc="RFC 3463 section 2")], False)
        return Explanation(query, [subject_info], True)
    infos = codes.explain(query)  # raises ValueError for what is no code at all
    reply = codes.parse_reply(query)
    notes: list[str] = []
    standard = True
    reply_text = ""
    if reply.code is not None:
        code = query[:3]
        standard = int(code) in codes.REPLY_CODES
        notes += _digit_notes(code)
        reply_text = reply.text
        if reply.enhanced:
            more, ok = _enhanced_notes(reply.enhanced)
            notes += more
            standard = standard and ok and reply.enhanced.split(".", 1)[1] in codes.ENHANCED_DETAILS
            if reply.enhanced[0] != code[0]:
                notes.append(f"Careful: the reply code says class {code[0]} but the enhanced code class "
                             f"{reply.enhanced[0]}; they should agree.")
    elif "." in query.split()[0]:
        enh = query.split()[0]
        key = enh.split(".", 1)[1]
        more, ok = _enhanced_notes(enh)
        notes += more
        standard = ok and key in codes.ENHANCED_DETAILS
    return Explanation(query, infos, standard, notes, reply_text)


def reply_meaning(line: str) -> tuple[str, str]:
    """(what it means, what to do) for a reply line, from the codes catalogue: a check's advice on a refusal."""
    try:
        infos = codes.explain(line)
    except ValueError:
        return f"'{line}' is not a valid SMTP reply.", ""
    reply = infos[0]
    enhanced = infos[1] if len(infos) > 1 else None
    meaning = f"{reply.code} ({reply.title}): {reply.meaning}"
    if enhanced is not None:
        meaning += f" {enhanced.code} ({enhanced.title}): {enhanced.meaning}"
    action = reply.action
    if enhanced is not None and enhanced.action and (line[:1] == "5" or enhanced.code.split(".")[1] in "12356"):
        # The detail says best what to change; for temporary security/network trouble (4.7.x, 4.4.x)
        # the reply code's "wait and retry" is the better advice (4.7.1 is mostly greylisting).
        action = enhanced.action
    return meaning, action


#: The replies students meet most: what the table in notebook 08 lists (meanings come from codes.py).
COMMON_CODES = (
    "220", "250", "354", "221", "235",
    "421 4.7.0", "450 4.2.0", "451 4.7.1", "452 4.2.2", "454 4.7.0",
    "530 5.7.0", "535 5.7.8", "538 5.7.11", "550 5.1.1", "550 5.7.1", "554 5.7.1",
    "552 5.3.4", "553 5.1.3", "554 5.4.6", "550 5.4.5", "556 5.1.10",
)


@dataclass
class CodeTable:
    """A table of reply codes with their meanings, for reading (HTML in a notebook, text elsewhere)."""

    rows: list[tuple[str, str, str, str]]  # code, title, meaning, what to do

    def __str__(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        return "\n".join(f"{c:<{width}}  {t}: {a}" if a else f"{c:<{width}}  {t}" for c, t, _m, a in self.rows)

    def __repr__(self) -> str:
        return f"<CodeTable of {len(self.rows)} codes>"

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td><code>{html.escape(c)}</code></td><td><b>{html.escape(t)}</b></td>"
                       f"<td>{html.escape(m)}</td><td>{html.escape(a)}</td></tr>" for c, t, m, a in self.rows)
        return ('<table style="text-align:left"><thead><tr><th>reply</th><th>name</th><th>meaning</th>'
                f"<th>what to do</th></tr></thead><tbody>{body}</tbody></table>")


_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z])")


def _first_sentence(text: str) -> str:
    end = _SENTENCE_END.search(text)
    return text if end is None else text[: end.start() + 1]


def code_table(replies: Sequence[str] = COMMON_CODES) -> CodeTable:
    """A table of `replies` ("550 5.1.1", ...) with their names, meanings and what to do, from codes.py."""
    rows = []
    for reply in replies:
        infos = codes.explain(reply)
        title = " / ".join(dict.fromkeys(i.title for i in infos))
        meaning = " ".join(f"{i.code}: {_first_sentence(i.meaning)}" if n else _first_sentence(i.meaning)
                           for n, i in enumerate(infos))
        action = reply_meaning(reply)[1] if reply[0] in "45" else ""
        rows.append((reply, title, meaning, _first_sentence(action)))
    return CodeTable(rows)


# ---------------------------------------------------------------------------
# Fault drills
# ---------------------------------------------------------------------------

#: The diagnoses a student picks from: one per drill, plus two that fit none.
