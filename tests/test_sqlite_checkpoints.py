"""SQLiteStore's WAL checkpoints, run on a thread of their own (`Checkpointer`): where the WAL
stands is read as SQLite itself reports it, a stream of commits keeps the WAL bounded even when
that thread never catches up, a failing thread hands the checkpoints back to SQLite, and
closing leaves the file whole, without a WAL."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from scanhub import Lifecycle, Scan
from scanhub.store import Observation, SQLiteStore
from scanhub.store import sqlite as backend
from scanhub.store.sqlite import Checkpointer, connect

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def scans(n: int) -> list[Scan]:
    return [
        Scan("appsecplus", "ci", f"scan-{i:05d}", f"app-{i % 7}", Lifecycle.RUNNING, "queued")
        for i in range(n)
    ]


def step(items: list[Scan], n: int) -> list[Observation]:
    """Every item's next vendor status: a transition each."""
    at = T0 + timedelta(seconds=n)
    return [
        Observation(
            s.key,
            at,
            Scan(s.vendor, s.source, s.id, s.application_id, Lifecycle.RUNNING, f"step-{n}"),
        )
        for s in items
    ]


async def track(store: SQLiteStore, items: list[Scan]) -> None:
    await store.track([(s, "test") for s in items], T0)


def has_wal(path: Path) -> bool:
    return os.path.exists(f"{path}-wal")


def checkpointer(store: SQLiteStore) -> Checkpointer:
    assert store._checkpoints is not None
    return store._checkpoints


async def test_where_the_wal_stands_is_read_as_sqlite_reports_it(tmp_path: Path) -> None:
    """`position` (the WAL index's frames and frames copied) equals what SQLite's own
    `wal_checkpoint` answers, before and after a checkpoint."""
    items = scans(40)
    async with SQLiteStore(tmp_path / "s.db") as store:
        await track(store, items)
        await store.commit(step(items, 1))
        frames, copied = checkpointer(store).position() or (0, 0)
        assert frames > copied  # written, not yet in the file (under CHECKPOINT_FRAMES)
        # SQLite's own answer: (busy, frames in the WAL, frames copied); with no reader
        # holding frames back, a PASSIVE checkpoint copies them all.
        busy, log, done = await store._run(
            lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        )
        assert busy == 0 and log == frames and done == frames
        assert checkpointer(store).position() == (frames, frames)


async def test_a_stream_of_commits_is_checkpointed_on_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's connection does not checkpoint in its commits (`wal_autocheckpoint` 0);
    the checkpointer's thread does, every CHECKPOINT_FRAMES frames, and the WAL starts over."""
    monkeypatch.setattr(backend, "CHECKPOINT_FRAMES", 40)
    monkeypatch.setattr(backend, "WAL_LIMIT_FRAMES", 160)
    items = scans(200)
    async with SQLiteStore(tmp_path / "s.db") as store:
        await track(store, items)
        assert await store._run(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone()) == (
            0,
        )
        seen = []
        for n in range(1, 40):
            await store.commit(step(items, n))
            seen.append(checkpointer(store).position())
            await asyncio.sleep(0.005)  # a service's commits have time between them
        assert checkpointer(store).passes > 0
        frames = [f for f, _ in (p for p in seen if p is not None)]
        assert min(frames[frames.index(max(frames)) :]) < max(frames)  # it started over
        history = await store.transitions(key=items[0].key)
    assert len(history) == 40  # the first state and 39 steps


