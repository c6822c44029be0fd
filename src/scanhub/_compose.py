"""The composition root: the one place that turns a configuration into clients, a store and an
engine (and, for `scanhub serve`, hands them to the service).

    config ──> clients (one per [[source]], secrets from the environment)
           ──> store   (`state_location`: the one reading of --state and [state])
           ──> sinks   (one per [[sink]], URLs and secrets from the environment)
           ──> ScanHub (the engine) ──> apply_tracks ([[track]]: items and discovery rules)

Every command goes through here, so `[state]`, the defaults and the order things are opened in
are the same everywhere: the store is opened (and checked) before anything else, so a bad state
file ends in one clear line, not a traceback with sessions left open.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from ._clients import Client
from ._config import Config
from ._defaults import STATE_FILE
from ._errors import ConfigError, ScanhubError, StoreUnavailable, WaitTimeoutError
from ._model import Item
from ._registry import Registry, registry
from ._secrets import Secret
from ._sinks import Sink, SinkFilter, shown_url
from ._tasks import at_once
from .engine import ScanHub
from .store import (
    POSTGRES_SCHEMES,
    MemoryStore,
    Retention,
    SQLiteStore,
    Store,
    location_scheme,
    open_store,
)

#: What a command keeps when neither --state nor [state] says: nothing, or a file next to the
#: configuration (the service persists by default).
StateDefault = Literal["memory", "file"]


def build_clients(
    config: Config, env: Mapping[str, str] | None = None, vendors: Registry | None = None
) -> list[Client]:
    """Clients for every source, with secrets read from the environment."""
    env = os.environ if env is None else env
    reg = vendors or registry()
    clients = []
    # Every source a client cannot be made for (a variable it needs not set) at once; only
    # what a client needs is read here (a webhook's secret is read when one is delivered).
    problems = []
    for s in config.sources:
        try:
            clients.append(reg.get(s.vendor).make_client(s, env))
        except ConfigError as exc:
            problems.append(f"{config.path}: {exc.message}")
        except ScanhubError as exc:
            # A client that refuses its settings when made (a plugin's checks, or one the
            # file's checks let through) is the file's to mend, not a vendor unreadable (5).
            problems.append(f"{config.path}: source {s.name or s.vendor!r}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems), operation="load config")
    return clients


def build_sinks(config: Config, env: Mapping[str, str] | None = None) -> list[Sink]:
    """The sinks of a configuration, with their URLs and secrets read from the environment.
    A variable named by `secret_env` holds one `whsec_` secret (or several, space-separated);
    a variable that is unset or holds something else is a `ConfigError` naming it (never its
    value)."""
    env = os.environ if env is None else env
    sinks = []
    for i, k in enumerate(config.sinks):
        where = f"{config.path}: sink[{i}]"
        problems = k.env_problems(env)  # what `config check` reports, the first of them
        if problems:
            key, why = problems[0]
            raise ConfigError(f"{where}.{key}: {why}", operation="load config")
        secrets = [Secret(part) for var in k.secret_env or () for part in env[var].split()]
        url = env[k.url_env].strip() if k.url_env is not None else k.url
        assert url is not None  # the configuration gives url or url_env
        sinks.append(
            Sink(
                k.name,
                Secret(url),
                shown_url(url),
                kind=k.kind,
                mode=k.mode,
                secrets=tuple(secrets),
                filter=k.filter or SinkFilter(),
                timeout=k.timeout,
                allow_private=k.allow_private,
                schedule=k.schedule,
                max_age=k.max_age,
                max_client_errors=k.max_client_errors,
                max_retry_after=k.max_retry_after,
                max_body=k.max_body,
            )
        )
    return sinks


def retention_of(config: Config | None) -> Retention:
    """The retention policy `[state]` asks for (default: keep everything)."""
    state = config.state if config is not None else None
    if state is None:
        return Retention()
    return Retention(
        max_age=timedelta(days=state.retention_days) if state.retention_days else None,
        max_per_item=state.retention_per_item,
    )


def state_location(config: Config | None, given: str | None, default: StateDefault) -> str:
    """Where state is kept, for every command alike: `given` (--state) if any, else `[state]
    url`, else `[state] path` (relative to the configuration file), else `default` ("memory",
    or `scanhub-state.db` next to the configuration file)."""
    if given:
        return given
    state = config.state if config is not None else None
    if state is not None and state.url:
        return state.url
    base = Path(config.path).resolve().parent if config is not None else Path.cwd()
    if state is not None and state.path:
        return str(base / state.path)
    if default == "memory":
        return "memory"
    return str(base / STATE_FILE)


def replica_name() -> str:
    """This process's name in a shared store's leases table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def make_store(location: str, retention: Retention | None = None) -> Store:
    """The store for a location (see `state_location`), not opened yet."""
    if location_scheme(location) in POSTGRES_SCHEMES:  # `PostgreSQL://` too
        return open_store(location, retention=retention, holder=replica_name())
    return open_store(location, retention=retention)


