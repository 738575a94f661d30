"""Self-checking exercises for the smtplab notebooks.

In a notebook::

    from smtplab.exercises import ask, check

    check("handshake.greeting-code", 220)   # a Feedback, shown as a coloured box
    ask("handshake.greeting-code")          # a widget with a Check button

Instructors add exercises as TOML or Python files (see docs/instructors.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core import Exercise, Feedback
from .registry import (
    all_exercises,
    check,
    exercise,
    get,
    load_dir,
    load_file,
    register,
    reload,
)

if TYPE_CHECKING:
    from .widget import ExerciseWidget

__all__ = [
    "Exercise",
    "Feedback",
    "all_exercises",
    "ask",
    "check",
    "exercise",
    "get",
    "load_dir",
    "load_file",
    "register",
    "reload",
]


def ask(id: str) -> ExerciseWidget:
    """A widget for exercise ``id``: the question, an answer box, a Check button and feedback.

    The widget has ``.answer_box``, ``.check_button``, ``.feedback`` (an HTML
    widget) and ``.result`` (the last Feedback). An unknown id raises KeyError.
    """
    from .widget import (
        ask as _ask,  # ipywidgets is imported only when a widget is wanted
    )

    return _ask(id)
