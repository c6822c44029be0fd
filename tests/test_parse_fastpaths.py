"""Vendor parsers read the shapes servers send inline; for any other shape they fall back to the
shared readers. Each test here holds a parser equal, over generated answers, to an oracle: the
parser as it was before its fast path (kept below verbatim, reading times with the general
`parse_time`), same model fields or the same typed error with the same message."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanhub import (
    AuthenticationError,
    BadRequestError,
    FindingCounts,
    NotFoundError,
    PayloadError,
    Promotion,
    Scan,
    ScanhubError,
    Vendor,
)
from scanhub._model import NO_LINKS
from scanhub._sansio import _parse_time_general
from scanhub.sansio import (
    Response,
    Where,
    as_list,
    as_object,
    decode_json,
    fail,
    map_value,
    opt_int,
    opt_str,
    raise_for_status,
    req_str,
    where,
)
from scanhub.vendors.appsecplus import sansio as asp
from scanhub.vendors.dependencytrack import sansio as dt
from scanhub.vendors.threadfix import sansio as tf

from .payloads import ASP_SCAN_COMPLETED


def outcome(parse: Callable[[Response], Any], resp: Response) -> tuple[Any, ...]:
    """What a parser makes of `resp`, comparable: every field of the model(s) (with each
    datetime's tzinfo), or the error's type and message."""
    try:
        result = parse(resp)
    except ScanhubError as exc:
        return ("raised", type(exc), str(exc))
    items = result if isinstance(result, list) else [result]
    return ("value", [_fields(item) for item in items])


def _fields(item: Any) -> tuple[Any, ...]:
    values = attrs.astuple(item, recurse=False)
    zones = tuple(id(v.tzinfo) for v in values if isinstance(v, datetime))
    # The types too: `==` holds 3 == 3.0 == True, and a count must stay an int.
    kinds = tuple(
        (type(v), tuple(map(type, attrs.astuple(v))) if attrs.has(type(v)) else ()) for v in values
    )
    return (type(item), values, zones, kinds, getattr(item, "raw", None))


# --- Values a field may hold: what servers send, and what they should not -------------------

when = st.datetimes(
    min_value=datetime(1969, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
millis = st.integers(min_value=-(10**13), max_value=10**16) | when.map(
    lambda d: int(d.timestamp() * 1000)
)
iso = when.map(lambda d: d.isoformat()) | when.map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
)
odd = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.from_regex(r"[0-9]{1,15}", fullmatch=True)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)
)


def _answer(body: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(body).encode(), {}, "workflow status", "http://h/x")


# --- Dependency-Track: parse_workflow ----------------------------------------------------------


def _dt_parse_workflow_oracle(resp: Response, *, source: str) -> list[dt.Step]:
    """`parse_workflow` before its fast path (the 404 branch, unchanged, left out)."""
    at = where(dt.VENDOR, source, resp)
    states = as_list(dt._json_ok(resp, at), at, "the workflow states", resp)
    steps = []
    for entry in states:
        obj = as_object(entry, at, "a workflow state", resp)
        steps.append(
            dt.Step(
                step=req_str(obj, at, "step", resp=resp),
                status=opt_str(obj, "status") or "",
                started_at=_parse_time_general(obj.get("startedAt")),
                updated_at=_parse_time_general(obj.get("updatedAt")),
                failure_reason=opt_str(obj, "failureReason"),
            )
        )
    if not steps:
        fail(PayloadError, at, "the workflow has no steps", resp)

    def rank(step: dt.Step) -> int:
        try:
            return dt.STEPS.index(step.step)
        except ValueError:
            return len(dt.STEPS)

    return sorted(steps, key=rank)


dt_state = st.fixed_dictionaries(
    {},
    optional={
        "token": st.just("1864eec7-c048-4084-b64c-def692c2c97b"),
        "step": st.sampled_from([*dt.STEPS, "NEW_STEP", ""]) | odd,
        "status": st.sampled_from(sorted(dt.STATUS_MAP)) | odd,
        "startedAt": millis | iso | odd,
        "updatedAt": millis | iso | odd,
        "failureReason": st.text(max_size=8) | odd,
    },
)
# The server's shape: every step named, in order, times in epoch ms.
dt_usual = st.lists(
    st.tuples(
        st.sampled_from(sorted(dt.STATUS_MAP)), millis, millis, st.none() | st.text(max_size=5)
    ),
    min_size=1,
    max_size=6,
).map(
    lambda rows: [
        {"step": name, "status": s, "startedAt": a, "updatedAt": u, "failureReason": r}
        for name, (s, a, u, r) in zip(dt.STEPS, rows, strict=False)
    ]
)
# Well-formed steps in any order, some named twice or unknown: the sort (stable) decides.
dt_any_order = st.lists(
    st.tuples(
        st.sampled_from([*dt.STEPS, "NEW_STEP"]),
        st.sampled_from(sorted(dt.STATUS_MAP)),
        millis,
        st.none() | st.text(max_size=3),
    ),
    min_size=1,
    max_size=7,
).map(
    lambda rows: [
        {"step": name, "status": s, "updatedAt": u, "failureReason": r} for name, s, u, r in rows
    ]
)
# Well-formed steps whose times come in every shape: epoch ms as an int (the server's), a digit
# string or ISO text (which `parse_time` also reads), and odd values (which it refuses).
dt_any_times = st.lists(
    st.tuples(
        st.sampled_from(dt.STEPS),
        st.sampled_from(sorted(dt.STATUS_MAP)),
        millis | millis.map(str) | iso | odd,
        millis | millis.map(str) | iso | odd,
    ),
    min_size=1,
    max_size=6,
).map(
    lambda rows: [{"step": n, "status": s, "startedAt": a, "updatedAt": u} for n, s, a, u in rows]
)
dt_answers = dt_usual | dt_any_order | dt_any_times | st.lists(dt_state | odd, max_size=6) | odd


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=dt_answers)
def test_dependencytrack_parse_workflow_equals_its_oracle(body: Any) -> None:
    resp = _answer(body)
    assert outcome(lambda r: dt.parse_workflow(r, source="s"), resp) == outcome(
        lambda r: _dt_parse_workflow_oracle(r, source="s"), resp
    )


def test_dependencytrack_step_init_is_attrs_own() -> None:
    # Step (a dict class) builds from exactly its attrs fields, with their defaults.
    params = list(inspect.signature(dt.Step.__init__).parameters.values())[1:]
    fields = attrs.fields(dt.Step)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is attrs.NOTHING else f.default for f in fields
    ]
    now = datetime(2024, 6, 10, tzinfo=UTC)
    step = dt.Step("VULN_ANALYSIS", "FAILED", now, now + timedelta(seconds=1), "boom")
    assert attrs.asdict(step, recurse=False) == {
        "step": "VULN_ANALYSIS",
        "status": "FAILED",
        "started_at": now,
        "updated_at": now + timedelta(seconds=1),
        "failure_reason": "boom",
    }
    assert attrs.evolve(step, status="COMPLETED").status == "COMPLETED"
    assert step == dt.Step(**attrs.asdict(step, recurse=False))


def test_dependencytrack_step_has_nothing_its_inline_build_would_skip() -> None:
    # parse_workflow builds each Step by writing its five fields into a new instance's
    # __dict__, as attrs' __init__ does: right only while Step has no validator, converter,
    # setattr hook or post-init, and exactly these fields.
    assert [f.name for f in attrs.fields(dt.Step)] == [
        "step",
        "status",
        "started_at",
        "updated_at",
        "failure_reason",
    ]
    for f in attrs.fields(dt.Step):
        assert f.validator is None and f.converter is None and f.on_setattr is None
    assert not hasattr(dt.Step, "__attrs_pre_init__")
    assert not hasattr(dt.Step, "__attrs_post_init__")
    assert "__slots__" not in vars(dt.Step)
    body = json.dumps(
        [{"step": "BOM_CONSUMPTION", "status": "FAILED", "startedAt": 1, "failureReason": "x"}]
    ).encode()
    (step,) = dt.parse_workflow(Response(200, body, {}, "workflow status"), source="s")
    built = dt.Step("BOM_CONSUMPTION", "FAILED", datetime.fromtimestamp(0.001, UTC), None, "x")
    assert step == built and repr(step) == repr(built) and hash(step) == hash(built)
    assert vars(step) == vars(built) and list(vars(step)) == list(vars(built))


# --- ThreadFix: the envelope's authentication phrases -------------------------------------------

#: The phrases `_AUTH_MESSAGES` looks for, pieces of them, and other envelope messages.
_TF_PIECES = [
    "authentication failed",
    "check your api key",
    "restricted for your api key",
    "invalid api key",
    "api key",
    "Authentication",
    "failed",
    "Scan Processing Completed.",
    "Invalid application id",
]
#: Letters the case-blind regex reads as ASCII ones: KELVIN SIGN as `k`, LONG S as `s`, the
#: dotless and the dotted I as `i`.
_LOOKALIKE = {"k": "\u212a", "s": "\u017f", "i": "\u0131", "I": "\u0130"}


@st.composite
def tf_messages(draw: st.DrawFn) -> str:
    text = " ".join(draw(st.lists(st.sampled_from(_TF_PIECES) | st.text(max_size=5), max_size=4)))
    how = draw(st.lists(st.sampled_from("=ulx"), min_size=len(text), max_size=len(text)))
    out = []
    for ch, h in zip(text, how, strict=True):
        if h == "u":
            ch = ch.upper()
        elif h == "l":
            ch = ch.lower()
        elif h == "x":
            ch = _LOOKALIKE.get(ch, ch)
        out.append(ch)
    return "".join(out)


@settings(max_examples=1500, deadline=None)
@given(message=tf_messages())
def test_threadfix_auth_phrase_check_equals_the_regex(message: str) -> None:
    assert tf._says_auth_failed(message) is (tf._AUTH_MESSAGES.search(message) is not None)


def _tf_envelope_oracle(resp: Response, at: Where) -> dict[str, Any]:
    """`_envelope` before its fast path (the regex searched for every message)."""
    body: Any = None
    try:
        body = decode_json(resp, at)
    except PayloadError:
        if 200 <= resp.status < 300:
            raise
    message = opt_str(body, "message") if isinstance(body, dict) else None
    if message and tf._AUTH_MESSAGES.search(message):
        fail(AuthenticationError, at, message, resp)
    raise_for_status(resp, at, message)
    env = as_object(body, at, "the envelope", resp)
    success = env.get("success")
    if success is not True and success is not False:
        fail(
            PayloadError,
            at,
            f"the envelope's success is {success!r}, expected true or false"
            + (f" ({message})" if message else ""),
            resp,
        )
    if success is False:
        error_cls: type[ScanhubError] = BadRequestError
        if message and tf._NOT_FOUND_MESSAGES.search(message):
            error_cls = NotFoundError
        fail(error_cls, at, message or "ThreadFix answered success: false", resp)
    return env


tf_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "message": tf_messages() | odd,
        "success": st.booleans() | odd,
        "responseCode": st.just(-1),
        "object": st.none() | st.just({"id": 2, "appId": 6, "status": "DONE"}),
    },
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=tf_envelopes | odd, status=st.sampled_from([200, 200, 200, 401, 404, 500]))
def test_threadfix_envelope_equals_its_oracle(body: Any, status: int) -> None:
    resp = _answer(body, status)
    at = where(tf.VENDOR, "s", resp)
    assert _envelope_outcome(lambda r: tf._envelope(r, at), resp) == _envelope_outcome(
        lambda r: _tf_envelope_oracle(r, at), resp
    )


def _envelope_outcome(read: Callable[[Response], Any], resp: Response) -> tuple[Any, ...]:
    try:
        return ("value", read(resp))
    except ScanhubError as exc:
        return ("raised", type(exc), str(exc))


def test_threadfix_an_auth_message_with_a_kelvin_sign_is_still_an_auth_error() -> None:
    # "API \u212aey": the regex reads the Kelvin sign as `k`; the ASCII fast path must not decide.
    body = {"message": "Invalid API \u212aey", "success": False, "responseCode": -1, "object": None}
    with pytest.raises(AuthenticationError):
        tf.parse_pending_scan(_answer(body), source="s")


# --- AppTrust: gates built inline -------------------------------------------------------------


def test_apptrust_gate_has_nothing_its_inline_build_would_skip() -> None:
    # _gates builds each Gate by writing its six fields into a new instance's __dict__, as
    # attrs' __init__ does: right only while Gate has no validator, converter, setattr hook or
    # post-init, and exactly these fields.
    from scanhub import Gate, GateKind, Verdict
    from scanhub.vendors.apptrust import sansio as at

    assert [f.name for f in attrs.fields(Gate)] == [
        "kind",
        "verdict",
        "stage",
        "evaluation_id",
        "explanation",
        "vendor_decision",
    ]
    for f in attrs.fields(Gate):
        assert f.validator is None and f.converter is None and f.on_setattr is None
    assert not hasattr(Gate, "__attrs_pre_init__")
    assert not hasattr(Gate, "__attrs_post_init__")
    assert "__slots__" not in vars(Gate)
    gates = at._gates(
        {
            "exit_gate": {"stage": "DEV", "eval_id": 7, "decision": "Warning"},
            "entry_gate": {
                "stage": "QA",
                "eval_id": "e-2",
                "decision": "pass",
                "explanation": "ok",
            },
        }
    )
    built = (
        Gate(GateKind.EXIT, Verdict.WARN, "DEV", "7", None, "Warning"),
        Gate(GateKind.ENTRY, Verdict.PASS, "QA", "e-2", "ok", "pass"),
    )
    assert gates == built and [repr(g) for g in gates] == [repr(g) for g in built]
    assert [hash(g) for g in gates] == [hash(g) for g in built]
    assert [list(vars(g).items()) for g in gates] == [list(vars(g).items()) for g in built]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        gates[0].stage = "PROD"  # type: ignore[misc]


# --- AppSec+: parse_list and parse_scan ---------------------------------------------------------


def _asp_scan_oracle(obj: dict[str, Any], at: Where, resp: Response, base_url: str) -> Any:
    """AppSec+'s `_scan` before its fast path, every field through the checked readers."""
    summary = obj.get("summary")
    findings = None
    if isinstance(summary, dict):
        critical, high, medium, low = (
            opt_int(summary, "critical") or 0,
            opt_int(summary, "high") or 0,
            opt_int(summary, "medium") or 0,
            opt_int(summary, "low") or 0,
        )
        total = opt_int(summary, "totalFindings")
        findings = FindingCounts(
            critical,
            high,
            medium,
            low,
            total if total is not None else critical + high + medium + low,
        )
    raw_status = opt_str(obj, "status")
    scan_id = req_str(obj, at, "id", resp=resp)
    completed = _parse_time_general(obj.get("completedAt"))
    return Scan(
        vendor=Vendor.APPSECPLUS,
        source=at.source,
        id=scan_id,
        application_id=opt_str(obj, "applicationId") or "",
        lifecycle=map_value(asp.STATUS_MAP, raw_status.lower() if raw_status else None, asp.VENDOR),
        vendor_status=raw_status or "",
        message=opt_str(obj, "message", "error", "errorMessage"),
        links={"self": asp._scan_url(base_url, scan_id)} if base_url else NO_LINKS,
        started_at=_parse_time_general(obj.get("startedAt")),
        finished_at=completed,
        updated_at=completed,
        scan_type=opt_str(obj, "scanType"),
        triggered_by=opt_str(obj, "triggeredBy"),
        findings=findings,
        raw=obj,
    )


def _asp_list_oracle(resp: Response, *, source: str, base_url: str = "") -> list[Scan]:
    at = where(asp.VENDOR, source, resp)
    asp._check(resp, at)
    items = as_list(decode_json(resp, at), at, "the response", resp)
    return [_asp_scan_oracle(as_object(i, at, "a scan", resp), at, resp, base_url) for i in items]


# A count as the service sends it (an int), in the other shapes `opt_int` reads as one (digit
# strings, integral floats) or refuses (bools), and odd: the fast path must hand each of these to
# the checked reader, field by field.
_count = st.integers(min_value=0, max_value=10**6)
counts = _count | _count.map(str) | _count.map(float) | st.booleans() | odd
asp_scan = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["scan-001", "a/b", ""]) | odd,
        "applicationId": st.sampled_from(["webshop", ""]) | odd,
        "scanType": st.sampled_from(asp.SCAN_TYPES) | odd,
        "status": st.sampled_from([*asp.STATUS_MAP, "COMPLETED", "paused"]) | odd,
        "triggeredBy": st.text(max_size=5) | odd,
        "startedAt": iso | millis | odd,
        "completedAt": iso | millis | odd,
        "message": st.text(max_size=5) | odd,
        "error": st.text(max_size=5) | odd,
        "summary": st.fixed_dictionaries(
            {},
            optional=dict.fromkeys(("totalFindings", "critical", "high", "medium", "low"), counts),
        )
        | odd,
    },
)
# The service's shape (seed 003's samples): every field of its documented type; a scan not yet
# started or finished has null times and a null summary, as the sample of a queued scan does.
asp_usual = st.builds(
    lambda i, s, t, a, c, n: {
        "id": f"scan-{i:03d}",
        "applicationId": "app-12345",
        "scanType": t,
        "status": s,
        "triggeredBy": "ci-pipeline",
        "startedAt": a,
        "completedAt": c,
        "summary": None
        if n is None
        else {
            "totalFindings": sum(n),
            "critical": n[0],
            "high": n[1],
            "medium": n[2],
            "low": n[3],
        },
    },
    st.integers(min_value=0, max_value=999),
    st.sampled_from(sorted(asp.STATUS_MAP)),
    st.sampled_from(asp.SCAN_TYPES),
    st.none() | iso,
    st.none() | iso,
    st.none() | st.tuples(*[st.integers(min_value=0, max_value=50)] * 4),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.lists(asp_usual | asp_scan | odd, max_size=4) | odd,
    base=st.sampled_from(["", "http://h"]),
)
def test_appsecplus_parse_list_equals_its_oracle(body: Any, base: str) -> None:
    resp = _answer(body)
    assert outcome(lambda r: asp.parse_list(r, source="s", base_url=base), resp) == outcome(
        lambda r: _asp_list_oracle(r, source="s", base_url=base), resp
    )


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=asp_usual | asp_scan, status=st.sampled_from([200, 201]))
def test_appsecplus_parse_scan_equals_its_oracle(body: Any, status: int) -> None:
    resp = _answer(body, status)
    at = where(asp.VENDOR, "s", resp)
    assert outcome(lambda r: asp.parse_scan(r, source="s", base_url="http://h"), resp) == outcome(
        lambda r: _asp_scan_oracle(json.loads(r.body), at, r, "http://h"),
        resp,
    )


