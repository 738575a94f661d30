"""Exercises and their feedback: everything that does not need the registry.

An :class:`Exercise` knows how to check an answer and always answers with a
:class:`Feedback`. A wrong answer, an answer of the wrong type, or a check
function that crashes all become feedback: ``check_answer`` never raises.
"""

from __future__ import annotations

import hashlib
import html
import math
import numbers
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["KINDS", "Exercise", "Feedback"]

#: The ways an answer can be compared with the reference answer.
KINDS = ("text", "number", "choice", "set")

_CORRECT_STYLE = ("#1e7b34", "#e9f6ec", "\u2714")  # border, background, ✔
_WRONG_STYLE = ("#a15c00", "#fff5e1", "\u2718")  # border, background, ✘
_ELLIPSIS = "\u2026"


@dataclass
class Feedback:
    """The result of checking one answer: shown as text or as a coloured box."""

    correct: bool
    message: str
    exercise_id: str = ""

    def __bool__(self) -> bool:
        """True when the answer was correct."""
        return bool(self.correct)

    def __str__(self) -> str:
        """Plain text: ``✔ message`` or ``✘ message``."""
        mark = _CORRECT_STYLE[2] if self.correct else _WRONG_STYLE[2]
        return f"{mark} {self.message}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: the same as ``str()``."""
        printer.text(str(self))

    def _repr_html_(self) -> str:
        """A small green (correct) or amber (not yet) box; the message is escaped."""
        border, background, mark = _CORRECT_STYLE if self.correct else _WRONG_STYLE
        state = "correct" if self.correct else "wrong"
        return (
            f'<div class="smtplab-feedback smtplab-feedback-{state}" role="status"'
            f' data-exercise="{html.escape(self.exercise_id)}"'
            f' style="border-left:4px solid {border};background:{background};color:#1b1b1b;'
            f'padding:6px 10px;margin:4px 0;border-radius:4px;white-space:pre-wrap">'
            f"{mark} {html.escape(self.message)}</div>"
        )


CheckResult = Union[bool, Feedback, "tuple[bool, str]"]


class _Unreadable(ValueError):
    """An answer that cannot be read as the exercise's kind; str() is shown to the student."""


def _show(value: Any, limit: int = 60) -> str:
    """A short, unambiguous rendering of a student's answer for messages.

    A string is quoted with repr() (so CR and LF show as \\r\\n). A long answer is
    cut at a word boundary with the "…" inside the quotes: a cut word or an
    unclosed quote reads as if the student had typed it that way.
    """
    try:
        if isinstance(value, str):
            return _fit(value, limit, repr)
        return _fit(str(value), limit, str)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not break the feedback
        return f"<{type(value).__name__}>"


def _fit(text: str, limit: int, render: Callable[[str], str]) -> str:
    """``render(text)``, or if that is longer than `limit`, ``render(head + "…")`` for the longest head that fits.

    Heads end at a word boundary; only a first word longer than `limit` is cut inside.
    """
    whole = render(text)
    if len(whole) <= limit:
        return whole
    ends = [m.start() for m in re.finditer(r"\s+", text[: limit + 1])]  # a longer head never fits
    for end in reversed(ends):
        head = text[:end].rstrip(",;:").rstrip()
        if head and len(render(head + _ELLIPSIS)) <= limit:
            return render(head + _ELLIPSIS)
    for end in range(min(len(text), limit), 0, -1):  # one word, longer than the limit
        if len(render(text[:end] + _ELLIPSIS)) <= limit:
            return render(text[:end] + _ELLIPSIS)
    return render(_ELLIPSIS)


def _plain(value: Any) -> str:
    """Like str(), but control characters (CR, LF, ...) are shown escaped."""
    text = str(value)
    return repr(text) if any(not ch.isprintable() for ch in text) else text


def _norm_text(value: Any) -> str:
    """Case-, space- and quote-insensitive form of a text answer."""
    text = value if isinstance(value, str) else str(value)
    text = " ".join(unicodedata.normalize("NFKC", text).split()).casefold()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = " ".join(text[1:-1].split())
    return text


