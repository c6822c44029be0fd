"""Store conformance: one module, every backend (memory, SQLite; PostgreSQL joins with its
issue). A backend passes when all of this holds."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scanhub import (
    Change,
    ItemError,
    Lifecycle,
    MemoryStore,
    Retention,
    Scan,
    SQLiteStore,
    Store,
    Vendor,
    Verdict,
)
from scanhub.store import Observation, open_store
from scanhub.store.sqlite import connect, migrate

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

Factory = Callable[..., Store]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    url = ""
    if request.param == "postgres":
        from scanhub.store.postgres import PostgresStore

        from .pg import fresh_database

        dsn = request.getfixturevalue("pg_cluster")
        url = await fresh_database(dsn, f"conformance_{uuid.uuid4().hex[:12]}")

    def factory(retention: Retention | None = None) -> Store:
        if request.param == "memory":
            return MemoryStore(retention=retention)
        if request.param == "postgres":
            return PostgresStore(url, retention=retention)
        return SQLiteStore(tmp_path / "state.db", retention=retention)

    factory.kind = request.param  # type: ignore[attr-defined]
    return factory


@pytest.fixture
async def store(make: Factory) -> AsyncIterator[Store]:
    async with make() as s:
        yield s


def scan(sid: str, lc: Lifecycle = Lifecycle.RUNNING, **kw: object) -> Scan:
    return Scan(Vendor.APPSECPLUS, "asp", sid, "app-1", lc, lc.value, raw={"id": sid}, **kw)  # type: ignore[arg-type]


def change(before: Scan | None, after: Scan, minutes: int = 0) -> Change:
    return Change(before, after, T0 + timedelta(minutes=minutes))


async def test_tracked_set_keeps_order_how_and_first_state(store: Store) -> None:
    await store.track([(scan("a"), "config"), (scan("b"), "discovery:asp")])
    await store.track([(scan("a", Lifecycle.QUEUED), "track")])  # already tracked: unchanged
    got = await store.tracked()
    assert [(s.key, s.how, s.item.lifecycle) for s in got] == [
        (scan("a").key, "config", Lifecycle.RUNNING),
        (scan("b").key, "discovery:asp", Lifecycle.RUNNING),
    ]
    assert got[0].item.raw == {"id": "a"}  # the current state keeps the vendor payload


async def test_transitions_get_increasing_ids_and_update_current_state(store: Store) -> None:
    a0, a1, a2 = scan("a", Lifecycle.QUEUED), scan("a"), scan("a", Lifecycle.SUCCEEDED)
    b0 = scan("b")
    await store.track([(a0, "track"), (b0, "track")])
    first = await store.record([change(None, a0), change(a0, a1, 1)])
    second = await store.record([change(None, b0, 2), change(a1, a2, 3)])
    ids = [c.id for c in first + second]
    assert ids == sorted(ids) and len(set(ids)) == 4 and all(i is not None for i in ids)
    assert await store.last_id() == ids[-1]
    current = {s.key: s.item for s in await store.tracked()}
    assert current[a0.key].lifecycle is Lifecycle.SUCCEEDED
    everything = await store.transitions()
    assert [t.id for t in everything] == ids
    assert [t.change.after.lifecycle for t in await store.transitions(key=a0.key)] == [
        Lifecycle.QUEUED,
        Lifecycle.RUNNING,
        Lifecycle.SUCCEEDED,
    ]
    later = await store.transitions(since=ids[1])
    assert [t.id for t in later] == ids[2:]
    assert [t.id for t in await store.transitions(since=ids[0], limit=2)] == ids[1:3]
    t = everything[1]
    assert t.change.before is not None and t.change.before.lifecycle is Lifecycle.QUEUED
    assert t.change.observed_at == T0 + timedelta(minutes=1)
    assert t.change.after == a1  # equal as an item (raw is not part of equality)


async def test_observations_update_last_seen_and_error(store: Store) -> None:
    a = scan("a")
    await store.track([(a, "track")])
    err = ItemError("ServerError", "HTTP 503", True, T0, None)
    await store.observe([Observation(a.key, T0, err)])
    (held,) = await store.tracked()
    assert held.last_observed == T0 and held.last_error == err
    await store.observe([Observation(a.key, T0 + timedelta(seconds=5))])
    (held,) = await store.tracked()
    assert held.last_error is None and held.last_observed == T0 + timedelta(seconds=5)


async def test_untrack_keeps_history(store: Store) -> None:
    a = scan("a")
    await store.track([(a, "track")])
    await store.record([change(None, a)])
    await store.untrack([a.key])
    assert await store.tracked() == []
    assert len(await store.transitions(key=a.key)) == 1


async def test_retention_by_age_and_count(make: Factory) -> None:
    async with make(Retention(max_age=timedelta(days=1), max_per_item=2)) as store:
        items = [scan("a", lc) for lc in (Lifecycle.QUEUED, Lifecycle.RUNNING)]
        await store.track([(items[0], "track")])
        old = Change(None, items[0], T0 - timedelta(days=3))
        await store.record([old])
        for n in range(4):
            await store.record([change(items[n % 2], items[(n + 1) % 2], n)])
        removed = await store.prune(T0 + timedelta(hours=1))
        kept = await store.transitions(key=items[0].key)
        assert removed == 3 and len(kept) == 2
        assert [t.change.observed_at for t in kept] == [
            T0 + timedelta(minutes=2),
            T0 + timedelta(minutes=3),
        ]
    async with make() as store:
        assert await store.prune(T0) == 0  # by default, never


async def test_state_survives_reopening(make: Factory) -> None:
    if make.kind == "memory":  # type: ignore[attr-defined]
        pytest.skip("memory is gone when the process ends, by design")
    a0, a1 = scan("a", Lifecycle.QUEUED), scan("a", Lifecycle.SUCCEEDED, verdict=Verdict.PASS)
    async with make() as store:
        await store.track([(a0, "config")])
        await store.record([change(None, a0), change(a0, a1, 1)])
    async with make() as store:
        (held,) = await store.tracked()
        assert held.item == a1 and held.how == "config"
        assert await store.last_id() == 2
        more = await store.record([change(a1, a1, 2)])
        assert more[0].id == 3  # ids keep increasing across restarts


async def test_many_changes_in_one_commit(store: Store) -> None:
    items = [scan(f"s{i}") for i in range(500)]
    await store.track([(i, "track") for i in items])
    recorded = await store.record([change(None, i) for i in items])
    assert [c.id for c in recorded] == list(range(recorded[0].id or 0, (recorded[0].id or 0) + 500))


# --- SQLite specifics -----------------------------------------------------------------------


def test_migrations_run_once_even_twice_and_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "m.db"

    def open_and_migrate() -> int:
        db = connect(path)
        try:
            return migrate(db)
        finally:
            db.close()

    async def together() -> list[int]:
        return list(await asyncio.gather(*(asyncio.to_thread(open_and_migrate) for _ in range(6))))

    found = asyncio.run(together())
    assert sorted(found)[0] == 0 and all(v in (0, 1) for v in found)
    assert open_and_migrate() == 1  # a second run finds the schema current
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"items", "transitions"} <= tables


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()

    async def go() -> None:
        async with SQLiteStore(path):
            pass

    with pytest.raises(RuntimeError, match="newer than this scanhub"):
        asyncio.run(go())


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store("memory"), MemoryStore)
    assert isinstance(open_store(str(tmp_path / "x.db")), SQLiteStore)
    s = open_store(f"sqlite:///{tmp_path}/y.db")
    assert isinstance(s, SQLiteStore) and s.path == f"{tmp_path}/y.db"


# --- PostgreSQL specifics -------------------------------------------------------------------


async def test_postgres_migrations_are_safe_twice_and_concurrently(pg_cluster: str) -> None:
    import asyncpg

    from scanhub.store.postgres import migrate

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "migrations")

    async def once() -> int:
        con = await asyncpg.connect(url)
        try:
            return await migrate(con)
        finally:
            await con.close()

    found = await asyncio.gather(*(once() for _ in range(6)))
    assert sorted(found) == [0, 1, 1, 1, 1, 1]  # exactly one process migrated
    assert await once() == 1
    con = await asyncpg.connect(url)
    try:
        tables = {r["tablename"] for r in await con.fetch("SELECT tablename FROM pg_tables")}
    finally:
        await con.close()
    assert {"items", "transitions", "leases", "scanhub_meta"} <= tables


async def test_postgres_leases_fence_and_expire(pg_cluster: str) -> None:
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "leases")
    a, b = PostgresStore(url, holder="a"), PostgresStore(url, holder="b")
    async with a, b:
        assert await a.lease(["asp", "jf"], 0.5) == {"asp", "jf"}
        assert await b.lease(["asp", "jf"], 0.5) == set()  # held by a
        item = scan("s1")
        await a.track([(item, "track")])
        assert len(await b.record([change(None, item)])) == 0  # b may not record asp: fenced
        assert len(await a.record([change(None, item)])) == 1
        await asyncio.sleep(0.7)  # a stops renewing: its leases expire
        assert await b.lease(["asp", "jf"], 5) == {"asp", "jf"}
        assert await a.lease(["asp"], 5) == set()
        assert len(await a.record([change(item, scan("s1", Lifecycle.SUCCEEDED), 1)])) == 0
        await b.release()
        assert await a.lease(["asp"], 5) == {"asp"}  # released at once on a clean stop


async def test_postgres_follow_sees_every_commit_in_order(pg_cluster: str) -> None:
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "follow")
    async with PostgresStore(url) as writer, PostgresStore(url) as reader:
        seen: list[int] = []

        async def follow() -> None:
            async for c in reader.follow(0):
                seen.append(c.id or 0)
                if len(seen) == 50:
                    return

        task = asyncio.create_task(follow())
        items = [scan(f"s{i}") for i in range(50)]
        await writer.track([(i, "track") for i in items])

        async def write(chunk: list[Scan]) -> None:
            await writer.record([change(None, i) for i in chunk])

        await asyncio.gather(*(write(items[k : k + 5]) for k in range(0, 50, 5)))
        await asyncio.wait_for(task, 10)
    assert seen == sorted(seen) and len(set(seen)) == 50


def test_a_password_in_a_state_url_is_refused() -> None:
    from scanhub import ConfigError
    from scanhub.store.postgres import database_url, redact_url

    with pytest.raises(ConfigError, match="must not carry a password"):
        database_url("postgresql://u:hunter2@db/x", {})
    assert (
        database_url("postgresql://", {"SCANHUB_DATABASE_URL": "postgresql://u:p@h/d"})
        == "postgresql://u:p@h/d"
    )
    assert redact_url("postgresql://u:p4ss@h:5432/d") == "postgresql://u:***@h:5432/d"
    store = open_store("postgresql://u@h/d", holder="x")
    assert "postgresql://u@h/d" in repr(store)
