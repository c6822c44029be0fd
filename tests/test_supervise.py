"""Supervised parts (engine/supervise.py): a failing part is restarted with backoff, its health
says so, cancellation ends it, and nothing dies unseen."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from scanhub.engine import supervise
from scanhub.engine.supervise import PartHealth, supervised


class Script:
    """A part that fails `fails` times (each a different error), then runs until cancelled;
    the sleeps the supervisor asks for are recorded and skipped."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fails: int, returns: int = 0) -> None:
        self.fails, self.returns, self.starts = fails, returns, 0
        self.waits: list[float] = []
        self.running = asyncio.Event()
        real_sleep = asyncio.sleep

        async def sleep(delay: float) -> None:
            self.waits.append(delay)
            await real_sleep(0)

        monkeypatch.setattr(supervise.asyncio, "sleep", sleep)
        self._forever = asyncio.Event()

    async def run(self) -> None:
        self.starts += 1
        if self.starts <= self.fails:
            raise RuntimeError(f"boom {self.starts}")
        if self.starts <= self.fails + self.returns:
            return
        self.running.set()
        await self._forever.wait()


async def test_a_failing_part_restarts_with_doubling_backoff_and_its_health_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(monkeypatch, fails=4)
    health = PartHealth("recorder")
    with caplog.at_level(logging.ERROR, logger="scanhub"):
        task = asyncio.create_task(supervised("recorder", script.run, health, backoff=(1, 5)))
        await asyncio.wait_for(script.running.wait(), 5)
    assert script.starts == 5 and script.waits == [1, 2, 4, 5]  # doubling, capped
    assert health.running and health.restarts == 4 and health.last_failure == "RuntimeError: boom 4"
    failures = [r for r in caplog.records if "recorder failed" in r.getMessage()]
    assert failures[0].getMessage() == (
        "scanhub: recorder failed (RuntimeError: boom 1); restarting in 1.0s"
    )
    assert len(failures) == 4 and all(r.exc_info for r in failures)  # with the traceback
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not health.running  # cancellation ends it, and it says so


async def test_a_part_that_returns_is_started_again_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(monkeypatch, fails=0, returns=2)
    with caplog.at_level(logging.ERROR, logger="scanhub"):
        task = asyncio.create_task(supervised("pruner", script.run, backoff=(0.5, 30)))
        await asyncio.wait_for(script.running.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert script.starts == 3 and script.waits == [0.5, 0.5]
    ended = [r.getMessage() for r in caplog.records if "ended unexpectedly" in r.getMessage()]
    assert ended == ["scanhub: pruner ended unexpectedly; restarting in 0.5s"] * 2


async def test_the_backoff_starts_over_after_a_part_ran_for_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = Script(monkeypatch, fails=3)
    clock: list[float] = [0.0]
    # Each start reads the clock, each failure reads it again: the second run lasts 61 s.
    readings = iter([0.0, 1.0, 1.0, 62.0, 62.0, 63.0, 63.0, 64.0])

    def monotonic() -> Any:
        clock[0] = next(readings, clock[0])
        return clock[0]

    # The module's own clock only (the event loop keeps the real one).
    monkeypatch.setattr(supervise, "time", SimpleNamespace(monotonic=monotonic))
    task = asyncio.create_task(supervised("broadcaster", script.run, backoff=(1, 30)))
    await asyncio.wait_for(script.running.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert script.waits == [1, 1, 2]  # 1, then (after a long run) 1 again, then doubling


async def test_a_part_stopped_by_the_store_away_says_so_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage stops the parts that read the store (sinks, the broadcaster): a warning line
    each, not an ERROR with a traceback each (12 of them over a fault audit's outages)."""
    from scanhub import StoreUnavailable

    starts = [0]
    running = asyncio.Event()

    async def run() -> None:
        starts[0] += 1
        if starts[0] == 1:
            raise StoreUnavailable("the database is unavailable", operation="follow")
        running.set()
        await asyncio.Event().wait()

    real_sleep = asyncio.sleep
    monkeypatch.setattr(supervise.asyncio, "sleep", lambda _: real_sleep(0))
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        task = asyncio.create_task(supervised("sink ops", run))
        await asyncio.wait_for(running.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = [r for r in caplog.records if "sink ops failed" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "StoreUnavailable" in record.getMessage()
