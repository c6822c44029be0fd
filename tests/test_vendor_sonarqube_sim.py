"""The SonarQube client, spec and simulator over loopback HTTP: the task walk and its quality gate,
both auth forms, typed errors, paged discovery, report-task.txt tracking (also through
`scanhub watch -c`), faults, and webhooks through `scanhub serve`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scanhub import RetryPolicy, ScanHub, Timeouts
from scanhub._compose import apply_tracks, build_clients
from scanhub._config import parse_config
from scanhub.cli import main
from scanhub.serve import Service
from scanhub.sim import Faults, SimClock
from scanhub.vendors import (
    AuthenticationError,
    BadRequestError,
    Lifecycle,
    NotFoundError,
    PayloadError,
    Scan,
    Verdict,
)
from scanhub.vendors.sonarqube import SPEC, SonarQube
from scanhub.vendors.sonarqube.sim import SonarQubeSim

from .test_vendor_sonarqube_payloads import WEBHOOK_NO_TASK, WEBHOOK_SUCCESS

FAST = RetryPolicy(attempts=4, backoff_initial=0.001, backoff_max=0.01, default_429_wait=0.02)
TOKEN_VAR = "SQ_TOKEN_FOR_TESTS"


@contextlib.asynccontextmanager
async def server(
    speed: float = 0.0, **kw: Any
) -> AsyncIterator[tuple[SonarQubeSim, SonarQube, SimClock]]:
    """A simulator on a clock moved by hand (speed 0) unless told, and a client of it."""
    clock = SimClock(speed=speed)
    async with SonarQubeSim(clock=clock, **kw) as sim:
        async with SonarQube(sim.base_url, sim.token, name="sq", retry=FAST) as client:
            yield sim, client, clock


def requests_of(sim: SonarQubeSim) -> int:
    return sim.stats.requests


# --- the walk ------------------------------------------------------------------------------------


async def test_a_task_walks_to_its_quality_gate_and_the_last_poll_reads_it() -> None:
    async with server() as (sim, client, clock):
        tid = sim.submit("webshop", gate="ERROR", queue=1, duration=2)
        scan = await client.task(tid)
        assert (scan.lifecycle, scan.vendor_status) == (Lifecycle.QUEUED, "PENDING")
        assert scan.application_id == "webshop" and scan.scan_type == "REPORT"
        clock.advance(1.5)
        scan = await client.refresh(scan)
        assert (scan.lifecycle, scan.vendor_status) == (Lifecycle.RUNNING, "IN_PROGRESS")
        assert scan.started_at is not None and scan.final_scan_id is None
        clock.advance(2)
        before = requests_of(sim)
        scan = await client.refresh(scan)
        assert requests_of(sim) - before == 2  # the task, then its analysis's gate
        assert (scan.lifecycle, scan.vendor_status) == (Lifecycle.SUCCEEDED, "SUCCESS")
        assert scan.verdict is Verdict.FAIL and scan.final_scan_id in sim.analyses
        assert scan.message == (
            "quality gate ERROR: new_coverage 62.5 < 80 (ERROR); new_violations 7 > 0 (ERROR)"
        )
        assert scan.raw["projectStatus"]["status"] == "ERROR"
        assert scan.links["dashboard"] == f"{sim.base_url}/dashboard?id=webshop"


@pytest.mark.parametrize(
    ("outcome", "gate", "lifecycle", "verdict"),
    [
        ("SUCCESS", "OK", Lifecycle.SUCCEEDED, Verdict.PASS),
        ("SUCCESS", "WARN", Lifecycle.SUCCEEDED, Verdict.WARN),
        ("SUCCESS", "ERROR", Lifecycle.SUCCEEDED, Verdict.FAIL),
        ("SUCCESS", "NONE", Lifecycle.SUCCEEDED, Verdict.NONE),
        ("FAILED", "OK", Lifecycle.FAILED, Verdict.NONE),
        ("CANCELED", "OK", Lifecycle.CANCELLED, Verdict.NONE),
    ],
)
async def test_every_end(outcome: str, gate: str, lifecycle: Lifecycle, verdict: Verdict) -> None:
    async with server() as (sim, client, clock):
        scan = await client.task(sim.submit("webshop", outcome=outcome, gate=gate))
        seen = [scan.vendor_status]
        while not scan.lifecycle.is_terminal:
            clock.advance(0.5)
            scan = await client.refresh(scan)
            seen.append(scan.vendor_status)
        assert (scan.lifecycle, scan.verdict) == (lifecycle, verdict)
        assert scan.vendor_status == outcome and seen[0] == "PENDING"
        # A pending task is canceled before any worker takes it (CancelAction).
        assert ("IN_PROGRESS" in seen) is (outcome != "CANCELED")
        if outcome == "FAILED":
            assert scan.message is not None and "Date of analysis" in scan.message
        if outcome == "SUCCESS" and gate == "WARN":
            assert scan.message == (
                "quality gate WARN: new_security_hotspots_reviewed 75.0 < 100 (WARN)"
            )


async def test_a_task_of_another_type_has_no_gate_to_read() -> None:
    async with server() as (sim, client, clock):
        tid = sim.submit("webshop", task_type="ISSUE_SYNC", queue=0, duration=0)
        before = requests_of(sim)
        scan = await client.task(tid)
        assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.verdict is Verdict.NONE
        assert scan.scan_type == "ISSUE_SYNC" and requests_of(sim) - before == 1


# --- auth and errors -----------------------------------------------------------------------------


async def test_bearer_and_basic_and_a_server_before_10() -> None:
    async with server(bearer=False) as (sim, client, clock):
        tid = sim.submit("webshop")
        with pytest.raises(AuthenticationError) as err:
            await client.task(tid)
        assert 'auth = "basic"' in err.value.message and err.value.status == 401
        async with SonarQube(sim.base_url, sim.token, auth="basic", name="old") as basic:
            assert (await basic.task(tid)).vendor_status == "PENDING"
            assert sim.token not in repr(basic)
        pair = base64.b64encode(f"{sim.token}:".encode()).decode()
        for text in (str(err.value), repr(client), err.value.body_excerpt or ""):
            assert sim.token not in text and pair not in text
    async with server() as (sim, client, clock):
        assert (await client.task(sim.submit("webshop"))).vendor_status == "PENDING"  # Bearer


async def test_a_wrong_token_is_an_authentication_error() -> None:
    async with server() as (sim, _, clock):
        async with SonarQube(sim.base_url, "squ_wrong", name="sq") as client:
            with pytest.raises(AuthenticationError):
                await client.task(sim.submit("webshop"))


async def test_unknown_task_forbidden_gate_and_purged_analysis() -> None:
    async with server() as (sim, client, clock):
        with pytest.raises(NotFoundError, match="No activity found for task 'nope'"):
            await client.task("nope")
        with pytest.raises(BadRequestError):
            await client.task(" ")
        sim.restricted.add("secret-project")
        locked = await client.task(sim.submit("secret-project", queue=0, duration=0.1))
        clock.advance(1)
        with pytest.raises(AuthenticationError, match="Insufficient privileges") as err:
            await client.refresh(locked)
        assert err.value.status == 403
        purged = sim.submit("webshop", queue=0, duration=0)
        del sim.analyses[sim.tasks[purged].analysis_id or ""]
        scan = await client.task(purged)
        assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.verdict is Verdict.NONE
        assert scan.message is not None and "is not found" in scan.message


async def test_refresh_refuses_another_clients_item() -> None:
    async with server() as (sim, client, clock):
        other = Scan("sonarqube", "elsewhere", "t", "p", Lifecycle.UNKNOWN, "")
        with pytest.raises(BadRequestError):
            await client.refresh(other)


# --- discovery -----------------------------------------------------------------------------------


async def test_discovery_pages_through_a_projects_tasks_and_remembers_gates() -> None:
    async with server() as (sim, client, clock):
        ids = set(sim.seed_tasks("big", 250, duration=0))
        sim.queue = 0
        clock.advance(1)
        before = requests_of(sim)
        found = [s async for s in client.activity("big", max_tasks=1000)]
        assert {s.id for s in found} == ids and len(found) == 250
        assert requests_of(sim) - before == 3  # pages of 100
        some = [s async for s in client.activity("big", max_tasks=120)]
        assert len(some) == 120
        before = requests_of(sim)
        discovered = [s async for s in client.discover("big", max_tasks="30")]
        gated = [s for s in discovered if s.lifecycle is Lifecycle.SUCCEEDED]
        assert len(discovered) == 30 and all(s.verdict is not Verdict.NONE for s in gated)
        assert requests_of(sim) - before == 1 + len(gated)
        before = requests_of(sim)
        again = [s async for s in client.discover("big", max_tasks="30")]
        assert requests_of(sim) - before == 1  # the gates are remembered
        assert [s.verdict for s in again] == [s.verdict for s in discovered]


async def test_discovery_filters_and_errors() -> None:
    async with server() as (sim, client, clock):
        done = sim.submit("webshop", queue=0, duration=0)
        waiting = sim.submit("webshop", queue=100)
        pending = [s.id async for s in client.discover("webshop", status="queued")]
        assert pending == [waiting]
        everything = [s.id async for s in client.discover("webshop")]
        assert everything == [waiting, done]  # the queue first
        assert [s.id async for s in client.discover("webshop", task_type="ISSUE_SYNC")] == []
        with pytest.raises(NotFoundError, match="Component 'nope' does not exist"):
            [s async for s in client.discover("nope")]
        with pytest.raises(BadRequestError, match="not one of"):
            [s async for s in client.discover("webshop", status="DONE")]
        with pytest.raises(BadRequestError, match="whole number"):
            [s async for s in client.discover("webshop", max_tasks="many")]
        with pytest.raises(BadRequestError):
            [s async for s in client.activity("webshop", max_tasks=0)]


class _IgnoresPaging(SonarQubeSim):
    async def _activity(self, request: Any) -> Any:
        return await super()._activity(request.clone(rel_url=request.rel_url.update_query(p="1")))


async def test_paging_always_ends_even_when_the_server_ignores_the_page() -> None:
    clock = SimClock(speed=0)
    async with _IgnoresPaging(clock=clock) as sim:
        sim.seed_tasks("big", 30, duration=0)
        async with SonarQube(sim.base_url, sim.token, name="sq") as client:
            found: list[Scan] = []

            async def collect() -> None:
                async for s in client.activity("big", page_size=10, max_tasks=100):
                    found.append(s)

            with pytest.raises(PayloadError, match="asked for page 2"):
                await collect()
            assert len(found) == 10


# --- tracking from configuration -----------------------------------------------------------------


def source_doc(sim: SonarQubeSim, **extra: Any) -> dict[str, Any]:
    return {
        "name": "sq",
        "vendor": "sonarqube",
        "base_url": sim.base_url,
        "token_env": TOKEN_VAR,
        **extra,
    }


async def test_report_task_tracks_are_followed_to_the_verdict(tmp_path: Path) -> None:
    async with server(speed=50) as (sim, _, clock):
        ok = sim.submit("org.example:webshop", gate="OK", queue=0.5, duration=1)
        bad = sim.submit("payments", gate="ERROR", queue=0.5, duration=1)
        first = tmp_path / "a" / "report-task.txt"
        first.parent.mkdir()
        first.write_text(
            f"projectKey=org.example:webshop\nserverUrl=http://public.example\n"
            f"dashboardUrl=http://public.example/dashboard?id=org.example%3Awebshop\n"
            f"ceTaskId={ok}\nceTaskUrl=http://public.example/api/ce/task?id={ok}\n"
        )
        second = tmp_path / "b.txt"  # no projectKey: the task says which project it is
        second.write_text(f"ceTaskUrl={sim.base_url}/api/ce/task?id={bad}\n")
        doc = {
            "source": [source_doc(sim)],
            "track": [
                {"source": "sq", "report_task": str(first)},
                {"source": "sq", "report_task": str(second)},
                {"source": "sq", "report_task": str(tmp_path / "missing.txt")},
            ],
        }
        env = {TOKEN_VAR: sim.token}
        config = parse_config(doc, "t.toml", env=env)
        async with ScanHub(build_clients(config, env), interval=0.05, max_interval=0.2) as hub:
            await apply_tracks(hub, config)
            assert hub.discovery.errors["sq"].type == "ConfigError"
            assert "missing.txt" in hub.discovery.errors["sq"].message
            async for _ in hub.watch(deadline=20):
                pass
            items = {i.id: i for i in await hub.current()}
    assert (items[ok].lifecycle, items[ok].verdict) == (Lifecycle.SUCCEEDED, Verdict.PASS)
    assert items[ok].application_id == "org.example:webshop"
    assert (items[bad].lifecycle, items[bad].verdict) == (Lifecycle.SUCCEEDED, Verdict.FAIL)
    assert items[bad].application_id == "payments"


async def test_task_id_and_project_tracks_resolve(tmp_path: Path) -> None:
    async with server() as (sim, client, clock):
        tid = sim.submit("webshop")
        by_id = await SPEC.resolve_track(client, SPEC.track_schema(source="sq", task_id=tid))
        assert [(i.id, i.application_id, i.vendor_status) for i in by_id.items] == [
            (tid, "webshop", "PENDING")
        ]
        both = await SPEC.resolve_track(
            client, SPEC.track_schema(source="sq", task_id=tid, project_key="webshop")
        )
        assert (
            both.items[0].lifecycle is Lifecycle.UNKNOWN and both.items[0].key == by_id.items[0].key
        )
        rule = await SPEC.resolve_track(
            client,
            SPEC.track_schema(source="sq", project_key="webshop", status="PENDING", max_tasks=5),
        )
        assert rule.items == () and rule.query == {
            "project_key": "webshop",
            "status": "PENDING",
            "max_tasks": "5",
        }


def _watch(cfg: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["watch", "-c", str(cfg), "--format", "plain", "--timeout", "30"], out)
    return code, out.getvalue()


@pytest.mark.parametrize(("gate", "code"), [("OK", 0), ("ERROR", 3)])
async def test_scanhub_watch_right_after_the_scanner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate: str, code: int
) -> None:
    """What a pipeline does: the scanner leaves .scannerwork/report-task.txt, then
    `scanhub watch -c scanhub.toml` follows that task and exits 0 (gate passed) or 3 (the gate
    blocks)."""
    async with server(speed=20) as (sim, _, clock):
        task_id = sim.submit("webshop", gate=gate, queue=0.5, duration=1)
        work = tmp_path / ".scannerwork"
        work.mkdir()
        (work / "report-task.txt").write_text(
            f"projectKey=webshop\nserverUrl={sim.base_url}\nceTaskId={task_id}\n"
            f"ceTaskUrl={sim.base_url}/api/ce/task?id={task_id}\n"
        )
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(
            textwrap.dedent(f"""
                interval = 0.05
                [[source]]
                name = "sonarqube"
                vendor = "sonarqube"
                base_url = "{sim.base_url}"
                token_env = "{TOKEN_VAR}"

                [[track]]
                source = "sonarqube"
                report_task = "{work / "report-task.txt"}"
            """)
        )
        monkeypatch.setenv(TOKEN_VAR, sim.token)
        result, out = await asyncio.to_thread(_watch, cfg)
    assert result == code, out
    assert "succeeded" in out and sim.token not in out


async def test_scanhub_watch_tracks_the_report_task_named_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same pipeline with a configuration that only names the server: the task comes from
    `--track`, a [[track]] table written on the command line."""
    async with server(speed=20) as (sim, _, clock):
        task_id = sim.submit("webshop", gate="ERROR", queue=0.5, duration=1)
        report = tmp_path / "report-task.txt"
        report.write_text(f"projectKey=webshop\nserverUrl={sim.base_url}\nceTaskId={task_id}\n")
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(
            textwrap.dedent(f"""
                interval = 0.05
                [[source]]
                name = "sonarqube"
                vendor = "sonarqube"
                base_url = "{sim.base_url}"
                token_env = "{TOKEN_VAR}"
            """)
        )
        monkeypatch.setenv(TOKEN_VAR, sim.token)
        track = f'source = "sonarqube", report_task = "{report}"'
        out = io.StringIO()
        argv = ["watch", "-c", str(cfg), "--format", "plain", "--timeout", "30", "--track", track]
        code = await asyncio.to_thread(main, argv, out)
    assert code == 3, out.getvalue()  # the gate blocks
    assert task_id in out.getvalue() and "succeeded" in out.getvalue()


