"""Time in state in the service (issue 22): `GET /api/v1/stats` against its OpenAPI document,
items sorted newest change first with cursors, each item's timing and stuck flag from the
configured rule, the phase histograms and the stuck gauge in /metrics, and the contrib
dashboard and alerts using them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

import scanhub
from scanhub import Lifecycle, MemoryStore, Scan, ScanHub, Vendor
from scanhub._config import parse_config
from scanhub._sinks import Sink
from scanhub.engine.broadcast import PAGE
from scanhub.serve import Service
from scanhub.serve._metrics import METRIC_NAMES
from scanhub.store import Count, Observation
from scanhub.store.memory import MemorySinks

from .test_serve import ROOT, get_json, service, validator
from .test_store import HISTORY


class Still(scanhub.Client):
    """A source whose items never change when polled: what the store holds is what shows."""

    vendor = "appsecplus"

    async def refresh(self, item: Any) -> Any:
        return item


def config(**source: object) -> scanhub.Config:
    return parse_config(
        {
            "source": [
                {
                    "name": "asp",
                    "vendor": "appsecplus",
                    "base_url": "http://asp.invalid",
                    "token_env": "T",
                    **source,
                },
                {"name": "at", "vendor": "apptrust", "base_url": "http://at.invalid",
                 "token_env": "T"},
            ]
        },
        "<test>",
        env={"T": "x"},
    )  # fmt: skip


async def record(store: scanhub.Store, start: datetime) -> None:
    for minute in sorted({m for m, _ in HISTORY}):
        await store.commit(
            [
                Observation(i.key, start + timedelta(minutes=m), i, None, "track")
                for m, i in HISTORY
                if m == minute
            ]
        )


@contextlib.asynccontextmanager
async def known(
    start: datetime, *, sinks: Sequence[Sink] = (), **source: object
) -> AsyncIterator[tuple[Service, aiohttp.ClientSession]]:
    """A service over a store holding tests/test_store.py's HISTORY from `start` (delivering
    what is committed after it to `sinks`)."""
    store = MemoryStore()
    await record(store, start)
    hub = ScanHub(
        [Still("http://asp.invalid", name="asp"), Still("http://at.invalid", name="at")],
        interval=3600,
        store=store,
        sinks=sinks,
    )
    svc = Service(hub, config(**source), port=0)
    await svc.start()
    try:
        async with aiohttp.ClientSession(base_url=svc.url) as http:
            yield svc, http
    finally:
        await svc.stop()


async def test_stats_answer_as_documented_with_the_store_numbers() -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start) as (svc, http):
        data = await get_json(http, "/api/v1/stats", "Stats")
        assert data["window"] == "24h" and data["group_by"] == ["source", "kind"]
        asp = next(g for g in data["groups"] if g["source"] == "asp")
        assert (asp["finished"], asp["failure_rate"], asp["blocked_rate"]) == (4, 0.25, 0.25)
        assert asp["queued"] == {"n": 4, "p50": 120.0, "p90": 162.0, "max": 180.0}
        assert asp["running"] == {"n": 2, "p50": 330.0, "p90": 450.0, "max": 480.0}
        stuck = {(s["source"], s["kind"]): s for s in data["stuck"]}
        assert stuck[("asp", "scan")]["stuck"] == 1  # e has run for an hour; 30 min default
        assert sum(sum(b["counts"].values()) for b in data["activity"]["buckets"]) == 16
        one = await get_json(http, "/api/v1/stats?window=7d&group_by=", "Stats")
        assert [g["finished"] for g in one["groups"]] == [5]
        assert one["activity"]["bucket_seconds"] == 6 * 3600
        for bad in ("window=1y", "group_by=application", "group_by=kind,kind", "nope=1"):
            async with http.get(f"/api/v1/stats?{bad}") as r:
                assert r.status == 400, bad
                assert r.content_type == "application/problem+json"
                validator("Problem").validate(await r.json())


def test_the_documented_group_by_is_exactly_what_the_service_takes() -> None:
    """The OpenAPI schema of `group_by` (a pattern, and none named twice) holds for exactly
    the values `GET /api/v1/stats` and `scanhub stats` accept (schemathesis relies on it)."""
    import random

    import jsonschema

    from scanhub._stats import parse_group_by
    from scanhub.serve._openapi import openapi

    (schema,) = (
        p["schema"]
        for p in openapi()["paths"]["/api/v1/stats"]["get"]["parameters"]
        if p["name"] == "group_by"
    )
    check = jsonschema.Draft202012Validator(schema)
    pieces = ["vendor", "source", "kind", "sourc", "x", ",", ",", " ", "\t", "\n", "\r"]
    rnd = random.Random(22)
    for _ in range(20_000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8)))
        try:
            parse_group_by(text)
            taken = True
        except ValueError:
            taken = False
        assert check.is_valid(text) == taken, text


async def test_items_newest_change_first_with_timing_and_the_configured_stuck_rule() -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start, stuck_after_by_kind={"scan": 7200}) as (svc, http):
        seen, cursor = [], None
        while True:
            q = "/api/v1/items?sort=-changed&limit=3" + (f"&cursor={cursor}" if cursor else "")
            page = await get_json(http, q, "ItemList")
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["p", "a", "e", "d", "b", "c", "f"]
        items = {i["id"]: i for i in (await get_json(http, "/api/v1/items"))["items"]}
        a = items["a"]["timing"]
        assert (a["queued_seconds"], a["running_seconds"], a["total_seconds"]) == (120, 480, 600)
        assert items["d"]["timing"]["total_seconds"] is None  # first seen finished
        e = items["e"]
        assert e["timing"]["stuck_after_seconds"] == 7200 and e["timing"]["stuck_basis"] == (
            "configured"
        )
        assert e["stuck"] is False  # an hour under way, two allowed for scans here
        one = await get_json(http, f"/api/v1/items/{quote(e['key'], safe='')}", "ItemEntry")
        assert one["timing"]["running_at"] is not None
        # A cursor of one order is refused for another; a sort not known is refused.
        first = await get_json(http, "/api/v1/items?sort=-changed&limit=2")
        for bad in (f"sort=since&cursor={first['next_cursor']}", "sort=age"):
            async with http.get(f"/api/v1/items?{bad}") as r:
                assert r.status == 400, bad
    async with known(start, stuck_after=600) as (svc, http):
        items = {i["id"]: i for i in (await get_json(http, "/api/v1/items"))["items"]}
        assert items["e"]["stuck"] is True and items["p"]["stuck"] is False


async def test_each_phase_is_observed_once_per_item_as_it_is_left() -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    async with known(start) as (svc, http):
        for t in await svc.store.transitions():  # the log, as the metrics follow it
            await svc.metrics.left_phase(t.change)
        async with http.get("/metrics") as r:
            text = await r.text()
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = families["scanhub_item_phase_seconds"].samples

    def value(suffix: str, phase: str, source: str = "asp", **labels: str) -> float:
        return sum(
            s.value
            for s in samples
            if s.name == "scanhub_item_phase_seconds" + suffix
            and s.labels["phase"] == phase
            and s.labels["source"] == source
            and all(s.labels.get(k) == v for k, v in labels.items())
        )

    # a, b, c, f left the queue (e too: it runs); d was first seen finished: nothing.
    assert value("_count", "queued") == 5
    assert value("_sum", "queued") == 120 + 60 + 180 + 360 + 120
    assert value("_count", "running") == 2 and value("_sum", "running") == 480 + 180
    assert value("_count", "total") == 4 and value("_sum", "total") == 600 + 240 + 180 + 120
    assert value("_bucket", "total", le="300.0") == 3
    assert value("_sum", "running", source="at") == 1800
    assert {s.labels["kind"] for s in samples} == {"scan", "promotion"}
    assert all(set(s.labels) <= {"vendor", "source", "kind", "phase", "le"} for s in samples)
    stuck = {s.labels["source"]: s.value for s in families["scanhub_stuck_items"].samples}
    assert stuck == {"asp": 1.0, "at": 0.0}


async def test_the_running_service_observes_phases_from_the_log(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        for _ in range(100):
            async with http.get("/metrics") as r:
                text = await r.text()
            if "scanhub_item_phase_seconds_count{" in text and 'phase="total"' in text:
                break
            await asyncio.sleep(0.2)
        assert 'phase="total"' in text and "scanhub_stuck_items{" in text
        await get_json(http, "/api/v1/stats?window=30d&group_by=vendor", "Stats")


def test_the_dashboard_and_alerts_use_the_phase_histogram_and_stuck_items() -> None:
    import yaml

    assert {"scanhub_item_phase_seconds", "scanhub_stuck_items"} <= set(METRIC_NAMES)
    dashboard = json.loads((ROOT / "contrib/grafana/scanhub.json").read_text())
    exprs = "\n".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    assert "scanhub_item_phase_seconds_bucket" in exprs
    kinds = {p["type"] for p in dashboard["panels"] if "phase_seconds" in json.dumps(p)}
    assert {"heatmap", "timeseries"} <= kinds
    alerts = yaml.safe_load((ROOT / "contrib/prometheus/alerts.yml").read_text())
    rules = {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}
    assert "scanhub_stuck_items" in rules["ScanhubStuckItems"]["expr"]


@pytest.mark.parametrize("path", ["/api/v1/stats", "/api/v1/items?sort=-changed"])
async def test_no_credential_in_time_in_state(tmp_path: Path, path: str) -> None:
    async with service(tmp_path) as (svc, sims, http):
        await asyncio.sleep(0.5)
        async with http.get(path) as r:
            body = await r.text()
        secrets = {
            v for sim in sims.values() for k, v in sim.credentials().items() if k != "username"
        }
        assert r.status == 200 and not [s for s in secrets if s in body]


class Racing(MemoryStore):
    """A store where another commit lands just after each read of its kept counts (the engine,
    or another replica, between two reads of one scrape); it counts those reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def counts(self) -> list[Count]:
        found = await super().counts()
        self.reads += 1
        late = Scan(Vendor.APPSECPLUS, f"late-{self.reads}", "x", "app", Lifecycle.RUNNING, "r")
        at = datetime.now(UTC) - timedelta(hours=2)  # under way past the 30 minute default
        await self.commit([Observation(late.key, at, late, None, "track")])
        return found


