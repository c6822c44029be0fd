"""`at_once`: await several calls at once, a failure of one cancelling the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def at_once(calls: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Await `calls` at once, each a task of its own; their results, in order. A failure
    cancels the others and is raised as it is (a group only when several failed together)."""
    failure: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) != 1:
            raise
        failure = failed.exceptions[0]
    if failure is not None:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            # Cancelled meanwhile (a stop, a deadline): that wins, as it would have without
            # the failure (a caller's `except Exception` must not swallow a stop).
            raise asyncio.CancelledError
        raise failure  # as it is, its own cause and traceback kept
    return [task.result() for task in tasks]


__all__ = ["at_once"]
