"""Tests for smtplab.exercises: built-in data, answer kinds, registry, loading, widget."""

from __future__ import annotations

import ast
import html
import json
import os
import re
import subprocess
import sys
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest

import smtplab.exercises as ex_pkg
from smtplab.exercises import (
    Exercise,
    Feedback,
    all_exercises,
    ask,
    check,
    exercise,
    get,
    load_dir,
    load_file,
    register,
    reload,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "instructors.md"


def _builtin_exercises() -> list[Exercise]:
    """The built-in exercises only, whatever $SMTPLAB_EXERCISES says on this machine."""
    saved = os.environ.pop("SMTPLAB_EXERCISES", None)
    try:
        return reload()
    finally:
        if saved is not None:
            os.environ["SMTPLAB_EXERCISES"] = saved


BUILTIN = _builtin_exercises()


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test starts with the built-ins only, and leaves nothing behind."""
    monkeypatch.delenv("SMTPLAB_EXERCISES", raising=False)
    reload()
    yield
    monkeypatch.undo()
    reload()


def _wrong_answers(ex: Exercise) -> list:
    """The exercise's listed wrong answers plus one generic wrong answer of the right kind."""
    generic = {
        "number": ex.answer + 1 if isinstance(ex.answer, (int, float)) else -1,
        "text": "certainly not this",
        "choice": next((c for c in ex.choices if c != ex.answer), "certainly not this"),
        "set": "certainly, not, this",
    }[ex.kind]
    return [*ex.wrong, generic]


# -- the built-in exercises ----------------------------------------------------


def test_notebook_01_has_the_handshake_exercises():
    ids = {ex.id for ex in all_exercises("01-handshake")}
    assert ids == {
        "handshake.greeting-code",
        "handshake.envelope-sender-command",
        "handshake.data-go-ahead",
        "handshake.end-of-data",
        "handshake.starttls-capability",
        "handshake.envelope-vs-header",
        "handshake.ehlo-vs-helo",
    }
    assert all_exercises("no-such-notebook") == []


@pytest.mark.parametrize("ex", BUILTIN, ids=lambda e: e.id)
def test_builtin_accepts_its_reference_answer(ex):
    feedback = check(ex.id, ex.answer)
    assert feedback.correct, feedback.message
    assert feedback.exercise_id == ex.id
    assert ex.explanation and ex.explanation in feedback.message
    for alternative in ex.accept:
        assert check(ex.id, alternative), alternative


@pytest.mark.parametrize("ex", BUILTIN, ids=lambda e: e.id)
def test_builtin_rejects_wrong_answers(ex):
    for wrong in _wrong_answers(ex):
        feedback = check(ex.id, wrong)
        assert not feedback.correct, wrong
        assert ex.hint in feedback.message


@pytest.mark.parametrize("ex", [e for e in BUILTIN if e.kind != "choice" and len(str(e.answer)) >= 3], ids=lambda e: e.id)
def test_builtin_wrong_feedback_does_not_give_the_answer_away(ex):
    secret = str(ex.answer).lower()
    for message in [ex.hint, *ex.wrong.values()]:
        assert secret not in message.lower(), message


def test_builtin_solutions_show_the_answer():
    assert get("handshake.greeting-code").solution().startswith("Answer: 220")
    solution = get("handshake.envelope-sender-command").solution()
    assert "MAIL FROM" in solution and "also accepted" in solution and "bounces" in solution


# -- kinds -----------------------------------------------------------------------


def test_number_kind_accepts_numeric_strings_and_floats():
    assert check("handshake.greeting-code", "220")
    assert check("handshake.greeting-code", " 220 ")
    assert check("handshake.greeting-code", 220.0)
    assert check("handshake.greeting-code", "220.0")


@pytest.mark.parametrize("answer", ["abc", "", None, True, [220], {"code": 220}, "nan", object()])
def test_number_kind_rejects_non_numbers_without_raising(answer):
    feedback = check("handshake.greeting-code", answer)
    assert isinstance(feedback, Feedback) and not feedback.correct


def test_number_kind_explains_what_it_could_not_read():
    feedback = check("handshake.greeting-code", "abc")
    assert "'abc'" in feedback.message and "number" in feedback.message


def test_blank_answer_says_no_answer_yet():
    assert "No answer yet" in check("handshake.greeting-code", "   ").message


def test_text_kind_ignores_case_spacing_and_quotes():
    for answer in ["MAIL FROM", "mail from", "  Mail   From ", '"MAIL FROM"', "mail\tfrom"]:
        assert check("handshake.envelope-sender-command", answer), answer


def test_text_kind_accept_list():
    for answer in ["MAIL", "mail from:", "MAIL FROM:"]:
        assert check("handshake.envelope-sender-command", answer), answer
    for answer in ["dot", "A Dot", "period", "<CRLF>.<CRLF>", "\r\n.\r\n", r"\r\n.\r\n", "."]:
        assert check("handshake.end-of-data", answer), answer
    assert not check("handshake.end-of-data", "..")


def test_choice_kind_rejects_a_value_outside_the_choices_helpfully():
    feedback = check("handshake.ehlo-vs-helo", "HELLO")
    assert not feedback
    assert "not one of the options" in feedback.message
    assert "HELO" in feedback.message and "EHLO" in feedback.message


def test_choice_kind_is_case_insensitive():
    assert check("handshake.ehlo-vs-helo", "ehlo")
    assert check("handshake.envelope-vs-header", "Bob@Example.net")


def test_set_kind_ignores_order_and_accepts_comma_separated_strings():
    register(Exercise("test.codes", "Which codes mean success?", answer=["220", "250", "354"], kind="set"))
    assert check("test.codes", "354, 220, 250")
    assert check("test.codes", ["250", "354", "220"])
    assert check("test.codes", {220, 250, 354})
    assert check("test.codes", "220,250,354,")  # a trailing comma is harmless
    feedback = check("test.codes", "220, 250, 421")
    assert not feedback and "2 of the 3" in feedback.message and "'421'" in feedback.message
    assert not check("test.codes", 220)


def test_exercise_rejects_bad_definitions():
    with pytest.raises(ValueError, match="unknown kind"):
        Exercise("test.k", "Q?", answer=1, kind="integer")
    with pytest.raises(ValueError, match="not one of the choices"):
        Exercise("test.c", "Q?", answer="C", kind="choice", choices=["A", "B"])
    with pytest.raises(ValueError, match="does not fit kind 'number'"):
        Exercise("test.n", "Q?", answer="two hundred", kind="number")
    with pytest.raises(ValueError, match="without spaces"):
        Exercise("test id", "Q?", answer=1)


# -- feedback ---------------------------------------------------------------------


def test_wrong_answer_gets_its_specific_feedback_and_the_hint():
    ex = get("handshake.greeting-code")
    feedback = check(ex.id, "250")
    assert not feedback
    assert "reply to commands such as EHLO" in feedback.message
    assert feedback.message.startswith("Not quite")
    assert f"Hint: {ex.hint}" in feedback.message
    assert "header inside the message" in check("handshake.envelope-sender-command", "From:").message
    assert "header inside the message" in check("handshake.envelope-sender-command", "from").message


def test_feedback_text_and_truthiness():
    right, wrong = check("handshake.greeting-code", 220), check("handshake.greeting-code", 250)
    assert bool(right) is True and bool(wrong) is False
    assert str(right).startswith("\u2714 ") and str(wrong).startswith("\u2718 ")


def test_feedback_html_escapes_the_answer():
    html = check("handshake.greeting-code", "<script>alert(1)</script>")._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    own = Feedback(True, "ok <b>", "x")._repr_html_()
    assert "<b>" not in own and "ok &lt;b&gt;" in own
    assert "smtplab-feedback-correct" in Feedback(True, "fine", "x")._repr_html_()


# -- custom checks ------------------------------------------------------------------


def test_custom_check_may_return_bool_tuple_or_feedback():
    register(Exercise("test.bool", "Q?", answer="x", check=lambda a: a == "x", hint="Think."))
    register(Exercise("test.tuple", "Q?", answer="x", check=lambda a: (a == "x", f"you said {a}")))
    register(Exercise("test.feedback", "Q?", answer="x", check=lambda a: Feedback(a == "x", "custom")))
    assert check("test.bool", "x") and not check("test.bool", "y")
    assert "Hint: Think." in check("test.bool", "y").message
    assert check("test.tuple", "y").message == "you said y"
    feedback = check("test.feedback", "x")
    assert feedback and feedback.message == "custom" and feedback.exercise_id == "test.feedback"


def test_check_that_raises_becomes_could_not_check_feedback():
    def broken(answer):
        return 1 / 0

    register(Exercise("test.broken", "Q?", answer=1, check=broken))
    feedback = check("test.broken", 1)
    assert isinstance(feedback, Feedback) and not feedback.correct
    assert "could not be checked" in feedback.message
    assert "ZeroDivisionError" in feedback.message


def test_check_that_returns_nothing_becomes_could_not_check_feedback():
    register(Exercise("test.none", "Q?", answer=1, check=lambda a: None))
    feedback = check("test.none", 1)
    assert not feedback and "could not be checked" in feedback.message


def test_exercise_decorator_registers_the_function_as_check():
    @exercise("test.deco", "Type ok.", answer="ok", notebook="nb-test")
    def is_ok(answer):
        return str(answer).strip() == "ok"

    assert is_ok("ok") is True  # the function is returned unchanged
    assert is_ok.exercise is get("test.deco")
    assert check("test.deco", "ok") and not check("test.deco", "nope")
    assert [e.id for e in all_exercises("nb-test")] == ["test.deco"]
    with pytest.raises(TypeError, match="needs answer"):
        exercise("test.noanswer", "Q?")(is_ok)


# -- registry ----------------------------------------------------------------------


def test_unknown_id_in_check_is_feedback_with_a_close_match():
    feedback = check("handshake.greting-code", 220)
    assert isinstance(feedback, Feedback) and not feedback.correct
    assert "No exercise called 'handshake.greting-code'" in feedback.message
    assert "did you mean 'handshake.greeting-code'" in feedback.message


def test_get_unknown_id_raises_keyerror_with_close_match():
    with pytest.raises(KeyError, match="handshake.greeting-code"):
        get("greeting-code")


def test_duplicate_register_raises_and_replace_works():
    first = Exercise("test.dup", "First?", answer="a")
    register(first)
    with pytest.raises(ValueError, match="already registered.*replace=True"):
        register(Exercise("test.dup", "Second?", answer="b"))
    with pytest.raises(ValueError, match="already registered"):
        register(Exercise("handshake.greeting-code", "Q?", answer=1))
    second = register(Exercise("test.dup", "Second?", answer="b"), replace=True)
    assert get("test.dup") is second
    assert check("test.dup", "b") and not check("test.dup", "a")


def test_reload_forgets_registered_exercises():
    register(Exercise("test.temp", "Q?", answer="a"))
    reload()
    with pytest.raises(KeyError):
        get("test.temp")
    assert get("handshake.greeting-code")


# -- loading files ---------------------------------------------------------------------

TOML = """
[[exercise]]
id = "mine.port"
question = "Which port is for message submission?"
answer = 587
kind = "number"
hint = "Not 25."
notebook = "99-mine"
[exercise.wrong]
"25" = "25 is for server-to-server relay."

[[exercise]]
id = "mine.verbs"
question = "Name the envelope commands."
answer = ["MAIL FROM", "RCPT TO"]
kind = "set"
"""

PY = """
from smtplab.exercises import Exercise, exercise, register

register(Exercise("mine.py-plain", "Say hi.", answer="hi"))

@exercise("mine.py-check", "Type an even number.", answer=2, kind="number")
def even(answer):
    return int(answer) % 2 == 0, "That is even." if int(answer) % 2 == 0 else "That is odd."
"""


def test_load_file_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(TOML)
    loaded = load_file(path)
    assert [e.id for e in loaded] == ["mine.port", "mine.verbs"]
    assert check("mine.port", "587") and not check("mine.port", 25)
    assert "server-to-server" in check("mine.port", 25).message
    assert check("mine.verbs", "rcpt to, mail from")
    assert [e.id for e in all_exercises("99-mine")] == ["mine.port"]
    assert [e.id for e in load_file(path)] == ["mine.port", "mine.verbs"]  # loading again replaces


def test_load_file_py(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(PY)
    loaded = load_file(path)
    assert [e.id for e in loaded] == ["mine.py-plain", "mine.py-check"]
    assert check("mine.py-plain", "HI")
    assert check("mine.py-check", "4").message == "That is even."
    assert not check("mine.py-check", 3)
    feedback = check("mine.py-check", "four")  # int("four") raises inside the check
    assert not feedback and "could not be checked" in feedback.message
    load_file(path)  # loading the same file again is fine


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[[exercise]]\nid = "x.y"\nquestion = "Q?"\nanswer = 1\nchoises = ["a"]\n', "did you mean 'choices'"),
        ('[[exercise]]\nid = "x.y"\nquestion = "Q?"\n', "missing answer"),
        ('[exercise]\nid = "x.y"\nquestion = "Q?"\nanswer = 1\n', "double brackets"),
        ('[[exercise]]\nid = "x.y"\nquestion = "Q?"\nanswer = 1\nkind = "integer"\n', "unknown kind"),
        ("[[exercise]\n", "not valid TOML"),
        ('[[exercise]]\nid = "handshake.greeting-code"\nquestion = "Q?"\nanswer = 1\n', "already registered"),
    ],
)
def test_load_file_reports_mistakes_clearly(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_file(path)
    with pytest.raises(KeyError):
        get("x.y")  # nothing from a bad file is registered


def test_toml_replace_key_overrides_a_builtin(tmp_path):
    path = tmp_path / "override.toml"
    path.write_text('[[exercise]]\nid = "handshake.greeting-code"\nquestion = "Q?"\n'
                    'answer = 42\nkind = "number"\nreplace = true\n')
    load_file(path)
    assert check("handshake.greeting-code", 42)


def test_load_dir_loads_toml_and_py_and_skips_private_files(tmp_path):
    (tmp_path / "a.toml").write_text(TOML)
    (tmp_path / "b.py").write_text(PY)
    (tmp_path / "_helpers.py").write_text("raise RuntimeError('must not be imported')\n")
    (tmp_path / "test_mine.py").write_text("raise RuntimeError('must not be imported')\n")
    (tmp_path / "notes.txt").write_text("ignored\n")
    ids = [e.id for e in load_dir(tmp_path)]
    assert ids == ["mine.port", "mine.verbs", "mine.py-plain", "mine.py-check"]


def test_environment_variable_directories_are_loaded(tmp_path, monkeypatch):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "a.toml").write_text(TOML)
    (second / "b.py").write_text(PY)
    monkeypatch.setenv("SMTPLAB_EXERCISES", os.pathsep.join([str(first), str(second)]))
    reload()
    assert check("mine.port", 587)
    assert check("mine.py-check", 2)
    assert check("handshake.greeting-code", 220)  # built-ins are still there


