"""The background tasks of one client (handlers, account recovery, the token refresher)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

__all__ = ["TaskSet"]


class TaskSet:
    """Tasks the client started and still owns; a finished task leaves the set by itself."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task: object) -> bool:
        return task in self._tasks

    def spawn(self, awaitable: Any, name: str) -> asyncio.Task[Any]:
        """Run ``awaitable`` (a coroutine or any awaitable a handler returned) as a task."""
        task: asyncio.Task[Any] = asyncio.ensure_future(awaitable)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Cancel every task but the current one; return those cancelled."""
        current = asyncio.current_task()
        cancelled = [task for task in self._tasks if task is not current]
        for task in cancelled:
            task.cancel()
        return cancelled
