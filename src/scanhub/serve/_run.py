"""Running the service as a process: configuration, state, the demo, signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .._compose import apply_tracks, build_hub, build_sinks, open_state
from .._config import Config, load_config, parse_config
from .._defaults import LEASE_SECONDS, PORT, REDISCOVER_EVERY, STORE_WAIT, STUCK_AFTER
from .._registry import Registry, registry
from ._app import Service
from ._hosts import is_wildcard

log = logging.getLogger("scanhub")

#: Seconds between new items in the demo scenario.
DEMO_EVERY = 3.0
#: The variable holding the demo sink's signing secret (made up at each start).
DEMO_SINK_SECRET = "SCANHUB_DEMO_SINK_SECRET"


async def serve(
    config_path: str | None,
    *,
    state: str | None = None,
    host: str = "127.0.0.1",
    port: int = PORT,
    allowed_hosts: Sequence[str] = (),
    demo: bool = False,
    token_env: str = "SCANHUB_TOKEN",  # noqa: S107 - the name of a variable, not a secret
    lease_seconds: float = LEASE_SECONDS,
    out: TextIO,
    env: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT (or `stop`), then stop within seconds. Returns 0.
    `allowed_hosts`: the `Host` names answered besides the loopback ones and `host`
    (`Service`)."""
    env = dict(os.environ if env is None else env)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for sig in (signal.SIGTERM, signal.SIGINT):
            # No signal handlers off the main thread or on Windows: `stop` still ends it there.
            # Once served, the signals mean what they meant before (a caller that goes on).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                before = signal.getsignal(sig)
                loop.add_signal_handler(sig, stop.set)
                stack.callback(_give_back, loop, sig, before)
        service: Service | None = None
        hub: Any = None
        store: Any = None
        tasks: list[asyncio.Task[None]] = []
        try:
            # A stop (SIGTERM, SIGINT) at any point of the start ends it: a store that does not
            # open, a track's lookup at a vendor that does not answer, a flush the store does not
            # take are cancelled, and the service stops as it would once started.
            with _StopCancels(stop):
                if demo:
                    from .._demo import running_sims
                    from .._sink_demo import running_receiver
                    from .._sinks import new_secret

                    sims = await stack.enter_async_context(running_sims())
                    secret = new_secret()
                    receiver = await stack.enter_async_context(running_receiver(secret))
                    config, demo_env = _demo_config(sims, registry(), receiver.url, secret)
                    env.update(demo_env)
                    store = await open_state(None, state, "memory")
                    hub = build_hub(
                        config,
                        store,
                        env=env,
                        interval=1.0,
                        max_interval=min(config.max_interval, 10.0),
                        lease_ttl=lease_seconds,
                        sinks=build_sinks(config, env),
                    )
                else:
                    config = load_config(config_path or "scanhub.toml", env=env)
                    # A database that does not answer yet is waited for (said on stderr).
                    store = await open_state(config, state, "file", wait=STORE_WAIT)
                    hub = build_hub(
                        config,
                        store,
                        env=env,
                        lease_ttl=lease_seconds,
                        sinks=build_sinks(config, env),
                    )
                service = Service(
                    hub,
                    config,
                    host=host,
                    port=port,
                    allowed_hosts=allowed_hosts,
                    token=(env.get(token_env) or "").strip() or None,  # a file's newline
                    env=env,
                    rediscover_every=DEMO_EVERY if demo else REDISCOVER_EVERY,
                    stuck_after=60.0 if demo else STUCK_AFTER,
                )
                url = await service.start()
                if service.hosts.any and is_wildcard(host) and not allowed_hosts:
                    log.warning(
                        "scanhub serve: bound to %s with no --allowed-host: it answers any Host "
                        "(a web page can read it through DNS rebinding); list the names it is "
                        "reached by with --allowed-host",
                        host or "every address",
                    )
                # What start made (the working set, the app, imported modules) lives as long as
                # the process: out of the collector's sight, a full collection no longer walks
                # it (at 1,000,000 items, 50,000 under way, those walks paused answers by
                # 60-80 ms). Frozen again once the configured tracks are in.
                gc.collect()
                gc.freeze()
                stack.callback(gc.unfreeze)  # for a caller that goes on in this process
                # Printed once it listens: the page and the API answer while the tracks' lookups
                # run (a vendor that does not answer delays only its items).
                print(f"scanhub serve: {url}  (Ctrl-C to stop)", file=out, flush=True)
                if not service.writes_enabled:
                    print(
                        f"  writes (POST /api/v1/track, DELETE items) are off: set {token_env} "
                        "to enable them",
                        file=out,
                        flush=True,
                    )
                await apply_tracks(hub, config)
                gc.collect()
                gc.freeze()
                if demo:
                    tasks.append(asyncio.create_task(_demo_loop(service, sims, registry(), url)))
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if service is not None:
                await service.stop()
            else:  # the service could not be made (a bad allowed host): what was opened
                if hub is not None:
                    await hub.close()  # (its clients' session)
                if store is not None:
                    await store.close()
    print("scanhub serve: stopped", file=out, flush=True)
    return 0


