"""The receiving end of `scanhub serve --demo`'s sink: a small webhook endpoint on loopback that
checks every delivery's signature the way a receiver should (`scanhub._sinks.verify`), counts
what it got, and answers the first delivery 503 so the demo shows one retried."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from ._sinks import SignatureError, verify

log = logging.getLogger("scanhub")


class DemoReceiver:
    """See the module docstring; `url` once running."""

    def __init__(self, secret: str, fail_first: int = 1) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.url = ""
        #: Deliveries whose signature verified, those refused, and the ids seen (deduplicated
        #: by `webhook-id`, as a receiver should).
        self.verified = 0
        self.rejected = 0
        self.ids: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            msg_id = verify([self.secret], body, request.headers, time.time())
        except SignatureError as exc:
            self.rejected += 1
            return web.Response(status=401, text=f"signature refused: {exc}")
        self.verified += 1
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="the demo receiver fails its first delivery")
        duplicate = msg_id in self.ids
        self.ids.add(msg_id)
        return web.Response(text="duplicate" if duplicate else "ok")


@asynccontextmanager
async def running_receiver(secret: str, host: str = "127.0.0.1") -> AsyncIterator[DemoReceiver]:
    """Serve a `DemoReceiver` on a free port of `host` for the block."""
    receiver = DemoReceiver(secret)
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://{host}:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


__all__ = ["DemoReceiver", "running_receiver"]