@pytest.mark.parametrize(
    ("track", "said"),
    [
        ('source = "sonarqube", report_task = ', "not the inside of a TOML inline table"),
        ('source = "nowhere", task_id = "x"', "track[0].source"),
        ('source = "sonarqube", report_task = 5', "track[0].report_task"),
    ],
)
def test_a_bad_track_on_the_command_line_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], track: str, said: str
) -> None:
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nname = "sonarqube"\nvendor = "sonarqube"\n'
        'base_url = "http://127.0.0.1:9"\ntoken_env = "T"\n'
    )
    assert main(["status", "-c", str(cfg), "--track", track], io.StringIO()) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


async def test_the_watch_rides_through_faults_and_unknown_statuses() -> None:
    faults = Faults(
        error_rate=0.2,
        rate_limit_rate=0.1,
        retry_after=0,
        malformed_rate=0.1,
        html_rate=0.05,
        unknown_status_rate=0.3,
        seed=5,
    )
    async with server(speed=50, faults=faults) as (sim, client, clock):
        client.transport.timeouts = Timeouts(connect=1.0, total=2.0)
        planned = {
            sim.submit("webshop", gate="OK", duration=1): (Lifecycle.SUCCEEDED, Verdict.PASS),
            sim.submit("webshop", gate="ERROR", duration=1): (Lifecycle.SUCCEEDED, Verdict.FAIL),
            sim.submit("webshop", outcome="FAILED", duration=1): (Lifecycle.FAILED, Verdict.NONE),
        }
        async with ScanHub([client], interval=0.05, max_interval=0.2) as hub:
            for tid in planned:
                hub.track(Scan("sonarqube", "sq", tid, "webshop", Lifecycle.UNKNOWN, ""))
            async for _ in hub.watch(deadline=30):
                pass
            got = {i.id: (i.lifecycle, i.verdict) for i in await hub.current()}
    assert got == planned


