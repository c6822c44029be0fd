"""`Discovery`: what "track everything of X" means on a source, run and remembered.

A discovery query (every AppSec+ scan of an application, every AppTrust promotion of a
version, a SonarQube project's recent tasks) is the vendor client's `discover`; each item it
finds is tracked. Queries remembered as rules are run again (`rediscover`) by long-running
watchers, so new items appear by themselves. A failure is kept per source (`errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from .._changes import ItemError
from .._clients import Client
from .._errors import ScanhubError
from .._model import Item


class Discovery:
    """Discovery queries and rules (see the module docstring): `hub.discovery`."""

    def __init__(
        self,
        client: Callable[[str], Client],
        track: Callable[[Item, str], str],
        flush: Callable[[], Awaitable[None]],
        polls: Callable[[str], bool],
        now: Callable[[], datetime],
    ) -> None:
        self._client, self._track, self._flush = client, track, flush
        self._polls, self._now = polls, now
        #: Rules (source, query) that `rediscover` runs again.
        self.rules: list[tuple[str, dict[str, str]]] = []
        #: Source name -> the last failed discovery (or lookup) on it.
        self.errors: dict[str, ItemError] = {}

    def note_error(self, source: str, exc: BaseException) -> None:
        """Say that something about a source failed (a discovery, a lookup for a track)."""
        self.errors[source] = ItemError.of(exc, self._now())

    async def discover(self, source: str, **query: str | None) -> list[Item]:
        """Run a query on a source (its vendor says what the query means, e.g. every AppSec+
        scan of an application) and track every item found; returns them once committed. A
        failure is kept in `errors` and returns []."""
        client = self._client(source)
        args = {k: v for k, v in query.items() if v is not None}
        found: list[Item] = []
        try:
            async for item in client.discover(**args):
                self._track(item, f"discovery:{source}")
                found.append(item)
        except ScanhubError as exc:
            self.note_error(source, exc)
        else:
            self.errors.pop(source, None)
        await self._flush()
        return found

    async def add_rule(self, source: str, query: Mapping[str, str]) -> list[Item]:
        """Remember a query (re-run by `rediscover`) and run it now."""
        self._client(source)
        rule = (source, dict(query))
        if rule not in self.rules:
            self.rules.append(rule)
        return await self.discover(source, **query)

    async def rediscover(self) -> list[Item]:
        """Run every rule of the sources this process polls again; returns what they found."""
        found: list[Item] = []
        for source, query in list(self.rules):
            if self._polls(source):
                found += await self.discover(source, **query)
        return found


__all__ = ["Discovery"]
