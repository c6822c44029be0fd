"""ScanHub over real loopback HTTP against the vendor simulators."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scanhub import (
    AppSecPlus,
    AppTrust,
    Change,
    Client,
    IQServer,
    Lifecycle,
    MemoryStore,
    Promotion,
    RetryPolicy,
    Scan,
    ScanHub,
    ThreadFix,
    Timeouts,
    Vendor,
    Verdict,
    WaitTimeoutError,
)
from scanhub.sim import AppSecPlusSim, AppTrustSim, Faults, IQSim, SimClock, ThreadFixSim
from scanhub.store import Observation, Outcome

FAST = RetryPolicy(attempts=3, backoff_initial=0.001, backoff_max=0.01, default_429_wait=0.02)


@contextlib.asynccontextmanager
async def stack(speed: float = 50.0, **faults: Faults) -> AsyncIterator[dict[str, Any]]:
    """The four simulators (fast clock) and a hub with one client each."""
    clock = SimClock(speed=speed)
    sims = {
        "iq": IQSim(clock=clock, faults=faults.get("iq")),
        "threadfix": ThreadFixSim(clock=clock, faults=faults.get("threadfix")),
        "appsecplus": AppSecPlusSim(clock=clock, faults=faults.get("appsecplus")),
        "apptrust": AppTrustSim(clock=clock, faults=faults.get("apptrust")),
    }
    async with contextlib.AsyncExitStack() as es:
        for sim in sims.values():
            await es.enter_async_context(sim)
        t = Timeouts(connect=1.0, total=2.0)
        clients = {
            "iq": IQServer(sims["iq"].base_url, "admin", "admin123", retry=FAST, timeouts=t),
            "threadfix": ThreadFix(
                sims["threadfix"].base_url, "tf-api-key-0001", retry=FAST, timeouts=t
            ),
            "appsecplus": AppSecPlus(
                sims["appsecplus"].base_url, "asp-token-0001", retry=FAST, timeouts=t
            ),
            "apptrust": AppTrust(
                sims["apptrust"].base_url, "jfrog-access-token-0001", retry=FAST, timeouts=t
            ),
        }
        async with ScanHub(clients.values(), interval=0.01, max_interval=0.05) as hub:
            yield {"sims": sims, "clients": clients, "hub": hub, "clock": clock}


async def seed_all(env: dict[str, Any]) -> dict[str, tuple[Lifecycle, Verdict | None]]:
    """Trigger one success and one failure on every vendor; returns key -> designed end."""
    sims, c, hub = env["sims"], env["clients"], env["hub"]
    app, scans = sims["iq"].add_application("MyApp")
    sims["iq"].fail_stage(app, "release", "boom")
    sims["threadfix"].add_application(6)
    sims["threadfix"].interrupt("bad.fpr", "Unable to parse")
    sims["appsecplus"].add_application("app-1")
    sims["appsecplus"].fail("app-1", "dast")
    sims["apptrust"].add_version("my-app", "1.0.0")
    sims["apptrust"].gate("my-app", "PROD", "fail", "critical vulnerabilities")
    S, F = Lifecycle.SUCCEEDED, Lifecycle.FAILED
    plan = [
        (await c["iq"].promote_scan(app, target_stage="stage-release", scan_id=scans[0]), S, None),
        (await c["iq"].promote_scan(app, target_stage="release", source_stage="build"), F, None),
        (await c["threadfix"].upload_scan(6, b"<x/>", filename="good.fpr"), S, None),
        (await c["threadfix"].upload_scan(6, b"<x/>", filename="bad.fpr"), F, None),
        (await c["appsecplus"].trigger_scan("app-1", "sast"), S, None),
        (await c["appsecplus"].trigger_scan("app-1", "dast"), F, None),
        (await c["apptrust"].promote("my-app", "1.0.0", "QA"), S, Verdict.PASS),
        (await c["apptrust"].promote("my-app", "1.0.0", "PROD"), F, Verdict.FAIL),
    ]
    return {hub.track(item): (lc, v) for item, lc, v in plan}


async def check_final(hub: ScanHub, designed: dict[str, tuple[Lifecycle, Verdict | None]]) -> None:
    got = {i.key: i for i in await hub.current()}
    for key, (lifecycle, verdict) in designed.items():
        assert got[key].lifecycle is lifecycle, key
        if verdict is not None:
            assert got[key].verdict is verdict, key


async def test_every_vendor_end_to_end_with_watch() -> None:
    async with stack() as env:
        designed = await seed_all(env)
        hub = env["hub"]
        changes = [c async for c in hub.watch(deadline=20)]
    await check_final(hub, designed)
    finals = [c for c in changes if c.after.lifecycle.is_terminal]
    assert sorted(c.key for c in finals) == sorted(designed)  # each final state exactly once
    assert [c for c in changes if c.before is None] == changes[: len(designed)]
    tf_statuses = [c.after.vendor_status for c in changes if c.after.vendor == Vendor.THREADFIX]
    assert "DONE" in tf_statuses and "SCAN_INTERRUPTED" in tf_statuses


async def test_snapshot_with_one_source_down() -> None:
    async with stack() as env:
        designed = await seed_all(env)
        hub: ScanHub = env["hub"]
        await env["sims"]["appsecplus"].stop()  # connection refused from now on
        env["clock"].advance(100)
        snap = await hub.snapshot()
    down = {k for k in designed if k.startswith("appsecplus")}
    assert set(snap.errors) == down
    for key in down:
        assert snap.errors[key].type == "TransportError" and snap.errors[key].retryable
        item = next(i for i in snap.items if i.key == key)
        assert item.lifecycle is Lifecycle.QUEUED  # the last known state is kept
    up = {i.key: i for i in snap.items if i.key not in down}
    assert all(i.lifecycle.is_terminal for i in up.values())


async def test_snapshot_keeps_last_state_on_timeout() -> None:
    async with stack(appsecplus=Faults(latency=0.5)) as env:
        env["sims"]["appsecplus"].add_application("a")
        scan = await env["clients"]["appsecplus"].trigger_scan("a", "sast")
        env["clients"]["appsecplus"].transport.timeouts = Timeouts(connect=0.1, total=0.1)
        env["clients"]["appsecplus"].transport.retry = RetryPolicy(attempts=1)
        env["hub"].track(scan)
        snap = await env["hub"].snapshot()
    assert snap.errors[scan.key].type == "RequestTimeout"
    assert snap.items == (scan,)


FAULTS = {
    "5xx": Faults(error_rate=0.4, seed=1),
    "429 with Retry-After": Faults(rate_limit_rate=0.4, retry_after=0.02, seed=2),
    "429 without Retry-After": Faults(rate_limit_rate=0.4, retry_after=None, seed=3),
    "truncated JSON": Faults(malformed_rate=0.4, seed=4),
    "HTML error page": Faults(html_rate=0.4, seed=5),
    "dropped connections": Faults(drop_rate=0.3, seed=6),
    "latency": Faults(latency=0.05, seed=7),
    "unknown status values": Faults(unknown_status_rate=0.5, seed=8),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_watch_under_fault_loses_and_duplicates_no_final_state(fault: str) -> None:
    faults = FAULTS[fault]
    async with stack() as env:
        designed = await seed_all(env)  # triggered while healthy: POSTs are not retried
        for sim in env["sims"].values():
            sim.faults = Faults(
                **{
                    k: getattr(faults, k)
                    for k in (
                        "latency",
                        "error_rate",
                        "rate_limit_rate",
                        "retry_after",
                        "malformed_rate",
                        "html_rate",
                        "drop_rate",
                        "unknown_status_rate",
                        "seed",
                    )
                }
            )
        hub = env["hub"]
        changes = [c async for c in hub.watch(deadline=30)]
        seen = sum(s.stats.requests for s in env["sims"].values())
    await check_final(hub, designed)
    finals = [c.key for c in changes if c.after.lifecycle.is_terminal]
    assert sorted(finals) == sorted(designed)
    assert seen > len(designed)


async def test_rate_limited_source_waits_as_told() -> None:
    async with stack(speed=1.0) as env:
        env["sims"]["appsecplus"].add_application("a")
        scan = await env["clients"]["appsecplus"].trigger_scan("a", "sast")
        env["sims"]["appsecplus"].faults = Faults(rate_limit_rate=1.0, retry_after=120)
        hub = env["hub"]
        hub.track(scan)
        changes = [c async for c in hub.watch(deadline=0.5)]
        sent = env["sims"]["appsecplus"].stats.requests
    assert [c.before for c in changes] == [None]
    assert sent == 2  # the trigger, then one poll answered 429: the source then holds 120 s
    assert hub.errors()[scan.key].retry_after == 120


class ScriptedClient(Client):
    """A client whose refresh answers are scripted (for out-of-order answers)."""

    vendor = Vendor.APPSECPLUS

    def __init__(self, answers: list[Lifecycle]) -> None:
        super().__init__("http://scripted", name="scripted")
        self.answers = answers
        self.calls = 0

    async def refresh(self, item: Any) -> Any:
        lc = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return Scan(Vendor.APPSECPLUS, "scripted", item.id, "a", lc, lc.value)


async def test_lifecycle_is_monotonic_under_out_of_order_answers() -> None:
    L = Lifecycle
    client = ScriptedClient([L.RUNNING, L.QUEUED, L.RUNNING, L.SUCCEEDED, L.RUNNING, L.QUEUED])
    async with ScanHub([client], interval=0.001, max_interval=0.001) as hub:
        hub.track(Scan(Vendor.APPSECPLUS, "scripted", "s1", "a", L.QUEUED, "queued"))
        seen = [c.after.lifecycle async for c in hub.watch(deadline=5)]
        assert seen == [L.QUEUED, L.RUNNING, L.SUCCEEDED]
        snap = await hub.snapshot(refresh_terminal=True)  # a stale "running" after the end
        assert snap.items[0].lifecycle is L.SUCCEEDED
        hub.track(Scan(Vendor.APPSECPLUS, "scripted", "s1", "a", L.QUEUED, "queued"))
        assert (await hub.current())[0].lifecycle is L.SUCCEEDED


async def test_watch_polls_stable_items_less_often() -> None:
    client = ScriptedClient([Lifecycle.RUNNING])
    async with ScanHub([client], interval=0.01, max_interval=0.08, backoff=2.0) as hub:
        hub.track(Scan(Vendor.APPSECPLUS, "scripted", "s1", "a", Lifecycle.RUNNING, "running"))
        async for _ in hub.watch(deadline=0.6):
            pass
    # fixed 10 ms polling would be ~60 calls; capped backoff to 80 ms gives far fewer
    assert 3 <= client.calls <= 15


async def test_wait_returns_terminal_or_times_out() -> None:
    async with stack() as env:
        env["sims"]["appsecplus"].add_application("a")
        asp = env["clients"]["appsecplus"]
        scan = await asp.trigger_scan("a", "sast")
        done = await env["hub"].wait(scan, timeout=10)
        assert done.lifecycle is Lifecycle.SUCCEEDED
        env["sims"]["appsecplus"].clock.speed = 0.0001
        slow = await asp.trigger_scan("a", "dast")
        with pytest.raises(WaitTimeoutError) as err:
            await env["hub"].wait(slow, timeout=0.1)
        assert err.value.item is not None
        assert err.value.item.lifecycle in (Lifecycle.QUEUED, Lifecycle.RUNNING)


async def test_discovery_tracks_query_results_and_pages() -> None:
    async with stack() as env:
        sims, hub = env["sims"], env["hub"]
        sims["apptrust"].add_synthetic_version("big", "9.9.9", 250)
        sims["appsecplus"].seed_scans("app-9", 5)
        promos = await hub.discover_promotions("apptrust", "big", "9.9.9")
        scans = await hub.discover_scans("appsecplus", "app-9")
        missing = await hub.discover_promotions("apptrust", "nope", "1")
        items = await hub.current()
    assert len(promos) == 250 and len({p.key for p in promos}) == 250
    assert len(scans) == 5 and len(items) == 255
    assert missing == [] and hub.discovery.errors["apptrust"].type == "NotFoundError"


async def test_a_client_bug_does_not_take_others_down() -> None:
    class Broken(ScriptedClient):
        vendor = Vendor.APPTRUST

        async def refresh(self, item: Any) -> Any:
            raise KeyError("bug")

    ok = ScriptedClient([Lifecycle.SUCCEEDED])
    broken = Broken([])
    broken.name = "broken"
    async with ScanHub([ok, broken]) as hub:
        hub.track(Scan(Vendor.APPSECPLUS, "scripted", "1", "a", Lifecycle.QUEUED, ""))
        hub.track(Promotion(Vendor.APPTRUST, "broken", "2", "a", Lifecycle.QUEUED, ""))
        snap = await hub.snapshot()
    assert snap.items[0].lifecycle is Lifecycle.SUCCEEDED
    assert snap.errors[snap.items[1].key].type == "KeyError"


async def test_hub_shares_one_session_and_closes_it() -> None:
    a, b = AppSecPlus("http://a", "t0ken"), AppTrust("http://b", "t0ken")
    async with ScanHub([a, b]):
        session = a._session
        assert session is not None and b._session is session  # the engine's, adopted by both
        assert not session.closed
    assert session.closed


def test_change_and_snapshot_serialise() -> None:
    from scanhub import Snapshot, to_dict

    now = datetime(2026, 1, 1, tzinfo=UTC)
    s = Scan(Vendor.APPSECPLUS, "x", "1", "a", Lifecycle.RUNNING, "running")
    d = to_dict(Change(None, s, now))
    assert (
        d["before"] is None
        and d["after"]["key"] == s.key
        and d["observed_at"] == "2026-01-01T00:00:00.000000Z"
    )
    snap = to_dict(Snapshot((s,), {}, now))
    assert snap["items"][0]["lifecycle"] == "running"


async def test_simulator_enforces_its_own_rate_limit_and_logs_answers() -> None:
    import aiohttp

    sim = AppSecPlusSim(faults=Faults(server_rate_limit=(2, 60.0), retry_after=7))
    async with sim, aiohttp.ClientSession() as session:
        sim.add_application("a")
        statuses = []
        for _ in range(3):
            async with session.get(
                f"{sim.base_url}/scans", headers={"Authorization": "Bearer asp-token-0001"}
            ) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
    assert statuses == [(200, None), (200, None), (429, "7")]
    assert [status for _, status in sim.stats.answers] == [200, 200, 429]
    assert sim.stats.requests == 3


async def test_a_snapshot_of_many_items_runs_as_many_polls_as_a_source_may_not_a_task_each() -> (
    None
):
    """A snapshot of 600 items of a source that may run 4 polls at once keeps at most 4 in
    flight and never holds a task per item (600 tasks alive until the last answer would be
    walked by the garbage collector again and again); every item is polled once."""
    import asyncio
    import json

    from scanhub import MockTransport
    from scanhub.sansio import Request, Response

    in_flight = most = 0
    tasks_seen = 0
    polled: list[str] = []

    async def handler(req: Request) -> Response:
        nonlocal in_flight, most, tasks_seen
        in_flight += 1
        most = max(most, in_flight)
        tasks_seen = max(tasks_seen, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        in_flight -= 1
        scan_id = req.url.rsplit("/", 1)[-1]
        polled.append(scan_id)
        body = {"id": scan_id, "applicationId": "a", "type": "sast", "status": "running"}
        return Response(200, json.dumps(body).encode(), {}, req.operation, req.url)

    asp = AppSecPlus("https://asp.example", "t0ken-abcdef", wire=MockTransport(handler))
    async with ScanHub([asp], max_concurrency=4) as hub:
        items = [await asp.scan(f"s{i}") for i in range(600)]
        for item in items:
            hub.track(item)
        polled.clear()
        tasks_seen = 0
        snap = await hub.snapshot()
    assert sorted(polled) == sorted(f"s{i}" for i in range(600))  # each once
    assert len(snap.items) == 600 and not snap.errors
    assert most <= 4
    assert tasks_seen < 50, tasks_seen


async def test_a_scan_tracked_by_id_alone_is_the_one_item_its_application_discovers() -> None:
    """AppSec+ by scan id alone: the track reads the scan to learn its application (an item's
    key names it), so discovery of that application finds the same item, not a second one
    (before: a placeholder keyed without the application, listed twice under one key, whose
    listed key could not be untracked)."""
    from scanhub._registry import TrackConfig
    from scanhub.vendors.appsecplus.spec import SPEC, AppSecPlusTrack

    async with stack() as env:
        sims, hub = env["sims"], env["hub"]
        client = env["clients"]["appsecplus"]
        sims["appsecplus"].add_application("app-12345")
        (scan_id,) = sims["appsecplus"].seed_scans("app-12345", 1, duration=0.2)
        track = AppSecPlusTrack(source=client.name, scan_id=scan_id)
        assert isinstance(track, TrackConfig)
        tracking = await SPEC.resolve_track(client, track)
        (item,) = tracking.items
        assert item.key == f"appsecplus:appsecplus:scan:app-12345:{scan_id}"
        hub.track(item)
        await hub.discovery.add_rule(client.name, {"application_id": "app-12345"})
        await hub.wait(item, timeout=10)
        await hub.discovery.rediscover()  # once more, the scan finished
        found = await hub.current()
    assert [(i.key, i.lifecycle.is_terminal) for i in found] == [(item.key, True)]


async def test_a_poll_whose_answer_is_another_item_is_an_error_not_a_second_item() -> None:
    """A track that names the wrong application: the vendor's answer is another item (another
    key). It is the item's error, naming both keys, never recorded under the tracked key."""
    async with stack() as env:
        sims, hub = env["sims"], env["hub"]
        sims["appsecplus"].add_application("app-12345")
        (scan_id,) = sims["appsecplus"].seed_scans("app-12345", 1, duration=0)
        wrong = Scan(Vendor.APPSECPLUS, "appsecplus", scan_id, "app-x", Lifecycle.UNKNOWN, "")
        hub.track(wrong)
        snap = await hub.snapshot()
    (error,) = snap.errors.values()
    assert error.type == "ConfigError" and not error.retryable
    assert error.message == (
        f"appsecplus/appsecplus poll: {scan_id}: the vendor's answer is the item "
        f"'appsecplus:appsecplus:scan:app-12345:{scan_id}', not the tracked "
        f"'appsecplus:appsecplus:scan:app-x:{scan_id}': check the track's ids"
    )
    assert [(i.key, i.lifecycle) for i in snap.items] == [(wrong.key, Lifecycle.UNKNOWN)]