async def test_a_scrape_reads_the_counts_once_and_its_gauges_agree() -> None:
    """The item gauge and the stuck gauge of one scrape come from one read of the kept counts:
    a commit landing during the scrape shows in neither, never in one only."""
    store = Racing()
    await record(store, datetime.now(UTC) - timedelta(hours=1))
    hub = ScanHub([Still("http://asp.invalid", name="asp")], interval=3600, store=store)
    svc = Service(hub, config(), port=0)
    await svc.start()
    try:
        store.reads = 0
        async with aiohttp.ClientSession(base_url=svc.url) as http, http.get("/metrics") as r:
            text = await r.text()
    finally:
        await svc.stop()
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}

    def labelled(name: str) -> set[tuple[str, str, str]]:
        return {
            (s.labels["vendor"], s.labels["source"], s.labels["kind"])
            for s in families[name].samples
        }

    assert labelled("scanhub_stuck_items") == labelled("scanhub_items")
    assert ("appsecplus", "late-1", "scan") not in labelled("scanhub_stuck_items")
    assert store.reads == 1


async def test_a_filtered_stream_gets_its_heartbeat_while_others_transitions_pass() -> None:
    """A heartbeat comes once nothing was written for `heartbeat` seconds: transitions the
    stream's filter leaves out wake it, and used to put the heartbeat off for as long as they
    kept coming (a proxy then closes the quiet connection)."""
    store = MemoryStore()
    hub = ScanHub([Still("http://asp.invalid", name="asp")], interval=3600, store=store)
    svc = Service(hub, config(), port=0, heartbeat=0.5)
    await svc.start()
    try:
        async with (
            aiohttp.ClientSession(base_url=svc.url) as http,
            http.get("/api/v1/events/stream?q=nothing-matches") as resp,
        ):
            assert resp.status == 200

            async def busy() -> None:
                for n in range(50):  # a transition every 0.1 s, none the stream wants
                    item = Scan(Vendor.APPSECPLUS, "asp", f"s{n}", "app", Lifecycle.QUEUED, "q")
                    await store.commit([Observation.of(item, "track")])
                    await asyncio.sleep(0.1)

            writer = asyncio.create_task(busy())
            received = b""
            async with asyncio.timeout(10):
                while received.count(b": heartbeat") < 3:
                    received += await resp.content.readany()
            assert not writer.done()  # the heartbeats came while the others' transitions did
            await writer
        assert b"event: change" not in received
    finally:
        await svc.stop()


