"""`at_once`: await several calls at once, a failure of one cancelling the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


async def at_once(calls: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Await `calls` at once, each a task of its own; their results, in order. A failure
    cancels the others and is raised as it is (a group only when several failed together); a
    cancellation of the caller (a stop, a deadline) cancels them all and is raised.

    (Not a `TaskGroup`: on Python 3.11 one child's failure leaves the parent task counted as
    cancelled, CPython gh-116720, so a caller could not tell a failure from a stop.)"""
    tasks = [asyncio.ensure_future(call) for call in calls]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        await _ended(tasks)
        raise
    failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed:
        await _ended(tasks)
        if len(failed) == 1:
            raise failed[0]  # type: ignore[misc]
        raise BaseExceptionGroup("calls failed together", failed)  # type: ignore[type-var]
    return [task.result() for task in tasks]


async def _ended(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait for them to end (their failures taken, not raised)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["at_once"]