def _norm_number(value: Any) -> float:
    """An int, a float or a numeric string, as a float."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Unreadable(
                f"I couldn't read {_show(value)} as a number; type just the digits, like 42."
            ) from None
    else:
        raise _Unreadable(f"{_show(value)} is not a number; type just the digits, like 42.")
    if not math.isfinite(number):
        raise _Unreadable(f"{_show(value)} is not a number I can compare; type digits, like 42.")
    return number


def _norm_set(value: Any) -> frozenset:
    """A comma-separated string or any collection, as a set of normalised items."""
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)
    else:
        raise _Unreadable(
            f"{_show(value)} is not a list of items; separate them with commas, like: a, b, c."
        )
    return frozenset(item for item in (_norm_text(i) for i in items) if item)


def _order_key(exercise_id: str, choice: Any) -> bytes:
    """Where a choice is shown: a stable hash of the exercise id and the choice's normalised text."""
    return hashlib.sha256(f"{exercise_id}\0{_norm_text(choice)}".encode()).digest()


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset)):
        return not value
    return False


def _as_tuple(value: Any, name: str, exercise_id: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):  # accept="MAIL" is a common slip for accept=["MAIL"]
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return tuple(value)
    raise TypeError(f"Exercise {exercise_id!r}: {name} must be a list, not {type(value).__name__}.")


