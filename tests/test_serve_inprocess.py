"""`scanhub.serve.serve` called in a process that goes on afterwards (an embedding program, a
test): once it returns, SIGTERM and SIGINT mean what they meant before, and what start froze
out of the collector's sight is back in it."""

from __future__ import annotations

import asyncio
import gc
import io
import signal
from pathlib import Path

from scanhub.serve import serve


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