async def test_a_track_whose_lookup_failed_while_the_vendor_was_away_is_tracked_later() -> None:
    """A scan tracked by its id alone is read when the track is resolved; when the vendor
    answers 5xx then, the lookup is kept and run again with the discovery rules (every
    minute in `scanhub serve`) until it answers, never lost."""
    from scanhub._compose import apply_tracks
    from scanhub._config import parse_config

    async with stack(appsecplus=Faults(error_rate=1.0)) as env:
        sims, hub = env["sims"], env["hub"]
        sims["appsecplus"].add_application("app-12345")
        (scan_id,) = sims["appsecplus"].seed_scans("app-12345", 1, duration=0)
        config = parse_config(
            {
                "source": [{"vendor": "appsecplus", "base_url": "http://x", "token_env": "T"}],
                "track": [{"source": "appsecplus", "scan_id": scan_id}],
            },
            "c.toml",
        )
        await apply_tracks(hub, config)
        assert await hub.current() == []
        assert hub.discovery.errors["appsecplus"].type == "ServerError"
        assert len(hub.discovery.lookups) == 1
        await hub.discovery.rediscover()  # still away: kept
        assert len(hub.discovery.lookups) == 1 and await hub.current() == []
        sims["appsecplus"].faults = Faults()
        found = await hub.discovery.rediscover()
        assert [i.key for i in found] == [f"appsecplus:appsecplus:scan:app-12345:{scan_id}"]
        assert hub.discovery.lookups == [] and "appsecplus" not in hub.discovery.errors
        assert [i.key for i in await hub.current()] == [found[0].key]