def test_a_broken_instructor_file_warns_but_does_not_break_checking(tmp_path, monkeypatch):
    (tmp_path / "a.toml").write_text(TOML)
    (tmp_path / "broken.toml").write_text("[[exercise]\n")
    monkeypatch.setenv("SMTPLAB_EXERCISES", f"{tmp_path}{os.pathsep}{tmp_path / 'missing'}")
    with pytest.warns(UserWarning) as record:
        reload()
    messages = [str(w.message) for w in record]
    assert any("broken.toml" in m and "not valid TOML" in m for m in messages), messages
    assert any("missing does not exist" in m for m in messages), messages
    assert check("mine.port", 587)
    assert check("handshake.greeting-code", 220)


# -- widget ------------------------------------------------------------------------------


def test_widget_driven_like_a_student():
    import ipywidgets as widgets

    w = ask("handshake.greeting-code")
    assert isinstance(w, widgets.Widget)
    assert isinstance(w.answer_box, widgets.Text) and isinstance(w.feedback, widgets.HTML)
    assert w.feedback.value == "" and w.result is None
    w.answer_box.value = "250"
    w.check_button.click()
    assert "250" in w.feedback.value and "\u2718" in w.feedback.value
    assert w.result is not None and not w.result.correct
    w.answer_box.value = "220"
    w.check_button.click()
    assert "\u2714" in w.feedback.value and "smtplab-feedback-correct" in w.feedback.value
    assert w.result.correct


