"""`Runner`: the owner of the engine's background tasks.

Two groups, each an `asyncio.TaskGroup` in a task of its own: the parts that run while the
store is open (recorder, broadcaster, pruner), and those that run while polling is wanted
(dispatch, pollers, replication, sinks). Every part is supervised (`supervised`): restarted with
backoff when it fails, and reported in `parts()` (what `/readyz` reads). Polling is wanted by
nested and concurrent users (`watch`, a service); it stops when the last one ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .supervise import PartHealth, supervised

#: A named background task: its name and what it runs.
Part = tuple[str, Callable[[], Awaitable[Any]]]


class Runner:
    """Background tasks of one engine (see the module docstring)."""

    def __init__(
        self,
        always: Callable[[], list[Part]],
        polling: Callable[[], list[Part]],
        *,
        before_polling: Callable[[], Awaitable[None]],
        after_polling: Callable[[], None],
    ) -> None:
        self._always, self._polling_parts = always, polling
        self._before, self._after = before_polling, after_polling
        self._parts: asyncio.Task[None] | None = None
        self._polling: asyncio.Task[None] | None = None
        self._users = 0
        self._health: dict[str, PartHealth] = {}

    @property
    def running(self) -> bool:
        """True while the always-on parts run."""
        return self._parts is not None and not self._parts.done()

    @property
    def polling_now(self) -> bool:
        """True while polling runs."""
        return self._polling is not None and not self._polling.done()

    def parts(self) -> tuple[PartHealth, ...]:
        """Every part that runs now, with its restarts and last failure."""
        return tuple(self._health.values())

    def reported(self, name: str) -> PartHealth:
        """The health of a part someone else runs supervised (the service's own tasks), reported
        with the engine's (`forget` when it stops)."""
        state = self._health[name] = PartHealth(name)
        return state

    def forget(self, name: str) -> None:
        """Stop reporting a part `reported` gave."""
        self._health.pop(name, None)

    def start(self) -> None:
        """Start the always-on parts."""
        self._parts = asyncio.get_running_loop().create_task(self._run(self._always()))

    async def stop(self) -> None:
        """Stop polling, then the always-on parts."""
        await self._stop_polling()
        if self._parts is not None:
            self._parts.cancel()
            await asyncio.gather(self._parts, return_exceptions=True)
            self._parts = None

    @property
    def polling_blocks(self) -> int:
        """How many polling blocks run now (0: the engine does not poll)."""
        return self._users

    @contextlib.asynccontextmanager
    async def polling(self) -> AsyncIterator[None]:
        """Poll for as long as the block runs; shared by nested and concurrent blocks."""
        self._users += 1
        if self._users == 1:
            await self._before()
            self._polling = asyncio.get_running_loop().create_task(
                self._run(self._polling_parts(), transient=True)
            )
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                await self._stop_polling()

    async def stop_polling(self) -> None:
        """Stop polling now, whoever asked for it (in-flight polls are cancelled; leases are
        kept until they expire, as if this process had died: for tests and benchmarks of
        failover)."""
        self._users = 0
        await self._stop_polling()

    async def _stop_polling(self) -> None:
        task, self._polling = self._polling, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._after()

    async def _run(self, parts: list[Part], *, transient: bool = False) -> None:
        names = set(self._health)
        try:
            async with asyncio.TaskGroup() as tg:
                for name, run in parts:
                    state = self._health[name] = PartHealth(name)
                    tg.create_task(supervised(name, run, state))
        finally:
            if transient:
                for name in set(self._health) - names:
                    del self._health[name]  # polling parts report only while polling runs


__all__ = ["Part", "Runner"]
