"""The canonical model and its serialisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import scanhub
from scanhub import (
    FindingCounts,
    Gate,
    GateKind,
    Lifecycle,
    Promotion,
    Scan,
    Vendor,
    Verdict,
    from_dict,
    from_json,
    item_from_dict,
    to_dict,
    to_json,
)


def test_lifecycle_properties() -> None:
    assert {lc for lc in Lifecycle if lc.is_terminal} == {
        Lifecycle.SUCCEEDED,
        Lifecycle.FAILED,
        Lifecycle.CANCELLED,
        Lifecycle.EXPIRED,
    }
    assert {lc for lc in Lifecycle if lc.is_active} == {Lifecycle.QUEUED, Lifecycle.RUNNING}
    assert not Lifecycle.UNKNOWN.is_terminal and not Lifecycle.UNKNOWN.is_active
    assert [lc.value for lc in Lifecycle] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "expired",
        "unknown",
    ]


def test_verdict_worst_of() -> None:
    assert Verdict.worst([]) is Verdict.NONE
    assert Verdict.worst([Verdict.PASS, Verdict.WARN]) is Verdict.WARN
    assert Verdict.worst([Verdict.ERROR, Verdict.PASS]) is Verdict.ERROR
    assert Verdict.worst([Verdict.ERROR, Verdict.FAIL, Verdict.WARN]) is Verdict.FAIL
    assert Verdict.worst([Verdict.NONE, Verdict.PASS]) is Verdict.PASS
    assert {v for v in Verdict if v.blocks} == {Verdict.FAIL, Verdict.ERROR}
    assert [v.value for v in Verdict] == ["pass", "warn", "fail", "error", "none"]
    assert [v.value for v in Vendor] == ["iq", "threadfix", "appsecplus", "apptrust"]


def test_keys_differ_across_sources_and_survive_colons() -> None:
    a = Scan(Vendor.IQ, "prod", "1", "app", Lifecycle.QUEUED, "")
    b = Scan(Vendor.IQ, "staging", "1", "app", Lifecycle.QUEUED, "")
    c = Scan(Vendor.IQ, "prod:1", "app", "x", Lifecycle.QUEUED, "")
    assert len({a.key, b.key, c.key}) == 3
    p = Promotion(Vendor.APPTRUST, "jf", "1", "app", Lifecycle.QUEUED, "", version="1.0")
    q = Promotion(Vendor.APPTRUST, "jf", "1", "app", Lifecycle.QUEUED, "", version="2.0")
    assert p.key != q.key


def test_raw_excluded_from_equality_and_repr() -> None:
    a = Scan(Vendor.IQ, "s", "1", "a", Lifecycle.QUEUED, "", raw={"x": 1})
    b = Scan(Vendor.IQ, "s", "1", "a", Lifecycle.QUEUED, "", raw={"x": 2})
    assert a == b and "raw" not in repr(a)
    assert hash(a) == hash(b)


def test_to_dict_is_json_native_with_kind_and_key() -> None:
    p = Promotion(
        Vendor.APPTRUST,
        "jf",
        "1684478876518",
        "my-app",
        Lifecycle.FAILED,
        "FAILED",
        verdict=Verdict.FAIL,
        created_at=datetime(2023, 5, 19, 6, 47, 56, 518000, tzinfo=UTC),
        gates=(Gate(GateKind.ENTRY, Verdict.FAIL, stage="PROD"),),
        version="1.0.0",
    )
    d = to_dict(p)
    assert json.loads(json.dumps(d)) == d
    assert d["vendor"] == "apptrust" and d["lifecycle"] == "failed" and d["verdict"] == "fail"
    assert d["created_at"] == "2023-05-19T06:47:56.518000Z"
    assert d["gates"] == [
        {
            "kind": "entry",
            "verdict": "fail",
            "stage": "PROD",
            "evaluation_id": None,
            "explanation": None,
            "vendor_decision": None,
        }
    ]
    assert d["kind"] == "promotion" and d["key"] == p.key
    assert from_json(Promotion, to_json(p)) == p
    assert item_from_dict(d) == p
    with pytest.raises(ValueError, match="kind"):
        item_from_dict({"kind": "nope"})


def test_non_utc_datetimes_come_back_as_utc() -> None:
    local = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    s = Scan(Vendor.IQ, "s", "1", "a", Lifecycle.QUEUED, "", created_at=local)
    back = from_dict(Scan, to_dict(s))
    assert back.created_at == local and back.created_at is not None
    assert back.created_at.tzinfo == UTC


_text = st.text(max_size=12)
_opt_text = st.none() | _text
_dt = st.none() | st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
_links = st.dictionaries(_text, _text, max_size=3)
_counts = st.none() | st.builds(FindingCounts, *(st.integers(0, 10**6) for _ in range(5)))
_gate = st.builds(
    Gate,
    st.sampled_from(GateKind),
    st.sampled_from(Verdict),
    _opt_text,
    _opt_text,
    _opt_text,
    _opt_text,
)
_common = {
    "vendor": st.sampled_from(Vendor),
    "source": _text,
    "id": _text,
    "application_id": _text,
    "lifecycle": st.sampled_from(Lifecycle),
    "vendor_status": _text,
    "verdict": st.sampled_from(Verdict),
    "message": _opt_text,
    "links": _links,
    "created_at": _dt,
    "started_at": _dt,
    "finished_at": _dt,
    "updated_at": _dt,
    "application_name": _opt_text,
}
scans = st.builds(
    Scan,
    **_common,
    scan_type=_opt_text,
    triggered_by=_opt_text,
    findings=_counts,
    final_scan_id=_opt_text,
)
promotions = st.builds(
    Promotion,
    **_common,
    version=_opt_text,
    source_stage=_opt_text,
    target_stage=_opt_text,
    promoted_by=_opt_text,
    gates=st.lists(_gate, max_size=3).map(tuple),
    scan_id=_opt_text,
)


@given(scans)
def test_scan_round_trip(scan: Scan) -> None:
    d = to_dict(scan)
    back = from_dict(Scan, json.loads(json.dumps(d)))
    assert back == scan and back.key == scan.key


@given(promotions)
def test_promotion_round_trip(promo: Promotion) -> None:
    d = to_dict(promo)
    back = from_dict(Promotion, json.loads(json.dumps(d)))
    assert back == promo and back.key == promo.key


def test_public_names_are_exported() -> None:
    for name in scanhub.__all__:
        assert getattr(scanhub, name) is not None
    for name in (
        "Lifecycle",
        "Verdict",
        "Vendor",
        "FindingCounts",
        "Gate",
        "Scan",
        "Promotion",
        "IQServer",
        "ThreadFix",
        "AppSecPlus",
        "AppTrust",
        "ScanhubError",
        "to_dict",
        "from_dict",
    ):
        assert name in scanhub.__all__


@given(scans | promotions)
def test_the_stores_form_reads_back_equal_and_agrees_with_to_dict(item: Scan | Promotion) -> None:
    """Stores encode and decode items field by field (faster than cattrs); the result is the
    same item, and the same fields `to_dict` gives, less the payload, the key and what is
    empty."""
    from scanhub._convert import item_from_stored, item_to_stored
    from scanhub.store import item_json

    stored = item_to_stored(item)
    back = item_from_stored(json.loads(item_json(item)))
    assert back == item and back.key == item.key and back.raw is None
    assert item_from_stored(to_dict(item)) == item  # the full form reads too
    full = to_dict(item)
    expected = {k for k, v in full.items() if k not in ("raw", "key") and v not in (None, {}, [])}
    assert set(stored) == expected
    for key in expected - {"gates"}:
        assert stored[key] == full[key], key


@given(scans | promotions)
def test_to_dict_of_an_item_is_the_converters_answer(item: Scan | Promotion) -> None:
    from scanhub._convert import converter

    expected = converter.unstructure(item)
    expected["kind"], expected["key"] = item.kind, item.key
    got = to_dict(item)
    assert got == expected and list(got) == list(expected)  # same keys, same order
    assert json.dumps(got) == json.dumps(expected)


aware_times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=-7, minutes=-30)), timezone(timedelta(hours=5))]
    ),
)


@given(aware_times)
def test_timestamps_are_utc_iso_with_z_and_read_back_equal(value: datetime) -> None:
    from scanhub._convert import _dt_in, _time_in, timestamp

    text = timestamp(value)
    assert text == value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert len(text) == len("2026-12-01T10:00:29.841000Z")  # one length: they sort as text
    assert _time_in(text) == value and _time_in(text).tzinfo is UTC
    # Any offset, or none (read as UTC), reads as the general reader reads it.
    for form in (value.isoformat(), value.replace(tzinfo=None).isoformat()):
        assert _time_in(form) == _dt_in(form, datetime)
        assert _time_in(form).tzinfo is UTC


@given(scans | promotions)
def test_an_item_read_again_from_the_store_is_shown_as_a_fresh_reading_shows_it(
    item: Scan | Promotion,
) -> None:
    # Stores hand out one object per stored text and the service remembers its dict: a page
    # read again must show exactly what converting the text afresh shows.
    from scanhub._convert import item_from_stored
    from scanhub._stats import StuckRule
    from scanhub.serve._http import entry
    from scanhub.store import StoredItem
    from scanhub.store._base import item_from_text, item_json

    text = item_json(item)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    rule = StuckRule({}, {}, 3600.0)
    fresh = to_dict(item_from_stored(json.loads(text)))
    fresh.pop("raw", None)
    shown = [
        entry(StoredItem(item_from_text(text), "track", since=now), now=now, rule=rule)
        for _ in range(3)
    ]
    for data in shown:
        extra = {k: data.pop(k) for k in ("last_change", "stuck", "timing", "error")}
        assert data == fresh and list(data) == list(fresh)
        assert extra["stuck"] is False and extra["error"] is None


@given(st.lists(st.text(max_size=12) | st.from_regex(r"[A-Za-z0-9_.~-]{0,12}", fullmatch=True)))
def test_a_key_is_its_parts_percent_encoded_whatever_they_hold(parts: list[str]) -> None:
    from urllib.parse import quote

    from scanhub._model import _key

    # The fast path for parts of unreserved characters gives what quote gives.
    assert _key(*parts) == ":".join(quote(p, safe="") for p in parts)
