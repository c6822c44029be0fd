"""Sinks: signed, retried, durable pushes of the committed log (`[[sink]]`).

Every delivery is received by a real receiver on loopback that verifies it with the
`standardwebhooks` package and reads it with the `cloudevents` SDK."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from scanhub import Lifecycle, ScanHub, SQLiteStore, Verdict
from scanhub._exports import cloudevent_json, to_cloudevent
from scanhub._sansio import parse_retry_after as retry_after
from scanhub._sinks import (
    Answer,
    Sink,
    SinkFilter,
    after_failure,
    classify,
    new_secret,
    sign,
    verify,
)
from scanhub.store import MemoryStore, SinkStatus, Store

from .sinkhelp import Receiver, receiving, scan, seen, until

ROOT = Path(__file__).resolve().parents[1]
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
    (found,) = await hub.store.sinks.states([name])
    return found


async def test_every_transition_is_delivered_signed_once_in_order_as_its_cloudevent(
    tmp_path: Path,
) -> None:
    async with receiving([SECRET]) as rx:
        hub = await engine(SQLiteStore(tmp_path / "s.db"), hook(rx))
        try:
            async with hub.polling():
                await until(
                    lambda: hub.sinks.delivering_here("hook") and "hook" in hub.sinks.states
                )
                for step, lc in enumerate(
                    (Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED)
                ):
                    await hub.store.commit([seen(scan(s, lc), step) for s in ("a", "b", "c")])
                await rx.wait_for(9)
                await until(lambda: hub.sinks.states["hook"].position == 9)
            logged = await hub.store.transitions()
            log = await hub.store.sinks.log_id()
        finally:
            await hub.close()
    assert rx.ids() == [t.id for t in logged] == list(range(1, 10))  # once each, in id order
    assert re.fullmatch("[0-9a-f]{16}", log)
    for i, t in enumerate(logged):
        r = rx.requests[i]
        assert r["verified"] == SECRET  # standardwebhooks accepts it
        assert r["body"] == cloudevent_json(t.change, log).encode()  # every reader's bytes
        assert r["headers"]["Content-Type"].startswith("application/cloudevents+json")
        event = rx.event(i)  # the cloudevents SDK reads it
        # One id for the world: the CloudEvent's is the webhook-id, naming the log.
        assert event["id"] == r["headers"]["webhook-id"] == f"{log}-{t.id}"
        assert event["type"] == "io.scanhub.scan.changed" and event["subject"] == t.key
        assert event.data["lifecycle"] == t.change.after.lifecycle.value


async def test_two_state_files_feeding_one_receiver_never_share_a_webhook_id(
    tmp_path: Path,
) -> None:
    """A receiver deduplicates by `webhook-id`: the first transition of a second service (or
    of a state file replaced) is not the first one's, though both logs number it 1."""
    async with receiving([SECRET]) as rx:
        for n in (1, 2):
            hub = await engine(SQLiteStore(tmp_path / f"s{n}.db"), hook(rx))
            try:
                async with hub.polling():
                    await until(lambda h=hub: "hook" in h.sinks.states)
                    await hub.store.commit([seen(scan("a", Lifecycle.QUEUED), 0)])
                    await rx.wait_for(n)
            finally:
                await hub.close()
    assert rx.ids() == [1, 1]
    first, second = (r["headers"]["webhook-id"] for r in rx.requests)
    assert first != second


async def test_binary_mode_sends_the_data_with_ce_headers() -> None:
    async with receiving([SECRET]) as rx:
        hub = await engine(MemoryStore(), hook(rx, mode="binary"))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a", Lifecycle.FAILED, Verdict.FAIL))])
                await rx.wait_for(1)
            (t,) = await hub.store.transitions()
            log = await hub.store.sinks.log_id()
        finally:
            await hub.close()
    r = rx.requests[0]
    assert r["verified"] == SECRET and r["headers"]["ce-id"] == f"{log}-1"
    assert r["headers"]["webhook-id"] == f"{log}-1"
    assert r["headers"]["Content-Type"] == "application/json"
    event = rx.event(0)
    expected = to_cloudevent(t.change, log)
    assert event["source"] == expected["source"] and event["type"] == expected["type"]
    assert event.data == expected["data"]
    assert json.loads(r["body"]) == expected["data"]


async def test_a_failed_delivery_is_retried_with_the_same_id_and_a_new_signature() -> None:
    async with receiving([SECRET]) as rx:
        rx.answers = [500, 503]
        hub = await engine(MemoryStore(), hook(rx))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a"))])
                await rx.wait_for(3)
                await until(lambda: hub.sinks.states["hook"].position == 1)
            st = await state(hub)
        finally:
            await hub.close()
    assert rx.ids() == [1, 1, 1]
    assert all(r["verified"] == SECRET for r in rx.requests)
    assert len({r["body"] for r in rx.requests}) == 1  # the same bytes every time
    assert (st.status, st.delivered, st.failures, st.head) == (SinkStatus.ACTIVE, 1, 2, None)
    assert st.last_status == 503 and "503" in (st.last_error or "")
    assert st.last_success is not None


async def test_429_throttles_the_sink_for_its_retry_after() -> None:
    async with receiving([SECRET]) as rx:
        rx.answers = [(429, {"Retry-After": "1"}), (502, {}), (504, {})]
        hub = await engine(MemoryStore(), hook(rx, schedule=(0.01,) * 5))
        outcomes: list[tuple[str, str]] = []
        hub.sinks.observers.append(lambda s, o: outcomes.append((s, o)))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a")), seen(scan("b"))])
                await rx.wait_for(5)
                await until(lambda: len(outcomes) == 5)
        finally:
            await hub.close()
    assert rx.ids() == [1, 1, 1, 1, 2]  # the second waits behind the first: in order
    waited = rx.requests[1]["at"] - rx.requests[0]["at"]
    assert waited >= 0.9  # Retry-After: 1 was honoured (the schedule says 0.01 s)
    assert [o for _, o in outcomes] == [
        "throttled",
        "throttled",
        "throttled",
        "delivered",
        "delivered",
    ]


