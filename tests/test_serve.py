"""`scanhub serve` over real sockets: the JSON API against its OpenAPI document, writes and
tokens, the live stream and its resumption, /metrics, webhooks, headers, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from scanhub import Lifecycle, Scan, ScanHub, SQLiteStore, Vendor
from scanhub._compose import apply_tracks, build_clients
from scanhub._config import parse_config
from scanhub._demo import running_sims, sim_config
from scanhub._sinks import Sink
from scanhub.serve import Service
from scanhub.serve._metrics import METRIC_NAMES
from scanhub.serve._openapi import openapi
from scanhub.vendors import registry

from .helpers import transition_of

TOKEN = "s3rve-token-for-tests"
#: The vendors whose simulators the service tests run.
SIMULATED = {spec.name for spec in registry() if spec.demo}
ROOT = Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def service(
    tmp_path: Path,
    *,
    token: str | None = TOKEN,
    speed: float = 20.0,
    sinks: Sequence[Sink] = (),
    **kw: Any,
) -> AsyncIterator[tuple[Service, dict[str, Any], aiohttp.ClientSession]]:
    """All four simulators, a config tracking what they seeded, a service on a free port (its
    engine delivering to `sinks`)."""
    async with running_sims(speed=speed) as sims:
        reg = registry()
        seeded = {name: reg.get(name).load_demo().sim_seed(sim) for name, sim in sims.items()}
        doc, env = sim_config(sims, seeded, reg)
        doc["interval"] = 0.1
        config = parse_config(doc, str(tmp_path / "scanhub.toml"), env=env)
        hub = ScanHub(
            build_clients(config, env),
            interval=0.1,
            max_interval=0.5,
            store=SQLiteStore(tmp_path / "state.db"),
            sinks=sinks,
        )
        await hub.open()
        await apply_tracks(hub, config)
        svc = Service(hub, config, port=0, token=token, env=env, **kw)
        await svc.start()
        try:
            async with aiohttp.ClientSession(base_url=svc.url) as http:
                yield svc, sims, http
        finally:
            await svc.stop()


def validator(schema_name: str) -> jsonschema.protocols.Validator:
    """A validator for one of the OpenAPI document's schemas (3.1 schemas are JSON Schema
    2020-12), its $refs resolved within the document."""
    resource = Resource(contents=openapi(), specification=DRAFT202012)
    registry_ = Registry().with_resource("urn:scanhub:openapi", resource)
    schema = {"$ref": f"urn:scanhub:openapi#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry_)


async def get_json(
    http: aiohttp.ClientSession, path: str, schema: str | None = None, status: int = 200
) -> Any:
    async with http.get(path) as r:
        assert r.status == status, (path, r.status, await r.text())
        body = await r.json(content_type=None)
    if schema:
        validator(schema).validate(body)
    return body


async def test_the_api_answers_as_its_openapi_document_says(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        await asyncio.sleep(1.0)  # some polls, some transitions
        doc = await get_json(http, "/api/v1/openapi.json")
        assert doc["openapi"].startswith("3.1") and "/api/v1/items" in doc["paths"]
        items = await get_json(http, "/api/v1/items", "ItemList")
        vendors = {i["vendor"] for i in items["items"]}
        assert vendors == SIMULATED  # every vendor with a simulator
        key = items["items"][0]["key"]
        from urllib.parse import quote

        one = await get_json(http, f"/api/v1/items/{quote(key, safe='')}", "ItemEntry")
        assert one["key"] == key and "raw" in one
        history = await get_json(http, f"/api/v1/items/{quote(key, safe='')}/history", "EventList")
        assert all(e["subject"] == key for e in history["events"])
        events = await get_json(http, "/api/v1/events?since=0", "EventList")
        ids = [transition_of(e["id"]) for e in events["events"]]
        assert ids == sorted(ids) and events["last_id"] == ids[-1]
        later = await get_json(http, f"/api/v1/events?since={ids[2]}", "EventList")
        # (the engine runs meanwhile: later may hold transitions recorded since)
        assert [transition_of(e["id"]) for e in later["events"]][: len(ids) - 3] == ids[3:]
        await get_json(http, "/api/v1/summary", "Summary")
        sources = await get_json(http, "/api/v1/sources", "SourceList")
        assert {s["name"] for s in sources["sources"]} == vendors
        for s in sources["sources"]:
            assert "@" not in s["base_url"]
        assert (await get_json(http, "/healthz", "Health"))["status"] == "ok"
        assert (await get_json(http, "/readyz", "Health"))["status"] == "ready"


async def test_filters_pages_and_etags(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        await asyncio.sleep(0.5)
        everything = await get_json(http, "/api/v1/items?limit=1000")
        total = everything["total"]
        seen, cursor = [], None
        while True:
            page = await get_json(
                http, "/api/v1/items?limit=3" + (f"&cursor={cursor}" if cursor else ""), "ItemList"
            )
            seen += [i["key"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == total == len(set(seen)) and seen == sorted(seen)
        only = await get_json(http, "/api/v1/items?vendor=threadfix&kind=scan")
        assert only["items"] and {i["vendor"] for i in only["items"]} == {"threadfix"}
        text = await get_json(http, "/api/v1/items?q=webshop")
        assert text["items"] and all("webshop" in json.dumps(i).lower() for i in text["items"])
        # IQ items tracked by public id show it (and are found by it); the key keeps the id.
        iq_items = (await get_json(http, "/api/v1/items?vendor=iq"))["items"]
        assert iq_items and all(i["application_name"] == "webshop" for i in iq_items)
        by_name = await get_json(http, "/api/v1/items?vendor=iq&application=webshop")
        assert by_name["total"] == len(iq_items)
        async with http.get("/api/v1/summary") as r:
            etag = r.headers["ETag"]
        async with http.get("/api/v1/sources", headers={"If-None-Match": 'W/"nope"'}) as r:
            assert r.status == 200
        async with http.get("/api/v1/openapi.json") as r:
            tag = r.headers["ETag"]
        async with http.get("/api/v1/openapi.json", headers={"If-None-Match": tag}) as r:
            assert r.status == 304
        assert etag
        for bad, name in (
            ("lifecycle=nope", "lifecycle"),
            ("limit=0", "limit"),
            ("limit=x", "limit"),
            ("cursor=%%%", "cursor"),
            ("kind=job", "kind"),
            ("colour=red", "colour"),
        ):
            async with http.get(f"/api/v1/items?{bad}") as r:
                assert r.status == 400 and r.headers["Content-Type"].startswith(
                    "application/problem+json"
                )
                problem = await r.json(content_type=None)
                validator("Problem").validate(problem)
                assert name in problem["detail"]
        await get_json(http, "/api/v1/items/nothing-here", "Problem", status=404)


async def test_a_track_request_never_makes_the_service_read_a_file(tmp_path: Path) -> None:
    """report_task names a file on the machine scanhub runs on: a config file or the CLI may
    name one, an API request may not (the service would read any path it can, and its answer
    told whether a path exists). The answer says what to send instead; nothing is read."""
    planted = tmp_path / "report-task.txt"
    planted.write_text("projectKey=p\nceTaskId=AAAA\n")
    async with service(tmp_path) as (svc, sims, http):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in (str(planted), "/nonexistent/report-task.txt", "/proc/self/environ"):
            body = {"source": "sonarqube", "report_task": path}
            async with http.post("/api/v1/track", json=body, headers=auth) as r:
                assert r.status == 400, await r.text()
                detail = (await r.json(content_type=None))["detail"]
            assert detail == (
                "report_task: the service reads no file named in a request; send task_id and "
                "project_key (ceTaskId and projectKey in the file)"
            )
        assert [i for i in await svc.hub.current() if i.id == "AAAA"] == []


async def test_an_answer_where_only_the_clock_moved_is_a_304(tmp_path: Path) -> None:
    """A finished item's "seconds since its last change" grows with every request: the ETag
    leaves such figures out (the times they are reckoned from are in the answer), so a client
    that has the answer gets a 304, and one whose copy is stale in anything else does not."""
    async with service(tmp_path, speed=200.0) as (svc, sims, http):
        async with asyncio.timeout(20):
            while not (done := await get_json(http, "/api/v1/items?lifecycle=succeeded"))["items"]:
                await asyncio.sleep(0.1)
        key = quote(done["items"][0]["key"], safe="")
        # A list that nothing else can change (other items keep finishing): its one item.
        for path in (f"/api/v1/items/{key}", f"/api/v1/items?q={key}"):
            async with http.get(path) as r:
                etag, first = r.headers["ETag"], await r.json()
            await asyncio.sleep(0.05)
            async with http.get(path) as r:
                again = await r.json()
            moved = first if "timing" in first else first["items"][0]
            later = again if "timing" in again else again["items"][0]
            assert moved["timing"]["since_change_seconds"] < later["timing"]["since_change_seconds"]
            async with http.get(path, headers={"If-None-Match": etag}) as r:
                assert r.status == 304 and r.headers["ETag"] == etag, path
                assert await r.read() == b""
            async with http.get(path, headers={"If-None-Match": 'W/"other"'}) as r:
                assert r.status == 200 and r.headers["ETag"] == etag
        # Anything else that changes changes the ETag: here the list's total.
        async with http.get("/api/v1/items?limit=1") as r:
            everything = r.headers["ETag"]
        svc.hub.track(Scan(Vendor.APPSECPLUS, "appsecplus", "new-1", "a", Lifecycle.UNKNOWN, ""))
        await svc.hub.flush()
        async with http.get("/api/v1/items?limit=1", headers={"If-None-Match": everything}) as r:
            assert r.status == 200 and r.headers["ETag"] != everything


async def test_writes_need_the_token_and_work_with_it(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        sims["appsecplus"].add_application("app-new")
        new_ids = sims["appsecplus"].seed_scans("app-new", 2, duration=1)
        body = {"source": "appsecplus", "application_id": "app-new"}
        async with http.post("/api/v1/track", json=body) as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        async with http.post(
            "/api/v1/track", json=body, headers={"Authorization": "Bearer wrong"}
        ) as r:
            assert r.status == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post("/api/v1/track", json=body, headers=auth) as r:
            assert r.status == 201
            result = await r.json()
        validator("TrackResult").validate(result)
        assert result["rule"] == {"application_id": "app-new"} and len(result["tracked"]) == 2
        assert any(new_ids[0] in k for k in result["tracked"])
        async with http.post(
            "/api/v1/track", json={"source": "appsecplus", "colour": 1}, headers=auth
        ) as r:
            assert r.status == 400 and "colour" in (await r.json(content_type=None))["detail"]
        async with http.post("/api/v1/track", data=b"x" * (2 << 20), headers=auth) as r:
            assert r.status == 413
        from urllib.parse import quote

        key = quote(result["tracked"][0], safe="")
        async with http.delete(f"/api/v1/items/{key}") as r:
            assert r.status == 401
        async with http.delete(f"/api/v1/items/{key}", headers=auth) as r:
            assert r.status == 204
        async with http.get(f"/api/v1/items/{key}") as r:
            assert r.status == 404
    async with service(tmp_path / "ro", token=None) as (svc, sims, http):
        async with http.post("/api/v1/track", json=body, headers=auth) as r:
            assert r.status == 403 and "not enabled" in (await r.json(content_type=None))["detail"]


async def read_events(
    resp: aiohttp.ClientResponse, count: int, limit: float = 15
) -> list[dict[str, Any]]:
    """SSE events (id, event, data) until `count` change events came."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(limit):
        while len([e for e in out if e.get("event") == "change"]) < count:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if not line:
                if current:
                    out.append(current)
                current = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            current[name] = value.lstrip()
    return out