async def test_watch_yields_a_placeholder_first_with_its_first_state_not_before() -> None:
    """An item tracked by id alone is a placeholder (`unknown`, no vendor status) until its
    first answer: no state, so the watch's first change of it is that answer, not an
    `unknown` one followed by a second "first" change."""
    L = Lifecycle
    client = ScriptedClient([L.RUNNING, L.SUCCEEDED])
    async with ScanHub([client], interval=0.001, max_interval=0.001) as hub:
        hub.track(Scan(Vendor.APPSECPLUS, "scripted", "s1", "a", L.UNKNOWN, ""))
        await hub.flush()
        changes = [c async for c in hub.watch(deadline=5)]
    assert [(c.before is None, c.after.lifecycle) for c in changes] == [
        (True, L.RUNNING),
        (False, L.SUCCEEDED),
    ]


class Answering(Client):
    """A source whose every poll answers `answer` (counting the polls)."""

    vendor = "appsecplus"
    answer: Scan

    async def refresh(self, item: Any) -> Any:
        self.polls = getattr(self, "polls", 0) + 1
        return self.answer


@pytest.mark.parametrize("answer", [Lifecycle.FAILED, Lifecycle.RUNNING])
async def test_a_change_the_store_finds_stale_is_polled_again_until_recorded(
    answer: Lifecycle,
) -> None:
    """A poll's change the store judges stale (a webhook, or a replica whose clock is ahead,
    committed a later observation first) is not recorded: the item must be polled again
    until it is. It was dropped when the change was a final state (the store showing it under
    way for good), and otherwise taken as known (the next polls, seeing it again, were mere
    sightings)."""
    store = MemoryStore()
    start = datetime.now(UTC)
    clock = [start]  # the engine's wall clock: behind the other's until the test moves it
    running = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.RUNNING, "running")
    await store.commit([Observation.of(running, "track", start)])
    ahead = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.RUNNING, "running-2")
    await store.commit([Observation.of(ahead, None, start + timedelta(seconds=10))])
    client = Answering("http://asp.invalid", name="asp")
    client.answer = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", answer, "answered")
    hub = ScanHub([client], interval=0.05, max_interval=0.1, store=store, now=lambda: clock[0])
    async with hub, hub.polling():
        async with asyncio.timeout(5):
            while getattr(client, "polls", 0) < 2:  # each found stale
                await asyncio.sleep(0.02)
        stored = await store.get(running.key)
        assert stored is not None and stored.item.vendor_status == "running-2"
        clock[0] = start + timedelta(seconds=20)  # past the other's observation
        async with asyncio.timeout(5):
            while True:
                stored = await store.get(running.key)
                assert stored is not None
                if stored.item.vendor_status == "answered":
                    break
                await asyncio.sleep(0.02)


