"""What went wrong inside the lab's loop, kept quiet and bounded.

Errors inside the loop must not print into a notebook cell, and a flood of
one kind (a client that resets a thousand connections) must not push out the
one error that explains a lost message. So each kind keeps its own latest few,
and a count of all it ever had.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Iterator

__all__ = ["ErrorLog"]


class ErrorLog:
    """The latest errors of each kind (``lab.errors``), oldest first when read."""

    def __init__(self, per_kind: int = 20) -> None:
        self.per_kind = per_kind
        self.counts: Counter[str] = Counter()  # every error ever reported, by kind
        self._kept: dict[str, deque[tuple[int, float, str]]] = {}
        self._order = itertools.count()

    def report(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        kept = self._kept.setdefault(kind, deque(maxlen=self.per_kind))
        kept.append((next(self._order), time.time(), text))

    def append(self, text: str) -> None:
        """Like a list's: an error of no particular kind."""
        self.report("other", text)

    def of(self, kind: str) -> list[str]:
        return [text for _, _, text in self._kept.get(kind, ())]

    def __iter__(self) -> Iterator[str]:
        merged = sorted(entry for kept in self._kept.values() for entry in kept)
        return iter([text for _, _, text in merged])

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._kept.values())

    def __bool__(self) -> bool:
        return bool(self._kept)

    def __contains__(self, text: object) -> bool:
        return any(text == t for t in self)

    def __getitem__(self, index: int) -> str:
        return list(self)[index]

    def clear(self) -> None:
        self._kept.clear()
        self.counts.clear()

    def __repr__(self) -> str:
        return f"ErrorLog({list(self)!r})"