async def test_the_wal_starts_over_when_the_thread_never_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint on the thread copies the WAL as it was when it began; in a stream of
    commits more have come by its end, and SQLite starts the WAL over only when a write begins
    with all of it copied. Past WAL_LIMIT_FRAMES, the store's thread waits for the thread's
    pass and copies the rest itself: the WAL holds at most that limit and a commit, however
    slow the thread is (however many commits land during one of its passes)."""
    monkeypatch.setattr(backend, "CHECKPOINT_FRAMES", 40)
    monkeypatch.setattr(backend, "WAL_LIMIT_FRAMES", 160)
    real = Checkpointer._checkpoint

    def slow(self: Checkpointer) -> bool | None:
        result = real(self)
        time.sleep(0.05)  # commits land after what it copied (a slow sync at its end)
        return result

    monkeypatch.setattr(Checkpointer, "_checkpoint", slow)
    items = scans(200)
    async with SQLiteStore(tmp_path / "s.db") as store:
        await track(store, items)
        frames = []
        for n in range(1, 80):
            await store.commit(step(items, n))
            frames.append((checkpointer(store).position() or (0, 0))[0])
        commit = max(b - a for a, b in pairwise([0, *frames]))  # the most one commit wrote
        restarts = sum(b < a for a, b in pairwise(frames))
        assert restarts >= 3 and max(frames) < backend.WAL_LIMIT_FRAMES + commit
        count = await store._run(
            lambda db: db.execute("SELECT COUNT(*) FROM transitions").fetchone()[0]
        )
    assert count == 200 * 80  # the first states and 79 steps of each


async def test_a_failing_checkpoint_thread_hands_checkpoints_back_to_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If the thread's checkpoint fails, the store's connection checkpoints as SQLite does by
    default from the next write on, and says so once."""
    monkeypatch.setattr(backend, "CHECKPOINT_FRAMES", 40)
    items = scans(200)
    async with SQLiteStore(tmp_path / "s.db") as store:
        # Before the thread's first checkpoint: its connection cannot be opened.
        checkpointer(store).path = str(tmp_path / "missing" / "s.db")
        with caplog.at_level(logging.WARNING, logger="scanhub"):
            await track(store, items)  # more than 40 frames: a pass, which fails
            running = checkpointer(store)._running
            assert running is not None
            assert not await asyncio.wrap_future(running)
            for n in range(1, 8):  # the first of them sees it
                await store.commit(step(items, n))
        warnings = [r for r in caplog.records if "checkpoint" in r.getMessage()]
        assert len(warnings) == 1
        assert "commits checkpoint the WAL themselves" in warnings[0].getMessage()
        assert await store._run(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone()) == (
            40,
        )
        assert checkpointer(store).passes == 0
        (last,) = await store.commit(step(items[:1], 8))
    assert last.id is not None


async def test_closing_leaves_the_file_whole_and_no_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread's connection is closed with the store's: the last of them copies the rest of
    the WAL into the file and removes it."""
    monkeypatch.setattr(backend, "CHECKPOINT_FRAMES", 40)
    path = tmp_path / "s.db"
    items = scans(300)
    async with SQLiteStore(path) as store:
        await track(store, items)
        for n in range(1, 15):
            await store.commit(step(items, n))
        checkpoints = checkpointer(store)
    assert checkpoints.passes > 0  # (closing waits for a pass under way)
    assert not has_wal(path)
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM transitions").fetchone()[0] == 300 * 15
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


async def test_commits_landing_during_a_pass_are_copied_without_another_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass copies the WAL as it stood when the pass began; what is committed meanwhile is
    copied before the thread stops, not left until a next write that may never come (until
    then a power loss could take it, where SQLite's own checkpoint would have synced it)."""
    monkeypatch.setattr(backend, "CHECKPOINT_FRAMES", 40)
    monkeypatch.setattr(backend, "WAL_LIMIT_FRAMES", 10**6)  # the thread alone copies
    passed, go_on = threading.Event(), threading.Event()
    real = Checkpointer._checkpoint

    def held(self: Checkpointer) -> bool | None:
        result = real(self)
        if not go_on.is_set():  # the first pass ends only once the burst below is committed
            passed.set()
            go_on.wait(30)
        return result

    monkeypatch.setattr(Checkpointer, "_checkpoint", held)
    items = scans(200)
    async with SQLiteStore(tmp_path / "s.db") as store:
        await track(store, items)  # more than 40 frames: a pass
        assert await asyncio.to_thread(passed.wait, 30)
        for n in range(1, 6):
            await store.commit(step(items, n))
        frames, copied = checkpointer(store).position() or (0, 0)
        assert frames - copied >= 40  # the burst, not copied by the pass under way
        running = checkpointer(store)._running
        assert running is not None
        go_on.set()
        await asyncio.wrap_future(running)  # the thread is done; nothing written since
        frames, copied = checkpointer(store).position() or (0, 0)
        assert frames - copied < 40


