"""`Deliverer`: the engine part that pushes the committed log to each configured sink.

A sink is one more reader of the log, with its own committed cursor in the store
(`Store.sinks`: `open` / `save`):

- It reads the log from its cursor through a subscription of the broadcaster (one that falls
  behind reads the store, so a sink's backlog is bounded by the store's retention, never by
  memory), and delivers each transition its filter wants, one at a time, in id order. Only a
  committed transition is ever delivered (it comes from the log), and the cursor moves past
  an id only once it was delivered, filtered out, or dead-lettered: a restart (or SIGKILL)
  resumes from the cursor, so every matching transition is delivered at least once, with
  `webhook-id` = the CloudEvent's id, the log's identity and the transition id (`event_id`), for
  the receiver to deduplicate.
  The cursor is written at most every quarter second while a backlog drains (and at once on
  every failure), so a crash repeats at most that much.
- A failed attempt is retried on the sink's schedule (`scanhub._sinks.after_failure`): the
  state of the delivery at its head (attempts, first attempt, next attempt, last error) is in
  the store, so a restart, or another replica, goes on with the same schedule. A delivery
  given up on is a dead letter in the store; 410 disables the sink until a replay.
- Each sink runs as its own supervised task with its own HTTP session (redirects not
  followed, TLS verified, a timeout per request, targets that are not globally reachable
  refused unless `allow_private`, also after DNS resolution): a failing or slow sink never
  delays polling, the live stream or another sink.
- On a shared store (PostgreSQL) a sink delivers only on the replica holding its lease
  (`sink:<name>`), renewed three times a lease period; a replica that loses it stops after the
  attempt in flight, and its successor resumes from the stored cursor (the attempt in flight
  may be delivered twice: same `webhook-id`).
- A replay (`Store.sinks.replay`, from any replica) bumps the sink's generation: the deliverer
  notices at its next write or within two seconds, and starts again from the new cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from attrs import define, evolve, frozen

from .._changes import Change
from .._defaults import LEASE_SECONDS
from .._exports import cloudevent_json, to_cloudevent
from .._sansio import parse_retry_after
from .._secrets import Redactor
from .._sinks import (
    MAX_ANSWER,
    Answer,
    BodyTooLarge,
    Sink,
    after_failure,
    build,
    classify,
    forbidden_address,
    forbidden_host,
    probe_event,
)
from ..store import DeadLetter, SinkState, SinkStatus, Store
from .broadcast import Broadcaster
from .replication import Leases

log = logging.getLogger("scanhub")

#: How often a sink writes its cursor while a backlog drains (seconds).
FLUSH_EVERY = 0.25
#: How long an idle or waiting sink goes without looking at its state in the store (a replay
#: on another replica), in seconds.
LOOK_EVERY = 2.0
#: Changes a sink's subscription holds before it falls behind and reads the store.
CAPACITY = 256
#: Outcomes counted per sink (`scanhub_sink_deliveries_total{outcome}`): each attempt's
#: answer, and `dead` for each delivery given up on.
OUTCOMES = ("delivered", "failed", "throttled", "refused", "gone", "dead")


class RefusedTarget(OSError):
    """A sink's target resolved only to addresses it may not reach (private, loopback, ...)."""


class GuardedResolver(AbstractResolver):
    """DNS resolution that drops every address a sink may not reach without `allow_private`
    (so a name that resolves to 127.0.0.1 or 10.x is refused like the literal)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if forbidden_address(r["host"]) is None]
        if not allowed:
            reasons = {forbidden_address(r["host"]) for r in found}
            raise RefusedTarget(
                f"{host} resolves only to addresses a sink may not reach "
                f"({'; '.join(sorted(r for r in reasons if r))}); set allow_private = true "
                "to allow them"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@frozen
class Attempt:
    """One attempt's result: the answer's status (None: no answer), its `Retry-After`, the
    start of its body, how long it took, and what went wrong (never a secret)."""

    status: int | None
    reason: str = ""
    retry_after: str | None = None
    body: bytes = b""
    elapsed: float = 0.0
    error: str | None = None
    #: The target is refused (a private address without `allow_private`).
    refused: bool = False
    #: The body is over the sink's cap: the delivery can never be made.
    too_large: bool = False

    @property
    def answer(self) -> Answer:
        """What it means for the sink."""
        if self.refused:
            return Answer.REFUSED
        return classify(self.status)

    def describe(self) -> str:
        """What happened, for the sink's `last_error` (no secret, no URL)."""
        if self.error is not None:
            return self.error
        what = f"HTTP {self.status} {self.reason}".strip()
        if self.status is not None and 300 <= self.status < 400:
            what += " (redirects are not followed)"
        return what