@dataclass
class Exercise:
    """One question with a reference answer and a way to check answers.

    With ``check=None`` the answer is compared with ``answer`` according to
    ``kind``: ``"text"`` (ignores case, spacing and surrounding quotes),
    ``"number"`` (ints, floats or numeric strings), ``"choice"`` (one of
    ``choices``) or ``"set"`` (order-free; a comma-separated string works).
    ``accept`` lists other accepted answers. ``wrong`` maps common wrong
    answers to specific feedback. A custom ``check(answer)`` may return a
    bool, ``(bool, message)`` or a :class:`Feedback`.
    """

    id: str
    question: str
    answer: Any
    check: Callable[[Any], CheckResult] | None = None
    kind: str = "text"
    accept: tuple = ()
    choices: tuple = ()
    hint: str = ""
    explanation: str = ""
    wrong: dict = field(default_factory=dict)
    notebook: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip() or any(c.isspace() for c in self.id):
            raise ValueError(f"Exercise id must be a non-empty string without spaces, not {self.id!r}.")
        prefix = f"Exercise {self.id!r}"
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"{prefix}: the question must be a non-empty string.")
        if self.kind not in KINDS:
            raise ValueError(f"{prefix}: unknown kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.check is not None and not callable(self.check):
            raise TypeError(f"{prefix}: check must be a function taking the answer, or None.")
        for name in ("hint", "explanation", "notebook"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{prefix}: {name} must be a string.")
        self.accept = _as_tuple(self.accept, "accept", self.id)
        self.choices = _as_tuple(self.choices, "choices", self.id)
        if not isinstance(self.wrong, Mapping):
            raise TypeError(f"{prefix}: wrong must map wrong answers to messages (a dict/table).")
        self.wrong = dict(self.wrong)
        for key, message in self.wrong.items():
            if not isinstance(message, str):
                raise TypeError(f"{prefix}: the message for wrong answer {key!r} must be a string.")
        if self.kind == "choice":
            if not self.choices:
                raise ValueError(f"{prefix}: kind 'choice' needs a list of choices.")
            if len({_norm_text(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"{prefix}: two choices are the same once case and spacing are ignored.")
        if self.check is None:  # the reference data must be usable by the built-in comparison
            for label, value in [("answer", self.answer)] + [("accept", a) for a in self.accept]:
                try:
                    normalised = self._normalise(value)
                except _Unreadable as exc:
                    raise ValueError(f"{prefix}: the {label} {value!r} does not fit kind {self.kind!r}: {exc}") from None
                if self.kind == "choice" and normalised not in self._norm_choices():
                    raise ValueError(f"{prefix}: the {label} {value!r} is not one of the choices {list(self.choices)}.")
            for key in self.wrong:
                try:
                    self._normalise(key)
                except _Unreadable as exc:
                    raise ValueError(f"{prefix}: the wrong answer {key!r} does not fit kind {self.kind!r}: {exc}") from None

    # -- comparison helpers -------------------------------------------------

    def _normalise(self, value: Any) -> Any:
        if self.kind == "number":
            return _norm_number(value)
        if self.kind == "set":
            return _norm_set(value)
        return _norm_text(value)

    @property
    def shown_choices(self) -> tuple:
        """The choices in the order students see them (the widget's drop-down, "Pick one of").

        Authors tend to write the right answer first, so the written order would
        give it away. Sorting by a SHA-256 of (id, choice) gives each exercise its
        own order that owes nothing to the written one, and, unlike Python's
        salted hash(), is the same in every run, so stored notebook outputs stay put.
        """
        return tuple(sorted(self.choices, key=lambda choice: _order_key(self.id, choice)))

    def _norm_choices(self) -> list[str]:
        return [_norm_text(c) for c in self.choices]

    def _same(self, a: Any, b: Any) -> bool:
        if self.kind == "number":
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return a == b

    def _specific_wrong(self, normalised: Any) -> str | None:
        for key, message in self.wrong.items():
            try:
                if self._same(normalised, self._normalise(key)):
                    return message
            except _Unreadable:
                continue
        return None

    # -- feedback builders --------------------------------------------------

    def _right(self, answer: Any, message: str = "") -> Feedback:
        text = message or f"Yes: {_show(answer)} is right."
        if self.explanation:
            text = f"{text} {self.explanation}"
        return Feedback(True, text, self.id)

    def _not_yet(self, answer: Any, specific: str | None = None, *, as_is: bool = False) -> Feedback:
        if not specific:
            text = f"Not quite: {_show(answer)} is not the answer we're looking for."
        else:
            text = specific if as_is else f"Not quite: {specific}"
        if self.hint:
            text = f"{text} Hint: {self.hint}"
        return Feedback(False, text, self.id)

    def _could_not_check(self, reason: str) -> Feedback:
        return Feedback(
            False,
            f"Your answer could not be checked: {reason} "
            "This is a problem with the exercise, not with your answer; please tell your instructor.",
            self.id,
        )

    # -- public -------------------------------------------------------------

    def check_answer(self, answer: Any) -> Feedback:
        """Check one answer; always returns a :class:`Feedback`, never raises."""
        try:
            if self.check is not None:
                return self._run_custom_check(answer)
            return self._compare(answer)
        except Exception as exc:  # noqa: BLE001 - feedback, not a traceback, for students
            return self._could_not_check(f"the check failed with {type(exc).__name__}: {exc}.")

    def _compare(self, answer: Any) -> Feedback:
        if _is_blank(answer):
            return Feedback(False, "No answer yet: type your answer, then check it.", self.id)
        try:
            got = self._normalise(answer)
        except _Unreadable as exc:
            return self._not_yet(answer, str(exc))
        if self.kind == "choice" and got not in self._norm_choices():
            options = ", ".join(_plain(c) for c in self.shown_choices)
            return self._not_yet(answer, f"{_show(answer)} is not one of the options. Pick one of: {options}.")
        targets = [self._normalise(self.answer)] + [self._normalise(a) for a in self.accept]
        if any(self._same(got, target) for target in targets):
            return self._right(answer)
        specific = self._specific_wrong(got)
        if specific is None and self.kind == "set":
            specific = self._set_summary(got, targets[0])
        return self._not_yet(answer, specific)

    def _set_summary(self, got: frozenset, expected: frozenset) -> str:
        right = len(got & expected)
        text = f"you have {right} of the {len(expected)} items."
        extra = sorted(got - expected)
        if extra:
            shown = ", ".join(_show(item, 30) for item in extra[:5])
            text += f" {'This does' if len(extra) == 1 else 'These do'} not belong: {shown}."
        return text

    def _run_custom_check(self, answer: Any) -> Feedback:
        result = self.check(answer)  # type: ignore[misc]
        if isinstance(result, Feedback):
            if not result.exercise_id:
                result.exercise_id = self.id
            return result
        if result is None:
            return self._could_not_check("the check returned nothing (a missing `return`?).")
        if isinstance(result, tuple):
            if len(result) != 2:
                return self._could_not_check(f"the check returned a tuple of {len(result)} items, not (bool, message).")
            ok, message = bool(result[0]), str(result[1] or "")
        else:
            ok, message = bool(result), ""
        if ok:
            return self._right(answer, message)
        if message:
            return self._not_yet(answer, message, as_is=True)
        try:
            specific = self._specific_wrong(self._normalise(answer))
        except _Unreadable:
            specific = None
        return self._not_yet(answer, specific)

    def solution(self) -> str:
        """The reference answer (and accepted alternatives), with the explanation."""
        if self.kind == "set" and not isinstance(self.answer, str):
            shown = ", ".join(_plain(item) for item in self.answer)
        else:
            shown = _plain(self.answer)
        text = f"Answer: {shown}"
        if self.accept:
            text += f" (also accepted: {', '.join(_plain(a) for a in self.accept)})"
        if self.explanation:
            text += f"\n{self.explanation}"
        return text