class SlowLog(MemoryStore):
    """A store whose log is read slowly (a large log on a busy disk); it counts the reads."""

    def __init__(self) -> None:
        super().__init__()
        self.pages = 0

    async def transitions(
        self, *, since: int = 0, key: str | None = None, limit: int | None = None
    ) -> list[scanhub.Transition]:
        await asyncio.sleep(0.4)
        if limit == PAGE:  # a subscription's page (the broadcaster's own reads are longer)
            self.pages += 1
        return await super().transitions(since=since, key=key, limit=limit)


async def test_a_stream_catching_up_on_a_long_log_gets_its_heartbeat() -> None:
    """A stream resumed far back reads the log a page at a time; the pages its filter leaves
    out write nothing, so the heartbeat must come between them (not once it has caught up:
    a proxy closes a connection quiet for that long)."""
    store = SlowLog()
    await store.commit(
        [
            Observation.of(
                Scan(Vendor.APPSECPLUS, "asp", f"s{n}", "app", Lifecycle.QUEUED, "q"), "track"
            )
            for n in range(1200)  # three pages of the log, the third not full
        ]
    )
    hub = ScanHub([Still("http://asp.invalid", name="asp")], interval=3600, store=store)
    svc = Service(hub, config(), port=0, heartbeat=0.3)
    await svc.start()
    try:
        store.pages = 0
        async with (
            aiohttp.ClientSession(base_url=svc.url) as http,
            http.get("/api/v1/events/stream?q=nothing-matches&last_event_id=1") as resp,
        ):
            assert resp.status == 200
            received = b""
            async with asyncio.timeout(10):
                while b": heartbeat" not in received:
                    received += await resp.content.readany()
            assert store.pages < 3  # it came while the stream was still catching up
            assert b"event: change" not in received
    finally:
        await svc.stop()


