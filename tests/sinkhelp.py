"""A webhook receiver on loopback for the sink tests: it answers each delivery as a script says
(200 unless told otherwise: a status, a Retry-After, a redirect, a hang), and checks every
delivery the way a receiver would, with the `standardwebhooks` package and the `cloudevents`
SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from cloudevents.v1.http import from_http
from standardwebhooks import Webhook, WebhookVerificationError

from scanhub import Lifecycle, Scan, Vendor, Verdict
from scanhub.store import Observation

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Receiver:
    """See the module docstring. `answers` is consumed one per request: an int (a status), a
    (status, headers) pair, or "hang" (no answer for a minute)."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = secrets or []
        self.answers: list[Any] = []
        #: Every request, in arrival order: headers, body, when, whether it verified.
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        #: Seconds each answer takes (a slow receiver).
        self.delay = 0.0
        #: Answer with the request's path in the body (as Slack's 404 `no_service` does).
        self.echo_path = False
        self._runner: web.AppRunner | None = None
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        verified = None
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers, json_parse=False)
                verified = secret
                break
            except WebhookVerificationError:
                continue
        self.requests.append(
            {
                "path": request.path,
                "headers": headers,
                "body": body,
                "at": time.monotonic(),
                "verified": verified,
            }
        )
        self.changed.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answers.pop(0) if self.answers else 200
        if answer == "hang":
            await asyncio.sleep(60)
            return web.Response(status=200)
        status, extra = (answer, {}) if isinstance(answer, int) else answer
        text = f"answer for {request.path}" if self.echo_path else "answer"
        return web.Response(status=status, headers=extra, text=text)

    @property
    def ok(self) -> list[dict[str, Any]]:
        """The requests answered 2xx... (all of them once the script ran out) that verified."""
        return [r for r in self.requests if r["verified"] is not None]

    def ids(self) -> list[int]:
        """The transition id of each request (a `webhook-id` is `<log id>-<transition id>`)."""
        return [int(r["headers"]["webhook-id"].rsplit("-", 1)[1]) for r in self.requests]

    def event(self, i: int) -> Any:
        """Request `i` read with the cloudevents SDK (structured or binary mode)."""
        r = self.requests[i]
        return from_http(r["headers"], r["body"])

    async def wait_for(self, n: int, within: float = 20.0) -> None:
        """Until `n` requests came."""
        async with asyncio.timeout(within):
            while len(self.requests) < n:
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def receiving(secrets: list[str] | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(secrets)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    receiver._runner = runner
    try:
        yield receiver
    finally:
        await runner.cleanup()


def scan(
    sid: str, lc: Lifecycle = Lifecycle.RUNNING, verdict: Verdict = Verdict.NONE, **kw: Any
) -> Scan:
    return Scan(Vendor.APPSECPLUS, "asp", sid, "app-1", lc, lc.value, verdict, **kw)


def seen(item: Scan, seconds: float = 0) -> Observation:
    return Observation(item.key, T0 + timedelta(seconds=seconds), item, None, "track")


async def until(predicate: Any, within: float = 20.0, every: float = 0.02) -> None:
    """Wait until `predicate()` (a plain or async function) is true."""
    async with asyncio.timeout(within):
        while True:
            got = predicate()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return
            await asyncio.sleep(every)
