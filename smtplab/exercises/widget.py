"""An ipywidgets front end for one exercise: question, answer box, Check button, feedback."""

from __future__ import annotations

import html
import re

import ipywidgets as widgets

from .core import Exercise, Feedback
from .registry import get

__all__ = ["ExerciseWidget", "ask"]

_PLACEHOLDERS = {
    "text": "Your answer",
    "number": "A number, like 42",
    "set": "Items separated by commas",
}


def _question_html(ex: Exercise) -> str:
    text = html.escape(ex.question)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)  # `code` in questions
    return (
        f'<div class="smtplab-question"><b>Exercise</b> '
        f'<code style="opacity:.7">{html.escape(ex.id)}</code><br>{text}</div>'
    )


class ExerciseWidget(widgets.VBox):
    """The widget returned by :func:`ask`.

    ``answer_box`` is a Text (for kind "choice" a Dropdown of ``exercise.shown_choices``,
    whose value is the chosen text, checked as typed text would be), ``check_button``
    checks it, ``feedback`` is an HTML widget whose ``.value`` is the feedback
    box, and ``result`` is the last :class:`Feedback` (None before any check).
    """

    def __init__(self, exercise: Exercise) -> None:
        question = widgets.HTML(_question_html(exercise))
        if exercise.kind == "choice":
            answer_box: widgets.ValueWidget = widgets.Dropdown(
                options=list(exercise.shown_choices), value=None, description="Answer:"
            )
        else:
            answer_box = widgets.Text(
                placeholder=_PLACEHOLDERS.get(exercise.kind, "Your answer"), description="Answer:"
            )
        check_button = widgets.Button(description="Check", button_style="primary", icon="check")
        feedback = widgets.HTML("")
        super().__init__(children=[question, widgets.HBox([answer_box, check_button]), feedback])
        self.exercise = exercise
        self.question = question
        self.answer_box = answer_box
        self.check_button = check_button
        self.feedback = feedback
        self.result: Feedback | None = None
        check_button.on_click(self._on_check)

    def _on_check(self, _button: object = None) -> None:
        self.result = self.exercise.check_answer(self.answer_box.value)
        self.feedback.value = self.result._repr_html_()


def ask(id: str) -> ExerciseWidget:
    """A widget for exercise ``id``: the question, an answer box, a Check button and feedback.

    An unknown id raises KeyError (naming close matches): that is an authoring mistake.
    """
    return ExerciseWidget(get(id))