class AwaySinks(MemorySinks):
    """A ledger whose log identity cannot be read while `away` (the database went away after
    the service started)."""

    away = False

    async def log_id(self) -> str:
        if self.away:
            raise scanhub.StoreUnavailable("the database is away", operation="read log id")
        return await super().log_id()


async def test_a_stream_needs_no_store_read_for_the_log_identity_once_started() -> None:
    """The log's identity, in every CloudEvent id, is read when the service starts: a stream
    opened while the store cannot answer it still carries `<log>-<id>` ids."""
    store = MemoryStore()
    store.sinks = sinks = AwaySinks(store)
    log = await sinks.log_id()
    hub = ScanHub([Still("http://asp.invalid", name="asp")], interval=3600, store=store)
    svc = Service(hub, config(), port=0)
    await svc.start()
    try:
        sinks.away = True
        async with (
            aiohttp.ClientSession(base_url=svc.url) as http,
            http.get("/api/v1/events/stream") as resp,
        ):
            assert resp.status == 200
            item = Scan(Vendor.APPSECPLUS, "asp", "s1", "app", Lifecycle.QUEUED, "q")
            hub.track(item)
            received = b""
            async with asyncio.timeout(10):
                while b"event: change" not in received:
                    received += await resp.content.readany()
        data = json.loads(received.split(b"data: ", 1)[1].split(b"\n", 1)[0])
        assert data["id"].startswith(f"{log}-")
    finally:
        await svc.stop()


class GetFailsOnce(MemoryStore):
    """A store whose first read of one item fails with what no code expects (a bug)."""

    failed = False

    async def get(self, key: str) -> Any:
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bug in a read")
        return await super().get(key)


async def test_the_transition_counter_outlives_a_failure_of_its_reader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The metrics' reader of the log is supervised: a failure is logged, and it resumes
    after the transition it failed on (counted once). It stopped for good, unseen, the
    transition counter frozen while `/readyz` said ready."""
    store = GetFailsOnce()
    hub = ScanHub([Still("http://asp.invalid", name="asp")], interval=3600, store=store)
    svc = Service(hub, config(), port=0)
    await svc.start()

    async def counted() -> float:
        async with aiohttp.ClientSession(base_url=svc.url) as http, http.get("/metrics") as r:
            text = await r.text()
        from prometheus_client.parser import text_string_to_metric_families

        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            if f.name == "scanhub_transitions"
            for s in f.samples
            if s.name == "scanhub_transitions_total"
        )

    try:
        for n, lc in enumerate([Lifecycle.RUNNING, Lifecycle.RUNNING]):
            item = Scan(Vendor.APPSECPLUS, "asp", f"s{n}", "app", lc, "r")
            await store.commit([Observation.of(item, "track")])  # the first read fails
        async with asyncio.timeout(10):
            while await counted() < 2:
                await asyncio.sleep(0.1)
        item = Scan(Vendor.APPSECPLUS, "asp", "s9", "app", Lifecycle.SUCCEEDED, "done")
        await store.commit([Observation.of(item, "track")])
        async with asyncio.timeout(10):
            while await counted() < 3:
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        assert await counted() == 3
        (part,) = [p for p in svc.hub.health().parts if p.name == "metrics"]
        assert part.restarts == 1 and part.running and "a bug in a read" in str(part.last_failure)
    finally:
        await svc.stop()
    assert any("metrics failed" in r.getMessage() for r in caplog.records)
