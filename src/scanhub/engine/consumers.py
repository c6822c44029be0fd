"""What `ScanHub.snapshot`, `watch` and `wait` do, written once as functions of the engine's
public parts (the facade's methods call these)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING

from .._changes import Change, Snapshot, is_placeholder
from .._errors import WaitTimeoutError
from .._model import Item
from .broadcast import Subscription
from .scheduler import check_interval
from .tracked import Active

if TYPE_CHECKING:
    from .hub import ScanHub
    from .polling import PollLoop


async def poll_each(loop: PollLoop, todo: Iterable[Active]) -> None:
    """Poll each of `todo` once, as many of a source at a time as the source may ever run:
    a few workers per source take the items in turn, rather than a task per item waiting for
    its turn (10,000 items would be 10,000 tasks, all alive until the last answer, which the
    garbage collector walks again and again)."""
    by_source: dict[str, list[Active]] = {}
    for active in todo:
        by_source.setdefault(active.item.source, []).append(active)

    async def work(queue: Iterator[Active]) -> None:
        for active in queue:
            await loop.poll_once(active)

    workers = []
    for source, items in by_source.items():
        queue = iter(items)
        workers += [work(queue) for _ in range(min(len(items), loop.pollers[source].most_at_once))]
    await asyncio.gather(*workers)


async def snapshot(hub: ScanHub, *, refresh_terminal: bool = False) -> Snapshot:
    """Poll every active item once (and, with `refresh_terminal`, the finished ones too);
    everything tracked, as the store has it afterwards."""
    await hub.open()
    await hub.flush()
    loop = hub.loop
    todo = loop.due_now()
    if refresh_terminal:
        known = {a.item.key for a in todo}
        clients = {c.name for c in hub.sources.clients}
        for stored in await hub.store.tracked():
            item = stored.item
            if (
                item.lifecycle.is_terminal
                and item.key not in known
                and loop.polls(item.source)
                and item.source in clients
            ):
                todo.append(Active(item, stored.origin))
    await poll_each(loop, todo)
    await hub.flush()
    stored_items = await hub.store.tracked()
    return Snapshot(
        items=tuple(s.item for s in stored_items),
        errors={s.key: s.last_error for s in stored_items if s.last_error is not None},
        observed_at=hub.now(),
        source_errors=dict(hub.discovery.errors),
    )


async def watch(
    hub: ScanHub,
    interval: float | None = None,
    deadline: float | None = None,
    *,
    initial: bool = True,
    until_done: bool = True,
    keys: Iterable[str] | None = None,
) -> AsyncIterator[Change]:
    """`ScanHub.watch` (see there): the tracked items first (from one snapshot of the store,
    with the log position of that moment), then the committed log from that position."""
    _check_seconds("deadline", deadline)
    check_interval(interval)
    chosen = frozenset(keys) if keys is not None else None
    end = None if deadline is None else hub.clock() + deadline

    def wants(change: Change) -> bool:
        return chosen is None or change.key in chosen

    async with hub.polling(interval):
        if initial:
            stored, position = await hub.store.tracked_at(chosen)
            sub = hub.subscribe(position, wants)
        else:
            stored, sub = [], hub.subscribe(None, wants)
        try:
            now = hub.now()
            for s in stored:
                # A placeholder (tracked by id, nothing read yet) is no state: it comes with
                # its first one, from the log (else two "first" changes, the first `unknown`).
                if not is_placeholder(s.item):
                    yield Change(None, s.item, now)
            while True:
                change = sub.next_nowait()
                if change is not None:
                    yield change
                    continue
                remaining = None if end is None else end - hub.clock()
                if remaining is not None and remaining <= 0:
                    return
                if sub.behind:
                    await sub.catch_up()
                    continue
                if until_done and _all_done(hub, chosen, sub):
                    return
                progress = hub.loop.progress
                progress.clear()
                waiters = [
                    asyncio.ensure_future(sub.wait()),
                    asyncio.ensure_future(progress.wait()),
                ]
                try:
                    await asyncio.wait(
                        waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for w in waiters:
                        w.cancel()
        finally:
            sub.close()


def _check_seconds(name: str, value: float | None) -> None:
    # NaN compares false with every time: a watch given it would never reach its deadline.
    if value is not None and math.isnan(value):
        raise ValueError(f"{name}: expected a number of seconds or None, got {value!r}")


def _all_done(hub: ScanHub, keys: frozenset[str] | None, sub: Subscription) -> bool:
    """Whether nothing watched can move any more: every item still under way failed its last
    poll for a reason no retry mends (a wrong token, an item the vendor does not have, a track
    to mend), so waiting for the deadline would only turn an answer (exit 5, or 2) into a
    timeout (4)."""
    recorder = hub.recorder
    if not recorder.idle or sub.position < recorder.last_id:
        return False  # a final change may not have reached the consumer yet
    working = hub.working
    under_way = working if keys is None else (working.get(k) for k in keys)
    return all(a is None or (a.error is not None and a.error.permanent) for a in under_way)


async def wait(
    hub: ScanHub,
    item: Item,
    timeout: float | None = None,  # noqa: ASYNC109 - the documented API is wait(item, timeout=)
    *,
    interval: float | None = None,
) -> Item:
    """`ScanHub.wait` (see there)."""
    _check_seconds("timeout", timeout)
    check_interval(interval)  # before anything is tracked or sent
    key = hub.track(item)
    async for _ in watch(hub, interval, timeout, initial=False, keys=[key]):
        pass
    await hub.flush()
    stored = await hub.store.get(key)
    active = hub.working.get(key)
    last = active.item if active is not None else (stored.item if stored else item)
    if stored is not None and stored.item.lifecycle.is_terminal:
        return stored.item
    raise WaitTimeoutError(
        f"{key} still {last.lifecycle.value} after {timeout}s",
        item=last,
        vendor=last.vendor,
        source=last.source,
        operation="wait",
    )


__all__ = ["snapshot", "wait", "watch"]