def test_choice_widget_uses_a_dropdown():
    import ipywidgets as widgets

    w = ask("handshake.ehlo-vs-helo")
    assert isinstance(w.answer_box, widgets.Dropdown)
    assert list(w.answer_box.options) == list(get("handshake.ehlo-vs-helo").shown_choices)
    assert sorted(w.answer_box.options) == ["EHLO", "HELO"]
    w.check_button.click()  # nothing chosen yet
    assert "No answer yet" in w.feedback.value
    w.answer_box.value = "HELO"
    w.check_button.click()
    assert not w.result and "HELO" in w.feedback.value
    w.answer_box.value = "EHLO"
    w.check_button.click()
    assert w.result and "\u2714" in w.feedback.value


CHOICE = [e for e in BUILTIN if e.kind == "choice"]


@pytest.mark.parametrize("ex", CHOICE, ids=lambda e: e.id)
def test_choice_widget_shows_the_fair_order_and_checks_by_text_and_by_position(ex):
    """Whatever the order, the student's pick is checked: by its text (.value) and by its place (.index)."""
    w = ask(ex.id)
    shown = list(w.answer_box.options)
    assert shown == list(ex.shown_choices) and sorted(shown) == sorted(ex.choices)
    w.answer_box.index = shown.index(ex.answer)  # the student picks the right line of the list
    w.check_button.click()
    assert w.result.correct and "smtplab-feedback-correct" in w.feedback.value
    wrong = next(c for c in shown if c != ex.answer)
    w.answer_box.value = wrong
    w.check_button.click()
    assert not w.result.correct and "smtplab-feedback-wrong" in w.feedback.value
    assert ex.hint in html.unescape(w.feedback.value)


