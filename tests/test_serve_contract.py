"""The OpenAPI document `scanhub serve` serves is true: schemathesis, driven by the document it
fetches from a running service over a real socket, sends valid and invalid requests to every
operation and finds no undocumented status, no answer off its schema or content type, no 5xx.

Its configuration is tests/schemathesis.toml (a fixed seed, derandomized, a cap on examples);
it runs as the `st` command does, in a process of its own, so that what is tested is the
service as any client meets it. Every error answer of the document is problem+json, so a
problem+json answer that is not documented, or a text/plain one, fails here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scanhub._sinks import Sink, new_secret
from scanhub.serve import Service
from scanhub.serve._openapi import openapi

from .sinkhelp import receiving, until
from .test_serve import TOKEN, service

CONFIG = Path(__file__).with_name("schemathesis.toml")
STREAM = "/api/v1/events/stream"
OPERATIONS = sum(len(ops) for ops in openapi()["paths"].values())


def ran_on(out: str, selected: int) -> bool:
    """Whether schemathesis tested `selected` operations of the document's."""
    return re.search(rf"Operations:\s+{selected} selected / {OPERATIONS} total", out) is not None


async def schemathesis(url: str, cwd: Path, *args: str) -> tuple[int, str]:
    """`st run` over the service's document; its exit status and what it printed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--no-color",
        *args,
        cwd=cwd,  # where it would leave anything it writes
        env={**os.environ, "SCANHUB_TOKEN": TOKEN, "COLUMNS": "120"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    return proc.returncode or 0, out.decode(errors="replace")


@contextlib.asynccontextmanager
async def served(tmp_path: Path, **kw: Any) -> AsyncIterator[Service]:
    """The test service, delivering to a sink named `hook` (the name schemathesis.toml gives
    the sink paths half the time) whose receiver refused the first delivery: a dead letter to
    list and to replay."""
    async with receiving() as rx:
        rx.answers = [400]
        sink = Sink.webhook(
            "hook", rx.url, new_secret(), allow_private=True, max_client_errors=1, schedule=(0.05,)
        )
        async with service(tmp_path, sinks=[sink], **kw) as (svc, sims, http):
            await until(
                lambda: svc.hub.sinks.states.get("hook") and svc.hub.sinks.states["hook"].dead
            )
            yield svc


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing the server side (scanhub, aiohttp) logged at ERROR or with a traceback (what
    other loggers say, such as asyncio collecting an earlier test's leftovers, is not this
    test's business)."""
    bad = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith(("scanhub", "aiohttp")) and (r.levelno >= logging.ERROR or r.exc_info)
    ]
    assert not bad, bad


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


async def test_every_operation_answers_as_documented(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    async with served(tmp_path) as svc:
        code, out = await schemathesis(svc.url, tmp_path, "--exclude-path", STREAM)
    assert code == 0, out[-12_000:]
    assert ran_on(out, OPERATIONS - 1), out[:2000]
    _no_errors_logged(logs)


async def test_the_live_stream_answers_as_documented(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    async with served(tmp_path) as svc:
        code, out = await schemathesis(svc.url, tmp_path, "--include-path", STREAM)
    assert code == 0, out[-12_000:]
    assert ran_on(out, 1), out[:2000]
    _no_errors_logged(logs)


async def test_writes_answer_as_documented_without_a_token_configured(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """The service has no token: every write is a 403 (schemathesis still sends one)."""
    async with served(tmp_path, token=None) as svc:
        code, out = await schemathesis(
            svc.url,
            tmp_path,
            "--include-method-regex",
            "^(POST|DELETE)$",
            "--include-path-regex",
            r"^/api/v1/(track|items/\{key\}|sinks/\{name\}/replay)$",
        )
    assert code == 0, out[-12_000:]
    assert ran_on(out, 3), out[:2000]
    _no_errors_logged(logs)