async def test_410_disables_the_sink_until_a_replay() -> None:
    async with receiving([SECRET]) as rx:
        rx.answers = [410]
        hub = await engine(MemoryStore(), hook(rx))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a"))])
                await rx.wait_for(1)
                await until(lambda: hub.sinks.states["hook"].status is SinkStatus.DISABLED)
                await hub.store.commit([seen(scan("b"))])
                await asyncio.sleep(0.3)
                assert len(rx.requests) == 1  # nothing is sent while disabled
                st = await state(hub)
                assert (st.position, st.head, st.last_status) == (0, 1, 410)
                # Not dropped: kept at the cursor.
                assert await hub.store.sinks.dead_letters("hook") == []
                await hub.store.sinks.replay("hook", st.position, datetime.now(UTC))
                hub.sinks.wake("hook")
                await rx.wait_for(3)
                await until(lambda: hub.sinks.states["hook"].position == 2)
        finally:
            await hub.close()
    assert rx.ids() == [1, 1, 2]


async def test_a_redirect_is_an_error_retried_a_few_times_then_dead_lettered() -> None:
    async with receiving([SECRET]) as rx:
        rx.answers = [(301, {"Location": rx.url + "/elsewhere"})] * 2 + [400, 400]
        hub = await engine(MemoryStore(), hook(rx, max_client_errors=2))
        outcomes: list[str] = []
        hub.sinks.observers.append(lambda s, o: outcomes.append(o))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a")), seen(scan("b")), seen(scan("c"))])
                await rx.wait_for(5)
                await until(lambda: hub.sinks.states["hook"].position == 3)
            dead = await hub.store.sinks.dead_letters("hook")
            st = await state(hub)
        finally:
            await hub.close()
    assert [r["path"] for r in rx.requests] == ["/hook"] * 5  # the redirect was not followed
    assert rx.ids() == [1, 1, 2, 2, 3]
    assert [(d.id, d.key, d.attempts, d.status) for d in dead] == [
        (1, scan("a").key, 2, 301),
        (2, scan("b").key, 2, 400),
    ]
    assert "redirects are not followed" in dead[0].error and "refused 2 times" in dead[0].error
    assert (st.dead, st.delivered, st.status) == (2, 1, SinkStatus.ACTIVE)
    assert outcomes == ["refused", "refused", "dead", "refused", "refused", "dead", "delivered"]


async def test_a_hanging_receiver_times_out_and_the_schedule_ends_in_a_dead_letter() -> None:
    async with receiving([SECRET]) as rx:
        rx.answers = ["hang", "hang", 500]
        hub = await engine(MemoryStore(), hook(rx, timeout=0.3, schedule=(0.01, 0.01)))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a")), seen(scan("b"))])
                await rx.wait_for(4)
                await until(lambda: hub.sinks.states["hook"].position == 2)
            (dead,) = await hub.store.sinks.dead_letters("hook")
        finally:
            await hub.close()
    assert rx.ids() == [1, 1, 1, 2]
    assert dead.id == 1 and dead.attempts == 3 and dead.status == 500
    assert "retry schedule ran out" in dead.error


async def test_a_delivery_older_than_max_age_is_dead_and_a_body_over_the_cap_is_never_sent() -> (
    None
):
    async with receiving([SECRET]) as rx:
        rx.answers = [500]
        slow = hook(rx, schedule=(3600.0,), max_age=60.0)
        tiny = Sink.webhook("tiny", rx.url, SECRET, allow_private=True, max_body=100)
        hub = await engine(MemoryStore(), slow, tiny)
        try:
            async with hub.polling():
                await until(lambda: {"hook", "tiny"} <= set(hub.sinks.states))
                await hub.store.commit([seen(scan("a"))])
                await until(lambda: hub.sinks.states["hook"].position == 1)
                await until(lambda: hub.sinks.states["tiny"].position == 1)
            (old,) = await hub.store.sinks.dead_letters("hook")
            (big,) = await hub.store.sinks.dead_letters("tiny")
        finally:
            await hub.close()
    assert len(rx.requests) == 1  # hook: one attempt (its next would be past max_age); tiny: none
    assert "max_age" in old.error and old.attempts == 1
    assert "over the sink's max_body" in big.error and big.status is None


async def test_a_sink_resumes_from_its_cursor_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with receiving([SECRET]) as rx:
        hub = await engine(SQLiteStore(db), hook(rx))
        async with hub.polling():
            await until(lambda: "hook" in hub.sinks.states)
            await hub.store.commit([seen(scan("a")), seen(scan("b"))])
            await until(lambda: hub.sinks.states["hook"].position == 2)
        await hub.close()
        # While nothing delivers, more is committed (another process, a restart's gap).
        async with SQLiteStore(db) as other:
            await other.commit([seen(scan("c")), seen(scan("a", Lifecycle.SUCCEEDED), 1)])
        rx.answers = [500]  # and the first attempt after the restart fails
        hub = await engine(SQLiteStore(db), hook(rx))
        try:
            async with hub.polling():
                await rx.wait_for(5)
                await until(lambda: hub.sinks.states["hook"].position == 4)
        finally:
            await hub.close()
    assert rx.ids() == [1, 2, 3, 3, 4]


async def test_during_a_key_rotation_each_delivery_carries_a_signature_per_key() -> None:
    new, old = new_secret(), new_secret()
    async with receiving([old]) as still_old, receiving([new]) as already_new:
        hub = await engine(
            MemoryStore(),
            Sink.webhook("old", still_old.url, [new, old], allow_private=True),
            Sink.webhook("new", already_new.url, [new, old], allow_private=True),
        )
        try:
            async with hub.polling():
                await until(lambda: {"old", "new"} <= set(hub.sinks.states))
                await hub.store.commit([seen(scan("a"))])
                await still_old.wait_for(1)
                await already_new.wait_for(1)
        finally:
            await hub.close()
    for rx, key in ((still_old, old), (already_new, new)):
        r = rx.requests[0]
        assert r["verified"] == key  # a receiver holding either key accepts it
        assert len(r["headers"]["webhook-signature"].split(" ")) == 2
    stranger = Webhook(new_secret())
    with pytest.raises(Exception, match="signature"):
        stranger.verify(r["body"], r["headers"])


