"""The `Host` a request names, over real sockets: a service answers only for its own names
(a web page reading it through DNS rebinding names its own), but for the probes and the
vendors' webhooks; bound to a wildcard it answers for the names it is given, or any (with a
warning)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from scanhub import ScanHub
from scanhub._config import parse_config
from scanhub._errors import ConfigError
from scanhub.serve import Service
from scanhub.serve._hosts import HostRule, check_name, host_name

from .test_serve import _signed, service

ATTACKER = "attacker.example"
#: What the API and the page answer (a GET), with a Host the service does not answer for.
GUARDED = (
    "/",
    "/static/app.js",
    "/api/v1/items",
    "/api/v1/summary",
    "/api/v1/events?since=0",
    "/api/v1/events/stream",
    "/api/v1/openapi.json",
    "/metrics",
    "/no/such/path",
)


async def _misdirected(r: aiohttp.ClientResponse, path: str) -> None:
    assert r.status == 421, (path, r.status)
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers.get("Connection", "").lower() == "close"
    problem = json.loads(await r.read())
    assert problem["status"] == 421 and problem["title"] == "Misdirected Request"
    assert ATTACKER in problem["detail"] and "--allowed-host" in problem["detail"]


async def test_a_loopback_service_answers_only_for_its_names(tmp_path: Path) -> None:
    async with service(tmp_path) as (svc, sims, http):
        port = svc.port
        for host in (ATTACKER, f"{ATTACKER}:{port}", f"{ATTACKER}.", "127.0.0.1.evil", "::1"):
            for path in GUARDED:
                async with http.get(path, headers={"Host": host}) as r:
                    assert r.status == 421, (host, path, r.status)
        for path in GUARDED:
            async with http.get(path, headers={"Host": ATTACKER}) as r:
                await _misdirected(r, path)
        # A write too, token or not, before its body is read.
        auth = {"Authorization": "Bearer s3rve-token-for-tests", "Host": ATTACKER}
        async with http.post("/api/v1/track", json={"source": "iq"}, headers=auth) as r:
            await _misdirected(r, "/api/v1/track")
        async with http.delete("/api/v1/items/x", headers=auth) as r:
            await _misdirected(r, "/api/v1/items/x")

        # Its own names, any port, any case: the page and the API as ever.
        for host in (
            f"127.0.0.1:{port}",
            "127.0.0.1",
            f"localhost:{port}",
            "LocalHost.",
            f"[::1]:{port}",
            "[::1]",
        ):
            async with http.get("/", headers={"Host": host}) as r:
                assert r.status == 200, host
                assert "<script" in await r.text()
            async with http.get("/api/v1/items", headers={"Host": host}) as r:
                assert r.status == 200, host
                assert "items" in await r.json()
        # As a client (a browser) sends it when it opens the printed URL.
        async with http.get("/api/v1/items") as r:
            assert r.status == 200 and r.url.host == "127.0.0.1"

        # The probes answer any Host (a load balancer names what it likes).
        for path in ("/healthz", "/readyz"):
            async with http.get(path, headers={"Host": ATTACKER}) as r:
                assert r.status == 200, path
        # A vendor's webhook names the service's public name: judged by its signature.
        from .payloads import IQ_WEBHOOK_EVALUATION

        body = json.dumps(IQ_WEBHOOK_EVALUATION).encode()
        signed = {**_signed(body, sims["iq"].webhook_secret), "Host": "scanhub.example.com"}
        async with http.post("/webhooks/iq/iq", data=body, headers=signed) as r:
            assert r.status == 200, await r.text()
        forged = {**_signed(body, "wrong"), "Host": ATTACKER}
        async with http.post("/webhooks/iq/iq", data=body, headers=forged) as r:
            assert r.status == 401


async def test_a_request_without_host_is_answered(tmp_path: Path) -> None:
    """HTTP/1.0 without a Host: no browser's (it cannot be a rebinding page)."""
    async with service(tmp_path) as (svc, sims, http):
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
        writer.write(b"GET /api/v1/summary HTTP/1.0\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert raw.split(b" ")[1] == b"200", raw[:200]
        # Two Host headers are refused by the parser, whichever comes first.
        for hosts in ((b"127.0.0.1", ATTACKER.encode()), (ATTACKER.encode(), b"127.0.0.1")):
            reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
            writer.write(b"GET /api/v1/summary HTTP/1.1\r\nHost: %s\r\nHost: %s\r\n\r\n" % hosts)
            raw = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert raw.split(b" ")[1] == b"400", raw[:200]


async def test_bound_to_a_wildcard_it_answers_for_the_names_given(tmp_path: Path) -> None:
    async with service(
        tmp_path, host="0.0.0.0", allowed_hosts=["scanhub.example.com", "*.lan"]
    ) as (svc, sims, _):
        async with aiohttp.ClientSession(f"http://127.0.0.1:{svc.port}") as http:
            for host, status in (
                ("scanhub.example.com:8443", 200),
                ("SCANHUB.example.com", 200),
                ("dash.office.lan", 200),
                ("lan", 421),
                (f"localhost:{svc.port}", 200),
                (ATTACKER, 421),
                ("0.0.0.0", 421),
            ):
                async with http.get("/api/v1/items", headers={"Host": host}) as r:
                    assert r.status == status, (host, r.status)


async def test_bound_to_an_address_it_answers_for_that_address(tmp_path: Path) -> None:
    async with service(tmp_path, host="127.0.0.2") as (svc, sims, http):
        for host, status in (("127.0.0.2", 200), ("localhost", 200), (ATTACKER, 421)):
            async with http.get("/api/v1/items", headers={"Host": host}) as r:
                assert r.status == status, (host, r.status)


@pytest.mark.parametrize("allowed", [[], ["--allowed-host", "scanhub.example.com"]])
async def test_scanhub_serve_on_a_wildcard(tmp_path: Path, allowed: list[str]) -> None:
    """The command: bound to 0.0.0.0 with no --allowed-host it answers any Host and says so
    in one line; with one, that name and the loopback ones."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scanhub", "serve", "--demo", "--host", "0.0.0.0", "--port", "0",
        "--state", "memory", *allowed, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "SCANHUB_NO_PLUGINS": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        port = int(line.split()[2].rpartition(":")[2])
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for host in (ATTACKER, "scanhub.example.com", "localhost"):
                async with http.get("/api/v1/summary", headers={"Host": host}) as r:
                    assert r.status == (421 if allowed and host == ATTACKER else 200), host
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()[-2000:]
    warnings = [ln for ln in err.decode().splitlines() if "--allowed-host" in ln]
    if allowed:
        assert not warnings
    else:
        (warning,) = warnings
        assert "0.0.0.0" in warning and "any Host" in warning and "DNS rebinding" in warning


async def test_scanhub_serve_refuses_an_allowed_host_that_is_not_a_name() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scanhub", "serve", "--demo", "--allowed-host",
        "https://scanhub.example.com", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "SCANHUB_NO_PLUGINS": "1"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    (line,) = err.decode().splitlines()
    assert line.startswith("scanhub: serve: --allowed-host: ") and "no scheme" in line


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8470", "127.0.0.1"),
        ("LocalHost.", "localhost"),
        ("[::1]:8470", "::1"),
        ("[0:0::1]", "::1"),
        ("[::1]:", "::1"),
        ("example.com:", "example.com"),
        ("::1", None),  # an IPv6 address without brackets: not a Host
        ("[::1", None),
        ("[::1]x", None),
        ("[example.com]", None),
        ("example.com:x", None),
        ("example.com:\u00b2", None),
        ("example.com:123456", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_host_rules() -> None:
    assert HostRule.of("0.0.0.0").any and HostRule.of("::").any and HostRule.of("").any
    assert HostRule.of("127.0.0.1", ["*"]).any
    assert HostRule.of("127.0.0.1").names == {"localhost", "127.0.0.1", "::1"}
    assert HostRule.of("[::1]").names == {"localhost", "127.0.0.1", "::1"}
    assert HostRule.of("Dash.Example.").names == {"localhost", "127.0.0.1", "::1", "dash.example"}
    rule = HostRule.of("::", ["[FE80::1]", "*.Example.com."])
    assert rule.names == {"localhost", "127.0.0.1", "::1", "fe80::1", "*.example.com"}
    assert rule.allows("[fe80::1]:1") and rule.allows("a.b.example.com")
    assert not rule.allows("example.com") and not rule.allows("badexample.com")
    for bad in ("", "*.", "x:80", "http://x", "x/y", "a b", "*.*.x", "x*"):
        with pytest.raises(ValueError, match="expected a host name"):
            check_name(bad)


def test_a_service_refuses_an_allowed_host_that_is_not_a_name() -> None:
    doc = {"source": [{"vendor": "appsecplus", "base_url": "http://127.0.0.1:9", "token_env": "T"}]}
    config = parse_config(doc, "scanhub.toml", env={"T": "t"})
    with pytest.raises(ConfigError, match="allowed host: expected a host name"):
        Service(ScanHub([]), config, allowed_hosts=["x:80"])
