"""The lab's own event loop, run by one background thread, and the bridge to it from any caller.

Notebook code calls plain functions; they hand coroutines to this loop and wait
for the result. That works the same in a script, in pytest and inside a
Jupyter kernel, whose own loop is busy running the cell (which is why
``asyncio.run()`` raises there, and why nest_asyncio is not needed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .result import LabError

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """One event loop in one daemon thread; :meth:`run` and :meth:`in_loop` bring work to it."""

    def __init__(self, on_error: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None],
                 name: str = "smtplab-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(on_error)  # errors inside are kept, not printed into a cell
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    @property
    def closed(self) -> bool:
        return self.loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        """Run `coro` on the loop and wait for its result, from any other thread."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise LabError("This lab method blocks; inside the lab's own loop use its async twin (await lab.asend(...)).")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise LabError(f"The lab did not finish within {timeout} s; lab.errors may say why.") from None

    async def in_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the lab's loop, from whichever loop the caller is on."""
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self, last: Callable[[], Coroutine[Any, Any, None]] | None = None, timeout: float = 10) -> None:
        """Run `last` (a shutdown coroutine function) on the loop, then stop the loop and its thread."""
        if self.loop.is_closed():
            return
        if self.thread.is_alive():
            try:
                if last is not None:
                    self.run(last(), timeout=timeout)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=timeout)
        self.loop.close()