async def test_the_filter_chooses_what_is_delivered_and_the_cursor_passes_the_rest() -> None:
    wanted = SinkFilter.parse(
        [
            {"exact": {"source": "asp"}},
            {"any": [{"exact": {"lifecycle": "failed"}}, {"exact": {"verdict": "fail"}}]},
            {"not": {"prefix": {"application": "test-"}}},
        ]
    )
    async with receiving([SECRET]) as rx:
        hub = await engine(MemoryStore(), hook(rx, filter=wanted))
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit(
                    [
                        seen(scan("a", Lifecycle.FAILED)),  # 1: yes
                        seen(scan("b", Lifecycle.SUCCEEDED, Verdict.PASS)),  # 2: no
                        seen(scan("c", Lifecycle.SUCCEEDED, Verdict.FAIL)),  # 3: yes
                        seen(scan("d", Lifecycle.FAILED, application_name="test-x")),  # 4: no
                        seen(scan("e", Lifecycle.RUNNING)),  # 5: no
                    ]
                )
                await until(lambda: hub.sinks.states["hook"].position == 5)
        finally:
            await hub.close()
    assert rx.ids() == [1, 3]


def test_a_wrong_filter_is_told_with_what_it_holds() -> None:
    from scanhub._sinks import FilterError

    for spec, said in (
        ({"exact": {"vendor": 5}}, "exact.vendor: expected a non-empty string, got 5"),
        ({"any": [7]}, "expected a table with one of"),
    ):
        with pytest.raises(FilterError) as err:
            SinkFilter.parse(spec)
        assert said in str(err.value), str(err.value)
    with pytest.raises(FilterError) as err:
        SinkFilter.parse({"any": ["x" * 100]})
    assert "got 'xxx" in str(err.value) and "…" in str(err.value)  # shown capped, as repr


def test_filter_dialects() -> None:
    failed = scan("a", Lifecycle.FAILED)
    from scanhub import Change

    first = Change(None, failed, datetime.now(UTC), 1)
    moved = Change(scan("a", Lifecycle.RUNNING), failed, datetime.now(UTC), 2)

    def m(spec: Any, change: Any = first) -> bool:
        return SinkFilter.parse(spec).matches(change)

    assert m({"exact": {"vendor": "appsecplus", "kind": "scan"}})
    assert not m({"exact": {"vendor": "appsecplus", "kind": "promotion"}})
    assert m({"prefix": {"subject": "appsecplus:"}}) and m({"suffix": {"application": "-1"}})
    assert m({"exact": {"type": "io.scanhub.scan.changed"}})
    assert not m({"exact": {"previous_lifecycle": "running"}})  # a first sighting has none
    assert m({"exact": {"previous_lifecycle": "running"}}, moved)
    assert m({"not": {"exact": {"previous_lifecycle": "failed"}}}, moved)
    assert m({"all": [{"exact": {"lifecycle": "failed"}}, {"not": {"exact": {"verdict": "pass"}}}]})
    assert not m({"any": [{"exact": {"lifecycle": "queued"}}, {"exact": {"verdict": "pass"}}]})
    assert SinkFilter().matches(first)  # no filter: everything


async def test_private_targets_are_refused_unless_allowed() -> None:
    async with receiving([SECRET]) as rx:
        literal = hook(rx, allow_private=False, max_client_errors=1)
        named = Sink.webhook(
            "named",
            rx.url.replace("127.0.0.1", "localhost"),
            SECRET,
            max_client_errors=1,
        )
        hub = await engine(MemoryStore(), literal, named)
        try:
            async with hub.polling():
                await until(lambda: {"hook", "named"} <= set(hub.sinks.states))
                await hub.store.commit([seen(scan("a"))])
                await until(lambda: hub.sinks.states["hook"].position == 1)
                await until(lambda: hub.sinks.states["named"].position == 1)
            (a,) = await hub.store.sinks.dead_letters("hook")
            (b,) = await hub.store.sinks.dead_letters("named")
        finally:
            await hub.close()
    assert rx.requests == []
    assert "127.0.0.1 is a loopback address" in a.error and "allow_private" in a.error
    assert "localhost" in b.error and "refused" in b.error