# --- webhooks through `scanhub serve` ------------------------------------------------------------

HOOK_VAR = "SQ_HOOK_FOR_TESTS"


def _signed(body: bytes, secret: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-SonarQube-Project": "org.sonarqube:example",
        "X-Sonar-Webhook-HMAC-SHA256": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


async def test_webhooks_are_verified_and_applied_and_the_simulator_sends_them(
    tmp_path: Path,
) -> None:
    async with server(speed=20) as (sim, _, clock):
        env = {TOKEN_VAR: sim.token, HOOK_VAR: sim.webhook_secret}
        doc = {
            "interval": 0.1,
            "source": [
                source_doc(sim, webhook_secret_env=HOOK_VAR),
                {**source_doc(sim), "name": "plain"},
            ],
        }
        config = parse_config(doc, str(tmp_path / "scanhub.toml"), env=env)
        hub = ScanHub(build_clients(config, env), interval=0.1, max_interval=0.5)
        svc = Service(hub, config, port=0, env=env)
        await svc.start()
        try:
            async with aiohttp.ClientSession(base_url=svc.url) as http:
                body = json.dumps(WEBHOOK_SUCCESS).encode()
                async with http.post(
                    "/webhooks/sonarqube/sq", data=body, headers=_signed(body, "no")
                ) as r:
                    assert r.status == 401
                unsigned = {
                    k: v for k, v in _signed(body, sim.webhook_secret).items() if "HMAC" not in k
                }
                async with http.post("/webhooks/sonarqube/sq", data=body, headers=unsigned) as r:
                    assert r.status == 401
                assert await hub.current() == []
                good = _signed(body, sim.webhook_secret)
                async with http.post("/webhooks/sonarqube/sq", data=body, headers=good) as r:
                    assert r.status == 200
                    result = await r.json()
                assert result["outcome"] == "applied" and len(result["keys"]) == 1
                (item,) = await hub.current()
                assert (item.id, item.application_id) == (
                    "AVh21JS2JepAEhwQ-b3u",
                    "org.sonarqube:example",
                )
                assert item.lifecycle is Lifecycle.SUCCEEDED and item.verdict is Verdict.PASS
                async with http.post("/webhooks/sonarqube/sq", data=body, headers=good) as r:
                    assert (await r.json())["outcome"] == "duplicate"
                other = json.dumps(WEBHOOK_NO_TASK).encode()
                async with http.post(
                    "/webhooks/sonarqube/sq", data=other, headers=_signed(other, sim.webhook_secret)
                ) as r:
                    assert r.status == 202 and (await r.json())["outcome"] == "ignored"
                async with http.post("/webhooks/sonarqube/plain", data=body, headers=good) as r:
                    assert r.status == 404  # that source has no webhook secret
                # The simulator delivers its own, signed, once each task ends.
                sim.webhook_urls.append(f"{svc.url}/webhooks/sonarqube/sq")
                tid = sim.submit("hooked", gate="ERROR", queue=0.2, duration=0.5)
                async with asyncio.timeout(10):
                    while not sim.deliveries:
                        await asyncio.sleep(0.05)
                assert sim.deliveries == [(f"{svc.url}/webhooks/sonarqube/sq", 200)]
                hooked = next(i for i in await hub.current() if i.id == tid)
                assert hooked.lifecycle is Lifecycle.SUCCEEDED and hooked.verdict is Verdict.FAIL
                assert hooked.message is not None and "new_coverage 62.5 < 80" in hooked.message
        finally:
            await svc.stop()