async def open_state(
    config: Config | None,
    given: str | None,
    default: StateDefault,
    *,
    must_exist: bool = False,
    wait: float = 0.0,
) -> Store:
    """The store for a command, opened (and migrated): a file that is not a scanhub state
    file, one from a newer scanhub or one that cannot be created is a `ConfigError` naming it.
    With `must_exist` (reading commands), a SQLite file that is not there is one too. A store
    away (`StoreUnavailable`: a database not answering yet) is tried again, with backoff, for
    up to `wait` seconds, said once on stderr."""
    location = state_location(config, given, default)
    store = make_store(location, retention_of(config))
    if must_exist and isinstance(store, MemoryStore):
        raise ConfigError(
            "--state memory keeps nothing: there is no state to read (give the --state of a watch)"
        )
    if must_exist and isinstance(store, SQLiteStore):
        path = Path(store.path)
        if not path.is_file():  # noqa: ASYNC240 - one stat, before anything opens
            raise ConfigError(f"{store.path}: no state file there (give the --state of a watch)")
        if path.stat().st_size == 0:  # noqa: ASYNC240 - one stat, before anything opens
            # (SQLite takes an empty file for a new database: reading it would write a schema.)
            raise ConfigError(f"{store.path}: an empty file, no state recorded in it")
    end = time.monotonic() + wait
    delay = 0.5
    while True:
        try:
            await store.open()
        except ConfigError:
            raise
        except StoreUnavailable as exc:
            if time.monotonic() + delay > end:
                raise ConfigError(f"{location}: cannot open the state: {exc}") from None
            if delay == 0.5:
                print(
                    f"scanhub: {location}: {exc}; trying again for up to {wait:g} s",
                    file=sys.stderr,
                    flush=True,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        except (OSError, ScanhubError, RuntimeError) as exc:
            raise ConfigError(f"{location}: cannot open the state: {exc}") from None
        break
    return store


def build_hub(
    config: Config,
    store: Store | None = None,
    *,
    env: Mapping[str, str] | None = None,
    vendors: Registry | None = None,
    **options: Any,
) -> ScanHub:
    """The engine for a configuration: its clients, the given store (memory by default), and
    its interval settings (`options` override them, and pass on to `ScanHub`; `sinks=` gives
    it sinks, which `scanhub serve` builds with `build_sinks`)."""
    kw: dict[str, Any] = {"interval": config.interval, "max_interval": config.max_interval}
    kw.update(options)
    return ScanHub(build_clients(config, env, vendors), store=store or MemoryStore(), **kw)


async def apply_tracks(
    hub: ScanHub,
    config: Config,
    vendors: Registry | None = None,
    *,
    deadline: float | None = None,
) -> None:
    """Put what the file says to track into `hub`. Single items start as placeholders in state
    `unknown` (the first poll fills them in), or as the vendor's answer where the track lacks
    part of the item's key (an AppSec+ scan by its id alone, a SonarQube task by its id);
    discovery queries (AppSec+ by application, AppTrust by version) become rules of the hub and
    are run now. A failing lookup is recorded in `hub.discovery.errors`; one that may pass (the
    vendor away) is run again with the rules (`hub.discovery.lookups`, every minute in
    `scanhub serve`). Returns once everything is committed. With `deadline` (seconds), a
    lookup or discovery still waiting on its vendor then is cut: a `WaitTimeoutError` of its
    source, its lookup kept to run again."""
    reg = vendors or registry()
    loop = asyncio.get_running_loop()
    when = None if deadline is None else loop.time() + deadline

    async def resolve(t: Any) -> None:
        client = hub.sources.client(t.source)
        lookup = functools.partial(_resolve, reg.for_client(client), client, t)
        query = None
        try:
            async with asyncio.timeout_at(when) as cut:
                items, query = await lookup()
                for item in items:
                    hub.track(item, how="config")
                if query is not None:
                    await hub.discovery.add_rule(t.source, query)
        except ScanhubError as exc:
            hub.discovery.note_error(t.source, exc, lookup)
            if exc.retryable:
                hub.discovery.lookups.append((t.source, lookup))
        except TimeoutError:
            if not cut.expired():
                raise
            late = WaitTimeoutError(
                f"the deadline passed before the vendor answered this track's "
                f"{'discovery' if query is not None else 'lookup'}",
                vendor=client.vendor,
                source=client.name,
                operation="resolve track",
            )
            if query is None:
                hub.discovery.note_error(t.source, late, lookup)
                hub.discovery.lookups.append((t.source, lookup))
            else:  # the rule is kept (add_rule remembers it first): run again with the rules
                hub.discovery.note_rule_error(t.source, query, late)

    async def resolve_all(tracks: list[Any]) -> None:
        for t in tracks:
            await resolve(t)

    # A source's tracks in the file's order, the sources at once: a vendor that holds its
    # answers holds only its own tracks (the tracks after it in the file waited for it).
    by_source: dict[str, list[Any]] = {}
    for t in config.tracks:
        by_source.setdefault(t.source, []).append(t)
    await at_once(resolve_all(tracks) for tracks in by_source.values())
    await hub.flush()


async def _resolve(
    spec: Any, client: Client, track: Any
) -> tuple[Sequence[Item], Mapping[str, str] | None]:
    """A track's lookup (`Discovery.lookups`): the items it names and its discovery query."""
    tracking = await spec.resolve_track(client, track)
    return tracking.items, tracking.query


__all__ = [
    "StateDefault",
    "apply_tracks",
    "build_clients",
    "build_hub",
    "build_sinks",
    "make_store",
    "open_state",
    "replica_name",
    "retention_of",
    "state_location",
]