async def test_the_guard_checks_what_a_name_resolves_to() -> None:
    from aiohttp.abc import AbstractResolver

    from scanhub.engine.sinks import GuardedResolver, RefusedTarget

    class Fixed(AbstractResolver):
        def __init__(self, *addresses: str) -> None:
            self.addresses = addresses

        async def resolve(self, host: str, port: int = 0, family: Any = 0) -> Any:
            return [
                {"hostname": host, "host": a, "port": port, "family": 2, "proto": 0, "flags": 0}
                for a in self.addresses
            ]

        async def close(self) -> None:
            return None

    for address in (
        "10.1.2.3",
        "169.254.169.254",
        "192.168.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "100.64.0.1",
    ):
        with pytest.raises(RefusedTarget, match="allow_private"):
            await GuardedResolver(Fixed(address)).resolve("hooks.example.com", 443)
    mixed = await GuardedResolver(Fixed("10.0.0.1", "93.184.215.14")).resolve("x", 443)
    assert [r["host"] for r in mixed] == ["93.184.215.14"]  # only the public address is used
    # DNS64 (an IPv6-only network) gives public IPv4 hosts as NAT64 addresses: still usable
    dns64 = await GuardedResolver(Fixed("64:ff9b::a00:1", "64:ff9b::5db8:d70e")).resolve("x", 443)
    assert [r["host"] for r in dns64] == ["64:ff9b::5db8:d70e"]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        # IPv6 forms that carry an IPv4 address are judged by the address they carry
        ("::ffff:127.0.0.1", "127.0.0.1 is a loopback address"),  # IPv4-mapped
        ("::ffff:a9fe:a9fe", "169.254.169.254 is a link-local address"),
        ("64:ff9b::7f00:1", "127.0.0.1 is a loopback address"),  # NAT64 (RFC 6052)
        ("64:ff9b::a00:1", "10.0.0.1 is a private address"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254 is a link-local address"),
        ("2002:7f00:1::", "127.0.0.1 is a loopback address"),  # 6to4 (RFC 3056)
        ("2002:c0a8:1:2::3", "192.168.0.1 is a private address"),
        ("2002:a9fe:a9fe::1", "169.254.169.254 is a link-local address"),
        # forms whose IPv4 address is not where ipaddress can say: refused whole
        ("64:ff9b:1::7f00:1", "64:ff9b:1::7f00:1 is a local-use NAT64 address"),  # RFC 8215
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "is a Teredo address"),  # RFC 4380
        ("2001::ffff:ffff", "is a Teredo address"),  # (its client: 0.0.0.0)
        ("::7f00:1", "::7f00:1 is a reserved address"),  # IPv4-compatible (deprecated)
        ("::ffff:0:7f00:1", "::ffff:0:7f00:1 is a reserved address"),  # IPv4-translated
        # not globally reachable though ipaddress calls them neither private nor reserved
        ("100.64.0.1", "100.64.0.1 is not a globally reachable address"),  # shared (CGNAT)
        ("64:ff9b::6440:1", "100.64.0.1 is not a globally reachable address"),
        ("fec0::1", "fec0::1 is a site-local address"),
        # what is not an address at all is refused, never taken for a public one
        ("", "'' is not an IP address"),
        ("hooks.example.com", "'hooks.example.com' is not an IP address"),
        ("127.1", "'127.1' is not an IP address"),
        ("::1%eth0", "::1 is a loopback address"),
    ],
)
def test_an_address_is_refused_for_what_it_reaches(address: str, reason: str) -> None:
    from scanhub._sinks import forbidden_address

    got = forbidden_address(address)
    assert got is not None and reason in got


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "2606:4700:4700::1111",
        "::ffff:93.184.215.14",
        "64:ff9b::5db8:d70e",  # what DNS64 gives an IPv6-only host for 93.184.215.14
        "2002:5db8:d70e::1",
        "2a00:1450:4001:80b::200e",
    ],
)
def test_a_public_address_is_allowed_in_every_form(address: str) -> None:
    from scanhub._sinks import forbidden_address

    assert forbidden_address(address) is None


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("localhost", "localhost is a loopback name"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("::ffff:7f00:1", "127.0.0.1 is a loopback address"),
        ("[64:ff9b::7f00:1]", "127.0.0.1 is a loopback address"),
        ("2002:7f00:1::", "127.0.0.1 is a loopback address"),
        # what getaddrinfo (and so aiohttp, which connects to a numeric host unresolved) reads
        # as 127.0.0.1
        ("127.1", "127.1 (127.0.0.1 is a loopback address)"),
        ("2130706433", "2130706433 (127.0.0.1 is a loopback address)"),
        ("0177.0.0.1", "0177.0.0.1 (127.0.0.1 is a loopback address)"),
        ("127.0.0.01", "127.0.0.01 (127.0.0.1 is a loopback address)"),
        ("0x7f.1", "0x7f.1 (127.0.0.1 is a loopback address)"),
        ("0xa9.254.169.254", "(169.254.169.254 is a link-local address)"),
        # numeric, so never resolved, yet no address: refused
        ("1.2.3.4.5", "'1.2.3.4.5' is not an IP address"),
        ("::g", "'::g' is not an IP address"),
        ("", "the URL names no host"),
    ],
)
def test_a_url_host_is_refused_when_it_is_or_reads_as_a_private_address(
    host: str, reason: str
) -> None:
    from scanhub._sinks import forbidden_host

    got = forbidden_host(host)
    assert got is not None and reason in got


@pytest.mark.parametrize(
    "host", ["hooks.example.com", "93.184.215.14", "[2606:4700:4700::1111]", "1.example", "0x.io"]
)
def test_a_name_or_public_host_is_left_to_the_resolver(host: str) -> None:
    from scanhub._sinks import forbidden_host

    assert forbidden_host(host) is None


@pytest.mark.parametrize("host", ["127.1", "2130706433", "127.0.0.01", "0x7f.1"])
async def test_a_loopback_address_in_another_spelling_is_refused(host: str) -> None:
    # The guard reads the spelling itself (aiohttp >= 3.14 also refuses to connect to a
    # non-canonical numeric host, but says neither why nor what to set).
    async with receiving([SECRET]) as rx:
        url = rx.url.replace("127.0.0.1", host)
        spelled = Sink.webhook("hook", url, SECRET, max_client_errors=1, schedule=FAST)
        hub = await engine(MemoryStore(), spelled)
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a"))])
                await until(lambda: hub.sinks.states["hook"].position == 1)
            (dead,) = await hub.store.sinks.dead_letters("hook")
        finally:
            await hub.close()
    assert rx.requests == []
    assert "127.0.0.1 is a loopback address" in dead.error and "allow_private" in dead.error


async def test_secrets_never_reach_logs_errors_or_the_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="scanhub")
    token = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    async with receiving() as rx:
        rx.answers = [500, 404, 404]
        slack = Sink.webhook(
            "hook",
            f"{rx.url}/services/{token}",
            SECRET,
            allow_private=True,
            kind="slack",
            schedule=FAST,
            max_client_errors=2,
        )
        hub = await engine(MemoryStore(), slack)
        try:
            async with hub.polling():
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a", message="<!channel> & <b>hi</b>"))])
                await until(lambda: hub.sinks.states["hook"].dead == 1)
            st = await state(hub)
            dead = await hub.store.sinks.dead_letters("hook")
        finally:
            await hub.close()
    shown = caplog.text + repr(st) + repr(dead) + repr(slack)
    assert token not in shown and SECRET not in shown and SECRET[6:] not in shown
    assert slack.shown == rx.url.rsplit("/", 1)[0]  # scheme, host and port only
    message = json.loads(rx.requests[0]["body"])
    text = json.dumps(message)
    assert "&lt;!channel&gt; &amp; &lt;b&gt;hi&lt;/b&gt;" in text and "<!channel>" not in text
    assert message["blocks"][0]["type"] == "section"