@pytest.mark.parametrize("field", ["critical", "high", "medium", "low", "totalFindings"])
@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("5", 5),
        (" 7 ", 7),
        (5.0, 5),
        (2.5, None),
        (True, None),
        ("x", None),
        (None, None),
        ([3], None),
    ],
)
def test_appsecplus_a_count_in_another_shape_is_read_as_the_checked_reader_reads_it(
    field: str, value: Any, read: int | None
) -> None:
    # Each count of the summary that is not an int goes to `opt_int` under its own name: a
    # digit string or an integral float is that count, anything else none (0, or the sum for
    # the total). The record is seed 003's sample; the other counts are its ints.
    summary: dict[str, Any] = {**ASP_SCAN_COMPLETED["summary"], field: value}
    body = [{**ASP_SCAN_COMPLETED, "summary": summary}]
    resp = _answer(body)
    (scan,) = asp.parse_list(resp, source="s")
    assert outcome(lambda r: asp.parse_list(r, source="s"), resp) == outcome(
        lambda r: _asp_list_oracle(r, source="s"), resp
    )
    assert scan.findings is not None
    key = "total" if field == "totalFindings" else field
    if read is not None:
        assert getattr(scan.findings, key) == read
    elif field == "totalFindings":
        assert scan.findings.total == 1 + 5 + 10 + 26
    else:
        assert getattr(scan.findings, key) == 0


def test_the_positional_builds_match_the_models_field_order() -> None:
    # AppSec+'s `_scan` and AppTrust's `promotion_from_record` build Scan and Promotion by
    # position: a field added or moved in the model must be seen there too.
    tracked = [
        "vendor", "source", "id", "application_id", "lifecycle", "vendor_status", "verdict",
        "message", "links", "created_at", "started_at", "finished_at", "updated_at",
        "application_name",
    ]  # fmt: skip
    assert [f.name for f in attrs.fields(Scan)] == [
        *tracked,
        "scan_type",
        "triggered_by",
        "findings",
        "final_scan_id",
        "raw",
    ]
    assert [f.name for f in attrs.fields(Promotion)] == [
        *tracked, "version", "source_stage", "target_stage", "promoted_by", "gates", "scan_id",
        "raw",
    ]  # fmt: skip
