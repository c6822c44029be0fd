"""`Discovery`: what "track everything of X" means on a source, run and remembered.

A discovery query (every AppSec+ scan of an application, every AppTrust promotion of a
version, a SonarQube project's recent tasks) is the vendor client's `discover`; each item it
finds is tracked. Queries remembered as rules are run again (`rediscover`) by long-running
watchers, so new items appear by themselves. A failure is kept per source (`errors`), until
what failed (that lookup, that rule) answers: another query of the same source answering
does not clear it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from .._changes import ItemError
from .._clients import Client
from .._errors import BadRequestError, ScanhubError
from .._model import Item
from .._tasks import at_once

#: A track's lookup: the items it names and the discovery query it makes (or None).
Lookup = Callable[[], Awaitable[tuple[Sequence[Item], Mapping[str, str] | None]]]


def _check_query(client: Client, query: Mapping[str, object]) -> None:
    """A `BadRequestError` naming the source when its vendor's discovery does not take these
    keys (or lacks one it needs), before anything is sent or remembered."""
    signature = inspect.signature(client.discover)
    try:
        signature.bind(**query)
    except TypeError as exc:
        takes = ", ".join(signature.parameters)
        raise BadRequestError(
            f"{client.vendor} discovery takes ({takes}), not ({', '.join(query)}): {exc}",
            vendor=client.vendor,
            source=client.name,
            operation="discover",
        ) from None


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
        #: Source name -> a failed discovery (or lookup) on it that has not answered since
        #: (a track to mend first: `ConfigError`; else the latest).
        self.errors: dict[str, ItemError] = {}
        #: Source name -> what failed on it (a lookup, a rule's query) -> why, in order.
        self._failing: dict[str, dict[object, ItemError]] = {}
        #: Tracks whose lookup failed for a reason that may pass (the vendor away, a 5xx):
        #: (source, lookup), run again by `rediscover` until one answers. A lookup gives the
        #: items to track and, for a discovery track, its query (made a rule then).
        self.lookups: list[tuple[str, Lookup]] = []
        #: The lookups and rule queries under way (a round of `rediscover` leaves them be: one
        #: held by its vendor is not sent again meanwhile, and holds no other round).
        self._running: set[object] = set()

    def note_error(self, source: str, exc: BaseException, what: object = None) -> None:
        """Say that something about a source failed (a discovery, a lookup for a track): `what`
        (a lookup, a query) until `answered(source, what)` says it answered."""
        failing = self._failing.setdefault(source, {})
        failing.pop(what, None)  # the latest last
        failing[what] = ItemError.of(exc, self._now())
        self._show(source)

    def note_rule_error(self, source: str, query: Mapping[str, str], exc: BaseException) -> None:
        """Say that a discovery of `query` failed other than by its vendor (cut by a deadline),
        until it answers."""
        self.note_error(source, exc, _rule(query))

    def answered(self, source: str, what: object = None) -> None:
        """Say that `what` (noted by `note_error`) answered; the source's other failures stay."""
        failing = self._failing.get(source, {})
        failing.pop(what, None)
        if not failing:
            self._failing.pop(source, None)
        self._show(source)

    def _show(self, source: str) -> None:
        failing = list(self._failing.get(source, {}).values())
        if not failing:
            self.errors.pop(source, None)
            return
        mend = [e for e in failing if e.type == "ConfigError"]
        self.errors[source] = (mend or failing)[-1]

    async def discover(self, source: str, **query: str | None) -> list[Item]:
        """Run a query on a source (its vendor says what the query means, e.g. every AppSec+
        scan of an application) and track every item found; returns them once committed. A
        failure of the vendor is kept in `errors` and returns []; a query the source's vendor
        does not take is a `BadRequestError` naming what it takes."""
        client = self._client(source)
        args = {k: v for k, v in query.items() if v is not None}
        _check_query(client, args)
        found: list[Item] = []
        what = _rule(args)
        running = (source, what)
        mine = running not in self._running  # (a round of `rediscover` marks its own)
        self._running.add(running)
        try:
            async for item in client.discover(**args):
                self._track(item, f"discovery:{source}")
                found.append(item)
        except ScanhubError as exc:
            self.note_error(source, exc, what)
        else:
            self.answered(source, what)
        finally:
            if mine:
                self._running.discard(running)
        await self._flush()
        return found

    async def add_rule(self, source: str, query: Mapping[str, str]) -> list[Item]:
        """Remember a query (re-run by `rediscover`) and run it now."""
        _check_query(self._client(source), query)
        rule = (source, dict(query))
        if rule not in self.rules:
            self.rules.append(rule)
        return await self.discover(source, **query)

    def pending(self) -> bool:
        """Whether a lookup, or a discovery, of a source this process polls failed for a
        reason that may pass (or runs again now): what `rediscover` runs again."""
        return any(self._polls(source) for source, _ in self.lookups) or any(
            e.retryable and self._polls(source)
            for source, failing in self._failing.items()
            for e in failing.values()
        )

    async def rediscover(self) -> list[Item]:
        """Run every failed lookup and every rule of the sources this process polls again;
        returns what they found. They run at once, each on its own: a vendor that holds its
        answers holds none of the others' lookups and rules (it holds this call, so the next
        round, until it answers or its caller's deadline). What is under way already (another
        round's, a discovery's) is left out: a caller may start rounds without waiting for the
        last."""
        known = list(self.rules)  # (a rule a lookup of this round adds has just run)
        lookups = [
            entry
            for entry in list(self.lookups)
            if self._polls(entry[0]) and entry[1] not in self._running
        ]
        looking: set[object] = {lookup for _, lookup in lookups}
        self._running |= looking  # now, before another round builds its list
        try:
            found = _joined(await at_once(self._relookup(entry) for entry in lookups))
        finally:
            self._running -= looking
        if found:
            await self._flush()
        rules = [
            (source, query)
            for source, query in known
            if self._polls(source) and (source, _rule(query)) not in self._running
        ]
        discovering: set[object] = {(source, _rule(query)) for source, query in rules}
        self._running |= discovering
        try:
            return found + _joined(await at_once(self.discover(s, **q) for s, q in rules))
        finally:
            self._running -= discovering

    async def _relookup(self, entry: tuple[str, Lookup]) -> list[Item]:
        """Run a failed lookup again (`rediscover`): track what it finds, and run its
        discovery query the first time. Until that ends the lookup stays pending (a deadline
        or a stop cutting it leaves it to run again, its error said)."""
        source, lookup = entry
        try:
            items, query = await lookup()
        except ScanhubError as exc:
            self.note_error(source, exc, lookup)
            if not exc.retryable and entry in self.lookups:  # a track to mend
                self.lookups.remove(entry)
            return []
        found: list[Item] = []
        for item in items:
            self._track(item, "config")
            found.append(item)
        if query is not None:
            found += await self.add_rule(source, query)
        if entry in self.lookups:
            self.lookups.remove(entry)
        self.answered(source, lookup)
        return found


def _joined(parts: list[list[Item]]) -> list[Item]:
    return [item for part in parts for item in part]


def _rule(query: Mapping[str, object]) -> object:
    """What a discovery's failure is kept under (`Discovery.note_error`)."""
    return ("discover", tuple(sorted((k, v) for k, v in query.items() if v is not None)))


__all__ = ["Discovery", "Lookup"]