def test_no_vendor_text_reaches_a_slack_message_unescaped() -> None:
    """Slack reads mentions and links in a message's `text` (its notification) as in its
    blocks: neither may carry one from a vendor's ids, names or message."""
    from scanhub._sinks import slack_message

    hostile = "<!channel> <https://evil.example|fix> & <@U1>"
    event = {
        "type": "io.scanhub.scan.changed",
        "data": {
            "kind": "scan",
            "vendor": "sonarqube",
            "source": hostile,
            "application_id": hostile,
            "id": hostile,
            "lifecycle": "failed",
            "previous_lifecycle": hostile,
            "verdict": "fail",
            "vendor_status": hostile,
            "message": hostile,
        },
    }
    message = slack_message(event)
    shown = json.dumps(message)
    assert "<!" not in shown and "<https" not in shown and "<@" not in shown
    assert message["text"].startswith(":no_entry: scan &lt;!channel&gt;")
    # Escaping makes a text longer: a message of `&`s stays within Slack's length, and no
    # entity is cut in two.
    from scanhub._sinks import _SLACK_TEXT

    long = slack_message({**event, "data": {**event["data"], "message": "&" * 5000, "id": "x"}})
    details = long["blocks"][1]["elements"][0]["text"]
    assert len(details) <= _SLACK_TEXT and details.endswith("&amp;…")
    assert all(len(b.get("text", {}).get("text", "")) <= _SLACK_TEXT for b in long["blocks"])


def test_signatures_are_the_standard_ones() -> None:
    body = b'{"a":1}'
    header = sign([SECRET], "41", 1_700_000_000, body)
    wh = Webhook(SECRET)
    expected = wh.sign("41", datetime.fromtimestamp(1_700_000_000, UTC), body.decode())
    assert header == expected
    now = datetime.now(UTC).timestamp()
    headers = {
        "webhook-id": "41",
        "webhook-timestamp": str(int(now)),
        "webhook-signature": sign([new_secret(), SECRET], "41", int(now), body),
    }
    assert verify([SECRET], body, headers, now) == "41"
    from scanhub._sinks import SignatureError

    with pytest.raises(SignatureError):
        verify([SECRET], body + b" ", headers, now)  # a byte changed
    with pytest.raises(SignatureError):
        verify([SECRET], body, headers, now + 3600)  # replayed an hour later
    for stamp in ("\u00b2", "9" * 5000):  # not ASCII digits, more than int() reads: no crash
        with pytest.raises(SignatureError, match="Unix seconds"):
            verify([SECRET], body, {**headers, "webhook-timestamp": stamp}, now)
    with pytest.raises(ValueError, match="whsec_"):
        Sink.webhook("x", "https://h", "not-a-secret")


def test_what_an_answer_means_and_when_to_try_again() -> None:
    assert [classify(s) for s in (200, 204, 301, 400, 404, 410, 429, 500, 502, 503, 504, None)] == [
        Answer.DELIVERED,
        Answer.DELIVERED,
        Answer.REFUSED,
        Answer.REFUSED,
        Answer.REFUSED,
        Answer.GONE,
        Answer.THROTTLED,
        Answer.FAILED,
        Answer.THROTTLED,
        Answer.FAILED,
        Answer.THROTTLED,
        Answer.FAILED,
    ]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("120", now) == 120.0
    assert retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60.0
    assert retry_after("soon", now) is None and retry_after(None, now) is None
    # Digits of other scripts (str.isdigit() takes them, float() does not), and forms RFC 9110
    # does not have: unreadable, so the sink's own schedule applies.
    for odd in ("\u00b2", "\u0661\u0662", "1e3", "1.5", "-5", "1_0"):
        assert retry_after(odd, now) is None, odd
    sink = Sink.webhook("x", "https://h", SECRET)  # the standard schedule
    rng = random.Random(0)
    delays = []
    for n in range(1, 10):
        step = after_failure(sink, Answer.FAILED, n, 0.0, None, rng)
        assert step.action == "retry"
        delays.append(step.delay)
    standard = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert all(0.8 * s <= d <= 1.2 * s for d, s in zip(delays, standard, strict=True))
    assert after_failure(sink, Answer.FAILED, 10, 0.0, None, rng).action == "dead"
    assert after_failure(sink, Answer.GONE, 1, 0.0, None, rng).action == "disable"
    assert after_failure(sink, Answer.THROTTLED, 1, 0.0, 30.0, rng).delay == 30.0
    assert after_failure(sink, Answer.THROTTLED, 1, 0.0, 1e9, rng).delay == 3600.0  # capped
    assert after_failure(sink, Answer.REFUSED, 3, 0.0, None, rng).action == "dead"
    assert after_failure(sink, Answer.FAILED, 2, 4 * 86400.0, None, rng).action == "dead"


def sink_config(tmp_path: Path, sinks: str) -> Path:
    """A scanhub.toml with a source nothing polls, and these [[sink]] tables."""
    cfg = tmp_path / "scanhub.toml"
    cfg.write_text(
        '[[source]]\nvendor = "iq"\nbase_url = "http://127.0.0.1:9"\nusername = "u"\n'
        'password_env = "IQ_PASSWORD"\n\n' + sinks
    )
    return cfg


