"""`_tasks.at_once`: calls awaited at once; a failure raised as it is, a stop as a stop."""

from __future__ import annotations

import asyncio

import pytest

from scanhub._tasks import at_once


async def answer(n: int) -> int:
    await asyncio.sleep(0.01 * n)
    return n


async def fail() -> int:
    await asyncio.sleep(0.005)
    raise KeyError("a defect")


async def hold() -> int:
    await asyncio.sleep(3600)
    return 0


async def test_results_in_order_of_the_calls() -> None:
    assert await at_once([answer(3), answer(1), answer(2)]) == [3, 1, 2]
    assert await at_once([]) == []


async def test_a_failure_is_raised_as_it_is_and_cancels_the_others() -> None:
    """One call's failure reaches the caller as itself, not as a cancellation (a TaskGroup on
    Python 3.11 left the caller counted as cancelled: CPython gh-116720), and the others end."""
    held = asyncio.ensure_future(hold())
    with pytest.raises(KeyError, match="a defect"):
        await at_once([fail(), asyncio.wait_for(held, None)])
    assert held.cancelled()
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_several_failures_are_raised_together() -> None:
    with pytest.raises(ExceptionGroup) as group:
        await at_once([fail(), fail()])
    assert [type(e) for e in group.value.exceptions] == [KeyError, KeyError]


async def test_a_stop_or_a_deadline_cancels_every_call() -> None:
    held = asyncio.ensure_future(hold())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await at_once([asyncio.wait_for(held, None), answer(1)])
    assert held.cancelled()