async def test_a_pushed_final_state_the_store_finds_stale_leaves_the_item_polled() -> None:
    """A webhook's state the store judges stale is not recorded: the item it names must not
    leave the working set on it (it did when the state was final: never polled again, the
    store showing it under way)."""
    store = MemoryStore()
    start = datetime.now(UTC)
    running = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.RUNNING, "running")
    await store.commit([Observation.of(running, "track", start)])
    ahead = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.RUNNING, "running-2")
    await store.commit([Observation.of(ahead, None, start + timedelta(seconds=5))])
    client = Answering("http://asp.invalid", name="asp")
    client.answer = ahead  # polls see nothing new
    hub = ScanHub([client], interval=0.1, max_interval=0.1, store=store)
    async with hub, hub.polling():
        async with asyncio.timeout(5):
            while getattr(client, "polls", 0) < 1:
                await asyncio.sleep(0.02)
        pushed = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.FAILED, "pushed")
        committed = await hub.apply(pushed, how="webhook")
        assert committed.outcome is Outcome.STALE
        polled = client.polls
        async with asyncio.timeout(5):
            while getattr(client, "polls", 0) < polled + 2:
                await asyncio.sleep(0.02)
    stored = await store.get(running.key)
    assert stored is not None and stored.item.vendor_status == "running-2"


