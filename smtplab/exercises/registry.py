"""The exercise registry: built-in exercises, instructors' files, look-up and checking.

The built-in ``smtplab/exercises/*.toml`` files and every directory (or file)
listed in ``$SMTPLAB_EXERCISES`` are loaded lazily, once, on first use.
``reload()`` forgets everything and loads them again.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import os
import sys
import threading
import tomllib  # Python >= 3.11
import warnings
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from .core import Exercise, Feedback

__all__ = [
    "ENV_VAR",
    "all_exercises",
    "check",
    "exercise",
    "get",
    "load_dir",
    "load_file",
    "register",
    "reload",
]

#: Environment variable listing instructor exercise directories (os.pathsep-separated).
ENV_VAR = "SMTPLAB_EXERCISES"

_TOML_FIELDS = ("id", "question", "answer", "kind", "accept", "choices", "hint", "explanation", "wrong", "notebook")
_TOML_EXTRA = ("replace",)

_lock = threading.RLock()
_exercises: dict[str, Exercise] = {}
_sources: dict[str, str] = {}  # exercise id -> the file it came from ("" for Python code)
_loaded = False
_current_source: str | None = None  # the file being loaded, while load_file runs
_current_ids: list[str] | None = None  # ids registered by that file so far


class _UnknownExercise(KeyError):
    """KeyError whose message is shown without KeyError's extra quotes."""

    def __str__(self) -> str:
        return str(self.args[0])


# -- loading ----------------------------------------------------------------


def _ensure_loaded() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True  # set first: files being loaded call register(), which calls us
        try:
            _load_builtins()
        except BaseException:
            _exercises.clear()
            _sources.clear()
            _loaded = False
            raise
        _load_from_env()