@contextlib.asynccontextmanager
async def sink_session(sink: Sink) -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session of one sink: TLS verified, no proxy from the environment, no cookies,
    and (unless `allow_private`) a resolver that refuses private and loopback addresses."""
    resolver = None if sink.allow_private else GuardedResolver()
    connector = aiohttp.TCPConnector(limit=4, resolver=resolver, ssl=True)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    ) as http:
        yield http


def _version() -> str:
    import scanhub

    return scanhub.__version__


async def attempt(
    http: aiohttp.ClientSession,
    sink: Sink,
    event: Mapping[str, Any],
    now: datetime,
    encoded: bytes | None = None,
) -> Attempt:
    """Send `event` to `sink` once (signed with a timestamp of `now`; `encoded`: the event's
    JSON, when known; the event's id is its `webhook-id`) and say what came back."""
    url = sink.url.reveal()
    redact = Redactor([url, urlsplit(url).path, *sink.secrets])
    if not sink.allow_private:
        why = forbidden_host(urlsplit(url).hostname or "")
        if why:
            return Attempt(
                None, error=f"refused: {why} (set allow_private = true to allow it)", refused=True
            )
    try:
        delivery = build(sink, event, int(now.timestamp()), _version(), encoded)
    except BodyTooLarge as exc:
        return Attempt(None, error=str(exc), too_large=True)
    started = time.monotonic()
    try:
        async with http.post(
            url,
            data=delivery.body,
            headers=delivery.headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=sink.timeout),
        ) as resp:
            # What a receiver answers may echo the URL (a Slack webhook's path is its secret),
            # and `scanhub sinks test` prints it.
            body = redact.scrub_bytes(await resp.content.read(MAX_ANSWER))
            return Attempt(
                resp.status,
                redact(resp.reason or ""),
                resp.headers.get("Retry-After"),
                body,
                time.monotonic() - started,
            )
    except TimeoutError:
        error = f"no answer within {sink.timeout:g} s"
        return Attempt(None, error=error, elapsed=time.monotonic() - started)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, RefusedTarget):
            return Attempt(None, error=f"refused: {exc.os_error}", refused=True)
        error = f"cannot connect: {redact(str(exc.os_error.strerror or exc.os_error))}"
        return Attempt(None, error=error, elapsed=time.monotonic() - started)
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {redact(str(exc))}"
        return Attempt(None, error=error, elapsed=time.monotonic() - started)


async def send_test(sink: Sink, now: datetime | None = None) -> tuple[str, Attempt]:
    """Send one signed test event (`io.scanhub.sink.test`) to `sink`; returns its id and what
    came back (what `scanhub sinks test` prints)."""
    import uuid

    at = now or datetime.now(UTC)
    msg_id = f"test-{uuid.uuid4()}"
    async with sink_session(sink) as http:
        return msg_id, await attempt(http, sink, probe_event(sink.name, at, msg_id), at)


@frozen
class SinkReport:
    """A sink as the service reports it: its settings, its state in the store (None until it
    first ran), how far it is behind the log, and whether this process delivers for it."""

    sink: Sink
    state: SinkState | None
    #: Transitions in the log after its cursor (by id; an upper bound where ids were skipped).
    lag_events: int
    #: Age of the oldest transition after its cursor (0 when it is caught up).
    lag_seconds: float
    delivering_here: bool