async def test_an_item_untracked_on_another_replica_is_no_longer_polled(pg_cluster: str) -> None:
    """Replica B untracks an item whose source replica A polls (A holds its lease): A hears
    of it and stops polling it. It polled it on for as long as the item did not change (its
    polls' sightings were dropped by the store, their outcome never looked at)."""
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, "untrack_news")
    item = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.RUNNING, "running")
    a, b = Answering("http://asp.invalid", name="asp"), Answering("http://asp.invalid", name="asp")
    a.answer = b.answer = item
    hub_a = ScanHub([a], interval=0.1, max_interval=0.1, store=PostgresStore(url, holder="a"))
    hub_b = ScanHub([b], interval=0.1, max_interval=0.1, store=PostgresStore(url, holder="b"))
    async with hub_a, hub_a.polling():
        hub_a.track(item)
        async with asyncio.timeout(10):
            while getattr(a, "polls", 0) < 2:
                await asyncio.sleep(0.05)
        async with hub_b, hub_b.polling():
            hub_b.untrack(item.key)
            await hub_b.flush()
            async with asyncio.timeout(10):  # polled every 0.1 s until the news reaches A
                while True:
                    polled = a.polls
                    await asyncio.sleep(0.6)
                    if a.polls == polled:
                        break
            assert getattr(b, "polls", 0) == 0  # (A held the lease throughout)
        assert await hub_a.get(item.key) is None