async def test_checkpoints_stay_on_the_store_s_file_after_a_change_of_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store opened by a relative path: its thread's connection (opened at the first pass)
    is to the store's file though the process has changed its working directory since (not an
    empty database created there, on which a checkpoint fails and turns the thread off)."""
    monkeypatch.setattr(backend, "CHECKPOINT_FRAMES", 40)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    items = scans(200)
    async with SQLiteStore("s.db") as store:
        monkeypatch.chdir(tmp_path / "b")
        await track(store, items)  # more than 40 frames: a pass
        running = checkpointer(store)._running
        assert running is not None
        assert await asyncio.wrap_future(running)  # it did not fail
        assert checkpointer(store).passes > 0
    assert not (tmp_path / "b" / "s.db").exists()
    assert (tmp_path / "a" / "s.db").exists()


async def test_an_index_that_does_not_move_does_not_keep_the_thread_passing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the index read not the one of the WAL the thread copies (a stale `-shm` file by
    the database, SQLite's own elsewhere), its frames never copied: the thread stops after a
    pass that moved nothing in it, instead of passing for ever."""
    monkeypatch.setattr(backend, "CHECKPOINT_FRAMES", 40)
    passes = 0
    real = Checkpointer._checkpoint

    def counted(self: Checkpointer) -> bool | None:
        nonlocal passes
        passes += 1
        if passes == 100:
            self._halt.set()  # (else this test would not end)
        return real(self)

    monkeypatch.setattr(Checkpointer, "_checkpoint", counted)
    async with SQLiteStore(tmp_path / "s.db") as store:
        monkeypatch.setattr(checkpointer(store), "position", lambda: (1000, 0))
        await track(store, scans(10))  # a write, after which 1,000 frames are not copied
        running = checkpointer(store)._running
        assert running is not None
        assert await asyncio.wrap_future(running)
    assert passes == 1


CHILD = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
db.execute("UPDATE items SET message = 'written by another process'")
print(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
"""


async def test_closing_a_store_keeps_the_locks_of_its_process_s_other_connections(
    tmp_path: Path,
) -> None:
    """Closing a store leaves the WAL locks of the other connections of its process in place
    (POSIX drops every lock a process holds on a file when it closes any descriptor of that
    file, the `-shm` file's too): another process cannot empty the WAL under their reader."""
    path = tmp_path / "s.db"
    items = scans(50)
    reader = connect(path)
    try:
        async with SQLiteStore(path) as store:
            await track(store, items)
            await store.commit(step(items, 1))  # in the WAL: the reader's snapshot reads it there
            reader.execute("BEGIN")
            seen = "SELECT COUNT(*) FROM items WHERE vendor_status = 'step-1'"
            assert reader.execute(seen).fetchone() == (50,)
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == "1"  # busy: this process still reads the WAL
        assert reader.execute(seen).fetchone() == (50,)  # (was: disk I/O error)
        reader.execute("COMMIT")
    finally:
        reader.close()


def test_no_checkpointer_without_a_wal_index(tmp_path: Path) -> None:
    """An in-memory database has no `-shm` file: SQLite keeps its own checkpoints."""
    db = connect(":memory:")
    try:
        assert Checkpointer.attach(db, ":memory:") is None
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    finally:
        db.close()
