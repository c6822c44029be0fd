"""A hostile vendor server on loopback: whatever a test's handlers answer, over a real socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Hostile:
    """The running server: its base URL and every request it received."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.requests: list[web.Request] = []
        self.paths: list[str] = []
        self.bytes_sent = 0


@contextlib.asynccontextmanager
async def hostile(routes: dict[tuple[str, str], Handler]) -> AsyncIterator[Hostile]:
    """Serve `routes` ((method, path pattern) -> handler) on 127.0.0.1, any free port."""
    holder: dict[str, Hostile] = {}

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        server = holder["server"]
        server.requests.append(request)
        server.paths.append(request.raw_path)
        return await handler(request)

    app = web.Application(middlewares=[record])
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    # Handlers are cancelled when the client goes away (tests see it), and shutting down never
    # waits for a handler that hangs on purpose.
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=1
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets: Any = site._server
    port = sockets.sockets[0].getsockname()[1]
    holder["server"] = Hostile(f"http://127.0.0.1:{port}")
    try:
        yield holder["server"]
    finally:
        await runner.cleanup()
