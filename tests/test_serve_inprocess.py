"""`scanhub.serve.serve` called in a process that goes on afterwards (an embedding program, a
test): once it returns, SIGTERM and SIGINT mean what they meant before, and what start froze
out of the collector's sight is back in it. And a signal to this process while its start waits
for a store that takes no commit."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from scanhub import MemoryStore
from scanhub._errors import StoreUnavailable
from scanhub.serve import _run, serve
from scanhub.store import Committed, Observation


async def test_serve_gives_back_the_signals_and_the_collector_when_it_returns(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nname = "asp"\nvendor = "appsecplus"\n'
        'base_url = "http://127.0.0.1:9"\ntoken_env = "ASP_TOKEN"\n'
    )
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(
        serve(
            str(cfg),
            state=str(tmp_path / "state.db"),
            port=0,
            out=out,
            env={"ASP_TOKEN": "t"},
            stop=stop,
        )
    )
    async with asyncio.timeout(30):
        while "scanhub serve: http" not in out.getvalue():
            await asyncio.sleep(0.05)
    assert gc.get_freeze_count() > 0  # start froze what it made
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0
    assert "scanhub serve: stopped" in out.getvalue()
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert gc.get_freeze_count() == 0


class _NoCommits(MemoryStore):
    """A store that opens and reads, and takes no commit (the database is away)."""

    async def commit(self, observations: Sequence[Observation]) -> list[Committed]:
        raise StoreUnavailable("the database is away")


async def test_a_signal_stops_serve_while_the_store_takes_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The configured tracks wait for a store that takes no commit: SIGTERM (a real one, to
    this process) still stops the service, within the grace it gives what waits."""
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nname = "iq"\nvendor = "iq"\nbase_url = "http://127.0.0.1:9"\n'
        'username = "u"\npassword_env = "IQ_PASSWORD"\n\n'
        '[[track]]\nsource = "iq"\napplication_id = "app"\nstatus_id = "s1"\n'
    )

    async def broken_state(*args: object, **kw: object) -> _NoCommits:
        store = _NoCommits()
        await store.open()
        return store

    monkeypatch.setattr(_run, "open_state", broken_state)
    before = signal.getsignal(signal.SIGTERM)
    out = io.StringIO()
    task = asyncio.create_task(
        serve(str(cfg), state="memory", port=0, out=out, env={"IQ_PASSWORD": "pw"})
    )
    async with asyncio.timeout(30):
        while "scanhub serve: http" not in out.getvalue():
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert not task.done()  # still applying the tracks: their commit does not come
    assert signal.getsignal(signal.SIGTERM) != before  # serve's handler, not the default
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 20) == 0
    assert time.monotonic() - started < 15  # the recorder's grace (10 s), then it stops
    assert "scanhub serve: stopped" in out.getvalue()
    assert signal.getsignal(signal.SIGTERM) == before
    assert "the store did not take" in caplog.text


async def test_the_write_token_is_read_without_the_newline_of_a_mounted_file(
    tmp_path: Path,
) -> None:
    """A token mounted from a file ends with a newline: read stripped, as every secret is, a
    client sending the token is let in (not refused with 401 for good)."""
    import aiohttp

    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nname = "asp"\nvendor = "appsecplus"\n'
        'base_url = "http://127.0.0.1:9"\ntoken_env = "ASP_TOKEN"\n'
    )
    out, stop = io.StringIO(), asyncio.Event()
    env = {"ASP_TOKEN": "t", "SCANHUB_TOKEN": "w-token-1\n"}
    task = asyncio.create_task(serve(str(cfg), state="memory", port=0, out=out, env=env, stop=stop))
    try:
        async with asyncio.timeout(30):
            while "scanhub serve: http" not in out.getvalue():
                await asyncio.sleep(0.05)
        url = out.getvalue().split("scanhub serve: ", 1)[1].split()[0]
        async with aiohttp.ClientSession() as http:
            gone = f"{url}/api/v1/items/nosuch"
            async with http.delete(gone, headers={"Authorization": "Bearer w-token-1"}) as r:
                assert r.status == 404  # let in: the item is not there
            async with http.delete(gone, headers={"Authorization": "Bearer other"}) as r:
                assert r.status == 401
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


async def test_a_stop_that_comes_with_the_starts_last_answer_does_not_cancel_what_follows() -> None:
    """The stop's waiter ends in the same loop turn as the block's last await: its callback,
    scheduled a turn later, must not cancel the task once the block is over (the service's
    stop would be cut short)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def both() -> None:
        stop.set()
        fut.set_result(None)

    loop.call_soon(both)
    with _run._StopCancels(stop):
        await fut
    await asyncio.sleep(0)  # the waiter's callback runs now
    await asyncio.sleep(0)
    cleaned = await asyncio.sleep(0.01, "cleaned")  # what follows the block: not cancelled
    assert cleaned == "cleaned"


async def test_a_service_that_cannot_be_made_closes_the_store_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve(allowed_hosts=["x:80"])` from Python: the ConfigError comes after the state was
    opened, which is closed, not left open (a SQLite thread, a PostgreSQL pool)."""
    from scanhub import ConfigError

    closed: list[bool] = []

    class Watched(MemoryStore):
        async def close(self) -> None:
            closed.append(True)
            await super().close()

    async def state(*args: object, **kw: object) -> Watched:
        store = Watched()
        await store.open()
        return store

    monkeypatch.setattr(_run, "open_state", state)
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nname = "asp"\nvendor = "appsecplus"\n'
        'base_url = "http://127.0.0.1:9"\ntoken_env = "ASP_TOKEN"\n'
    )
    with pytest.raises(ConfigError, match="allowed host"):
        await serve(
            str(cfg), port=0, out=io.StringIO(), env={"ASP_TOKEN": "t"}, allowed_hosts=["x:80"]
        )
    assert closed