async def test_a_hub_opened_again_after_close_gives_its_clients_a_new_session() -> None:
    # Sources.close says a later open opens another session; the clients that brought none
    # must take it (they refused: "the shared aiohttp session is closed"), and a client used
    # on its own after the hub closed makes its own session again, as a client that brought
    # none does.
    async with AppSecPlusSim(clock=SimClock(speed=50)) as sim:
        assert isinstance(sim, AppSecPlusSim)
        sim.add_application("app-1")
        asp = AppSecPlus(sim.base_url, "asp-token-0001")
        hub = ScanHub([asp], interval=0.01)
        async with hub:
            first = asp._session
        async with hub:
            assert asp._session is not first and asp._session is not None
            scan = await asp.trigger_scan("app-1", "sast")
            assert (await hub.wait(scan, timeout=10)).lifecycle.is_terminal
        async with asp:
            assert (await asp.refresh(scan)).lifecycle.is_terminal
        assert asp._session is not None and asp._session.closed


def test_change_and_snapshot_come_back_from_what_to_dict_gave() -> None:
    # from_dict rebuilds "a model of type cls from what to_dict produced", and to_dict
    # documents Change and Snapshot: cattrs could not tell a Scan from a Promotion.
    from scanhub import ItemError, Snapshot, from_dict, from_json, to_dict, to_json

    now = datetime(2026, 1, 1, tzinfo=UTC)
    s = Scan(Vendor.APPSECPLUS, "x", "1", "a", Lifecycle.RUNNING, "running")
    p = Promotion("apptrust", "at", "7", "app", Lifecycle.SUCCEEDED, "COMPLETED", version="1.0")
    for change in (Change(None, s, now), Change(s, s, now, 4), Change(p, p, now, 5)):
        assert from_dict(Change, to_dict(change)) == change
        assert from_json(Change, to_json(change)) == change
    error = ItemError("ServerError", "boom", True, now)
    snap = Snapshot((s, p), {s.key: error}, now, {"at": error})
    back = from_json(Snapshot, to_json(snap))
    assert back == snap and type(back.items[1]) is Promotion