async def test_the_live_stream_resumes_without_gap_or_duplicate(tmp_path: Path) -> None:
    async with service(tmp_path, speed=5.0) as (svc, sims, http):
        async with http.get("/api/v1/events/stream?last_event_id=0") as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            first = await read_events(resp, 4)
        changes = [e for e in first if e.get("event") == "change"]
        ids = [int(e["id"]) for e in changes]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        for e in changes:
            event = json.loads(e["data"])
            assert event["specversion"] == "1.0" and transition_of(event["id"]) == int(e["id"])
        resume_from = ids[-1]
        await asyncio.sleep(1.0)  # more transitions happen while disconnected
        async with http.get(
            "/api/v1/events/stream", headers={"Last-Event-ID": str(resume_from)}
        ) as resp:
            more = await read_events(resp, 3)
        resumed = [int(e["id"]) for e in more if e.get("event") == "change"]
        recorded = [t.id for t in await svc.hub.store.transitions(since=resume_from)]
        assert resumed == recorded[: len(resumed)]  # every id after the last seen, in order
        assert resumed[0] == recorded[0] and not set(resumed) & set(ids)


def test_the_stream_filters_by_the_name_a_store_keeps() -> None:
    """A transition whose answer stops naming the application is filtered as `/items` lists
    its item: by the name before it."""
    from datetime import UTC, datetime

    from scanhub import Lifecycle, Scan, Vendor
    from scanhub._changes import Change
    from scanhub.serve._http import wanted
    from scanhub.store import ItemQuery

    named = Scan(Vendor.APPSECPLUS, "asp", "s1", "app-1", Lifecycle.RUNNING, "running",
                 application_name="Web Shop")  # fmt: skip
    unnamed = Scan(Vendor.APPSECPLUS, "asp", "s1", "app-1", Lifecycle.SUCCEEDED, "completed")
    at = datetime(2026, 11, 1, tzinfo=UTC)
    for query in (ItemQuery(text="web shop"), ItemQuery(application="Web Shop")):
        assert wanted(query)(Change(named, unnamed, at, 2))
        assert not wanted(query)(Change(None, unnamed, at, 1))
        assert not wanted(query)(Change(unnamed, unnamed, at, 3))