async def scanhub_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    import os
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        *args,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "SCANHUB_NO_PLUGINS": "1", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_sinks_test_sends_one_signed_event_and_prints_the_answer(tmp_path: Path) -> None:
    async with receiving([SECRET]) as rx:
        table = f'[[sink]]\nname = "ops"\nurl = "{rx.url}"\nsecret_env = "OPS_SECRET"\n'
        cfg = sink_config(tmp_path, table + "allow_private = true\n")
        env = {"OPS_SECRET": SECRET, "IQ_PASSWORD": "pw"}
        code, out, err = await scanhub_cli("sinks", "test", "ops", "-c", str(cfg), env=env)
        assert code == 0, err
        assert len(rx.requests) == 1 and rx.requests[0]["verified"] == SECRET
        event = rx.event(0)
        assert event["type"] == "io.scanhub.sink.test" and event["id"].startswith("test-")
        assert f"sink ops → {rx.url.rsplit('/', 1)[0]}: HTTP 200 OK" in out and "answer" in out
        assert SECRET not in out + err

        rx.answers = [503]
        code, out, _ = await scanhub_cli("sinks", "test", "ops", "-c", str(cfg), env=env)
        assert code == 5 and "HTTP 503" in out

        # Exit 2 naming what is wrong: an unknown sink, an unset or malformed secret (never
        # shown), a loopback target without allow_private.
        code, _, err = await scanhub_cli("sinks", "test", "nope", "-c", str(cfg), env=env)
        assert code == 2 and "no sink named 'nope' (ops)" in err
        bare = {"IQ_PASSWORD": "pw"}
        code, _, err = await scanhub_cli("sinks", "test", "ops", "-c", str(cfg), env=bare)
        assert code == 2 and "OPS_SECRET is not set" in err
        code, out, err = await scanhub_cli("config", "check", "-c", str(cfg), env=bare)
        assert code == 2 and "sink[0].secret_env: environment variable OPS_SECRET is not set" in err
        code, out, err = await scanhub_cli("config", "check", "-c", str(cfg), env=env)
        assert code == 0 and "1 sinks, delivered by scanhub serve)" in out
        short = {**env, "OPS_SECRET": "whsec_c2hvcnQ="}
        code, _, err = await scanhub_cli("sinks", "test", "ops", "-c", str(cfg), env=short)
        assert code == 2 and "OPS_SECRET" in err and "c2hvcnQ" not in err
        code, _, err = await scanhub_cli("config", "check", "-c", str(cfg), env=short)
        assert code == 2 and "sink[0].secret_env: OPS_SECRET: expected a secret of" in err
        assert "c2hvcnQ" not in err
        private = sink_config(tmp_path, table)
        code, _, err = await scanhub_cli("sinks", "test", "ops", "-c", str(private), env=env)
        assert code == 2 and "sink[0].url: 127.0.0.1 is a loopback address" in err
        assert len(rx.requests) == 2

        # A URL kept secret (a Slack webhook's path is its credential), echoed back by the
        # receiver in its answer: never printed.
        secret_url = f"{rx.url}/services/T0001/B0001/SuperSecretToken123"
        hidden = sink_config(
            tmp_path,
            '[[sink]]\nname = "slack"\nkind = "slack"\nurl_env = "SLACK_URL"\n'
            "allow_private = true\n",
        )
        rx.echo_path, rx.answers = True, [404]
        code, out, err = await scanhub_cli(
            "sinks", "test", "slack", "-c", str(hidden), env={**env, "SLACK_URL": secret_url}
        )
        assert code == 5 and "HTTP 404" in out and "answer for ***" in out, out
        assert "SuperSecretToken123" not in out + err
        code, _, err = await scanhub_cli(
            "config", "check", "-c", str(hidden), env={**env, "SLACK_URL": "hooks.slack.com/x"}
        )
        assert code == 2 and "SLACK_URL is not set to an http(s) URL" in err
        private = hidden.read_text().replace("allow_private = true\n", "")
        hidden.write_text(private)
        code, _, err = await scanhub_cli(
            "config", "check", "-c", str(hidden), env={**env, "SLACK_URL": secret_url}
        )
        assert code == 2 and "sink[0].url_env: SLACK_URL: 127.0.0.1 is a loopback address" in err
        assert "SuperSecretToken123" not in err