async def test_a_discovery_query_its_vendor_does_not_take_is_a_bad_request() -> None:
    # discover_promotions on an AppSec+ source (or a rule with a mistyped key) raised the
    # TypeError of the client's discover(), naming neither the source nor the query; a rule
    # with such a key was remembered before it failed, to fail again at every rediscover.
    from scanhub import BadRequestError

    async with stack() as env:
        hub = env["hub"]
        with pytest.raises(BadRequestError, match="application_key") as info:
            await hub.discover_promotions("appsecplus", "webshop", "1.0")
        assert info.value.source == "appsecplus" and info.value.operation == "discover"
        with pytest.raises(BadRequestError, match="app_id"):
            await hub.discovery.add_rule("appsecplus", {"app_id": "app-1"})
        assert hub.discovery.rules == []


async def test_an_item_tracked_then_untracked_at_once_is_not_polled() -> None:
    """`track` then `untrack` before the track is committed: the track's commit took the item
    on after the untrack had dropped it, and it was polled for good (the store without it)."""
    store = MemoryStore()
    client = Answering("http://asp.invalid", name="asp")
    item = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.RUNNING, "running")
    client.answer = item
    hub = ScanHub([client], interval=0.05, max_interval=0.05, store=store)
    async with hub, hub.polling():
        hub.track(item)
        hub.untrack(item)
        await hub.flush()
        polled = getattr(client, "polls", 0)  # (one may have started between the commits)
        await asyncio.sleep(0.3)  # six intervals
        assert getattr(client, "polls", 0) == polled <= 1
        assert await store.get(item.key) is None
        hub.track(item)  # tracked again: polled again
        async with asyncio.timeout(5):
            while getattr(client, "polls", 0) < polled + 2:
                await asyncio.sleep(0.02)


