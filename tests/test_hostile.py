"""Hostile servers and careless users: no leak, no hang, no crash.

Every test here talks to a real aiohttp server on loopback that misbehaves on purpose (or runs
the command the way a careless user would), with a bound on time and requests.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import scanhub
from scanhub import (
    AppSecPlus,
    AppTrust,
    BadRequestError,
    IQServer,
    Lifecycle,
    PayloadError,
    RateLimitedError,
    RetryPolicy,
    ThreadFix,
    to_json,
)
from scanhub.cli import main

from .hostile import hostile

KEY = "tf-secret-key-0042"
TOKEN = "asp-secret-token-0042"


def envelope(obj: Any, message: str = "", **extra: Any) -> web.Response:
    return web.json_response(
        {"message": message, "success": True, "responseCode": -1, "object": obj, **extra}
    )


# --- 1. No credential in any link, output or log ------------------------------------------------


async def _echoing_threadfix() -> Any:
    """A ThreadFix that echoes the key (query and header) into links, messages and bodies."""

    async def upload(request: web.Request) -> web.StreamResponse:
        key = request.query.get("apiKey", "")
        auth = request.headers.get("Authorization", "")
        base = f"http://user:{key}@{request.host}/threadfix/rest/latest/applications/6"
        return envelope(
            "Scan upload process started.",
            f"hello {auth} {key}",
            links=[
                {
                    "method": "GET",
                    "rel": "related",
                    "href": f"{base}/pendingScan/41/status?apiKey={key}",
                }
            ],
        )

    async def status(request: web.Request) -> web.StreamResponse:
        key = request.query.get("apiKey", "")
        obj = {
            "id": 41,
            "appId": 6,
            "status": "DONE",
            "error": False,
            "errorMessage": None,
            "scanId": 12,
            "scanMessage": f"processed with key {key}",
            "modifiedDate": 1570117773000,
        }
        return envelope(obj, f"Scan Processing Completed ({key})")

    base = "/threadfix/rest/{version}/applications/{app}"
    return hostile(
        {("POST", f"{base}/upload"): upload, ("GET", f"{base}/pendingScan/{{pid}}/status"): status}
    )


async def test_a_key_sent_in_the_query_never_reaches_links_json_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="scanhub")
    async with await _echoing_threadfix() as server:
        async with ThreadFix(f"{server.base}/threadfix", KEY, api_key_in_query=True) as tf:
            queued = await tf.upload_scan(6, b"<FVDL/>", filename="a.fpr")
            done = await tf.refresh(queued)
        assert server.requests[0].query["apiKey"] == KEY  # it was sent, as asked
    for item in (queued, done):
        for text in (
            repr(item),
            to_json(item),
            str(item.message),
            *item.links.values(),
        ):
            assert KEY not in text
        assert all("@" not in url and "apiKey" not in url for url in item.links.values())
    assert done.lifecycle is Lifecycle.SUCCEEDED
    assert KEY not in caplog.text and caplog.records  # logged, redacted


async def test_no_credential_in_cli_json_and_ndjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_KEY", KEY)
    async with await _echoing_threadfix() as server:
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(
            textwrap.dedent(f"""
                [[source]]
                name = "tf"
                vendor = "threadfix"
                base_url = "{server.base}/threadfix"
                api_key_env = "TF_KEY"
                api_key_in_query = true

                [[track]]
                source = "tf"
                application_id = 6
                pending_scan_id = 41
                """)
        )
        for fmt in ("json", "ndjson", "table"):
            out = io.StringIO()
            code = await asyncio.to_thread(main, ["status", "-c", str(cfg), "--format", fmt], out)
            assert code == 0
            assert KEY not in out.getvalue()
            assert "pendingScan/41/status" in out.getvalue() or fmt == "table"


def test_base_url_with_credentials_is_refused() -> None:
    with pytest.raises(BadRequestError, match="must not carry credentials") as err:
        AppSecPlus("https://bot:hunter2pass@api.example.com", TOKEN)
    assert "hunter2pass" not in str(err.value)


# --- 2. Paging always ends, never repeats -------------------------------------------------------


def _record(millis: int) -> dict[str, Any]:
    return {
        "status": "COMPLETED",
        "application_key": "k",
        "application_version": "1",
        "target_stage": "QA",
        "created_millis": millis,
    }


def _pages(kind: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        records = [_record(1_000_000 + offset + i) for i in range(limit)]
        body: dict[str, Any] = {"promotions": records, "total": 10**9, "limit": limit}
        if kind == "stuck":  # always claims offset 0
            body["offset"] = 0
        elif kind == "backwards":
            body["offset"] = max(0, offset - limit)
        elif kind == "negative":
            body["offset"] = -5
        elif kind == "ignores-offset":  # the same first page every time, offset echoed
            body["promotions"] = [_record(1_000_000 + i) for i in range(limit)]
            body["offset"] = offset
        elif kind == "no-total":  # three full pages, then a short one
            body.pop("total")
            body["offset"] = offset
            if offset >= 3 * limit:
                body["promotions"] = records[: limit // 2]
        elif kind == "huge-total":  # total lies; pages run out
            body["offset"] = offset
            if offset >= 2 * limit:
                body["promotions"] = []
        return web.json_response(body)

    return hostile({("GET", "/applications/{key}/versions/{v}/promotions"): handler})


@pytest.mark.parametrize(
    ("kind", "yielded", "requests", "fault"),
    [
        ("stuck", 10, 2, "answered offset 0"),
        ("backwards", 10, 2, "answered offset 0"),
        ("negative", 0, 1, "answered offset -5"),
        ("ignores-offset", 10, 2, "repeats records"),
        ("no-total", 35, 4, None),
        ("huge-total", 20, 3, None),
    ],
)
async def test_paging_ends_without_duplicates(
    kind: str, yielded: int, requests: int, fault: str | None
) -> None:
    async with _pages(kind) as server:
        seen: list[str] = []
        async with AppTrust(server.base, TOKEN) as at:

            async def collect() -> None:
                async for p in at.promotions("k", "1", page_size=10):
                    seen.append(p.id)

            if fault is None:
                await asyncio.wait_for(collect(), 10)
            else:
                with pytest.raises(PayloadError, match=fault):
                    await asyncio.wait_for(collect(), 10)
        assert len(server.requests) == requests
    assert len(seen) == yielded and len(set(seen)) == len(seen)


async def test_paging_is_capped() -> None:
    async with _pages("huge-total-forever") as server:
        async with AppTrust(server.base, TOKEN) as at:
            with pytest.raises(PayloadError, match="more than 5 pages"):
                async for _ in at.promotions("k", "1", page_size=10, max_pages=5):
                    pass
        assert len(server.requests) == 5


# --- 3. Bodies are capped -----------------------------------------------------------------------


async def test_a_declared_huge_body_is_refused_unread() -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(210 * 2**20)})
        resp.content_type = "application/json"
        await resp.prepare(request)
        await resp.write(b'{"id": "s1", "status": "')
        return resp

    async with hostile({("GET", "/scans/{id}"): huge}) as server:
        async with AppSecPlus(server.base, TOKEN) as asp:
            with pytest.raises(PayloadError, match="over the 16777216-byte cap"):
                await asp.scan("s1")


async def test_a_streamed_body_past_the_cap_stops_being_read() -> None:
    sent = [0]

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked: no Content-Length to judge by
        resp.content_type = "application/json"
        await resp.prepare(request)
        chunk = b"[" + b" " * (2**20 - 1)
        try:
            for _ in range(210):  # 210 MB if anyone read it all
                await resp.write(chunk)
                sent[0] += len(chunk)
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with hostile({("GET", "/scans/{id}"): endless}) as server:
        async with AppSecPlus(server.base, TOKEN, max_body=2**20) as asp:
            with pytest.raises(PayloadError, match="cap while streaming"):
                await asyncio.wait_for(asp.scan("s1"), 20)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert sent[0] < 100 * 2**20  # the server was cut off long before 210 MB
    assert grown_kib < 200 * 1024  # far from the 2.9 GB of reading it whole


def test_max_body_is_a_source_setting() -> None:
    from scanhub._config import parse_config

    cfg = parse_config(
        {
            "source": [
                {
                    "vendor": "appsecplus",
                    "base_url": "http://x",
                    "token_env": "T",
                    "max_body": 4096,
                }
            ]
        }
    )
    client = scanhub.build_clients(cfg, {"T": "tok3n-value"})[0]
    assert client.transport.max_body == 4096


# --- 4. Deep nesting ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [500, 990, 5000, 100_000])
async def test_deeply_nested_payloads_become_a_model_or_a_payload_error(depth: int) -> None:
    deep = b"[" * depth + b"]" * depth

    async def answer(request: web.Request) -> web.StreamResponse:
        body = b'{"id": "s1", "status": "running", "extra": ' + deep + b"}"
        return web.Response(body=body, content_type="application/json")

    async with hostile({("GET", "/scans/{id}"): answer}) as server:
        async with AppSecPlus(server.base, TOKEN) as asp:
            try:
                scan = await asp.scan("s1")
            except PayloadError:
                assert depth >= 1000
                return
    text = to_json(scan)  # serialization of what was accepted never fails
    assert json.loads(text)["lifecycle"] == "running"
    assert scanhub.to_dict(scan)["raw"]["id"] == "s1"


async def test_cli_reports_a_too_deep_payload_with_exit_5(tmp_path: Path) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"[" * 5000 + b"]" * 5000, content_type="application/json")

    async with hostile({("GET", "/scans/{id}"): answer}) as server:
        cfg = tmp_path / "scanhub.toml"
        cfg.write_text(
            f'[[source]]\nvendor = "appsecplus"\nbase_url = "{server.base}"\ntoken_env = "T"\n'
            '[[track]]\nsource = "appsecplus"\nscan_id = "s1"\n'
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scanhub",
            "status",
            "-c",
            str(cfg),
            "--format",
            "json",
            env={**os.environ, "T": TOKEN},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 5
    assert b"Traceback" not in err
    # A scan tracked by its id alone is read when the track is resolved (its key names its
    # application): the refusal is the source's, not an item's.
    report = json.loads(out)
    assert report["errors"] == {} and list(report["source_errors"]) == ["appsecplus"]
    assert report["source_errors"]["appsecplus"]["type"] == "PayloadError", report


# --- 5. Ids are path segments -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", ".", "..", "   "])
async def test_dot_and_empty_ids_are_refused_before_sending(bad: str) -> None:
    async def never(request: web.Request) -> web.StreamResponse:
        raise AssertionError("nothing may be sent")

    async with hostile({("GET", "/{tail:.*}"): never}) as server:
        async with AppSecPlus(server.base, TOKEN) as asp:
            with pytest.raises(BadRequestError, match="path segment"):
                await asp.scan(bad)
        async with AppTrust(server.base, TOKEN) as at:
            with pytest.raises(BadRequestError, match="path segment"):
                await at.promotion("k", bad, "1")
        async with IQServer(server.base, "u", "passw0rd") as iq:
            with pytest.raises(BadRequestError, match="path segment"):
                await iq.promotion(bad, "abc")
        async with ThreadFix(server.base, KEY) as tf:
            with pytest.raises(BadRequestError, match="path segment"):
                await tf.pending_scan(6, bad)
        assert server.requests == []


@pytest.mark.parametrize("odd", ["a/b", "a?b=1", "x#y", "../etc", "%2e%2e", "sp ace"])
async def test_other_ids_arrive_as_the_literal_id(odd: str) -> None:
    got: list[str] = []

    async def one(request: web.Request) -> web.StreamResponse:
        got.append(request.match_info["id"])
        return web.json_response({"id": request.match_info["id"], "status": "running"})

    async with hostile({("GET", "/scans/{id}"): one}) as server:
        async with AppSecPlus(server.base, TOKEN) as asp:
            scan = await asp.scan(odd)
    assert got == [odd] and scan.id == odd


# --- 6. Retry-After taken only in its RFC forms, and capped -------------------------------------


@pytest.mark.parametrize(
    ("header", "paused_at_most"),
    [
        ("1e308", 1.0),  # not delay-seconds: our own backoff (tiny here)
        ("1_0", 1.0),
        ("\u0661\u0660", 1.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 120.0),  # a valid date, capped
        ("99999999999", 120.0),
    ],
)
async def test_retry_after_never_pauses_a_source_for_years(
    header: str, paused_at_most: float
) -> None:
    async def limited(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": header})

    retry = RetryPolicy(attempts=1, backoff_initial=0.01, backoff_max=0.02, retry_after_cap=120.0)
    async with hostile({("GET", "/scans/{id}"): limited}) as server:
        async with AppSecPlus(server.base, TOKEN, retry=retry) as asp:
            with pytest.raises(RateLimitedError) as err:
                await asp.scan("s1")
            paused = asp.transport.paused_for
    assert paused <= paused_at_most
    assert err.value.retry_after is None or err.value.retry_after <= paused_at_most


# --- 7. Envelope and status edges ---------------------------------------------------------------


async def test_a_string_false_success_is_not_success() -> None:
    async def status(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "message": "nope",
                "success": "false",
                "responseCode": -1,
                "object": {"id": 41, "appId": 6, "status": "DONE"},
            }
        )

    async with (
        hostile({("GET", "/rest/latest/applications/6/pendingScan/41/status"): status}) as server,
        ThreadFix(server.base, KEY) as tf,
    ):
        with pytest.raises(PayloadError, match="success is 'false'"):
            await tf.pending_scan(6, 41)


async def test_status_with_surrounding_white_space_is_mapped() -> None:
    async def status(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": " PENDING "})

    async with (
        hostile({("GET", "/api/v2/evaluation/applications/{a}/status/{s}"): status}) as server,
        IQServer(server.base, "u", "passw0rd") as iq,
    ):
        promo = await iq.promotion("app", "sid")
    assert promo.lifecycle is Lifecycle.RUNNING and promo.vendor_status == " PENDING "


async def test_a_redirect_names_its_location() -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=302, headers={"Location": "https://sso.example.com/login?token=abc123secret"}
        )

    async with hostile({("GET", "/scans/{id}"): moved}) as server:
        async with AppSecPlus(server.base, TOKEN) as asp:
            with pytest.raises(
                PayloadError, match=r"redirected to 'https://sso\.example\.com/login'"
            ):
                await asp.scan("s1")


# --- 8. The command under pipes and first use ---------------------------------------------------


def _sim_env(out: str) -> dict[str, str]:
    env = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value
    return env


def _start_sim(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanhub", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "sim ended"
        lines.append(line)
        if line.startswith("scanhub sim: ready"):
            return proc, "".join(lines)


def test_status_into_head_ends_quietly(tmp_path: Path) -> None:
    cfg = tmp_path / "sim.toml"
    sim, out = _start_sim("--duration", "60", "--write-config", str(cfg))
    try:
        env = {**os.environ, **_sim_env(out)}
        done = subprocess.run(
            f"{sys.executable} -m scanhub status -c {cfg} --format ndjson | head -1",
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    finally:
        sim.terminate()
        sim.wait(10)
    assert done.returncode == 0  # head's status
    assert len(done.stdout.splitlines()) == 1 and json.loads(done.stdout)["kind"]
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_readme_quickstart_runs_as_written_after_scanhub_sim(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quick = readme.split("## Quickstart", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "quickstart.py"
    script.write_text(quick)
    sim, out = _start_sim("--duration", "90", "--speed", "4")
    try:
        assert "seeded:" in out and "application webshop" in out and "app-12345" in out
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=80,
            env={**os.environ, **_sim_env(out)},
            check=False,
        )
    finally:
        sim.terminate()
        sim.wait(10)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(x.startswith("IQ succeeded") for x in lines)
    assert any(x.startswith("ThreadFix succeeded DONE") for x in lines)
    assert any(x.startswith("AppSec+ succeeded") for x in lines)
    assert any(x.startswith("AppTrust") for x in lines)
    # A finished task listed by the activity carries no gate: the snippet reads it (a CI gate
    # copied from it must not pass an ERROR gate as `none`).
    (sonar,) = [x.split() for x in lines if x.startswith("SonarQube ")]
    assert sonar[1] == "succeeded" and sonar[2] in ("pass", "warn", "fail"), sonar
    assert any(x.startswith("Dependency-Track succeeded") for x in lines)
    assert any(x.startswith("GitHub succeeded complete FindingCounts(") for x in lines)


def test_config_error_wording_matches_readme(tmp_path: Path) -> None:
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nvendor = "appsecplus"\nbase_url = "http://x"\ntoken = "s3cr3t-value"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "scanhub", "status", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    expected = (
        f"scanhub: {cfg}: source[0].token: expected token_env naming an environment variable "
        "(secrets are never read from the file)"
    )
    assert done.stderr.splitlines()[0] == expected
    assert "  " not in done.stderr and "s3cr3t-value" not in done.stderr
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    # README shows the same line for a file named scanhub.toml whose second source is wrong.
    shown = expected.replace(str(cfg), "scanhub.toml").replace("source[0]", "source[1]")
    assert shown in readme.splitlines()


async def test_watch_plain_shows_whole_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanhub.sim import IQSim, SimClock

    sim = IQSim(clock=SimClock(speed=100.0))
    async with sim:
        app, _ = sim.add_application("webshop")
        sids = sim.seed_promotions(app, 2, duration=1)
        cfg = tmp_path / "scanhub.toml"
        tracks = "".join(
            f'[[track]]\nsource = "iq"\napplication_id = "{app}"\nstatus_id = "{s}"\n' for s in sids
        )
        cfg.write_text(
            f'interval = 0.05\n[[source]]\nvendor = "iq"\nbase_url = "{sim.base_url}"\n'
            f'username = "admin"\npassword_env = "P"\n{tracks}'
        )
        monkeypatch.setenv("P", sim.password)
        out = io.StringIO()
        code = await asyncio.to_thread(
            main, ["watch", "-c", str(cfg), "--format", "plain", "--timeout", "20"], out
        )
    assert code == 0
    text = out.getvalue()
    assert all(s in text for s in sids)  # 32 hex digits each, shared prefix: all visible