class _StopCancels:
    """`with _StopCancels(stop):` cancels the task running the block when `stop` is set, and
    the block then ends quietly (as `asyncio.timeout` does when it expires): whatever the block
    was awaiting is cancelled. Any other exception passes; a cancellation from elsewhere too."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._fired = False
        self._exited = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None  # only within a task
        self._task = task
        self._waiter = asyncio.ensure_future(self._stop.wait())
        self._waiter.add_done_callback(self._fire)

    def _fire(self, waiter: asyncio.Future[Any]) -> None:
        # Scheduled a loop turn after the waiter ends: the block may have ended meanwhile
        # (the stop came with its last await's answer), and must not be cancelled after it
        # (what follows, the service's stop, would be cut short).
        if not waiter.cancelled() and not self._exited:
            self._fired = True
            self._task.cancel()

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> bool:
        self._exited = True
        self._waiter.remove_done_callback(self._fire)
        self._waiter.cancel()
        if self._fired and self._task.uncancel() == 0:
            return kind is asyncio.CancelledError
        return False


def _give_back(loop: asyncio.AbstractEventLoop, sig: signal.Signals, before: Any) -> None:
    """Undo `add_signal_handler`: the handler the signal had (asyncio.run's own for SIGINT,
    or the default), not merely the default."""
    loop.remove_signal_handler(sig)
    if before is not None:
        signal.signal(sig, before)


def _demo_config(
    sims: dict[str, Any], reg: Registry, receiver: str, secret: str
) -> tuple[Config, dict[str, str]]:
    from .._demo import sim_config

    seeded = {name: reg.get(name).load_demo().sim_seed(sim) for name, sim in sims.items()}
    doc, env = sim_config(sims, seeded, reg)
    doc["interval"] = 1
    # The demo pushes too: a signed sink to the receiving endpoint on loopback (which fails
    # its first delivery, so one is retried).
    doc["sink"] = [
        {
            "name": "demo-receiver",
            "url": receiver,
            "secret_env": DEMO_SINK_SECRET,
            "allow_private": True,
        }
    ]
    env[DEMO_SINK_SECRET] = secret
    return parse_config(doc, "<demo>", env=env, vendors=reg), env


async def _demo_loop(service: Service, sims: dict[str, Any], reg: Registry, url: str) -> None:
    """The scenario that keeps the page and the metrics alive: new scans and promotions every
    few seconds (some fail, a gate blocks one), a faulty source, and IQ evaluations delivered
    by webhook."""
    for name, sim in sims.items():
        reg.get(name).load_demo().deliver_webhooks(sim, f"{url}/webhooks/{name}/{name}")
    round = 0
    while True:
        await asyncio.sleep(DEMO_EVERY)
        round += 1
        for name, sim in sims.items():
            try:
                items = (
                    await reg.get(name)
                    .load_demo()
                    .more(sim, service.hub.sources.client(name), round)
                )
            except Exception as exc:  # a refused trigger (409, a fault) is part of the show
                log.info("scanhub demo: %s round %d: %s", name, round, exc)
                continue
            for item in items:
                service.hub.track(item, how="demo")