async def test_a_last_event_id_past_the_end_of_the_log_resumes_from_the_end_saying_so(
    tmp_path: Path,
) -> None:
    """A client of another state (the service's state file was replaced, or it read another
    service) resumes with an id this log has not reached: it is told so (`reset`, carrying
    the newest id, which EventSource resends on its next reconnect) and gets every transition
    after that one, not silence until the log reaches its id."""
    async with service(tmp_path, speed=5.0) as (svc, sims, http):
        async with asyncio.timeout(10):
            while await svc.store.last_id() < 2:
                await asyncio.sleep(0.05)
        asked = await svc.store.last_id() + 10_000
        async with http.get("/api/v1/events/stream", headers={"Last-Event-ID": str(asked)}) as resp:
            assert resp.status == 200
            events = await read_events(resp, 3)
        first, *changes = [e for e in events if e.get("event")]
        assert first["event"] == "reset", events
        data = json.loads(first["data"])
        newest = int(first["id"])
        assert data["last_event_id"] == asked and data["newest"] == newest
        assert f"Last-Event-ID {asked} is past the end of this log" in data["detail"]
        recorded = [t.id for t in await svc.hub.store.transitions(since=newest)]
        assert [int(e["id"]) for e in changes] == recorded[: len(changes)] and changes


async def test_a_slow_stream_client_loses_nothing_and_holds_no_backlog(tmp_path: Path) -> None:
    from scanhub import Lifecycle, Scan, Vendor

    async with service(tmp_path, speed=5.0) as (svc, sims, http):
        svc.hub.broadcaster.capacity = 3  # each stream client's room (default 10,000)
        start = await svc.store.last_id()
        async with http.get(f"/api/v1/events/stream?last_event_id={start}") as resp:
            await asyncio.sleep(0.2)
            # Far more than the client's room is committed before it reads anything.
            for n in range(40):
                item = Scan(
                    Vendor.APPSECPLUS, "appsecplus", f"x{n}", "a", Lifecycle.RUNNING, "running"
                )
                await svc.hub.apply(item, how="test")
            last = await svc.store.last_id()
            await asyncio.sleep(0.5)
            ids: list[int] = []
            async with asyncio.timeout(15):
                while not ids or ids[-1] < last:
                    line = (await resp.content.readline()).decode().strip()
                    if line.startswith("id: "):
                        ids.append(int(line[4:]))
        recorded = [t.id for t in await svc.store.transitions(since=start) if t.id <= last]
    # It read what its room could not hold from the store: every id, in order, once.
    assert [i for i in ids if i <= last] == recorded


