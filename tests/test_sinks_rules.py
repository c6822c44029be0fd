"""The pure rules of sinks (`scanhub._sinks`), each pinned exactly: a receiver's verification
of a signed delivery, the bytes and headers of a delivery, a Slack message, what an answer
means and what follows a failure, a filter's checks, and what is shown of a sink's URL.
Written from the survivors of a mutation run (TESTING.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from scanhub import Lifecycle, Scan, Vendor
from scanhub._changes import Change
from scanhub._exports import to_cloudevent
from scanhub._sinks import (
    MAX_BODY,
    TEST_EVENT_TYPE,
    Answer,
    BodyTooLarge,
    FilterError,
    Next,
    SignatureError,
    Sink,
    SinkFilter,
    after_failure,
    build,
    build_change,
    classify,
    event_bytes,
    filter_values,
    new_secret,
    probe_event,
    secret_key,
    shown_url,
    sign,
    slack_message,
    verify,
)

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER = "whsec_" + base64.b64encode(b"another key, 32 bytes of it....!").decode()
NOW = 1_700_000_000


def signature(key: bytes, msg_id: str, stamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{stamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(msg_id: str = "log-1", stamp: int = NOW, sig: str | None = None) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sig or "v1," + signature(KEY, msg_id, stamp, b"{}"),
    }


# --- a receiver's verification ----------------------------------------------------------------


def test_verify_accepts_a_delivery_and_names_its_id() -> None:
    assert verify([SECRET], b"{}", headers(), NOW) == "log-1"
    # Header names in any case, as HTTP gives them.
    upper = {k.upper(): v for k, v in headers().items()}
    assert verify([SECRET], b"{}", upper, NOW) == "log-1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_refuses_a_delivery_missing_a_header(missing: str) -> None:
    given = {k: v for k, v in headers().items() if k != missing}
    with pytest.raises(SignatureError) as err:
        verify([SECRET], b"{}", given, NOW)
    assert str(err.value) == "missing webhook-id, webhook-timestamp or webhook-signature"


@pytest.mark.parametrize("stamp", ["-5", "1e9", "²", "1700000000.5", "1" * 13])
def test_verify_refuses_a_timestamp_that_is_not_unix_seconds(stamp: str) -> None:
    given = {**headers(), "webhook-timestamp": stamp}
    with pytest.raises(SignatureError) as err:
        verify([SECRET], b"{}", given, NOW)
    assert str(err.value) == "webhook-timestamp is not Unix seconds"


def test_verify_takes_a_timestamp_within_the_tolerance_either_way() -> None:
    for now in (NOW - 300, NOW + 300):  # the default tolerance, five minutes, inclusive
        assert verify([SECRET], b"{}", headers(), now) == "log-1"
    for now in (NOW - 301, NOW + 301):
        with pytest.raises(SignatureError) as err:
            verify([SECRET], b"{}", headers(), now)
        assert str(err.value) == "webhook-timestamp is too old or too new"
    assert verify([SECRET], b"{}", headers(), NOW + 10, tolerance=10) == "log-1"
    with pytest.raises(SignatureError):
        verify([SECRET], b"{}", headers(), NOW + 11, tolerance=10)
    # Twelve digits are read as seconds (and are too far from now), not refused as text.
    twelve = headers(stamp=100_000_000_000)
    with pytest.raises(SignatureError, match="too old or too new"):
        verify([SECRET], b"{}", twelve, NOW)


def test_verify_refuses_a_wrong_body_id_time_or_version() -> None:
    with pytest.raises(SignatureError) as err:
        verify([SECRET], b"{ }", headers(), NOW)
    assert str(err.value) == "no signature matches"
    with pytest.raises(SignatureError):
        verify([SECRET], b"{}", {**headers(), "webhook-id": "log-2"}, NOW)
    with pytest.raises(SignatureError):
        verify([SECRET], b"{}", {**headers(), "webhook-timestamp": str(NOW + 1)}, NOW)
    v2 = "v2," + signature(KEY, "log-1", NOW, b"{}")
    with pytest.raises(SignatureError):
        verify([SECRET], b"{}", headers(sig=v2), NOW)
    with pytest.raises(SignatureError):
        verify([OTHER], b"{}", headers(), NOW)


def test_verify_takes_any_listed_signature_by_any_key() -> None:
    """A rotation: the sender signs with each of its keys (space-separated), a receiver holds
    any of them."""
    mine = "v1," + signature(KEY, "log-1", NOW, b"{}")
    listed = f"v2,abc v1,{base64.b64encode(b'x' * 32).decode()} {mine}"
    assert verify([SECRET], b"{}", headers(sig=listed), NOW) == "log-1"
    assert verify([OTHER, SECRET], b"{}", headers(), NOW) == "log-1"
    both = sign([OTHER, SECRET], "log-1", NOW, b"{}")
    assert both.count(" ") == 1 and both.split(" ")[1] == mine
    assert verify([SECRET], b"{}", headers(sig=both), NOW) == "log-1"
    assert verify([OTHER], b"{}", headers(sig=both), NOW) == "log-1"


def test_a_secret_is_whsec_base64_of_16_bytes_or_more() -> None:
    assert secret_key(SECRET) == KEY
    sixteen = "whsec_" + base64.b64encode(b"x" * 16).decode()
    assert secret_key(sixteen) == b"x" * 16
    for bad, why in [
        (base64.b64encode(KEY).decode(), "expected a secret of the form whsec_<base64>"),
        ("whsec_not base64!", "expected a secret of the form whsec_<base64> (bad base64)"),
        (
            "whsec_" + base64.b64encode(b"x" * 15).decode(),
            "expected a secret of at least 16 bytes (whsec_ + 24 base64 characters)",
        ),
    ]:
        with pytest.raises(ValueError, match=r"^expected a secret") as err:
            secret_key(bad)
        assert str(err.value) == why
    fresh = new_secret()
    assert fresh.startswith("whsec_") and len(secret_key(fresh)) == 32
    assert new_secret() != fresh


# --- a delivery's bytes and headers ----------------------------------------------------------


def scan_change(**kw: Any) -> Change:
    before = Scan(Vendor.APPSECPLUS, "asp", "s1", "app-1", Lifecycle.RUNNING, "running")
    after = Scan(
        Vendor.APPSECPLUS,
        "asp",
        "s1",
        "app-1",
        kw.pop("lifecycle", Lifecycle.FAILED),
        kw.pop("vendor_status", "failed"),
        **kw,
    )
    return Change(before, after, datetime(2026, 11, 30, 12, tzinfo=UTC), 41)


def test_a_structured_delivery_is_the_cloudevent_signed() -> None:
    sink = Sink.webhook("hook", "https://h.example/in", SECRET)
    change = scan_change()
    d = build_change(sink, change, NOW, "9.9", log="abcd")
    event = to_cloudevent(change, "abcd")
    assert json.loads(d.body) == event
    assert d.body == event_bytes(event)
    assert d.headers == {
        "user-agent": "scanhub/9.9",
        "content-type": "application/cloudevents+json; charset=utf-8",
        "webhook-id": "abcd-41",
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + signature(KEY, "abcd-41", NOW, d.body),
    }
    assert verify([SECRET], d.body, d.headers, NOW) == "abcd-41"
    unsigned = build(Sink.webhook("plain", "https://h.example/in"), event, NOW, "9.9")
    assert "webhook-signature" not in unsigned.headers and unsigned.body == d.body


def test_a_binary_delivery_carries_the_attributes_as_headers() -> None:
    sink = Sink.webhook("hook", "https://h.example/in", SECRET, mode="binary")
    event = {**to_cloudevent(scan_change(), "abcd"), "dataschema": None}
    d = build(sink, event, NOW, "9.9")
    assert json.loads(d.body) == event["data"]
    assert b" " not in d.body.replace(b"failed ", b"")  # compact
    assert d.headers["content-type"] == "application/json"
    for attr in ("specversion", "id", "source", "type", "subject", "time"):
        assert d.headers[f"ce-{attr}"] == str(event[attr])
    assert "ce-data" not in d.headers and "ce-datacontenttype" not in d.headers
    assert "ce-dataschema" not in d.headers  # a None attribute is left out
    assert verify([SECRET], d.body, d.headers, NOW) == "abcd-41"


def test_a_body_over_the_sinks_cap_is_refused_naming_both_sizes() -> None:
    event = to_cloudevent(scan_change(), "abcd")
    size = len(event_bytes(event))
    at_cap = Sink.webhook("hook", "https://h.example/in", max_body=size)
    assert build(at_cap, event, NOW, "1").body == event_bytes(event)
    over = Sink.webhook("hook", "https://h.example/in", max_body=size - 1)
    with pytest.raises(BodyTooLarge) as err:
        build(over, event, NOW, "1")
    assert str(err.value) == f"the body is {size} bytes, over the sink's max_body {size - 1}"
    assert Sink.webhook("hook", "https://h.example/in").max_body == MAX_BODY


def test_the_probe_event_of_sinks_test() -> None:
    at = datetime(2026, 11, 30, 13, 0, 5, tzinfo=UTC)
    assert probe_event("ops", at, "m-1") == {
        "specversion": "1.0",
        "id": "m-1",
        "source": "/scanhub/sinks/ops",
        "type": TEST_EVENT_TYPE,
        "subject": "ops",
        "time": "2026-11-30T13:00:05Z",
        "datacontenttype": "application/json",
        "data": {"message": "a test delivery from scanhub's sink 'ops'"},
    }
    assert event_bytes({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'.encode()


# --- a Slack message ---------------------------------------------------------------------------


def test_a_slack_message_of_a_change_in_full() -> None:
    change = scan_change(
        message="2 critical findings",
        links={"report_html": "https://asp.example/r/1", "self": "https://asp.example/s/1"},
    )
    message = slack_message(to_cloudevent(change, "abcd"))
    text = "scan app-1/s1 (appsecplus/asp): running → failed, verdict none"
    assert message == {
        "text": f":x: {text}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":x: *{text}*"}},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "vendor status: failed — 2 critical findings"}
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "<https://asp.example/r/1|report_html> · <https://asp.example/s/1|self>",
                },
            },
        ],
    }


@pytest.mark.parametrize(
    ("lifecycle", "verdict", "emoji"),
    [
        ("failed", "none", ":x:"),
        ("cancelled", "none", ":heavy_minus_sign:"),
        ("expired", "none", ":hourglass:"),
        ("running", "none", ":arrows_counterclockwise:"),
        ("queued", "none", ":inbox_tray:"),
        ("succeeded", "pass", ":white_check_mark:"),
        ("succeeded", "warn", ":white_check_mark:"),
        ("succeeded", "fail", ":no_entry:"),
        ("succeeded", "error", ":no_entry:"),
        ("unknown", "none", ":grey_question:"),
    ],
)
def test_a_slack_message_says_the_outcome_by_its_emoji(
    lifecycle: str, verdict: str, emoji: str
) -> None:
    data = {"lifecycle": lifecycle, "verdict": verdict}
    message = slack_message({"type": "io.scanhub.scan.changed", "data": data})
    text = f"item / (/): new → {lifecycle}, verdict {verdict}"
    assert message == {
        "text": f"{emoji} {text}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} *{text}*"}}],
    }


def test_a_slack_message_with_nothing_known() -> None:
    assert slack_message({"data": None})["text"] == (
        ":grey_question: item / (/): new → unknown, verdict none"
    )


def test_a_slack_message_shows_only_plain_http_links() -> None:
    links = {
        "ok": "http://h.example/a",
        "pipe": "https://h.example/a|b",
        "angle": "https://h.example/a>b",
        "space": "https://h.example/a b",
        "js": "javascript:alert(1)",
        "ftp": "ftp://h.example/a",
        "none": None,
        "<b>": "https://h.example/b",
    }
    message = slack_message({"data": {"lifecycle": "queued", "links": links}})
    (last,) = [b for b in message["blocks"][1:] if b["type"] == "section"]
    assert last["text"]["text"] == "<http://h.example/a|ok> · <https://h.example/b|&lt;b&gt;>"
    assert len(message["blocks"]) == 2  # no details: no context block
    nothing = slack_message({"data": {"links": {"js": "javascript:x"}}})
    assert len(nothing["blocks"]) == 1


def test_a_slack_message_of_the_test_event() -> None:
    event = probe_event("ops & <team>", datetime(2026, 11, 30, tzinfo=UTC), "m")
    text = "scanhub: a test delivery from scanhub's sink 'ops &amp; &lt;team&gt;'"
    assert slack_message(event) == {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
    assert slack_message({"type": TEST_EVENT_TYPE})["text"] == "scanhub: test"


def test_a_slack_delivery_is_the_message_as_json() -> None:
    sink = Sink.webhook("slack", "https://hooks.slack.example/T/B/x", kind="slack")
    event = to_cloudevent(scan_change(), "abcd")
    d = build(sink, event, NOW, "1")
    assert json.loads(d.body) == slack_message(event)
    assert d.headers["content-type"] == "application/json"
    assert "→" in d.body.decode()  # UTF-8, not escaped


# --- answers and what follows a failure -----------------------------------------------------


def test_what_each_answer_means() -> None:
    expected = {
        None: Answer.FAILED,
        199: Answer.FAILED,
        200: Answer.DELIVERED,
        204: Answer.DELIVERED,
        299: Answer.DELIVERED,
        300: Answer.REFUSED,
        301: Answer.REFUSED,
        400: Answer.REFUSED,
        404: Answer.REFUSED,
        409: Answer.REFUSED,
        410: Answer.GONE,
        429: Answer.THROTTLED,
        499: Answer.REFUSED,
        500: Answer.FAILED,
        502: Answer.THROTTLED,
        503: Answer.FAILED,
        504: Answer.THROTTLED,
        599: Answer.FAILED,
    }
    assert {status: classify(status) for status in expected} == expected


def test_after_a_failure_the_schedule_the_receivers_wish_and_the_ends() -> None:
    sink = Sink.webhook(
        "hook",
        "https://h.example/in",
        schedule=(10.0, 100.0),
        max_age=1000.0,
        max_client_errors=2,
        max_retry_after=50.0,
    )
    rng = random.Random(7)
    first = after_failure(sink, Answer.FAILED, 1, 0.0, None, rng)
    assert first.action == "retry" and 8.0 <= first.delay <= 12.0  # ±20 %
    second = after_failure(sink, Answer.FAILED, 2, 0.0, None, rng)
    assert second.action == "retry" and 80.0 <= second.delay <= 120.0
    assert after_failure(sink, Answer.FAILED, 3, 0.0, None, rng) == Next(
        "dead", reason="the retry schedule ran out after 3 attempts"
    )
    # A receiver's Retry-After replaces the schedule's delay, within [0, max_retry_after].
    assert after_failure(sink, Answer.THROTTLED, 1, 0.0, 30.0, rng) == Next("retry", 30.0)
    assert after_failure(sink, Answer.THROTTLED, 1, 0.0, 500.0, rng) == Next("retry", 50.0)
    assert after_failure(sink, Answer.THROTTLED, 1, 0.0, -5.0, rng) == Next("retry", 0.0)
    nan = after_failure(sink, Answer.THROTTLED, 1, 0.0, float("nan"), rng)
    assert nan.action == "retry" and 8.0 <= nan.delay <= 12.0
    # Past the sink's max_age (the next attempt's time counts), the delivery is dead.
    assert after_failure(sink, Answer.FAILED, 1, 970.0, 30.0, rng) == Next("retry", 30.0)
    assert after_failure(sink, Answer.FAILED, 1, 971.0, 30.0, rng) == Next(
        "dead", reason="older than the sink's max_age (1000 s)"
    )
    # Refused: a few attempts only; gone: the sink is disabled.
    assert after_failure(sink, Answer.REFUSED, 1, 0.0, None, rng).action == "retry"
    assert after_failure(sink, Answer.REFUSED, 2, 0.0, None, rng) == Next(
        "dead", reason="refused 2 times"
    )
    assert after_failure(sink, Answer.GONE, 1, 0.0, None, rng) == Next(
        "disable", reason="the receiver answered 410 Gone"
    )


# --- filters ------------------------------------------------------------------------------------


def test_what_a_filter_matches_of_a_change() -> None:
    change = scan_change(application_name="Web Shop")
    assert filter_values(change) == {
        "vendor": ("appsecplus",),
        "source": ("asp",),
        "kind": ("scan",),
        "lifecycle": ("failed",),
        "previous_lifecycle": ("running",),
        "verdict": ("none",),
        "previous_verdict": ("none",),
        "application": ("app-1", "Web Shop"),
        "subject": (change.after.key,),
        "type": ("io.scanhub.scan.changed",),
    }
    first = Change(None, change.after, change.observed_at, 1)
    values = filter_values(first)
    assert values["previous_lifecycle"] == () and values["previous_verdict"] == ()


def test_a_filter_names_every_problem_where_it_is() -> None:
    with pytest.raises(FilterError) as err:
        SinkFilter.parse(
            [
                {"exact": {"lifecycle": "done", "colour": "red", "source": ""}},
                {"any": []},
                {"not": {"prefix": {}}},
                {"all": [{"suffix": {"vendor": 3}}, {"nope": {}}]},
                {"exact": {"vendor": "x"}, "any": []},
                "x" * 80,
            ]
        )
    assert err.value.problems == [
        (
            "[0].exact.lifecycle",
            "expected one of queued, running, succeeded, failed, cancelled, expired, unknown,"
            " got 'done'",
        ),
        (
            "[0].exact.colour",
            "unknown attribute (expected one of vendor, source, kind, lifecycle,"
            " previous_lifecycle, verdict, previous_verdict, application, subject, type)",
        ),
        ("[0].exact.source", "expected a non-empty string, got ''"),
        ("[1].any", "expected a non-empty array of filters"),
        ("[2].not.prefix", "expected a table of attribute = value"),
        ("[3].all[0].suffix.vendor", "expected a non-empty string, got 3"),
        (
            "[3].all[1]",
            "unknown filter 'nope' (expected one of exact, prefix, suffix, all, any, not)",
        ),
        (
            "[4]",
            "expected a table with one of exact, prefix, suffix, all, any, not,"
            " got {'exact': {'vendor': 'x'}, 'any': []}",
        ),
        (
            "[5]",
            "expected a table with one of exact, prefix, suffix, all, any, not, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…",
        ),
    ]
    assert str(err.value).startswith("[0].exact.lifecycle: expected one of queued")
    # One filter (not an array) names no index; a prefix may name any value.
    with pytest.raises(FilterError) as one:
        SinkFilter.parse({"exact": {"kind": "build"}})
    assert one.value.problems == [(".exact.kind", "expected one of scan, promotion, got 'build'")]
    assert SinkFilter.parse({"prefix": {"lifecycle": "fail"}}).matches(scan_change())


# --- what is shown of a sink's URL -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com"),
        ("http://h.example:8080/x?token=t", "http://h.example:8080"),
        ("https://user:pw@h.example/x", "https://h.example"),
        ("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443"),
        ("https://[2001:db8::1]/x", "https://[2001:db8::1]"),
        ("https://h.example:99999/x", "(invalid URL)"),
        ("https://[::1/x", "(invalid URL)"),
    ],
)
def test_only_the_scheme_host_and_port_of_a_sink_url_are_shown(url: str, shown: str) -> None:
    assert shown_url(url) == shown


# --- the CloudEvent of a change ----------------------------------------------------------------


def test_the_cloudevent_of_a_change_in_full() -> None:
    import uuid

    from scanhub import Promotion, Verdict
    from scanhub._exports import event_id, event_source

    change = scan_change(message="m", raw={"secret": "kept out"})
    event = to_cloudevent(change, "abcd")
    assert event == {
        "specversion": "1.0",
        "id": "abcd-41",
        "source": "/scanhub/appsecplus/asp",
        "type": "io.scanhub.scan.changed",
        "subject": "appsecplus:asp:scan:app-1:s1",
        "time": "2026-11-30T12:00:00.000000Z",
        "datacontenttype": "application/json",
        "data": {
            "vendor": "appsecplus",
            "source": "asp",
            "id": "s1",
            "application_id": "app-1",
            "lifecycle": "failed",
            "vendor_status": "failed",
            "verdict": "none",
            "message": "m",
            "links": {},
            "created_at": None,
            "started_at": None,
            "finished_at": None,
            "updated_at": None,
            "application_name": None,
            "scan_type": None,
            "triggered_by": None,
            "findings": None,
            "final_scan_id": None,
            "kind": "scan",
            "key": "appsecplus:asp:scan:app-1:s1",
            "previous_lifecycle": "running",
            "previous_verdict": "none",
        },
    }
    assert to_cloudevent(change)["id"] == "41"  # no log: the transition id alone
    assert event_id("abcd", 41) == "abcd-41"
    first = to_cloudevent(Change(None, change.after, change.observed_at, None), "abcd")
    assert first["data"]["previous_lifecycle"] is None
    assert first["data"]["previous_verdict"] is None
    assert uuid.UUID(first["id"]).version == 4  # recorded by no store: a fresh id
    promo = Promotion(Vendor.APPTRUST, "a/b c", "p1", "app", Lifecycle.SUCCEEDED, "done")
    promoted = to_cloudevent(Change(None, promo, change.observed_at, 7), "abcd")
    assert promoted["type"] == "io.scanhub.promotion.changed"
    assert promoted["source"] == event_source(promo) == "/scanhub/apptrust/a%2Fb%20c"
    assert promoted["data"]["verdict"] == Verdict.NONE.value


# --- from the second run's survivors -------------------------------------------------------------


def test_a_filter_error_joins_its_problems() -> None:
    assert str(FilterError([("[0].any", "x"), ("", "y")])) == "[0].any: x; y"
    # Every attribute is checked, after an unknown one too.
    with pytest.raises(FilterError) as err:
        SinkFilter.parse({"exact": {"colour": "red", "lifecycle": "done"}})
    assert [p for p, _ in err.value.problems] == [".exact.colour", ".exact.lifecycle"]
    # A value is shown whole up to 60 characters of its repr, then cut.
    whole, cut = "x" * 58, "x" * 59  # reprs of 60 and 61 characters
    with pytest.raises(FilterError) as shown:
        SinkFilter.parse([whole, cut])
    assert [m.rsplit("got ", 1)[1] for _, m in shown.value.problems] == [
        repr(whole),
        repr(cut)[:59] + "…",
    ]


def test_delivery_bodies_are_compact_utf8_json() -> None:
    event = to_cloudevent(scan_change(message="café ready"), "abcd")
    slack = build(Sink.webhook("s", "https://h.example/x", kind="slack"), event, NOW, "1")
    assert (
        slack.body
        == json.dumps(slack_message(event), separators=(",", ":"), ensure_ascii=False).encode()
    )
    binary = build(Sink.webhook("b", "https://h.example/x", mode="binary"), event, NOW, "1")
    assert (
        binary.body == json.dumps(event["data"], separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert "café".encode() in binary.body


def test_the_probe_event_time_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        at = datetime(2026, 11, 30, 13, 0, 5, tzinfo=UTC)
        assert probe_event("ops", at, "m")["time"] == "2026-11-30T13:00:05Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_slack_texts_are_capped_exactly() -> None:
    from scanhub._sinks import _SLACK_TEXT

    def details(message: str) -> str:
        data = {"lifecycle": "failed", "message": message}
        return str(slack_message({"data": data})["blocks"][1]["elements"][0]["text"])

    assert details("a" * _SLACK_TEXT) == "a" * _SLACK_TEXT  # at the cap: whole
    assert details("a" * 5000) == "a" * (_SLACK_TEXT - 1) + "…"
    # An entity is never cut in two, and a whole one before the cut stays.
    assert details("&" + "a" * 5000) == "&amp;" + "a" * (_SLACK_TEXT - 6) + "…"
    assert details("a" * 2897 + "&b") == "a" * 2897 + "…"  # "&am" would be cut
    links = {f"link-{i:03d}": f"https://h.example/{'p' * 30}/{i}" for i in range(100)}
    shown = slack_message({"data": {"links": links}})["blocks"][1]["text"]["text"]
    assert len(shown) == _SLACK_TEXT and shown.endswith("…")
    assert shown[:-1] == " · ".join(f"<{u}|{n}>" for n, u in links.items())[: _SLACK_TEXT - 1]


def test_the_retry_delay_is_the_schedules_spread_by_the_jitter() -> None:
    sink = Sink.webhook("hook", "https://h.example/in", schedule=(10.0,))
    got = after_failure(sink, Answer.FAILED, 1, 0.0, None, random.Random(3))
    assert got == Next("retry", 10.0 * random.Random(3).uniform(0.8, 1.2))
    low = after_failure(sink, Answer.FAILED, 1, 0.0, None, random.Random(0))
    high = [after_failure(sink, Answer.FAILED, 1, 0.0, None, random.Random(s)) for s in range(50)]
    assert {round(n.delay, 6) for n in high} != {round(low.delay, 6)}  # spread, not fixed
    assert min(n.delay for n in high) < 9.0 and max(n.delay for n in high) > 11.0


def test_where_a_sink_may_not_send_is_named_exactly() -> None:
    from scanhub._sinks import forbidden_address, forbidden_host

    assert forbidden_address("fe80::1%eth0%x") == "fe80::1 is a link-local address"
    assert forbidden_address("224.0.0.1") == "224.0.0.1 is a multicast address"
    assert forbidden_address("ff02::1") == "ff02::1 is a multicast address"
    assert forbidden_host("") == "the URL names no host"
    assert forbidden_host("LOCALHOST.") == "LOCALHOST. is a loopback name"
    assert forbidden_host("localhost.") == "localhost. is a loopback name"
    assert forbidden_host("app.localhost") == "app.localhost is a loopback name"
    assert forbidden_host("[::1]") == "::1 is a loopback address"
    assert forbidden_host("127.0.0.1") == "127.0.0.1 is a loopback address"
    assert forbidden_host("127.1") == "127.1 (127.0.0.1 is a loopback address)"
    assert forbidden_host("8.8.8.8") is None and forbidden_host("example.com") is None


# --- from the third run's survivors ----------------------------------------------------------------


def test_every_value_of_a_filter_is_checked_after_an_empty_one() -> None:
    with pytest.raises(FilterError) as err:
        SinkFilter.parse({"exact": {"source": "", "lifecycle": "done"}})
    assert [p for p, _ in err.value.problems] == [".exact.source", ".exact.lifecycle"]


def test_a_secret_with_characters_outside_base64_is_refused() -> None:
    # Decoded leniently, the stray character would be dropped and the key taken.
    with pytest.raises(ValueError, match=r"\(bad base64\)$"):
        secret_key(SECRET[:10] + "!" + SECRET[10:])


def test_a_binary_delivery_names_the_events_content_type() -> None:
    sink = Sink.webhook("b", "https://h.example/x", mode="binary")
    event = {"specversion": "1.0", "id": "1", "datacontenttype": "application/vnd.x+json"}
    assert build(sink, {**event, "data": {}}, NOW, "1").headers["content-type"] == (
        "application/vnd.x+json"
    )
    plain = {k: v for k, v in event.items() if k != "datacontenttype"}
    assert build(sink, plain, NOW, "1").headers["content-type"] == "application/json"


def test_a_structured_delivery_sends_the_encoded_event_it_is_given() -> None:
    """The caller's encoding (`cloudevent_json`, the one every reader of a transition gets) is
    what is sent and signed, not a second encoding of the event."""
    sink = Sink.webhook("hook", "https://h.example/in", SECRET)
    d = build(sink, {"id": "x-1"}, NOW, "1", encoded=b'{"id":"x-1","given":true}')
    assert d.body == b'{"id":"x-1","given":true}'
    assert verify([SECRET], d.body, d.headers, NOW) == "x-1"


def test_what_is_shown_of_a_url_with_no_host() -> None:
    assert shown_url("file:///etc/passwd") == "file://"


def test_links_at_slacks_length_are_shown_whole() -> None:
    from scanhub._sinks import _SLACK_TEXT

    url = "https://h.example/" + "p" * (_SLACK_TEXT - 4 - len("https://h.example/"))
    shown = slack_message({"data": {"links": {"n": url}}})["blocks"][1]["text"]["text"]
    assert shown == f"<{url}|n>" and len(shown) == _SLACK_TEXT
