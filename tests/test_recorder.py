"""The recorder's promises at their edges, against a store that fails on demand: how much it
holds before polling pauses, how much one commit takes, how long it waits between attempts while
the store is away (and from where it starts again), what it logs, and what closing does with
what the store would not take. Every await is bounded, so a recorder that would wait for good
fails the test instead of hanging it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import scanhub.engine.recorder as recorder_module
from scanhub import Lifecycle, MemoryStore, Scan, Vendor
from scanhub._changes import ItemError
from scanhub.engine import Recorder
from scanhub.engine.recorder import RecorderHealth, Untrack
from scanhub.store import Committed, Observation, Outcome

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class FlakyStore(MemoryStore):
    """A memory store whose next `failures` commits fail; records each commit's size."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.attempts: list[int] = []

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        self.attempts.append(len(observations))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database is away")
        return await super().commit(observations)


def seen(sid: str, minute: int = 0, origin: str | None = "track") -> Observation:
    item = Scan(Vendor.APPSECPLUS, "asp", sid, "a", Lifecycle.QUEUED, "queued")
    return Observation(item.key, T0 + timedelta(minutes=minute), item, None, origin)


class Waits:
    """`asyncio.sleep` and `random.uniform` of the recorder, recorded: sleeps are instant (they
    still yield to the loop) and every random factor is the top of its range."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delays: list[float] = []
        self.ranges: list[tuple[float, float]] = []
        real_sleep = asyncio.sleep

        async def sleep(delay: float) -> None:
            if delay:
                self.delays.append(delay)
            await real_sleep(0)

        def uniform(a: float, b: float) -> float:
            self.ranges.append((a, b))
            return b

        monkeypatch.setattr(recorder_module.asyncio, "sleep", sleep)
        monkeypatch.setattr(recorder_module.random, "uniform", uniform)


# --- how much it holds and takes ------------------------------------------------------------------


async def test_by_default_polling_pauses_when_ten_thousand_observations_wait() -> None:
    rec = Recorder(MemoryStore())
    for i in range(9_999):
        rec.submit(seen(f"s{i}"))
    assert rec.room.is_set() and rec.pending == 9_999
    rec.submit(seen("last"))
    assert not rec.room.is_set()
    await rec.close(grace=5)


async def test_by_default_one_commit_takes_a_thousand_observations() -> None:
    store = FlakyStore()
    rec = Recorder(store)
    task = asyncio.create_task(rec.run())
    try:
        async with asyncio.timeout(10):
            results = await rec.commit([seen(f"s{i}") for i in range(1001)])
    finally:
        task.cancel()
    assert store.attempts == [1000, 1] and len(results) == 1001
    assert rec.last_id == 1001 and rec.idle and rec.room.is_set()


async def test_an_untrack_is_committed_alone_and_lets_polling_go_on() -> None:
    store = FlakyStore()
    rec = Recorder(store, max_pending=2)
    first = rec.submit(seen("a"))
    gone = rec.submit(Untrack((seen("a").key,)))
    assert not rec.room.is_set()
    task = asyncio.create_task(rec.run())
    try:
        async with asyncio.timeout(2):
            results = await asyncio.gather(first, gone)
    finally:
        task.cancel()
    assert results[1] == [seen("a").key] and store.attempts == [1]
    assert rec.room.is_set() and rec.idle


async def test_polling_resumes_only_once_fewer_than_max_pending_wait() -> None:
    rec: Recorder
    rooms: list[bool] = []

    class Watching(MemoryStore):
        """Notes, at each commit, whether polling may go on."""

        async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
            rooms.append(rec.room.is_set())
            return await super().commit(observations)

    store = Watching()
    rec = Recorder(store, max_pending=2, batch=1)
    for sid in "abc":
        rec.submit(seen(sid))
    task = asyncio.create_task(rec.run())
    try:
        async with asyncio.timeout(2):
            await rec.flush()
    finally:
        task.cancel()
    # 3 wait: paused; 2 wait: still paused (2 is the most); 1 waits: polling goes on.
    assert rooms == [False, False, True] and rec.room.is_set()


async def test_a_new_recorder_is_healthy_and_has_committed_nothing() -> None:
    rec = Recorder(MemoryStore())
    assert rec.health() == RecorderHealth(True, 0, None, None)
    task = asyncio.create_task(rec.run())
    try:
        async with asyncio.timeout(2):
            untracked = Observation(seen("a").key, T0)  # no origin: nothing is recorded
            assert (await rec.commit([untracked]))[0].outcome is Outcome.UNTRACKED
    finally:
        task.cancel()
    assert rec.last_id == 0


# --- sightings -------------------------------------------------------------------------------------


async def test_sightings_are_queued_together_once_a_batch_gathered_and_move_their_items() -> None:
    store = FlakyStore()
    rec = Recorder(store, batch=2)
    task = asyncio.create_task(rec.run())
    away = ItemError("ConnectionError", "the vendor is away", True, T0 + timedelta(minutes=5))
    try:
        async with asyncio.timeout(2):
            await rec.commit([seen("a"), seen("b")])
            rec.sight(seen("a").key, T0 + timedelta(minutes=5), away)
            assert rec.pending == 0  # gathered, not queued yet
            rec.sight(seen("b").key, T0 + timedelta(minutes=6))
            assert rec.pending == 2  # a batch gathered: queued together
            await rec.flush()
    finally:
        task.cancel()
    assert store.attempts == [2, 2]
    a, b = await store.get(seen("a").key), await store.get(seen("b").key)
    assert a is not None and b is not None
    assert a.last_observed == T0 + timedelta(minutes=5) and a.last_error == away
    assert b.last_observed == T0 + timedelta(minutes=6) and b.last_error is None


async def test_a_lone_sighting_is_committed_after_the_gathering_time_without_other_traffic() -> (
    None
):
    store = FlakyStore()
    rec = Recorder(store)
    rec.sighting_every = 0.01  # a second by default; the test does not wait that long
    task = asyncio.create_task(rec.run())
    try:
        async with asyncio.timeout(2):
            await rec.commit([seen("a")])
            rec.sight(seen("a").key, T0 + timedelta(minutes=5))
            while store.attempts != [1, 1]:
                await asyncio.sleep(0.005)
        assert not task.done()
    finally:
        task.cancel()
    a = await store.get(seen("a").key)
    assert a is not None and a.last_observed == T0 + timedelta(minutes=5)


async def test_more_sightings_do_not_cut_the_gathering_time_short() -> None:
    store = FlakyStore()
    rec = Recorder(store)
    rec.sighting_every = 60.0  # never reached: flush ends the gathering
    task = asyncio.create_task(rec.run())
    try:
        async with asyncio.timeout(2):
            await rec.commit([seen("a"), seen("b")])
            rec.sight(seen("a").key, T0 + timedelta(minutes=5))
            for _ in range(50):
                await asyncio.sleep(0)  # the writer is gathering now
            rec.sight(seen("b").key, T0 + timedelta(minutes=5))
            rec.sight(seen("a").key, T0 + timedelta(minutes=6))
            for _ in range(50):
                await asyncio.sleep(0)
            assert store.attempts == [2]  # still gathering
            await rec.flush()
    finally:
        task.cancel()
    assert store.attempts == [2, 2]


async def test_a_commit_slower_than_five_seconds_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = iter([100.0, 105.0, 200.0, 206.0])  # a commit taking 5 s, then one taking 6 s
    monkeypatch.setattr(recorder_module, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    rec = Recorder(MemoryStore())
    task = asyncio.create_task(rec.run())
    try:
        with caplog.at_level(logging.WARNING, logger="scanhub"):
            async with asyncio.timeout(2):
                await rec.commit([seen("a")])
                await rec.commit([seen("b"), seen("c")])
    finally:
        task.cancel()
    assert [r.getMessage() for r in caplog.records] == [
        "scanhub: a commit of 2 observations took 6.0s"
    ]


async def test_sightings_are_gathered_for_a_second_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graces: list[float | None] = []
    real_timeout = asyncio.timeout

    def timeout(delay: float | None) -> asyncio.Timeout:
        graces.append(delay)
        return real_timeout(0.01)  # the test does not wait a second

    monkeypatch.setattr(recorder_module.asyncio, "timeout", timeout)
    store = FlakyStore()
    rec = Recorder(store)
    task = asyncio.create_task(rec.run())
    try:
        async with real_timeout(2):
            await rec.commit([seen("a")])
            rec.sight(seen("a").key, T0 + timedelta(minutes=5))
            while store.attempts != [1, 1]:
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
    assert graces == [1.0]


# --- while the store is away ----------------------------------------------------------------------


async def test_attempts_back_off_from_the_first_wait_doubling_up_to_the_cap_and_start_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits = Waits(monkeypatch)
    store = FlakyStore(failures=4)
    rec = Recorder(store, backoff=(0.1, 0.4))
    task = asyncio.create_task(rec.run())
    try:
        async with asyncio.timeout(2):
            await rec.commit([seen("a")])
            assert waits.delays == pytest.approx([0.12, 0.24, 0.48, 0.48])  # x1.2: the top
            store.failures = 1
            await rec.commit([seen("b")])
    finally:
        task.cancel()
    assert waits.delays[4:] == pytest.approx([0.12])  # from the first wait again
    assert set(waits.ranges) == {(0.8, 1.2)}


async def test_the_store_going_away_and_coming_back_is_logged_once_each(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    Waits(monkeypatch)
    clock = iter([T0, T0 + timedelta(seconds=2.5)])
    store = FlakyStore(failures=3)
    rec = Recorder(store, max_pending=50, backoff=(0.1, 0.2), now=lambda: next(clock))
    pending = [rec.submit(seen(f"s{i}")) for i in range(3)]
    task = asyncio.create_task(rec.run())
    try:
        with caplog.at_level(logging.INFO, logger="scanhub"):
            async with asyncio.timeout(2):
                while store.failures:
                    await asyncio.sleep(0)
                health = rec.health()
                await asyncio.gather(*pending)
    finally:
        task.cancel()
    assert health == RecorderHealth(False, 3, T0, "ConnectionError: the database is away")
    assert rec.health() == RecorderHealth(True, 0)
    assert [r.getMessage() for r in caplog.records] == [
        "scanhub: the store does not take commits (ConnectionError: the database is away); 3 "
        "observations wait, retrying with backoff; polling pauses when 50 wait",
        "scanhub: the store takes commits again (after 2.5s)",
    ]


# --- closing --------------------------------------------------------------------------------------


async def test_closing_commits_what_waits() -> None:
    store = FlakyStore(failures=1)
    rec = Recorder(store)
    fut = rec.submit(seen("a"))
    async with asyncio.timeout(5):
        await rec.close(grace=3)
    result = fut.result()
    assert isinstance(result, Committed) and result.outcome is Outcome.RECORDED
    assert rec.idle and store.attempts == [1, 1]


async def test_closing_waits_ten_seconds_by_default_retrying_every_200_ms(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    graces: list[float] = []
    real_timeout = asyncio.timeout

    def timeout(delay: float) -> asyncio.Timeout:
        graces.append(delay)
        return real_timeout(0.05)  # the test does not wait ten seconds

    monkeypatch.setattr(recorder_module.asyncio, "timeout", timeout)
    waits = Waits(monkeypatch)
    store = FlakyStore(failures=10**6)
    rec = Recorder(store)
    futs = [rec.submit(seen("a")), rec.submit(seen("b"))]
    with caplog.at_level(logging.ERROR, logger="scanhub"):
        await rec.close()
    assert graces == [10.0]
    assert waits.delays and set(waits.delays) == {0.2}
    assert all(f.cancelled() for f in futs) and rec.idle and rec.room.is_set()
    assert [r.getMessage() for r in caplog.records] == [
        "scanhub: stopping with 2 observations the store did not take (the store is not "
        "answering); they are lost, and the next start polls their items again"
    ]


async def test_closing_names_the_last_error_the_store_gave(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    Waits(monkeypatch)
    store = FlakyStore(failures=10**6)
    rec = Recorder(store, backoff=(0.01, 0.01))
    rec.submit(seen("a"))
    task = asyncio.create_task(rec.run())
    async with asyncio.timeout(2):
        while len(store.attempts) < 2:
            await asyncio.sleep(0)
    task.cancel()
    with caplog.at_level(logging.ERROR, logger="scanhub"):
        await rec.close(grace=0.05)
    assert caplog.records[-1].getMessage() == (
        "scanhub: stopping with 1 observations the store did not take (ConnectionError: the "
        "database is away); they are lost, and the next start polls their items again"
    )


async def test_closing_with_nothing_waiting_does_nothing() -> None:
    store = FlakyStore(failures=1)
    rec = Recorder(store)
    async with asyncio.timeout(1):
        await rec.close()
    assert store.attempts == [] and rec.idle


async def test_an_observation_no_store_can_write_is_mended_and_never_stops_the_others(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A Python string with a lone surrogate has no UTF-8: retried as if the database were
    away, it stopped every commit after it for good. It is mended (U+FFFD) and committed with
    the rest of its batch; one whose key cannot be written fails alone."""
    from scanhub import PayloadError, SQLiteStore

    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    rec = Recorder(store, backoff=(0.01, 0.01))
    task = asyncio.create_task(rec.run())
    try:
        bad_item = Scan(
            Vendor.APPSECPLUS, "asp", "s2", "a", Lifecycle.FAILED, "failed", message="x\ud800y"
        )
        bad = Observation(bad_item.key, T0, bad_item, None, "track")
        err = ItemError("PayloadError", "body \udfff", False, T0)
        with_error = Observation(seen("s3").key, T0, seen("s3").item, err, "track")
        keyless = Observation("asp:s4\ud800", T0)  # (an item's key is quoted: no item has one)
        # A payload no JSON writer takes (a plugin's object): the item keeps its last state,
        # and its error says why.
        await rec.commit([seen("s6")])
        odd = Scan(Vendor.APPSECPLUS, "asp", "s6", "a", Lifecycle.RUNNING, "running", raw={1})
        unwritable = Observation(odd.key, T0 + timedelta(minutes=1), odd, None, None)
        obs = (seen("s1"), bad, with_error, keyless, seen("s5"), unwritable)
        futs = [rec.submit(ob) for ob in obs]
        async with asyncio.timeout(10):
            done = await asyncio.gather(*futs, return_exceptions=True)
        assert [getattr(d, "outcome", None) for d in done] == [
            Outcome.RECORDED,
            Outcome.RECORDED,
            Outcome.RECORDED,
            None,
            Outcome.RECORDED,
            Outcome.UNCHANGED,
        ]
        assert isinstance(done[3], PayloadError)
        assert str(done[3]).startswith("store: cannot be stored: UnicodeEncodeError: ")
        kept = await store.get(bad_item.key)
        assert kept is not None and kept.item.message == "x\ufffdy"
        errored = await store.get(with_error.key)
        assert errored is not None and errored.last_error is not None
        assert errored.last_error.message == "body \ufffd"
        still = await store.get(odd.key)
        assert still is not None and still.item.lifecycle is Lifecycle.QUEUED
        assert still.last_error is not None and still.last_error.type == "PayloadError"
        assert still.last_error.retryable is False  # the same answer is as unwritable again
        assert still.last_error.message.startswith(
            "scanhub cannot store what was observed (TypeError: "
        )
        assert rec.health().ok  # not taken for an outage, at any moment:
        said = [r.getMessage() for r in caplog.records]
        assert not any("does not take commits" in m for m in said), said
        for key, why in (
            (bad.key, "UnicodeEncodeError"),
            (with_error.key, "UnicodeEncodeError"),
            (keyless.key, "UnicodeEncodeError"),
            (odd.key, "TypeError"),
        ):
            assert any(
                m.startswith(f"scanhub: {key!a} cannot be stored as observed ({why}: ")
                and m.endswith("): mended")
                for m in said
            ), (key, said)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def test_closing_mends_what_no_store_can_write_and_commits_what_waits_behind_it(
    tmp_path: Any,
) -> None:
    """At close (the writer stopped), an observation no store can write does not hold the
    ones behind it for the whole grace and then lose them: mended, all are committed."""
    from scanhub import SQLiteStore

    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    rec = Recorder(store)  # never run: close commits what waits
    try:
        bad_item = Scan(
            Vendor.APPSECPLUS, "asp", "s2", "a", Lifecycle.FAILED, "failed", message="x\ud800"
        )
        futs = [
            rec.submit(Observation(bad_item.key, T0, bad_item, None, "track")),
            rec.submit(seen("s3")),
        ]
        async with asyncio.timeout(5):  # well within the grace
            await rec.close(grace=30)
        assert [f.result().outcome for f in futs] == [Outcome.RECORDED, Outcome.RECORDED]
        kept = await store.get(bad_item.key)
        assert kept is not None and kept.item.message == "x\ufffd"
    finally:
        await store.close()