def test_sink_tables_are_checked_every_problem_at_once_and_in_the_json_schema() -> None:
    import jsonschema

    from scanhub import ConfigError, config_schema
    from scanhub._config import parse_config

    source = {
        "vendor": "iq",
        "base_url": "https://iq.example.com",
        "username": "u",
        "password_env": "P",
    }
    doc = {
        "source": [source],
        "sink": [
            {"name": "a", "url": "https://h.example.com", "secret": "whsec_x", "timeout": 0},
            {
                "name": "a",
                "url": "https://h.example.com",
                "secret_env": "S",
                "filter": [{"exact": {"lifecycle": "faild"}}, {"any": []}, {"nope": {}}],
            },
            {"name": "c", "url": "http://10.0.0.8/hook", "kind": "slack", "mode": "binary"},
            {"name": "d", "kind": "webhook"},
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, "scanhub.toml")
    problems = {key for key, _ in caught.value.problems}
    assert problems >= {
        "sink[0].secret",
        "sink[0].timeout",
        "sink[1].name",
        "sink[1].filter[0].exact.lifecycle",
        "sink[1].filter[1].any",
        "sink[1].filter[2]",
        "sink[2].mode",
        "sink[2].url",
        "sink[3].url",
        "sink[3].secret_env",
    }
    assert "whsec_x" not in str(caught.value)
    validator = jsonschema.Draft202012Validator(config_schema())
    good = {
        "source": [source],
        "sink": [
            {
                "name": "ops",
                "url": "https://hooks.example.com/x",
                "secret_env": ["NEW", "OLD"],
                "filter": [
                    {
                        "any": [
                            {"exact": {"lifecycle": "failed"}},
                            {"not": {"prefix": {"source": "iq"}}},
                        ]
                    }
                ],
                "retry_schedule": [1, 60],
            }
        ],
    }
    assert list(validator.iter_errors(good)) == []
    parse_config(good, "scanhub.toml")  # and the checker agrees
    bad = {
        "source": [source],
        "sink": [
            {
                "name": "x",
                "url": "https://h",
                "secret_env": "S",
                "filter": {"exact": {"lifecycle": "faild"}},
            }
        ],
    }
    assert list(validator.iter_errors(bad))


TOKEN = "sink-test-token"


async def test_the_service_shows_sink_health_lists_dead_letters_and_replays(
    tmp_path: Path,
) -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    from scanhub._config import Config
    from scanhub.serve import Service

    from .test_serve import validator

    async with receiving([SECRET]) as rx:
        rx.answers = [400, 400]  # the first delivery is refused: a dead letter
        sink = hook(rx, max_client_errors=2)
        hub = ScanHub(store=SQLiteStore(tmp_path / "s.db"), sinks=[sink])
        svc = Service(hub, Config(str(tmp_path / "scanhub.toml"), (), ()), port=0, token=TOKEN)
        await svc.start()
        try:
            async with aiohttp.ClientSession(base_url=svc.url) as http:
                await until(lambda: "hook" in hub.sinks.states)
                await hub.store.commit([seen(scan("a")), seen(scan("b"))])
                await until(lambda: hub.sinks.states["hook"].position == 2)
                async with http.get("/api/v1/sinks") as r:
                    body = await r.json()
                validator("SinkList").validate(body)
                (shown,) = body["sinks"]
                assert shown["state"] == "active" and shown["cursor"] == 2
                assert (shown["delivered"], shown["dead"], shown["failures"]) == (1, 1, 2)
                assert shown["lag_events"] == 0 and shown["target"] == rx.url.rsplit("/", 1)[0]
                assert shown["last_error"]["status"] == 400 and shown["delivering_here"]
                assert SECRET not in json.dumps(body) and "/hook" not in json.dumps(body)
                async with http.get("/api/v1/sinks/hook/dead") as r:
                    dead = await r.json()
                validator("DeadLetterList").validate(dead)
                assert [d["id"] for d in dead["dead"]] == [1]
                async with http.get("/api/v1/sinks/nope/dead") as r:
                    assert r.status == 404
                    assert r.content_type == "application/problem+json"

                # A replay is a write: the token is required.
                async with http.post("/api/v1/sinks/hook/replay", json={"dead": True}) as r:
                    assert r.status == 401
                auth = {"Authorization": f"Bearer {TOKEN}"}
                for given, shown in (("x", '"x"'), (True, "true"), (0, "0"), (1.5, "1.5")):
                    async with http.post(
                        "/api/v1/sinks/hook/replay", json={"from": given}, headers=auth
                    ) as r:
                        assert r.status == 400
                        assert (await r.json(content_type=None))["detail"] == (
                            f"from: expected a transition id >= 1, got {shown}"
                        )
                async with http.post(  # not what the document allows, though `from` is
                    "/api/v1/sinks/hook/replay", json={"from": 1, "dead": False}, headers=auth
                ) as r:
                    assert r.status == 400
                # Past the end of the log (ids 1 and 2), the cursor would skip every
                # transition until ids reached it: refused, naming the end.
                for given in (4, 2**62):
                    async with http.post(
                        "/api/v1/sinks/hook/replay", json={"from": given}, headers=auth
                    ) as r:
                        assert r.status == 409
                        assert (await r.json(content_type=None))["detail"] == (
                            f"from: {given} is past the end of the log (its newest transition"
                            " is 2): give an id up to 3"
                        )
                async with http.post(
                    "/api/v1/sinks/hook/replay", json={"dead": True}, headers=auth
                ) as r:
                    assert r.status == 202
                    answer = await r.json()
                validator("ReplayResult").validate(answer)
                assert answer["replayed_from"] == 1
                await rx.wait_for(5)  # 1 again (now accepted), then 2 again: at least once
                await until(lambda: hub.sinks.states["hook"].position == 2)
                assert rx.ids()[-2:] == [1, 2]
                async with http.get("/api/v1/sinks/hook/dead") as r:
                    assert (await r.json())["dead"] == []
                async with http.post("/api/v1/sinks/hook/replay", headers=auth) as r:
                    assert r.status == 409  # nothing to resume: no dead letter, not disabled

                async with http.get("/metrics") as r:
                    text = await r.text()
                families = {f.name: f for f in text_string_to_metric_families(text)}
                deliveries = {
                    s.labels["outcome"]: s.value
                    for s in families["scanhub_sink_deliveries"].samples
                    if s.name.endswith("_total")
                }
                assert deliveries["delivered"] == 3 and deliveries["refused"] == 2
                assert deliveries["dead"] == 1 and deliveries["gone"] == 0
                (lag,) = families["scanhub_sink_lag_events"].samples
                assert lag.labels == {"sink": "hook"} and lag.value == 0
                (up,) = families["scanhub_sink_up"].samples
                assert up.value == 1
        finally:
            await svc.stop()


async def start_serve(cfg: Path, state: str, env: dict[str, str]) -> tuple[Any, str]:
    import os
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanhub",
        "serve",
        "-c",
        str(cfg),
        "--state",
        state,
        "--port",
        "0",
        "--lease-seconds",
        "1",
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "SCANHUB_NO_PLUGINS": "1", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("scanhub serve: http://"), line
    return proc, line.split()[2]


async def sink_shown(url: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v1/sinks") as r:
        (shown,) = (await r.json())["sinks"]
        return dict(shown)


async def test_sigkill_mid_backlog_then_restart_delivers_everything_at_least_once(
    tmp_path: Path,
) -> None:
    import signal

    db = tmp_path / "state.db"
    env = {"OPS_SECRET": SECRET, "IQ_PASSWORD": "pw"}
    async with receiving([SECRET]) as rx:
        rx.delay = 0.02  # a backlog builds up
        cfg = sink_config(
            tmp_path,
            f'[[sink]]\nname = "ops"\nurl = "{rx.url}"\nsecret_env = "OPS_SECRET"\n'
            "allow_private = true\n",
        )
        proc, url = await start_serve(cfg, str(db), env)
        try:
            await until(lambda: sink_shown(url), every=0.1)
            await until(lambda: _cursor_set(url), every=0.1)
            async with SQLiteStore(db) as writer:  # another process commits 150 transitions
                for n in range(50):
                    await writer.commit(
                        [
                            seen(scan(f"s{n}", lc), step)
                            for step, lc in enumerate(
                                (Lifecycle.QUEUED, Lifecycle.RUNNING, Lifecycle.SUCCEEDED)
                            )
                        ]
                    )
            await rx.wait_for(40)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            before = rx.ids()
            assert len(before) < 150  # killed mid-backlog
            proc, url = await start_serve(cfg, str(db), env)
            await until(lambda: set(rx.ids()) >= set(range(1, 151)), within=60)
            await until(lambda: _cursor_is(url, 150), every=0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.communicate(), 15)
    ids = rx.ids()
    assert all(r["verified"] == SECRET for r in rx.requests)
    first = list(dict.fromkeys(ids))
    assert first == list(range(1, 151))  # every one, first seen in id order
    repeated = [i for i in ids[len(before) :] if i in before]
    # Only the last few: what was delivered since the cursor was last written (every 0.25 s).
    assert all(i >= max(before) - 30 for i in repeated)
    async with SQLiteStore(db) as reader:
        (st,) = await reader.sinks.states(["ops"])
    assert st.position == 150 and st.delivered >= 150 - len(before)


async def _cursor_set(url: str) -> bool:
    return (await sink_shown(url))["cursor"] is not None


async def _cursor_is(url: str, n: int) -> bool:
    return (await sink_shown(url))["cursor"] == n


async def test_two_replicas_on_postgresql_one_delivers_and_the_other_takes_over(
    pg_cluster: str,
) -> None:
    import uuid

    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    url = await fresh_database(pg_cluster, f"sinks_{uuid.uuid4().hex[:8]}")
    async with receiving([SECRET]) as rx:
        rx.delay = 0.02
        hubs = [
            ScanHub(store=PostgresStore(url, holder=name), sinks=[hook(rx)], lease_ttl=1.0)
            for name in ("a", "b")
        ]
        writer = PostgresStore(url)
        await writer.open()
        stops = [asyncio.Event() for _ in hubs]

        async def replica(hub: ScanHub, stop: asyncio.Event) -> None:
            async with hub.polling():
                await stop.wait()

        runs = [asyncio.create_task(replica(h, s)) for h, s in zip(hubs, stops, strict=True)]
        try:
            await until(lambda: any(h.sinks.delivering_here("hook") for h in hubs))
            await until(lambda: any("hook" in h.sinks.states for h in hubs))
            holder = next(h for h in hubs if h.sinks.delivering_here("hook"))
            other = next(h for h in hubs if h is not holder)
            for n in range(30):
                await writer.commit([seen(scan(f"s{n}"))])
            await rx.wait_for(10)
            assert not other.sinks.delivering_here("hook")  # one replica delivers at a time
            await holder.runner.stop_polling()  # it dies mid-backlog (its lease is not given up)
            await until(lambda: other.sinks.delivering_here("hook"), within=10)
            await until(lambda: set(rx.ids()) >= set(range(1, 31)), within=30)
            await until(lambda: other.sinks.states["hook"].position == 30)
        finally:
            for stop in stops:
                stop.set()
            await asyncio.gather(*runs, return_exceptions=True)
            for h in hubs:
                await h.close()
            await writer.close()
    ids = rx.ids()
    assert list(dict.fromkeys(ids)) == list(range(1, 31))  # nothing lost, in order
    assert len(ids) - 30 <= 15  # repeats: only what followed the holder's last written cursor
    assert holder.sinks.delivered["hook"] > 0 and other.sinks.delivered["hook"] > 0
    # Every request was one replica's attempt; at most one was cut off by the death (sent, its
    # answer never read).
    both = holder.sinks.delivered["hook"] + other.sinks.delivered["hook"]
    assert len(ids) - 1 <= both <= len(ids)


async def test_a_replica_saves_its_sinks_cursor_when_it_stops_after_its_lease_was_let_go(
    pg_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A polling block's end cancels its parts together, in no set order: the sinks' leases
    part may end first, and it lets go here of the leases it held (the next block renews them
    before delivering). The deliverer, ending after it, saved its cursor only while the lease
    was held here: the deliveries made since its last write were not saved, and the replica
    sent them again when it started again. It saves it however it ends, and the store takes
    it: the database still says this replica holds the sink's lease."""
    import contextlib
    import uuid

    from scanhub.engine import sinks as delivering
    from scanhub.engine.broadcast import Broadcaster
    from scanhub.engine.sinks import Deliverer
    from scanhub.store.postgres import PostgresStore

    from .pg import fresh_database

    # A backlog's cursor is written every FLUSH_EVERY while it drains: never here, so what is
    # saved is what the deliverer saves when it ends.
    monkeypatch.setattr(delivering, "FLUSH_EVERY", float("inf"))

    @contextlib.asynccontextmanager
    async def replica(store: PostgresStore) -> Any:
        broadcaster = Broadcaster(store)
        await broadcaster.start_position()
        sinks = Deliverer(store, broadcaster, [hook(rx)], lease_ttl=30.0)
        parts = [asyncio.ensure_future(sinks.hold_leases())]
        parts.append(asyncio.ensure_future(sinks.run("hook")))
        try:
            yield sinks
        finally:
            for part in parts:  # the leases' part ends first
                part.cancel()
                await asyncio.gather(part, return_exceptions=True)

    url = await fresh_database(pg_cluster, f"sink_stop_{uuid.uuid4().hex[:8]}")
    async with receiving([SECRET]) as rx:
        async with PostgresStore(url, holder="a") as store:
            await store.sinks.open("hook", datetime.now(UTC))  # from the log's start
            await store.commit([seen(scan(n)) for n in "abc"])  # ids 1-3
            rx.answers = [200, 200, "hang"]
            async with replica(store):
                await rx.wait_for(3)  # 1 and 2 delivered, 3 sent (its answer never read)
                (before,) = await store.sinks.states(["hook"])
        async with PostgresStore(url, holder="a") as store:  # the replica started again
            (saved,) = await store.sinks.states(["hook"])
            async with replica(store) as sinks:
                await rx.wait_for(4)
                await until(lambda: sinks.states["hook"].position == 3)
    assert before.position == 0  # nothing was written while delivering
    assert (saved.position, saved.delivered) == (2, 2)
    assert rx.ids() == [1, 2, 3, 3]  # 3 again: it was not delivered; 1 and 2 were