def _load_builtins() -> None:
    package = resources.files(__package__)
    for entry in sorted(package.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml") and entry.is_file():
            _load_toml(entry.read_text(encoding="utf-8"), f"built-in {entry.name}")


def _load_from_env() -> None:
    for raw in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if not raw.strip():
            continue
        path = Path(raw.strip()).expanduser()
        if path.is_dir():
            files = _exercise_files(path)
        elif path.is_file():
            files = [path]
        else:
            warnings.warn(f"{ENV_VAR}: {path} does not exist; skipped.", stacklevel=2)
            continue
        for file in files:  # one broken file must not hide the others, nor break check()
            try:
                load_file(file)
            except Exception as exc:  # noqa: BLE001
                warnings.warn(
                    f"{ENV_VAR}: could not load exercises from {file}: {type(exc).__name__}: {exc}",
                    stacklevel=2,
                )


def _exercise_files(directory: Path) -> list[Path]:
    return [
        p
        for p in sorted(directory.iterdir())
        if p.is_file() and p.suffix in (".toml", ".py") and not p.name.startswith(("_", ".", "test_"))
    ]


@contextlib.contextmanager
def _loading(source: str) -> Iterator[list[str]]:
    """While a file loads: remember its name (for messages and re-loading) and collect its ids."""
    global _current_source, _current_ids
    with _lock:
        saved = _current_source, _current_ids
        _current_source, _current_ids = source, []
        try:
            yield _current_ids
        finally:
            _current_source, _current_ids = saved


def _load_toml(text: str, source: str) -> list[Exercise]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(document) - {"exercise"}
    if unknown:
        raise ValueError(
            f"{source}: unexpected top-level key(s) {sorted(unknown)}; "
            "each exercise goes in its own [[exercise]] table."
        )
    tables = document.get("exercise", [])
    if not isinstance(tables, list):
        raise ValueError(  # noqa: TRY004 - a mistake in the file's content, reported like the others
            f"{source}: write each exercise as [[exercise]] (double brackets), not [exercise]."
        )
    parsed: list[tuple[Exercise, bool]] = []
    for number, table in enumerate(tables, start=1):
        table = dict(table)
        where = f"{source}: exercise #{number} ({table.get('id', 'no id')})"
        replace = table.pop("replace", False)
        for key in table:
            if key not in _TOML_FIELDS:
                close = difflib.get_close_matches(key, _TOML_FIELDS + _TOML_EXTRA, n=1)
                tip = f"; did you mean {close[0]!r}?" if close else "."
                if key == "check":
                    tip = ": a check function can only be written in Python (see docs/instructors.md)."
                raise ValueError(f"{where}: unknown key {key!r}{tip} Known keys: {', '.join(_TOML_FIELDS)}.")
        missing = [key for key in ("id", "question", "answer") if key not in table]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}.")
        try:
            parsed.append((Exercise(**table), bool(replace)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    with _lock, _loading(source) as ids:
        seen: set[str] = set()
        for ex, replace in parsed:  # check everything first, so a bad file registers nothing
            if ex.id in seen:
                raise ValueError(f"{source}: exercise id {ex.id!r} is used twice in this file.")
            seen.add(ex.id)
            if not replace:
                _check_free(ex.id)
        for ex, replace in parsed:
            register(ex, replace=replace)
    return [_exercises[i] for i in ids]


def _load_py(path: Path, source: str) -> list[Exercise]:
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    name = f"_smtplab_user_exercises_{path.stem.replace('-', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with _lock, _loading(source) as ids:
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return [_exercises[i] for i in ids if i in _exercises]


def load_file(path: str | os.PathLike[str]) -> list[Exercise]:
    """Load exercises from a ``.toml`` file ([[exercise]] tables) or a ``.py`` file (which calls register).

    Loading the same file again replaces the exercises it defined before.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"No exercise file at {file}")
    source = str(file.resolve())
    _ensure_loaded()
    if file.suffix == ".toml":
        return _load_toml(file.read_text(encoding="utf-8"), source)
    if file.suffix == ".py":
        return _load_py(file, source)
    raise ValueError(f"{file}: exercise files must end in .toml or .py")


def load_dir(path: str | os.PathLike[str]) -> list[Exercise]:
    """Load every ``.toml`` and ``.py`` file in a directory (not recursive).

    Files whose names start with ``_``, ``.`` or ``test_`` are skipped.
    """
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise NotADirectoryError(f"No exercise directory at {directory}")
    loaded: list[Exercise] = []
    for file in _exercise_files(directory):
        loaded.extend(load_file(file))
    return loaded


def reload() -> list[Exercise]:
    """Forget all exercises, then load the built-ins and ``$SMTPLAB_EXERCISES`` again.

    Exercises added by ``register``/``load_dir`` calls must be added again.
    """
    global _loaded
    with _lock:
        _exercises.clear()
        _sources.clear()
        _loaded = False
        _ensure_loaded()
        return list(_exercises.values())


# -- registering --------------------------------------------------------------


def _check_free(exercise_id: str) -> None:
    """Raise ValueError if the id is taken by something other than the file being (re)loaded."""
    if exercise_id not in _exercises:
        return
    if _current_ids is not None and exercise_id in _current_ids:
        raise ValueError(f"{_current_source}: exercise id {exercise_id!r} is registered twice by this file.")
    if _current_source is not None and _sources.get(exercise_id) == _current_source:
        return  # the same file loaded again: its new version replaces the old one
    origin = _sources.get(exercise_id) or "Python code"
    raise ValueError(
        f"An exercise with id {exercise_id!r} is already registered (from {origin}). "
        "Choose another id, or pass replace=True to overwrite it."
    )


def register(exercise: Exercise, *, replace: bool = False) -> Exercise:
    """Add an exercise; a duplicate id raises ValueError unless ``replace=True``."""
    if not isinstance(exercise, Exercise):
        raise TypeError(f"register() takes an Exercise, not {type(exercise).__name__}.")
    with _lock:
        _ensure_loaded()
        if not replace:
            _check_free(exercise.id)
        _exercises[exercise.id] = exercise
        _sources[exercise.id] = _current_source or ""
        if _current_ids is not None and exercise.id not in _current_ids:
            _current_ids.append(exercise.id)
    return exercise


def exercise(id: str, question: str, *, replace: bool = False, **kw: Any) -> Callable:
    """Decorator: register an exercise whose check is the decorated function.

    Takes the same keywords as :class:`Exercise` (``answer=`` is required) plus
    ``replace``. The function is returned unchanged, with ``.exercise`` set.
    """

    def decorator(func: Callable) -> Callable:
        if "answer" not in kw:
            raise TypeError(
                f"exercise({id!r}, ...) needs answer=...: the reference answer shown by "
                "solution() (for a check that looks at a live lab it can be a description)."
            )
        ex = register(Exercise(id=id, question=question, check=func, **kw), replace=replace)
        with contextlib.suppress(AttributeError, TypeError):
            func.exercise = ex  # type: ignore[attr-defined]
        return func

    return decorator


# -- looking up and checking --------------------------------------------------


def _unknown_message(exercise_id: Any) -> str:
    wanted = str(exercise_id).lower()
    suffix = [known for known in _exercises if known.lower().endswith("." + wanted)]
    scored = sorted(
        ((difflib.SequenceMatcher(None, wanted, known.lower()).ratio(), known) for known in _exercises),
        reverse=True,
    )
    best = scored[0][0] if scored else 0.0
    close = [known for score, known in scored[:3] if score >= 0.6 and score >= best - 0.05]
    suggestions = list(dict.fromkeys(suffix + close))[:3]
    message = f"No exercise called {str(exercise_id)!r}"
    if not suggestions:
        return message + ". all_exercises() lists the ones available."
    quoted = [repr(s) for s in suggestions]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"{message}; did you mean {listed}?"


def get(id: str) -> Exercise:
    """The exercise with this id; an unknown id raises KeyError naming close matches."""
    with _lock:
        _ensure_loaded()
        found = _exercises.get(id) if isinstance(id, str) else None
        if found is None:
            raise _UnknownExercise(_unknown_message(id))
        return found


def all_exercises(notebook: str | None = None) -> list[Exercise]:
    """All registered exercises in registration order, optionally only one notebook's."""
    with _lock:
        _ensure_loaded()
        return [ex for ex in _exercises.values() if notebook is None or ex.notebook == notebook]


def check(id: str, answer: Any) -> Feedback:
    """Check an answer to exercise ``id``; never raises (problems become feedback)."""
    try:
        ex = get(id)
    except KeyError as exc:
        return Feedback(False, str(exc.args[0]) if exc.args else str(exc), str(id))
    except Exception as exc:  # noqa: BLE001 - e.g. a broken built-in file
        return Feedback(
            False,
            f"Your answer could not be checked: the exercises could not be loaded "
            f"({type(exc).__name__}: {exc}). Please tell your instructor.",
            str(id),
        )
    return ex.check_answer(answer)
