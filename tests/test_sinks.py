"""Sinks: signed, retried, durable pushes of the committed log (`[[sink]]`).

Every delivery is received by a real receiver on loopback that verifies it with the
`standardwebhooks` package and reads it with the `cloudevents` SDK."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from scanhub import Lifecycle, ScanHub, SQLiteStore, Verdict
from scanhub._events import to_cloudevent
from scanhub._sinks import (
    Answer,
    Sink,
    SinkFilter,
    after_failure,
    classify,
    event_bytes,
    new_secret,
    retry_after,
    sign,
    verify,
)
from scanhub.store import MemoryStore, SinkStatus, Store

from .sinkhelp import Receiver, receiving, scan, seen, until

SECRET = new_secret()
FAST = (0.05, 0.05, 0.05)


def hook(receiver: Receiver, secret: str | list[str] = SECRET, **kw: Any) -> Sink:
    kw.setdefault("allow_private", True)
    kw.setdefault("schedule", FAST)
    return Sink.webhook("hook", receiver.url, secret, **kw)


async def engine(store: Store, *sinks: Sink) -> ScanHub:
    hub = ScanHub(store=store, sinks=sinks, rng=random.Random(1))
    await hub.open()
    return hub


async def state(hub: ScanHub, name: str = "hook") -> Any:
    (found,) = await hub.store.sink_states([name])
    return found


async def test_every_transition_is_delivered_signed_once_in_order_as_its_cloudevent(
    tmp_path: Path,
) -> None:
    async with receiving([SECRET]) as rx:
        hub = await engine(SQLiteStore(tmp_path / "s.db"), hook(rx))
        try:
            async with hub.polling():
                await until(lambda: hub.sinks.delivering_here("hook") and "hook" in hub.sinks.states)
                for step, lc in enumerate((Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED)):
                    await hub.store.commit([seen(scan(s, lc), step) for s in ("a", "b", "c")])
                await rx.wait_for(9)
                await until(lambda: hub.sinks.states["hook"].position == 9)
            logged = await hub.store.transitions()
        finally:
            await hub.close()
    assert rx.ids() == [t.id for t in logged] == list(range(1, 10))  # once each, in id order
    for i, t in enumerate(logged):
        r = rx.requests[i]
        assert r["verified"] == SECRET  # standardwebhooks accepts it
        assert r["body"] == event_bytes(to_cloudevent(t.change))  # the log's exact bytes
        assert r["headers"]["Content-Type"].startswith("application/cloudevents+json")
        event = rx.event(i)  # the cloudevents SDK reads it
        assert event["id"] == r["headers"]["webhook-id"] == str(t.id)
        assert event["type"] == "io.scanhub.scan.changed" and event["subject"] == t.key
        assert event.data["lifecycle"] == t.change.after.lifecycle.value


async def test_binary_mode_sends_the_data_with_ce_headers() -> None:
    async with receiving([SECRET]) as rx:
        hub = await engine(MemoryStore(), hook(rx, mode="binary"))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a", Lifecycle.FAILED, Verdict.FAIL))])
                await rx.wait_for(1)
            (t,) = await hub.store.transitions()
        finally:
            await hub.close()
    r = rx.requests[0]
    assert r["verified"] == SECRET and r["headers"]["ce-id"] == "1"
    assert r["headers"]["Content-Type"] == "application/json"
    event = rx.event(0)
    expected = to_cloudevent(t.change)
    assert event["source"] == expected["source"] and event["type"] == expected["type"]
    assert event.data == expected["data"]
    assert json.loads(r["body"]) == expected["data"]
