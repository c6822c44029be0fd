from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any
from unittest import mock

import aiohttp
import aioresponses.core
import pytest
from aioresponses import aioresponses as _aioresponses

from scanhub import RetryPolicy


class _CompatClientResponse(aiohttp.ClientResponse):
    """aiohttp 3.14 made `stream_writer` a required argument of ClientResponse; aioresponses
    0.7.9 (the newest) does not pass it (pnuckowski/aioresponses#289, unfixed). aiohttp only
    reads `stream_writer.output_size`, so a stub supplies it. The one place this lives; delete
    it when aioresponses ships the fix (pnuckowski/aioresponses#288)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", mock.Mock(output_size=0))
        super().__init__(*args, **kwargs)


_NEEDS_COMPAT = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


@pytest.fixture
def vendor_http() -> Iterator[_aioresponses]:
    """aioresponses, working on aiohttp 3.14."""
    with (
        mock.patch.object(
            aioresponses.core,
            "ClientResponse",
            _CompatClientResponse if _NEEDS_COMPAT else aiohttp.ClientResponse,
        ),
        _aioresponses() as m,
    ):
        yield m


class FakeSleep:
    """Records requested sleeps instead of sleeping, advancing a fake clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return RetryPolicy(attempts=3, backoff_initial=0.001, backoff_max=0.002)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    """A PostgreSQL cluster for the whole session (skips the test where there is none)."""
    from .pg import SKIP_REASON, bindir, cluster

    if bindir() is None:
        pytest.skip(SKIP_REASON)
    with cluster() as dsn:
        yield dsn
