"""`Sources`: the named clients the engine polls, and the one HTTP session they share.

Each client is registered under its `name` (unique) and polled by a `SourcePoller` of the poll
loop, under the source's own concurrency limit. Clients that brought no `aiohttp.ClientSession`
share one that `open_session` opens (at most `connection_limit` connections) and `close` closes,
after the clients. Per source it answers what the engine knows of it: the concurrency it polls
under now and the most it may reach, how many polls returned a state, its health.
"""

from __future__ import annotations

import aiohttp

from .._clients import Client
from .._errors import BadRequestError
from .poller import SourceHealth
from .polling import PollLoop


class Sources:
    """The engine's clients by source name (see the module docstring): `hub.sources`."""

    def __init__(self, loop: PollLoop, *, connection_limit: int = 512) -> None:
        self.loop = loop
        #: Connections the shared session opens at most (over every host).
        self.connection_limit = connection_limit
        self._clients: dict[str, Client] = {}
        self._session: aiohttp.ClientSession | None = None

    def add(self, client: Client) -> Client:
        """Register a client under its `name` (unique) and poll its source."""
        if client.name in self._clients:
            raise BadRequestError(f"two clients are named {client.name!r}", operation="add client")
        self._clients[client.name] = client
        self.loop.add_source(client)
        if self._session is not None:
            client.adopt_session(self._session)
        return client

    def client(self, name: str) -> Client:
        """The client registered as `name` (`BadRequestError` when there is none)."""
        try:
            return self._clients[name]
        except KeyError:
            raise BadRequestError(f"no client named {name!r}", operation="lookup") from None

    @property
    def clients(self) -> list[Client]:
        """Registered clients, in the order they were added."""
        return list(self._clients.values())

    @property
    def names(self) -> list[str]:
        """Registered source names, in the order they were added."""
        return list(self._clients)

    def concurrency_of(self, source: str) -> int:
        """The current concurrency limit of a source."""
        return self.loop.pollers[source].limit.limit

    def concurrency_ceiling(self, source: str) -> int:
        """The most concurrency a source may reach (its `RateLimit`, `max_concurrency`)."""
        return self.loop.pollers[source].most_at_once

    @property
    def polls(self) -> int:
        """Polls that returned a state, over every source (read by benchmarks)."""
        return sum(p.polls for p in self.loop.pollers.values())

    def health(self) -> list[SourceHealth]:
        """Every source's health, in the order the clients were added."""
        return self.loop.health()

    def open_session(self) -> None:
        """Open the shared session (once) and hand it to every client that brought none."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.connection_limit, limit_per_host=0)
            self._session = aiohttp.ClientSession(connector=connector)
            for client in self._clients.values():
                client.adopt_session(self._session)

    async def close(self) -> None:
        """Close every client, then the shared session (a later `open_session` opens another)."""
        for client in self._clients.values():
            await client.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["Sources"]
