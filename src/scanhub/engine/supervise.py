"""Supervised background tasks: every task the engine starts is owned, and none dies unseen.

`supervised(name, run)` runs `run()` for good: when it raises, the failure is logged with its
traceback, and it is started again after a backoff (0.5 s, doubling to 30 s; reset once it has
run for a minute). Cancellation ends it. The engine starts its supervised parts in an
`asyncio.TaskGroup`, so stopping the engine cancels them all, and `health` says which part is
restarting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from attrs import define

from .._errors import StoreUnavailable

log = logging.getLogger("scanhub")


@define
class PartHealth:
    """One supervised part: running, or restarting after a failure."""

    name: str
    restarts: int = 0
    last_failure: str | None = None
    running: bool = False


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    health: PartHealth | None = None,
    *,
    backoff: tuple[float, float] = (0.5, 30.0),
) -> None:
    """Run `run()` until cancelled, restarting it with backoff when it fails (see the module
    docstring)."""
    state = health or PartHealth(name)
    delay = backoff[0]
    while True:
        started = time.monotonic()
        state.running = True
        try:
            await run()
        except asyncio.CancelledError:
            state.running = False
            raise
        except Exception as exc:
            state.running = False
            state.restarts += 1
            state.last_failure = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - started > 60:
                delay = backoff[0]
            # The store away is no bug: the recorder says when it goes and comes back, and a
            # part it stops says so in one line (a traceback each part each outage was noise).
            away = isinstance(exc, StoreUnavailable)
            log.log(
                logging.WARNING if away else logging.ERROR,
                "scanhub: %s failed (%s); restarting in %.1fs",
                name,
                state.last_failure,
                delay,
                exc_info=None if away else exc,
            )
            if away:  # (SQLite's errors of the database and its statements both say "away")
                log.debug("scanhub: %s failed", name, exc_info=exc)
            await asyncio.sleep(delay)
            delay = min(backoff[1], delay * 2)
            continue
        state.running = False
        log.error("scanhub: %s ended unexpectedly; restarting in %.1fs", name, delay)
        await asyncio.sleep(delay)


__all__ = ["PartHealth", "supervised"]