@define
class _Run:
    """A sink's working state while it delivers: its row, and when it was last written."""

    state: SinkState
    dirty: bool = False
    flushed: float = 0.0


class Stale(Exception):
    """The sink's state changed under the deliverer (a replay), or its lease was lost."""


class SinkLeases:
    """Which sinks this process delivers for: on a shared store, those whose lease
    (`sink:<name>`) it holds (`held[name]` is set), taken and renewed by `hold`; every sink
    otherwise."""

    def __init__(
        self,
        store: Store,
        names: Sequence[str],
        wake: dict[str, asyncio.Event],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.held = {name: asyncio.Event() for name in names}
        self._wake = wake  # a sink's deliverer, woken when its lease goes
        self._leases = Leases(ttl, clock)  # when the leases end
        if not store.shared:
            for event in self.held.values():
                event.set()

    async def hold(self) -> None:
        """Take and renew the sinks' leases three times a lease period; deliver for exactly the
        sinks held. While the store is away, keep what was held until its lease would have
        expired."""
        names = {f"sink:{name}": name for name in self.held}
        try:
            await self._renew(names)
        finally:
            # Stopped (a polling block ended): what was held is held no longer here. The
            # next block's deliverers wait for its first renewal instead of delivering on a
            # lease that may have ended meanwhile, taken by another replica.
            for event in self.held.values():
                event.clear()

    async def _renew(self, names: dict[str, str]) -> None:
        while True:
            holding = {n for n, e in self.held.items() if e.is_set()}
            try:
                got = await self._leases.renew(self.store, list(names), bool(holding))
                held = {names[n] for n in got if n in names}
            except Exception as exc:
                held = holding if self._leases.unexpired else set()
                log.warning("scanhub: renewing the sinks' leases failed (%s)", exc)
            for name, event in self.held.items():
                if name in held and not event.is_set():
                    log.info("scanhub: delivering for sink %s", name)
                    event.set()
                elif name not in held and event.is_set():
                    log.info("scanhub: sink %s is delivered by another replica now", name)
                    event.clear()
                    self._wake[name].set()
            await asyncio.sleep(self._leases.pause())


class Deliverer:
    """Every configured sink's deliveries (see the module docstring). The engine runs `run(name)`
    for each sink, supervised, while it polls, and `hold_leases` on a shared store."""

    def __init__(
        self,
        store: Store,
        broadcaster: Broadcaster,
        sinks: Sequence[Sink] = (),
        *,
        lease_ttl: float = LEASE_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.broadcaster = broadcaster
        self.sinks: dict[str, Sink] = {}
        for sink in sinks:
            if sink.name in self.sinks:
                raise ValueError(f"two sinks are named {sink.name!r}")
            self.sinks[sink.name] = sink
        self.lease_ttl = lease_ttl
        self._now = now
        self._rng = rng or random.Random()
        self._running = dict.fromkeys(self.sinks, 0)  # the sink's `run` tasks
        self._wake = {name: asyncio.Event() for name in self.sinks}
        self._leases = SinkLeases(store, self.names, self._wake, lease_ttl, clock)
        self._held = self._leases.held
        self._log_id: str | None = None  # the store's (`event_id`), read at the first delivery
        #: Called with (sink, outcome) for every attempt's outcome and every dead letter.
        self.observers: list[Callable[[str, str], None]] = []
        #: Per sink: attempts answered 2xx by this process (read by benchmarks and tests).
        self.delivered = dict.fromkeys(self.sinks, 0)
        #: Per sink: the newest state this process wrote or read.
        self.states: dict[str, SinkState] = {}

    @property
    def names(self) -> list[str]:
        """The sinks, in configuration order."""
        return list(self.sinks)

    def delivering_here(self, name: str) -> bool:
        """True while this process delivers for the sink: its deliverer runs (polling does)
        and it holds the sink's lease."""
        return self._held[name].is_set() and self._running[name] > 0

    def wake(self, name: str) -> None:
        """Look at the sink's state in the store now (a replay was made here)."""
        if name in self._wake:
            self._wake[name].set()

    def _tell(self, name: str, outcome: str) -> None:
        for observer in self.observers:
            observer(name, outcome)

    async def report(self) -> list[SinkReport]:
        """Every sink's state from the store (what any replica sees), with its lag: indexed
        reads (its row, the newest id, the first transition after its cursor)."""
        if not self.sinks:
            return []
        states = {s.name: s for s in await self.store.sinks.states(self.names)}
        last = await self.store.last_id()
        now = self._now()
        out = []
        for name, sink in self.sinks.items():
            state = states.get(name)
            events, seconds = 0, 0.0
            if state is not None and state.position < last:
                events = last - state.position
                after = await self.store.transitions(since=state.position, limit=1)
                if after:
                    seconds = max(0.0, (now - after[0].change.observed_at).total_seconds())
            out.append(SinkReport(sink, state, events, seconds, self.delivering_here(name)))
        return out

    # --- leases (a shared store) ------------------------------------------------------------

    async def hold_leases(self) -> None:
        """Take and renew the sinks' leases for good (`SinkLeases.hold`)."""
        await self._leases.hold()

    # --- one sink -------------------------------------------------------------------------

    async def run(self, name: str) -> None:
        """Deliver for sink `name` for good (a supervised part of the engine)."""
        sink = self.sinks[name]
        self._running[name] += 1
        try:
            async with sink_session(sink) as http:
                while True:
                    await self._held[name].wait()
                    state = await self.store.sinks.open(name, self._now())
                    self.states[name] = state
                    with contextlib.suppress(Stale):
                        await self._deliver(sink, _Run(state), http)
        finally:
            self._running[name] -= 1

    async def _deliver(self, sink: Sink, run: _Run, http: aiohttp.ClientSession) -> None:
        name = sink.name
        sub = self.broadcaster.subscribe(run.state.position, capacity=CAPACITY)
        try:
            while self._held[name].is_set():
                if run.state.status is SinkStatus.DISABLED:
                    await self._pause(run, None)
                    continue
                change = sub.next_nowait()
                if change is None:
                    if sub.behind:
                        await sub.catch_up()
                        continue
                    await self._flush(run)
                    await self._pause(run, sub)
                    continue
                tid = change.id or 0
                if tid <= run.state.position:
                    continue
                if sink.filter.matches(change):
                    await self._one(sink, run, change, http)
                else:
                    run.state = evolve(run.state, position=tid)
                    run.dirty = True
                if time.monotonic() - run.flushed > FLUSH_EVERY:
                    await self._flush(run)
            raise Stale("the lease was lost")
        finally:
            sub.close()
            # Saved however it ends (a polling block's end may clear the lease first): on a
            # shared store the store saves it only while this replica holds the sink's lease.
            if run.dirty:
                with contextlib.suppress(Exception):
                    await self._flush(run)

    async def _flush(self, run: _Run) -> None:
        """Write the sink's state if it changed; `Stale` when a replay came first."""
        if not run.dirty:
            return
        state = evolve(run.state, updated_at=self._now())
        await self._save(run, state)

    async def _save(self, run: _Run, state: SinkState, dead: Sequence[DeadLetter] = ()) -> None:
        if not await self.store.sinks.save(state, dead):
            raise Stale("the sink was replayed, or its lease is another replica's")
        run.state, run.dirty, run.flushed = state, False, time.monotonic()
        self.states[state.name] = state

    async def _pause(self, run: _Run, sub: Any, until: datetime | None = None) -> None:
        """Wait for news (the subscription, a wake, `until`) for at most `LOOK_EVERY`, then
        look at the sink's state in the store: `Stale` when it was replayed or the lease was
        lost."""
        name = run.state.name
        wake = self._wake[name]
        timeout = LOOK_EVERY
        if until is not None:
            timeout = min(timeout, max(0.0, (until - self._now()).total_seconds()))
        waiters = [asyncio.ensure_future(wake.wait())]
        if sub is not None:
            waiters.append(asyncio.ensure_future(sub.wait()))
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waiters:
                w.cancel()
        woken = wake.is_set()
        wake.clear()
        if not self._held[name].is_set():
            raise Stale("the lease was lost")
        if woken or not done:
            for found in await self.store.sinks.states([name]):
                if found.generation != run.state.generation:
                    raise Stale("the sink was replayed, or its lease is another replica's")

    async def _one(
        self, sink: Sink, run: _Run, change: Change, http: aiohttp.ClientSession
    ) -> None:
        """Deliver one transition: attempts until it is delivered, dead, or the sink is
        disabled."""
        tid = change.id or 0
        if self._log_id is None:
            self._log_id = await self.store.sinks.log_id()
        event = to_cloudevent(change, self._log_id)
        # the bytes every reader of this id gets; its id is the `webhook-id`
        encoded = cloudevent_json(change, self._log_id).encode()
        state = run.state
        if state.head != tid:  # a new delivery (else: resuming one after a restart)
            state = evolve(state, head=tid, attempts=0, first_attempt=None, next_attempt=None)
        while True:
            if state.next_attempt is not None:
                while self._now() < state.next_attempt:
                    await self._pause(run, None, state.next_attempt)
            if not self._held[sink.name].is_set():
                raise Stale("the lease was lost")
            now = self._now()
            result = await attempt(http, sink, event, now, encoded)
            answer = result.answer
            self._tell(sink.name, answer.value)
            first = state.first_attempt or now
            state = evolve(state, attempts=state.attempts + 1, first_attempt=first)
            if answer is Answer.DELIVERED:
                self.delivered[sink.name] += 1
                run.state = evolve(
                    state,
                    position=tid,
                    status=SinkStatus.ACTIVE,
                    head=None,
                    attempts=0,
                    first_attempt=None,
                    next_attempt=None,
                    last_success=now,
                    delivered=state.delivered + 1,
                )
                run.dirty = True
                return
            age = (now - first).total_seconds()
            asked = parse_retry_after(result.retry_after, now)  # as a vendor's is read
            step = after_failure(sink, answer, state.attempts, age, asked, self._rng)
            if result.too_large:
                step = evolve(step, action="dead", reason="it can never be sent")
            error = result.describe()
            state = evolve(
                state,
                failures=state.failures + 1,
                last_error=error,
                last_error_at=now,
                last_status=result.status,
                updated_at=now,
            )
            if step.action == "retry":
                state = evolve(
                    state,
                    status=SinkStatus.RETRYING,
                    next_attempt=now + timedelta(seconds=step.delay),
                )
                log.info(
                    "scanhub: sink %s: delivery %s failed (%s); attempt %d in %.1fs",
                    sink.name,
                    tid,
                    error,
                    state.attempts + 1,
                    step.delay,
                )
                await self._save(run, state)
                continue
            if step.action == "disable":
                log.warning(
                    "scanhub: sink %s: the receiver answered 410 Gone at delivery %s; the sink "
                    "is disabled until a replay",
                    sink.name,
                    tid,
                )
                await self._save(run, evolve(state, status=SinkStatus.DISABLED, next_attempt=None))
                return
            letter = DeadLetter(
                sink.name,
                tid,
                change.key,
                state.attempts,
                first,
                now,
                f"{error}; {step.reason}",
                result.status,
            )
            log.warning("scanhub: sink %s: delivery %s is dead (%s)", sink.name, tid, letter.error)
            self._tell(sink.name, "dead")
            await self._save(
                run,
                evolve(
                    state,
                    position=tid,
                    status=SinkStatus.ACTIVE,
                    head=None,
                    attempts=0,
                    first_attempt=None,
                    next_attempt=None,
                    dead=state.dead + 1,
                ),
                [letter],
            )
            return


__all__ = [
    "OUTCOMES",
    "Attempt",
    "Deliverer",
    "GuardedResolver",
    "RefusedTarget",
    "SinkLeases",
    "SinkReport",
    "attempt",
    "send_test",
    "sink_session",
]
