"""Background tasks that are never garbage-collected mid-flight and never fail silently.

`asyncio.create_task` keeps only a weak reference to its task, so a fire-and-forget task can vanish; and an
exception in a task nobody awaits is reported only when the task is collected, if ever. `BackgroundTasks`
keeps a strong reference until the task ends and logs any exception with the task's name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["BackgroundTasks"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class BackgroundTasks:
    """A set of running tasks with one owner, who can wait for them or cancel them on shutdown."""

    def __init__(self, logger: logging.Logger | None = None, *, log_errors: bool = True) -> None:
        # log_errors=False when every task is awaited by someone who handles its exception anyway.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._log = logger or log
        self._log_errors = log_errors

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Start `coro` as a task named `name`; keep it referenced until it is done; log it if it raises."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # also marks the exception as retrieved: no "never retrieved" noise at exit
        if exc is not None and self._log_errors:
            self._log.error("background task %s failed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, within: float | None = None) -> bool:
        """Wait until every task is done or `within` seconds pass; True if all finished."""
        pending = {t for t in self._tasks if not t.done()}
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=within)
        return not still

    async def cancel_all(self, within: float = 5.0) -> None:
        """Cancel every task and wait (bounded) for them to unwind."""
        pending = {t for t in self._tasks if not t.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=within)