async def test_an_item_tracked_is_taken_on_once_flush_returns_whenever_its_commit_came() -> None:
    """`flush()` returns with every item tracked so far committed and taken on (polled by a
    snapshot, a watch). A commit that finished just before `flush` was called, in the step
    before it, left its item's taking-on queued behind the caller: `flush` found nothing to
    wait for, and a snapshot right after it did not poll the item (`scanhub status` showed it
    `unknown`, never read; `watch` never polled it)."""
    asp = AppSecPlus("https://asp.example", "t0ken-abcdef", wire=_never_called())
    for steps in range(12):
        async with ScanHub([asp]) as hub:
            placeholder = Scan(Vendor.APPSECPLUS, "appsecplus", "s1", "a1", Lifecycle.UNKNOWN, "")
            key = hub.track(placeholder)
            for _ in range(steps):
                await asyncio.sleep(0)
            await hub.flush()
            assert key in {a.item.key for a in hub.loop.working}, steps


def _never_called() -> Any:
    from scanhub import MockTransport

    def handler(request: Any) -> Any:
        raise AssertionError("nothing is sent")

    return MockTransport(handler)


class Discovering(Client):
    """A source whose discovery of an application finds one scan, or holds its answer."""

    vendor = "appsecplus"
    holds = False

    async def discover(self, application_id: str) -> AsyncIterator[Scan]:  # type: ignore[override]
        if self.holds:
            await asyncio.sleep(3600)
        yield Scan(Vendor.APPSECPLUS, self.name, "s1", application_id, Lifecycle.RUNNING, "run")

    async def refresh(self, item: Any) -> Any:
        return item


async def test_a_source_holding_its_discovery_does_not_hold_the_others_rules() -> None:
    """Discovery rules are run again at once, each on its own: a vendor that holds its answer
    holds only its own rules. (They ran one after the other: a source listed after the one
    holding found nothing new until it answered.)"""
    holding = Discovering("http://held.invalid", name="held")
    holding.holds = True
    answering = Discovering("http://answering.invalid", name="answering")
    async with ScanHub([holding, answering]) as hub:
        hub.discovery.rules += [
            ("held", {"application_id": "a"}),
            ("answering", {"application_id": "b"}),
        ]
        running = asyncio.ensure_future(hub.discovery.rediscover())
        try:
            async with asyncio.timeout(5):
                while not await hub.current():
                    await asyncio.sleep(0.02)
            assert [i.source for i in await hub.current()] == ["answering"]
            assert not running.done()  # the other still holds its answer
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def test_a_lookup_stays_pending_until_its_first_discovery_ends() -> None:
    """A track's lookup tried again answers with a discovery query: until that discovery
    ends, the lookup is still pending (a watch that stopped trying once nothing was pending
    cut the discovery under way: the gate passed without its items, no error said)."""
    from scanhub import ServerError

    class Slow(Discovering):
        async def discover(self, application_id: str) -> AsyncIterator[Scan]:  # type: ignore[override]
            await asyncio.sleep(0.5)
            yield Scan(Vendor.APPSECPLUS, self.name, "s1", application_id, Lifecycle.RUNNING, "r")

    calls = [0]

    async def lookup() -> tuple[list[Any], dict[str, str]]:
        calls[0] += 1
        if calls[0] == 1:
            raise ServerError("away", vendor="appsecplus", source="slow", operation="get")
        return [], {"application_id": "a"}

    async with ScanHub([Slow("http://slow.invalid", name="slow")]) as hub:
        hub.discovery.lookups.append(("slow", lookup))
        await hub.discovery.rediscover()  # away: still pending
        assert hub.discovery.pending() and calls[0] == 1
        running = asyncio.ensure_future(hub.discovery.rediscover())
        await asyncio.sleep(0.2)  # the lookup answered; its discovery runs
        assert calls[0] == 2 and hub.discovery.pending()
        assert [i.id for i in await running] == ["s1"]
        assert not hub.discovery.pending() and not hub.discovery.lookups
        assert [i.source for i in await hub.current()] == ["slow"]