async def test_metrics_use_prometheus_names(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        await asyncio.sleep(1.0)
        async with http.get("/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "scanhub_items",
        "scanhub_source_up",
        "scanhub_oldest_unfinished_item_age_seconds",
        "scanhub_vendor_request_duration_seconds",
        "scanhub_source_rate_limit_pause_seconds",
    ):
        assert name in families, name
    assert "scanhub_transitions" in families and "scanhub_vendor_requests" in families
    items = families["scanhub_items"].samples
    assert {s.labels["vendor"] for s in items} == SIMULATED
    assert all(set(s.labels) == {"vendor", "source", "kind", "lifecycle", "verdict"} for s in items)
    requests = families["scanhub_vendor_requests"].samples
    assert any(s.labels["outcome"] == "2xx" and s.value > 0 for s in requests)
    for family in families.values():
        assert family.name.startswith("scanhub_")
        assert family.name in METRIC_NAMES or family.name + "_total" in METRIC_NAMES, family.name


def _signed(
    body: bytes, secret: str, event: str = "iq:applicationEvaluation", delivery: str | None = None
) -> dict[str, str]:
    return {
        "X-Nexus-Webhook-Id": event,
        "X-Nexus-Webhook-Delivery": delivery or str(uuid.uuid4()),
        "X-Nexus-Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "Content-Type": "application/json",
    }


async def test_iq_webhooks_are_verified_deduplicated_and_applied(tmp_path: Path) -> None:
    from .payloads import IQ_WEBHOOK_EVALUATION

    async with service(tmp_path) as (svc, sims, http):
        secret = sims["iq"].webhook_secret
        body = json.dumps(IQ_WEBHOOK_EVALUATION).encode()
        before = await svc.hub.store.last_id()
        async with http.post("/webhooks/iq/iq", data=body, headers=_signed(body, "wrong")) as r:
            assert r.status == 401
        headers = {
            k: v for k, v in _signed(body, secret).items() if k != "X-Nexus-Webhook-Signature"
        }
        async with http.post("/webhooks/iq/iq", data=body, headers=headers) as r:
            assert r.status == 401
        evaluation = IQ_WEBHOOK_EVALUATION["applicationEvaluation"]["policyEvaluationId"]  # type: ignore[index]
        assert not any(evaluation in i.key for i in await svc.hub.current())  # nothing recorded
        assert not [t for t in await svc.hub.store.transitions(since=before) if evaluation in t.key]
        signed = _signed(body, secret, delivery="d-1")
        async with http.post("/webhooks/iq/iq", data=body, headers=signed) as r:
            assert r.status == 200
            result = await r.json()
        validator("WebhookResult").validate(result)
        assert result["outcome"] == "applied"
        (key,) = result["keys"]
        item = next(i for i in await svc.hub.current() if i.key == key)
        assert item.lifecycle.value == "succeeded" and item.verdict.value == "fail"
        assert (await svc.hub.store.transitions(key=key))[0].change.after.key == key
        async with http.post("/webhooks/iq/iq", data=body, headers=signed) as r:
            assert (await r.json())["outcome"] == "duplicate"
        other = _signed(body, secret, event="iq:policyManagement")
        async with http.post("/webhooks/iq/iq", data=body, headers=other) as r:
            assert r.status == 202 and (await r.json())["outcome"] == "ignored"
        async with http.post("/webhooks/iq/threadfix", data=body, headers=signed) as r:
            assert r.status == 404
        async with http.post("/webhooks/threadfix/threadfix", data=body, headers=signed) as r:
            assert r.status == 404
        big = b"{" + b" " * (2 << 20) + b"}"
        async with http.post("/webhooks/iq/iq", data=big, headers=_signed(big, secret)) as r:
            assert r.status == 413
        async with http.get("/metrics") as r:
            text = await r.text()
        assert 'scanhub_webhook_deliveries_total{outcome="applied",source="iq"} 1.0' in text
        assert 'scanhub_webhook_deliveries_total{outcome="rejected",source="iq"} 2.0' in text
        # Its HELP names every outcome the service counts.
        (help_line,) = [
            line for line in text.splitlines() if line.startswith("# HELP scanhub_webhook_")
        ]
        for outcome in ("applied", "duplicate", "ignored", "invalid", "rejected"):
            assert outcome in help_line, help_line


async def test_an_iq_webhook_polls_the_tracked_items_of_its_application_only(
    tmp_path: Path,
) -> None:
    """An application evaluation pokes the active items of that application of that source
    (to confirm their promotions), looked up by application: not another application's,
    not another source's of the same application id."""
    from scanhub import Promotion

    from .payloads import IQ_APP_ID, IQ_WEBHOOK_EVALUATION

    def promotion(source: str, app: str, n: int) -> Promotion:
        return Promotion(Vendor.IQ, source, f"p{n}", app, Lifecycle.RUNNING, "running")

    async with service(tmp_path) as (svc, sims, http):
        mine = [promotion("iq", IQ_APP_ID, n) for n in range(2)]
        for item in [*mine, promotion("iq", "another-app", 3), promotion("iq2", IQ_APP_ID, 4)]:
            svc.hub.working.add(item, "test")
        poked: list[str] = []
        svc.hub.poke = lambda keys: poked.extend(keys) or 0  # type: ignore[method-assign]
        body = json.dumps(IQ_WEBHOOK_EVALUATION).encode()
        headers = _signed(body, sims["iq"].webhook_secret)
        async with http.post("/webhooks/iq/iq", data=body, headers=headers) as r:
            assert r.status == 200, await r.text()
    assert sorted(poked) == sorted(i.key for i in mine)


async def test_the_iq_simulator_delivers_webhooks_the_service_accepts(tmp_path: Path) -> None:
    async with service(tmp_path, speed=50.0) as (svc, sims, http):
        iq = sims["iq"]
        iq.webhook_urls.append(f"{svc.url}/webhooks/iq/iq")
        app, _ = iq.add_application("hooked")
        iq.seed_promotions(app, 1, duration=1)
        async with asyncio.timeout(10):
            while not iq.deliveries:
                await asyncio.sleep(0.1)
    assert iq.deliveries[0][1] == 200


async def test_headers_on_every_answer(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        paths = ("/", "/static/app.js", "/api/v1/items", "/healthz", "/api/v1/items/none")
        # The live stream too: it sends its headers itself, before a middleware sees it.
        for path in (*paths, "/api/v1/events/stream", "/metrics"):
            async with http.get(path) as r:
                assert r.headers["X-Content-Type-Options"] == "nosniff", path
                csp = r.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
                assert "unsafe-inline" not in csp
        async with http.get("/") as r:
            page = await r.text()
        assert "<script" in page and "onclick" not in page and "<script>" not in page
        async with http.get("/static/../../_service.py") as r:
            assert r.status == 404


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        "serve",
        "--demo",
        "--port",
        "0",
        "--state",
        str(tmp_path / "demo.db"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SCANHUB_NO_PLUGINS": "1"},
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    url = line.split()[2]
    assert url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(20):
            while True:
                async with http.get(f"{url}/api/v1/summary") as r:
                    if (await r.json())["total"] > 0:
                        break
                await asyncio.sleep(0.2)
        stream = await http.get(f"{url}/api/v1/events/stream")
        proc.send_signal(sig)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        stream.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"stopped" in out and b"Traceback" not in err
    import sqlite3

    db = sqlite3.connect(tmp_path / "demo.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] > 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_stops_on_a_signal_while_a_track_lookup_hangs(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """A vendor that accepts and never answers holds a [[track]]'s lookup for minutes (every
    retry): the service prints its URL and answers once it listens, and a signal then stops it
    at once, cleanly, as it would once started."""
    hung: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)

    vendor = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = vendor.sockets[0].getsockname()[1]
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        f'[[source]]\nvendor = "appsecplus"\nbase_url = "http://127.0.0.1:{port}"\n'
        'token_env = "ASP_TOKEN"\n\n[[track]]\nsource = "appsecplus"\nscan_id = "scan-001"\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scanhub", "serve", "-c", str(cfg), "--state", "memory",
        "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SCANHUB_NO_PLUGINS": "1", "ASP_TOKEN": "t"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.split()[2]
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(10):
                while not hung:  # the lookup is under way, and does not end
                    await asyncio.sleep(0.05)
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{url}/api/v1/items") as r:
                assert r.status == 200
        proc.send_signal(sig)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for writer in hung:
            writer.close()
        vendor.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"stopped" in out and b"Traceback" not in err, err.decode()[-2000:]


@pytest.mark.parametrize("host", ["127.0.0.1", "256.1.1.1"])
async def test_serve_that_cannot_listen_says_where_and_why_exit_2(
    tmp_path: Path, host: str
) -> None:
    """A port already taken, or an address that is not one: a one-line error naming the
    address, exit 2 (a configuration error), no traceback; nothing is left listening."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scanhub", "serve", "--demo", "--host", host, "--port",
            str(port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "SCANHUB_NO_PLUGINS": "1"},
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scanhub: cannot listen on {host}:{port}: ")
    assert ("address already in use" if host == "127.0.0.1" else "not known") in lines[0]


def test_grafana_dashboard_and_alerts_use_only_exported_metrics() -> None:
    import re

    import yaml

    exported = set(METRIC_NAMES)
    suffixes = ("_bucket", "_sum", "_count")

    def base(name: str) -> str:
        for suffix in suffixes:
            if name.endswith(suffix) and name[: -len(suffix)] in exported:
                return name[: -len(suffix)]
        return name

    def used(text: str) -> set[str]:
        return {base(n) for n in re.findall(r"\bscanhub_[a-z_]+", text)}

    dashboard = json.loads((ROOT / "contrib/grafana/scanhub.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and used("\n".join(exprs)) <= exported
    alerts = yaml.safe_load((ROOT / "contrib/prometheus/alerts.yml").read_text())
    rules = [r for g in alerts["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"ScanhubStuckScan", "ScanhubSourceDown", "ScanhubFailureRate"} <= names
    assert used("\n".join(r["expr"] for r in rules)) <= exported


async def test_no_credential_in_anything_the_service_serves(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        await asyncio.sleep(1.0)
        secrets = {
            v for sim in sims.values() for k, v in sim.credentials().items() if k != "username"
        }
        secrets.add(sims["iq"].webhook_secret)
        secrets.add(TOKEN)
        bodies = []
        for path in (
            "/api/v1/items?limit=1000",
            "/api/v1/events?since=0",
            "/api/v1/summary",
            "/api/v1/sources",
            "/metrics",
            "/",
        ):
            async with http.get(path) as r:
                bodies.append(await r.text())
        for item in (await svc.hub.current())[:5]:
            from urllib.parse import quote

            async with http.get(f"/api/v1/items/{quote(item.key, safe='')}/history") as r:
                bodies.append(await r.text())
    for body in bodies:
        for secret in secrets:
            assert secret not in body


async def test_an_event_id_has_one_body_live_resumed_replayed_and_in_the_api(
    tmp_path: Path,
) -> None:
    """Issue 16.3: the live stream, a resumed stream, the events and history APIs and
    `scanhub history --format cloudevents` give each transition id exactly the same body."""

    def canonical(event: Any) -> str:
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False)

    async def read_stream(resp: aiohttp.ClientResponse, until: int) -> dict[int, str]:
        got: dict[int, str] = {}
        tid = 0
        async with asyncio.timeout(20):
            while until not in got:
                line = (await resp.content.readline()).decode().rstrip("\n")
                if line.startswith("id: "):
                    tid = int(line[4:])
                elif line.startswith("data: ") and tid:
                    got[tid] = line[6:]
        return got

    async with service(tmp_path, speed=40.0) as (svc, sims, http):
        start = await svc.store.last_id()
        async with http.get(f"/api/v1/events/stream?last_event_id={start}") as live:
            # Transitions happen while the client listens (the simulators move on their own).
            async with asyncio.timeout(20):
                while await svc.store.last_id() < start + 12:
                    await asyncio.sleep(0.1)
            last = await svc.store.last_id()
            live_bodies = await read_stream(live, last)
        async with http.get(
            "/api/v1/events/stream", headers={"Last-Event-ID": str(start)}
        ) as resumed:
            resumed_bodies = await read_stream(resumed, last)
        api = await get_json(http, f"/api/v1/events?since={start}&limit=10000", "EventList")
        api_bodies = {transition_of(e["id"]): canonical(e) for e in api["events"]}
        some = json.loads(live_bodies[last])["subject"]
        history = await get_json(http, f"/api/v1/items/{quote(some, safe='')}/history", "EventList")
        history_bodies = {transition_of(e["id"]): canonical(e) for e in history["events"]}
    cli = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "scanhub",
            "history",
            "--state",
            str(tmp_path / "state.db"),
            "--since",
            str(start),
            "--format",
            "cloudevents",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    cli_bodies = {transition_of(json.loads(line)["id"]): line for line in cli.stdout.splitlines()}
    ids = list(range(start + 1, last + 1))
    assert sorted(live_bodies) == ids  # every id, none twice
    for tid in ids:
        body = live_bodies[tid]
        assert resumed_bodies[tid] == body
        assert api_bodies[tid] == body
        assert cli_bodies[tid] == body
        assert json.loads(body)["data"].get("raw", "absent") == "absent"  # no vendor payload
    assert history_bodies and all(
        history_bodies[t] == live_bodies[t] for t in history_bodies if t in live_bodies
    )
