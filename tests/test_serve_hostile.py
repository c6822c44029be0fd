"""`scanhub serve` against hostile clients, over real sockets: every hostile request ends as a
4xx problem+json (or a clean close), never a 500, never a traceback in the logs, and no client
can hold the server's connections or fill its logs.

The requests are written byte by byte on a socket (no HTTP client would send most of them), and
the logs are read with caplog; the last test does the same to `scanhub serve --demo` and reads
its stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest

from scanhub.serve import Service
from scanhub.vendors.iq import sansio as iq
from scanhub.vendors.sonarqube import sansio as sonarqube

from .test_serve import TOKEN, service


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        """The problem+json document, checked for its shape."""
        assert self.headers["content-type"].startswith("application/problem+json"), self
        assert self.headers["x-content-type-options"] == "nosniff", self
        assert "frame-ancestors 'none'" in self.headers["content-security-policy"], self
        doc: dict[str, Any] = json.loads(self.body)
        assert doc["status"] == self.status and doc["title"] and doc["detail"], doc
        return doc


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return Answer(int(status_line.split()[1]), headers, body)


async def exchange(where: Any, data: bytes, *, limit: float = 10.0) -> Answer:
    """Send `data` on a new connection to `where` (a host and a port); read until the server
    closes it."""
    reader, writer = await asyncio.open_connection(where.host, where.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(limit):
            raw = await reader.read()
    finally:
        writer.close()
    return parse(raw)


def request(
    method: str, target: str, *headers: str, body: bytes = b"", close: bool = True
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: scanhub.test", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


#: The loggers of the server side (others, such as asyncio collecting an earlier test's
#: leftovers, are not these tests' business).
SERVER = ("scanhub", "aiohttp")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="scanhub")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    return caplog


def no_traceback(logs: pytest.LogCaptureFixture) -> None:
    """Nothing the server side (scanhub, aiohttp) logged at ERROR or with a traceback."""
    bad = [
        f"{r.name}: {r.getMessage()}"
        for r in logs.records
        if r.name.startswith(SERVER) and (r.levelno >= logging.ERROR or r.exc_info)
    ]
    assert not bad, bad


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async with service(tmp_path) as (running, sims, http):
        yield running


# --- what reaches a handler -------------------------------------------------------------------


async def test_a_100000_deep_json_body_is_a_400(svc: Service, logs: Any) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = await exchange(
        svc,
        request(
            "POST",
            "/api/v1/track",
            f"Authorization: Bearer {TOKEN}",
            "Content-Type: application/json",
            body=deep,
        ),
    )
    assert answer.status == 400 and "nested too deeply" in answer.problem()["detail"]
    no_traceback(logs)


@pytest.mark.parametrize("token", [b"\xff\xfe", b"\xc3\xa9t\xc3\xa9", b"\x80" * 40])
async def test_a_bearer_token_of_any_bytes_is_a_401(svc: Service, logs: Any, token: bytes) -> None:
    data = request("POST", "/api/v1/track", body=b"{}").replace(
        b"Connection: close", b"Authorization: Bearer " + token + b"\r\nConnection: close"
    )
    answer = await exchange(svc, data)
    assert answer.status == 401 and answer.headers["www-authenticate"] == "Bearer"
    answer.problem()
    no_traceback(logs)


#: Each vendor's webhook signature header, and the vendor's own check (sans-I/O).
SIGNED = {
    "iq": ("X-Nexus-Webhook-Signature", iq.verify_webhook),
    "sonarqube": ("X-Sonar-Webhook-HMAC-SHA256", sonarqube.verify_webhook),
}


@pytest.mark.parametrize("signature", [b"\xc3\xa9", b"\xff\xfe", "é".encode("latin-1")])
@pytest.mark.parametrize("vendor", sorted(SIGNED))
async def test_a_non_ascii_webhook_signature_is_a_401(
    svc: Service, logs: Any, signature: bytes, vendor: str
) -> None:
    header = SIGNED[vendor][0].encode()
    data = request(
        "POST",
        f"/webhooks/{vendor}/{vendor}",
        "X-Nexus-Webhook-Id: iq:applicationEvaluation",
        body=b"{}",
    )
    data = data.replace(b"Connection: close", header + b": " + signature + b"\r\nConnection: close")
    answer = await exchange(svc, data)
    assert answer.status == 401 and "missing or wrong" in answer.problem()["detail"], answer
    no_traceback(logs)


@pytest.mark.parametrize("vendor", sorted(SIGNED))
def test_verify_webhook_refuses_a_non_ascii_signature(vendor: str) -> None:
    """The vendor's check itself (sans-I/O): False, not a TypeError from
    `hmac.compare_digest` or a UnicodeEncodeError (aiohttp keeps bytes that are not UTF-8 as
    surrogates)."""
    verify = SIGNED[vendor][1]
    for signature in ("é", "\udcff\udcfe", "0" * 39 + "é"):
        assert verify(b"{}", signature, "s3cret") is False


@pytest.mark.parametrize("value", [str(2**63), str(10**23), "9" * 5000, "-1", "1e3", "٣"])
@pytest.mark.parametrize("where", ["header", "query"])
async def test_a_last_event_id_no_store_holds_is_a_400_before_the_stream_begins(
    svc: Service, logs: Any, value: str, where: str
) -> None:
    if where == "header":
        data = request("GET", "/api/v1/events/stream", f"Last-Event-ID: {value}")
    else:
        data = request("GET", f"/api/v1/events/stream?last_event_id={quote(value)}")
    answer = await exchange(svc, data)
    assert answer.status == 400, answer  # not a 200 whose stream then breaks off
    assert "transition id" in answer.problem()["detail"]
    assert not svc.streams
    no_traceback(logs)


async def test_the_header_and_the_query_are_both_checked_and_the_header_wins(
    svc: Service, logs: Any
) -> None:
    """EventSource resends the header on a reconnect while the URL keeps its query: a wrong
    one is a 400 whichever it is, and of two right ones the header says where to resume."""
    for header, query in (("1", "-1"), ("-1", "1"), (str(2**63), "1"), ("1", str(2**63))):
        data = request(
            "GET", f"/api/v1/events/stream?last_event_id={query}", f"Last-Event-ID: {header}"
        )
        answer = await exchange(svc, data)
        assert answer.status == 400 and "transition id" in answer.problem()["detail"], answer
    async with asyncio.timeout(10):
        while len(first := await svc.store.transitions(limit=3)) < 3:
            await asyncio.sleep(0.05)  # the engine records the first polls' transitions
    reader, writer = await asyncio.open_connection(svc.host, svc.port)
    received = b""
    try:
        writer.write(
            request(
                "GET",
                f"/api/v1/events/stream?last_event_id={first[0].id}",
                f"Last-Event-ID: {first[1].id}",
            )
        )
        async with asyncio.timeout(10):
            while not (found := re.search(rb"\nid: (\d+)\n", received)):
                received += await reader.read(65536)
    finally:
        writer.close()
    assert int(found[1]) == first[2].id, received  # after the header's id, not the query's
    no_traceback(logs)


async def test_the_largest_last_event_id_a_store_holds_is_a_stream(svc: Service, logs: Any) -> None:
    reader, writer = await asyncio.open_connection(svc.host, svc.port)
    try:
        writer.write(request("GET", f"/api/v1/events/stream?last_event_id={2**63 - 1}"))
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            first = await reader.readuntil(b"\n\n")
    finally:
        writer.close()
    answer = parse(head)
    assert answer.status == 200 and answer.headers["content-type"] == "text/event-stream"
    assert b"retry:" in first
    no_traceback(logs)


async def test_thousands_of_digits_are_a_400(svc: Service, logs: Any) -> None:
    """`int()` refuses more than 4300 digits with a ValueError: checked before."""
    for target in ("/api/v1/items?limit=" + "9" * 5000, "/api/v1/events?since=" + "9" * 5000):
        answer = await exchange(svc, request("GET", target))
        assert answer.status == 400 and "whole number" in answer.problem()["detail"]
    no_traceback(logs)


async def test_a_wrong_method_is_a_405_naming_the_allowed_ones(svc: Service) -> None:
    answer = await exchange(svc, request("PATCH", "/api/v1/items"))
    assert answer.status == 405 and "GET" in answer.headers["allow"]
    answer.problem()
    answer = await exchange(svc, request("DELETE", "/api/v1/items/some-key/history"))
    assert answer.status == 405 and "DELETE" not in answer.headers["allow"]


async def test_a_key_with_a_line_break_reaches_the_handler(svc: Service) -> None:
    """The router matches keys with line breaks too: the handler, not the router, says 404."""
    for method in ("GET", "DELETE"):
        answer = await exchange(
            svc, request(method, "/api/v1/items/a%0Ab", f"Authorization: Bearer {TOKEN}")
        )
        assert answer.status == 404 and "no tracked item" in answer.problem()["detail"]
    answer = await exchange(svc, request("GET", "/api/v1/items/a%0Ab/history"))
    assert answer.status == 404 and "no item" in answer.problem()["detail"]


async def test_an_unexpected_exception_is_a_500_that_says_nothing_logged_once(
    svc: Service, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise RuntimeError("internals-0042 /etc/scanhub")

    monkeypatch.setattr(svc.hub, "source_health", broken)
    answer = await exchange(svc, request("GET", "/api/v1/sources"))
    assert answer.status == 500
    problem = answer.problem()
    assert problem["detail"] == "the service failed to answer; the error is in its log"
    assert b"internals-0042" not in answer.body and b"Traceback" not in answer.body
    logged = [r for r in logs.records if r.name.startswith(SERVER) and r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "internals-0042" in logs.text and "/api/v1/sources" in logged[0].getMessage()