def test_the_right_answer_is_rarely_the_first_option_over_the_course():
    """Issue 10: as written, 20 of the 22 non-drill questions had the answer first; shown, about 1 in n should."""
    def first(exercises, order):
        return sum(order(e)[0] == e.answer for e in exercises)

    drills = [e for e in CHOICE if len(e.choices) == 12]
    others = [e for e in CHOICE if e not in drills]
    assert len(drills) == 10 and len(others) == 22
    assert first(others, lambda e: e.choices) == 20  # the authors' habit, which the display must not pass on
    assert first(others, lambda e: e.shown_choices) <= len(others) / 3
    assert first(CHOICE, lambda e: e.shown_choices) <= len(CHOICE) / 3
    places = [e.shown_choices.index(e.answer) for e in CHOICE]
    assert max(places.count(p) for p in set(places)) <= len(CHOICE) / 2  # no other favourite place either


def test_the_shown_order_ignores_the_written_order_and_differs_between_exercises():
    """The display must carry no trace of where the author put the answer."""
    written = ["a reset", "silence", "a bounce", "a 421 reply"]
    one = Exercise("test.order", "Q?", answer="silence", kind="choice", choices=written)
    again = Exercise("test.order", "Q?", answer="silence", kind="choice", choices=written[::-1])
    assert one.shown_choices == again.shown_choices and sorted(one.shown_choices) == sorted(written)
    orders = {Exercise(f"test.order-{n}", "Q?", answer="silence", kind="choice", choices=written).shown_choices
              for n in range(12)}
    assert len(orders) > 6  # each exercise has its own order, not one fixed permutation


def test_the_shown_order_is_the_same_in_every_process():
    """Stored notebook outputs depend on it: it must not change with Python's per-process hash seed."""
    script = ("import json; from smtplab.exercises import all_exercises; "
              "print(json.dumps({e.id: e.shown_choices for e in all_exercises() if e.kind == 'choice'}))")
    here = {e.id: list(e.shown_choices) for e in CHOICE}
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env.pop("SMTPLAB_EXERCISES", None)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                              timeout=60, check=True)
        assert json.loads(done.stdout) == here


def test_pick_one_of_lists_the_options_in_the_shown_order():
    """The refusal must not list the options as written: that would put the answer first again."""
    ex = get("mx.asked-first")
    message = check(ex.id, "the A record of bob").message
    assert "Pick one of: " + ", ".join(ex.shown_choices) + "." in message


LONG = "the greeting comes first because the server speaks first whenever a client connects to it"


@pytest.mark.parametrize("answer", [LONG, "it's " + LONG, "dot\r\n" * 20, "a" * 100])
def test_a_long_answer_is_quoted_whole_words_first_and_the_quote_closes(answer):
    """A cut word or an open quote reads as if the student had typed it so."""
    message = check("handshake.end-of-data", answer).message
    quoted = re.match(r"Not quite: (['\"])(.*)\1 is not the answer", message, flags=re.DOTALL)
    assert quoted, message
    quote, shown = quoted.groups()
    assert shown.endswith("\u2026") and len(quote + shown + quote) <= 60
    head = ast.literal_eval(quote + shown[:-1] + quote)  # what the student typed, up to the cut
    assert answer.startswith(head) and len(head) > 20
    if not answer.startswith("a" * 100):  # a single 100-letter "word" can only be cut inside
        assert answer[len(head)].isspace(), shown


def test_a_long_answer_in_the_widget_keeps_whole_words_and_closes_the_quote():
    w = ask("handshake.end-of-data")
    w.answer_box.value = LONG
    w.check_button.click()
    shown = html.unescape(w.feedback.value)
    assert not w.result.correct
    assert "'the greeting comes first because the server speaks first\u2026' is not the answer" in shown


def test_widget_question_is_escaped():
    w = ask("handshake.envelope-vs-header")
    assert "&lt;bob@example.net&gt;" in w.question.value
    assert "<code>RCPT TO:&lt;bob@example.net&gt;</code>" in w.question.value


def test_ask_unknown_id_raises_keyerror():
    with pytest.raises(KeyError, match="did you mean"):
        ask("handshake.ehlo-vs-hello")


# -- the public surface and the instructors' guide ---------------------------------------------


def test_public_names():
    assert set(ex_pkg.__all__) == {
        "Exercise", "Feedback", "all_exercises", "ask", "check", "exercise",
        "get", "load_dir", "load_file", "register", "reload",
    }


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_docs_toml_example_loads_and_self_tests(tmp_path):
    blocks = [b for b in _code_blocks("toml") if "[[exercise]]" in b]
    assert blocks, "docs/instructors.md has no TOML example"
    path = tmp_path / "example.toml"
    path.write_text(blocks[0])
    for ex in load_file(path):
        assert ex.check_answer(ex.answer), ex.id
        assert not ex.check_answer("surely not this"), ex.id


def test_docs_python_example_with_a_fake_lab(tmp_path, monkeypatch):
    import __main__

    block = next(b for b in _code_blocks("python") if "@exercise" in b)
    path = tmp_path / "example.py"
    path.write_text(textwrap.dedent(block))
    (loaded,) = load_file(path)

    monkeypatch.delattr(__main__, "lab", raising=False)
    assert "could not be checked" not in check(loaded.id, "Hello").message
    assert not check(loaded.id, "Hello")  # no lab yet: friendly feedback

    message = EmailMessage()
    message["Subject"] = "Hello"

    class FakeLab:
        def inbox(self, address):
            return [message] if address == "bob@example.net" else []

    monkeypatch.setattr(__main__, "lab", FakeLab(), raising=False)
    assert check(loaded.id, "Hello")
    assert not check(loaded.id, "Goodbye")
