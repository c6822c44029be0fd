"""SonarQube's pure functions with the server's own payloads: every task status, every quality
gate status, the error envelope, report-task.txt, webhooks, and fuzzing of every parser."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import typing
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanhub import Scan, ScanhubError
from scanhub.sansio import Response
from scanhub.vendors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    Lifecycle,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    ServerError,
    Verdict,
)
from scanhub.vendors.sonarqube import sansio as sq
from scanhub.vendors.sonarqube.spec import AuthMode, SonarQubeTrack

from .helpers import resp
from .test_vendor_sonarqube_payloads import (
    ACTIVITY,
    ERROR_ANALYSIS_NOT_FOUND,
    ERROR_COMPONENT_NOT_FOUND,
    ERROR_FORBIDDEN,
    ERROR_INTERNAL,
    ERROR_PAGING,
    ERROR_STATUS_PARAM,
    ERROR_TASK_NOT_FOUND,
    GATES_BY_STATUS,
    PROJECT_STATUS_ERROR,
    REPORT_TASK_ACTION_TEST,
    REPORT_TASK_PROPERTIES_STORE,
    REPORT_TASK_TXT,
    TASK_SUCCESS,
    TASKS_BY_STATUS,
    WEBHOOK_FAILED,
    WEBHOOK_GATE_ERROR,
    WEBHOOK_NO_TASK,
    WEBHOOK_SUCCESS,
)

B = "https://sonar.example.com"


def task(body: Any, status: int = 200, **kw: Any) -> Scan:
    return sq.parse_task(resp(status, body), source="sq", base_url=B, **kw)


def gate(body: Any, status: int = 200) -> sq.QualityGate:
    return sq.parse_quality_gate(resp(status, body), source="sq")


# --- every task status ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "lifecycle"),
    [
        ("PENDING", Lifecycle.QUEUED),
        ("IN_PROGRESS", Lifecycle.RUNNING),
        ("SUCCESS", Lifecycle.SUCCEEDED),
        ("FAILED", Lifecycle.FAILED),
        ("CANCELED", Lifecycle.CANCELLED),
    ],
)
def test_every_task_status(status: str, lifecycle: Lifecycle) -> None:
    scan = task(TASKS_BY_STATUS[status])
    assert sq.STATUS_MAP[status] is lifecycle
    assert scan.lifecycle is lifecycle and scan.vendor_status == status
    assert scan.id == "AYhSC2-LY0CHkWJxvNA9"
    assert scan.application_id == "sonarsource_test_AYhCAUXoEy1XQQcbVndf"
    assert scan.vendor == "sonarqube" and scan.source == "sq" and scan.scan_type == "REPORT"
    assert scan.verdict is Verdict.NONE  # the gate comes with a second request
    assert (scan.finished_at is not None) is lifecycle.is_terminal
    assert sq.needs_quality_gate(scan) is (status == "SUCCESS")


def test_the_table_is_exactly_the_proto_enum() -> None:
    # ws-ce.proto: enum TaskStatus { PENDING, IN_PROGRESS, SUCCESS, FAILED, CANCELED }
    assert list(sq.STATUS_MAP) == ["PENDING", "IN_PROGRESS", "SUCCESS", "FAILED", "CANCELED"]
    assert set(sq.ACTIVITY_STATUSES) == set(sq.STATUS_MAP)
    assert list(sq.QUALITY_GATE_MAP) == ["OK", "WARN", "ERROR", "NONE"]
    assert typing.get_args(AuthMode) == sq.AUTH_MODES


def test_task_example_fields() -> None:
    scan = task(TASK_SUCCESS)
    assert scan.created_at == datetime(2023, 5, 25, 8, 34, 21, tzinfo=UTC)
    assert scan.started_at == datetime(2023, 5, 25, 8, 34, 22, tzinfo=UTC)
    assert scan.finished_at == scan.updated_at == datetime(2023, 5, 25, 8, 34, 25, tzinfo=UTC)
    assert scan.triggered_by == "admin"
    assert scan.final_scan_id == "AYhSC3WDE6ILQDIMAPIp"
    assert scan.links == {"dashboard": f"{B}/dashboard?id=sonarsource_test_AYhCAUXoEy1XQQcbVndf"}
    assert scan.message is None
    assert scan.raw["task"]["warningCount"] == 2


def test_a_failed_task_says_why_and_has_no_gate() -> None:
    scan = task(TASKS_BY_STATUS["FAILED"])
    assert scan.message is not None and scan.message.startswith("Date of analysis cannot be older")
    assert scan.final_scan_id is None and not sq.needs_quality_gate(scan)


def test_a_running_task_has_started_but_not_finished() -> None:
    scan = task(TASKS_BY_STATUS["IN_PROGRESS"])
    assert scan.started_at is not None and scan.finished_at is None
    assert scan.updated_at == scan.started_at


def test_a_canceled_task_never_started() -> None:
    scan = task(TASKS_BY_STATUS["CANCELED"])
    assert scan.started_at is None and scan.finished_at is not None


def test_branch_and_pull_request_links() -> None:
    body = json.loads(json.dumps(TASK_SUCCESS))
    body["task"]["branch"] = "feature/x"
    assert task(body).links["dashboard"].endswith("&branch=feature%2Fx")
    body["task"]["pullRequest"] = "42"
    assert task(body).links["dashboard"].endswith("&pullRequest=42")


def test_an_unknown_status_is_unknown_kept_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A value of its own each run: warnings are deduplicated per process, and mutation testing
    # runs this test several times in one process.
    value = f"PAUSED_BY_ADMIN_{uuid.uuid4().hex[:8]}"
    body = json.loads(json.dumps(TASK_SUCCESS))
    body["task"]["status"] = value
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        first, second = task(body), task(body)
    assert first.lifecycle is Lifecycle.UNKNOWN and first.vendor_status == value
    assert second.lifecycle is Lifecycle.UNKNOWN
    assert sum(value in r.message for r in caplog.records) == 1
    assert not sq.needs_quality_gate(first)


def test_a_missing_status_is_unknown_with_an_empty_vendor_status() -> None:
    body = {"task": {"id": "t1"}}
    scan = task(body)
    assert scan.lifecycle is Lifecycle.UNKNOWN and scan.vendor_status == ""
    assert scan.application_id == "" and scan.links == {}


@pytest.mark.parametrize("body", [{}, {"task": None}, {"task": {}}, {"task": {"id": ""}}, []])
def test_a_task_without_identity_is_a_payload_error(body: Any) -> None:
    with pytest.raises(PayloadError) as err:
        task(body)
    assert err.value.vendor == "sonarqube" and err.value.source == "sq"


def test_refresh_keeps_the_project_key_and_refuses_another_task() -> None:
    # Answered before (a project renamed since): the item keeps its key. A placeholder never
    # answered is another matter (test_exact_sonarqube: the track's ConfigError).
    previous = Scan(
        "sonarqube", "sq", "AYhSC2-LY0CHkWJxvNA9", "org:app", Lifecycle.RUNNING, "IN_PROGRESS"
    )
    scan = task(TASK_SUCCESS, previous=previous)
    assert scan.application_id == "org:app" and scan.key == previous.key
    other = attrs.evolve(previous, id="another")
    with pytest.raises(PayloadError, match="asked for task 'another'"):
        task(TASK_SUCCESS, previous=other)


# --- every quality gate status -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [("OK", Verdict.PASS), ("WARN", Verdict.WARN), ("ERROR", Verdict.FAIL), ("NONE", Verdict.NONE)],
)
def test_every_quality_gate_status(status: str, verdict: Verdict) -> None:
    qg = gate(GATES_BY_STATUS[status])
    assert sq.QUALITY_GATE_MAP[status] is verdict
    assert qg.status == status and qg.verdict is verdict
    scan = sq.with_quality_gate(task(TASK_SUCCESS), qg)
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.verdict is verdict
    assert scan.raw["projectStatus"]["status"] == status and "task" in scan.raw
    if status in ("OK", "NONE"):
        assert scan.message is None
    else:
        assert scan.message is not None and scan.message.startswith(f"quality gate {status}: ")


def test_failing_conditions_are_spelled_out() -> None:
    qg = gate(PROJECT_STATUS_ERROR)
    assert [c.metric for c in qg.failing] == [
        "new_coverage",
        "new_blocker_violations",
        "new_critical_violations",
        "open_issues",
    ]
    assert qg.summary() == (
        "quality gate ERROR: new_coverage 82.50562381034781 < 85 (ERROR); "
        "new_blocker_violations 14 > 0 (ERROR); new_critical_violations 1 > 0 (ERROR); "
        "open_issues 17 (ERROR)"
    )


def test_a_warning_condition_names_its_warning_threshold() -> None:
    qg = gate(GATES_BY_STATUS["WARN"])
    assert qg.summary() == "quality gate WARN: new_coverage 87.0 < 90 (WARN)"


def test_a_long_list_of_failing_conditions_is_cut() -> None:
    body = json.loads(json.dumps(PROJECT_STATUS_ERROR))
    body["projectStatus"]["conditions"] = [
        {
            "status": "ERROR",
            "metricKey": f"m{i}",
            "comparator": "GT",
            "errorThreshold": "0",
            "actualValue": "1",
        }
        for i in range(12)
    ]
    summary = gate(body).summary()
    assert summary is not None and summary.endswith("; and 4 more") and "m7 1 > 0" in summary


def test_an_unknown_gate_status_is_verdict_none(caplog: pytest.LogCaptureFixture) -> None:
    value = f"AMBER_{uuid.uuid4().hex[:8]}"  # its own each run (warnings: once per process)
    body = {"projectStatus": {"status": value, "conditions": "not a list"}}
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        qg = gate(body)
    assert qg.verdict is Verdict.NONE and qg.status == value and qg.conditions == ()
    assert any(value in r.message for r in caplog.records)


def test_a_gate_that_cannot_be_read_any_more() -> None:
    scan = sq.without_quality_gate(task(TASK_SUCCESS), "Analysis with id 'x' is not found")
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.verdict is Verdict.NONE
    assert scan.message == "quality gate not available: Analysis with id 'x' is not found"


def test_the_gate_request() -> None:
    req = sq.build_quality_gate(B, "AYhSC3WDE6ILQDIMAPIp")
    assert req.method == "GET" and req.url == f"{B}/api/qualitygates/project_status"
    assert req.params == (("analysisId", "AYhSC3WDE6ILQDIMAPIp"),)
    with pytest.raises(BadRequestError):
        sq.build_quality_gate(B, " ")


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, b"", AuthenticationError, 'auth = "basic"'),
        (403, ERROR_FORBIDDEN, AuthenticationError, "Insufficient privileges"),
        (404, ERROR_TASK_NOT_FOUND, NotFoundError, "No activity found for task"),
        (404, ERROR_ANALYSIS_NOT_FOUND, NotFoundError, "Analysis with id"),
        (404, ERROR_COMPONENT_NOT_FOUND, NotFoundError, "Component 'webshop' does not exist"),
        (400, ERROR_PAGING, BadRequestError, "Can return only the first 2 results"),
        (400, ERROR_STATUS_PARAM, BadRequestError, "must be one of"),
        (500, ERROR_INTERNAL, ServerError, "Please contact your administrator"),
        (503, b"<html>down</html>", ServerError, "HTTP 503"),
        (429, b"", RateLimitedError, "HTTP 429"),
    ],
)
def test_the_error_envelope_becomes_typed_errors(
    status: int, body: Any, error: type[ScanhubError], text: str
) -> None:
    for parse in (
        lambda r: sq.parse_task(r, source="sq", base_url=B),
        lambda r: sq.parse_quality_gate(r, source="sq"),
        lambda r: sq.parse_activity(r, source="sq", base_url=B),
    ):
        with pytest.raises(error) as err:
            parse(resp(status, body))
        assert text in err.value.message and err.value.status == status
        assert err.value.vendor == "sonarqube"


def test_several_messages_are_joined() -> None:
    body = {"errors": [{"msg": "first"}, {"msg": "second"}, {"nomsg": 1}]}
    with pytest.raises(BadRequestError, match="first; second"):
        task(body, 400)


@pytest.mark.parametrize(
    "body", [b"<!DOCTYPE html><html><body>Log in</body></html>", b'{"task": {"id"', b""]
)
def test_html_truncated_or_empty_answers_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        task(body)


# --- requests and auth ---------------------------------------------------------------------------


def test_the_task_request() -> None:
    req = sq.build_task(B + "/", "AYhSC2-LY0CHkWJxvNA9")
    assert req.method == "GET" and req.url == f"{B}/api/ce/task"
    assert req.params == (("id", "AYhSC2-LY0CHkWJxvNA9"),) and req.idempotent
    with pytest.raises(BadRequestError):
        sq.build_task(B, "")


def test_auth_headers() -> None:
    assert sq.auth_headers("squ_abc") == {"Authorization": "Bearer squ_abc"}
    basic = sq.auth_headers("squ_abc", "basic")["Authorization"]
    assert basic == "Basic " + base64.b64encode(b"squ_abc:").decode()  # token:, empty password
    with pytest.raises(BadRequestError, match="auth must be one of"):
        sq.auth_headers("squ_abc", "digest")


# --- the activity (discovery) --------------------------------------------------------------------


def test_the_activity_request() -> None:
    req = sq.build_activity(
        B, "webshop", statuses="PENDING,IN_PROGRESS", task_type="REPORT", page=2, page_size=50
    )
    assert req.url == f"{B}/api/ce/activity"
    assert req.params == (
        ("component", "webshop"),
        ("status", "PENDING,IN_PROGRESS"),
        ("type", "REPORT"),
        ("p", "2"),
        ("ps", "50"),
    )
    for bad in ({"page": 0}, {"page_size": 0}, {"page_size": 1001}):
        with pytest.raises(BadRequestError):
            sq.build_activity(B, "webshop", **bad)  # type: ignore[arg-type]
    with pytest.raises(BadRequestError):
        sq.build_activity(B, "")


def test_the_activity_example() -> None:
    page = sq.parse_activity(resp(200, ACTIVITY), source="sq", base_url=B)
    assert [s.id for s in page.scans] == ["AYhSC2-LY0CHkWJxvNA9", "71"]
    assert (
        page.scans[1].scan_type == "GITHUB_AUTH_PROVISIONING" and page.scans[1].application_id == ""
    )
    assert (page.page_index, page.page_size, page.total) == (1, 10, 2)
    assert not page.more(10)  # 2 tasks, total 2


def test_paging_says_when_more_remain() -> None:
    tasks = [dict(TASK_SUCCESS["task"], id=f"t{i}") for i in range(3)]
    page = sq.parse_activity(
        resp(200, {"tasks": tasks, "paging": {"pageIndex": 1, "pageSize": 3, "total": 7}}),
        source="sq",
        base_url=B,
    )
    assert page.more(3)
    last = sq.parse_activity(
        resp(200, {"tasks": tasks[:1], "paging": {"pageIndex": 3, "pageSize": 3, "total": 7}}),
        source="sq",
        base_url=B,
        page=3,
    )
    assert not last.more(3)


def test_a_server_before_9_4_has_no_paging_one_page_only() -> None:
    tasks = [dict(TASK_SUCCESS["task"], id=f"t{i}") for i in range(3)]
    page = sq.parse_activity(resp(200, {"tasks": tasks}), source="sq", base_url=B)
    assert page.page_index is None and not page.more(3)


def test_status_filters() -> None:
    assert sq.statuses_param(None) == "SUCCESS,FAILED,CANCELED,PENDING,IN_PROGRESS"
    assert sq.statuses_param("pending, in_progress") == "PENDING,IN_PROGRESS"
    assert sq.statuses_param("queued,running,succeeded,failed,cancelled") == (
        "PENDING,IN_PROGRESS,SUCCESS,FAILED,CANCELED"
    )
    assert sq.statuses_param(" , ") == "SUCCESS,FAILED,CANCELED,PENDING,IN_PROGRESS"
    with pytest.raises(BadRequestError, match="'DONE' is not one of"):
        sq.statuses_param("SUCCESS,DONE")


# --- report-task.txt ---------------------------------------------------------------------------


def test_report_task_as_the_scanner_writes_it() -> None:
    report = sq.parse_report_task(REPORT_TASK_TXT)
    assert report.ce_task_id == "AYhSC2-LY0CHkWJxvNA9"
    assert report.project_key == "org.example:webshop"
    assert report.server_url == "https://sonar.example.com"
    assert report.ce_task_url == "https://sonar.example.com/api/ce/task?id=AYhSC2-LY0CHkWJxvNA9"
    assert report.dashboard_url is not None and report.dashboard_url.endswith(
        "&branch=feature%2Flogin"
    )
    assert (report.organization, report.branch, report.server_version) == (
        "acme",
        "feature/login",
        "10.5.1.90531",
    )
    scan = sq.scan_from_report_task(report, source="sq")
    assert (scan.id, scan.application_id) == ("AYhSC2-LY0CHkWJxvNA9", "org.example:webshop")
    assert scan.lifecycle is Lifecycle.UNKNOWN and scan.vendor_status == ""
    assert scan.links == {"dashboard": report.dashboard_url}


def test_report_task_written_by_properties_store() -> None:
    report = sq.parse_report_task(REPORT_TASK_PROPERTIES_STORE.encode())
    assert report.project_key == "org.example:webshop"
    assert report.server_url == "https://sonar.example.com"
    assert report.ce_task_url == "https://sonar.example.com/api/ce/task?id=AYhSC2-LY0CHkWJxvNA9"


def test_report_task_with_only_the_task_url() -> None:
    report = sq.parse_report_task(REPORT_TASK_ACTION_TEST)
    assert report.ce_task_id == "AXlCe3gsFwOUsY8YKHTn" and report.project_key is None
    with pytest.raises(BadRequestError, match="no projectKey"):
        sq.scan_from_report_task(report, source="sq")


@pytest.mark.parametrize(
    "text",
    ["", "projectKey=x\n", "ceTaskUrl=https://h/api/ce/task\n", "# only a comment\n", b"\xff\xfe"],
)
def test_a_file_that_names_no_task_is_a_payload_error(text: str | bytes) -> None:
    with pytest.raises(PayloadError, match=r"report-task\.txt"):
        sq.parse_report_task(text)


def test_java_properties_syntax() -> None:
    props = sq.parse_properties(
        "! comment\n"
        "  a = 1\n"
        "b:2\n"
        "c 3\n"
        "d=x\\\n"
        "   y\n"
        "e=\\u00e9t\\u00e9\\tz\n"
        "f\\=g=h\n"
        "i==j\n"
        "k\n"
        "l=trailing\\\n"
    )
    assert props == {
        "a": "1",
        "b": "2",
        "c": "3",
        "d": "xy",
        "e": "été\tz",
        "f=g": "h",
        "i": "=j",
        "k": "",
        "l": "trailing",
    }


# --- webhooks ----------------------------------------------------------------------------------

SECRET = "sonar-webhook-secret"


def signed(payload: Any, secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Sonar-Webhook-HMAC-SHA256": sig,
        "X-SonarQube-Project": "org.sonarqube:example",
    }, body


def test_webhook_signatures() -> None:
    headers, body = signed(WEBHOOK_SUCCESS)
    sig = headers["X-Sonar-Webhook-HMAC-SHA256"]
    assert sq.verify_webhook(body, sig, SECRET)
    assert sq.verify_webhook(body, sig.upper(), SECRET)  # hex, whatever the case
    assert not sq.verify_webhook(body, sig, "another secret")
    assert not sq.verify_webhook(body + b" ", sig, SECRET)
    assert not sq.verify_webhook(body, None, SECRET)
    assert not sq.verify_webhook(body, "", SECRET)
    assert not sq.verify_webhook(body, "sha256=" + sig, SECRET)
    assert not sq.verify_webhook(body, sig, "")
    # Not ASCII (a header's non-UTF-8 bytes arrive as surrogates): refused, never an error.
    assert not sq.verify_webhook(body, "\u00e9" + sig[1:], SECRET)
    assert not sq.verify_webhook(body, "\udcff" + sig[1:], SECRET)


def test_a_webhook_of_a_successful_analysis() -> None:
    headers, body = signed(WEBHOOK_SUCCESS)
    scan = sq.parse_webhook(headers, body, source="sq")
    assert scan is not None
    assert (scan.id, scan.application_id) == ("AVh21JS2JepAEhwQ-b3u", "org.sonarqube:example")
    assert scan.lifecycle is Lifecycle.SUCCEEDED and scan.vendor_status == "SUCCESS"
    assert scan.verdict is Verdict.PASS and scan.message is None  # NO_VALUE did not fail
    assert scan.finished_at == datetime(2016, 11, 18, 9, 46, 28, tzinfo=UTC)
    assert scan.links == {"dashboard": WEBHOOK_SUCCESS["project"]["url"]}
    assert scan.scan_type == "REPORT" and scan.raw == WEBHOOK_SUCCESS


def test_a_webhook_of_a_failing_gate_names_the_conditions() -> None:
    headers, body = signed(WEBHOOK_GATE_ERROR)
    scan = sq.parse_webhook(headers, body, source="sq")
    assert scan is not None and scan.verdict is Verdict.FAIL
    assert scan.message == "quality gate ERROR: new_coverage 62.5 < 80 (ERROR)"


def test_a_webhook_of_a_failed_task() -> None:
    headers, body = signed(WEBHOOK_FAILED)
    scan = sq.parse_webhook(headers, body, source="sq")
    assert scan is not None and scan.lifecycle is Lifecycle.FAILED and scan.verdict is Verdict.NONE
    assert scan.finished_at == datetime(2016, 11, 18, 9, 46, 28, tzinfo=UTC)  # changedAt


def test_a_webhook_about_no_task_is_none() -> None:
    headers, body = signed(WEBHOOK_NO_TASK)
    assert sq.parse_webhook(headers, body, source="sq") is None


def test_a_webhook_project_from_its_header_or_a_payload_error() -> None:
    payload = {k: v for k, v in WEBHOOK_SUCCESS.items() if k not in ("project", "branch")}
    headers, body = signed(payload)
    scan = sq.parse_webhook(headers, body, source="sq", base_url=B)
    assert scan is not None and scan.application_id == "org.sonarqube:example"
    assert scan.links == {"dashboard": f"{B}/dashboard?id=org.sonarqube%3Aexample"}
    with pytest.raises(PayloadError, match=r"project\.key"):
        sq.parse_webhook({}, body, source="sq")


def test_a_delivery_id_is_the_body_hash() -> None:
    _, body = signed(WEBHOOK_SUCCESS)
    assert sq.delivery_id(body) == "sha256:" + hashlib.sha256(body).hexdigest()


# --- the track schema's rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({}, "report_task"),
        ({"report_task": "r.txt", "task_id": "t"}, "report_task"),
        ({"report_task": "r.txt", "project_key": "p"}, "report_task"),
        ({"task_id": "t", "status": "PENDING"}, "status"),
        ({"report_task": "r.txt", "max_tasks": 5}, "max_tasks"),
        ({"task_id": "t", "task_type": "REPORT"}, "task_type"),
    ],
)
def test_track_rules(keys: dict[str, Any], problem: str) -> None:
    found = SonarQubeTrack(source="sq", **keys).problems()
    assert found and found[0][0] == problem


@pytest.mark.parametrize(
    "keys",
    [
        {"report_task": "r.txt"},
        {"task_id": "t"},
        {"task_id": "t", "project_key": "p"},
        {
            "project_key": "p",
            "status": "PENDING,IN_PROGRESS",
            "task_type": "REPORT",
            "max_tasks": 5,
        },
    ],
)
def test_valid_tracks(keys: dict[str, Any]) -> None:
    assert SonarQubeTrack(source="sq", **keys).problems() == []


def test_config_error_is_a_scanhub_error() -> None:
    # A report_task that cannot be read is recorded against its source, like a failed lookup.
    assert issubclass(ConfigError, ScanhubError)


# --- fuzzing -------------------------------------------------------------------------------------

PARSERS = {
    "task": lambda r: sq.parse_task(r, source="s", base_url=B),
    "gate": lambda r: sq.parse_quality_gate(r, source="s"),
    "activity": lambda r: sq.parse_activity(r, source="s", base_url=B),
    "webhook": lambda r: sq.parse_webhook(dict(r.headers), r.body, source="s", base_url=B),
}
SEEDS = {
    "task": TASK_SUCCESS,
    "gate": PROJECT_STATUS_ERROR,
    "activity": ACTIVITY,
    "webhook": WEBHOOK_GATE_ERROR,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def _mutations(seed: Any) -> st.SearchStrategy[Any]:
    """The sample with one field, at any depth, replaced by any JSON value or removed."""
    if isinstance(seed, list):
        return st.lists(_mutations(seed[0]), max_size=3) if seed else st.just([])
    if not isinstance(seed, dict) or not seed:
        return json_values
    keys = sorted(seed)

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        out = dict(seed)
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            out.pop(key)
        else:
            out[key] = draw(json_values | _mutations(seed[key]))
        return out

    return mutate()


def _check(name: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    try:
        out = PARSERS[name](Response(status, body, headers or {}, "op", ""))
    except ScanhubError:
        return
    if isinstance(out, sq.ActivityPage):
        assert all(isinstance(s, Scan) for s in out.scans)
    else:
        assert out is None or isinstance(out, Scan | sq.QualityGate)
    if isinstance(out, Scan):
        assert isinstance(out.lifecycle, Lifecycle) and isinstance(out.vendor_status, str)
        if out.lifecycle is Lifecycle.SUCCEEDED:
            sq.with_quality_gate(out, sq.quality_gate_from({}, webhook=False))


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=json_values, status=st.sampled_from([200, 200, 400, 401, 403, 404, 429, 500, 503]))
def test_any_json(name: str, data: Any, status: int) -> None:
    _check(name, status, json.dumps(data).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_documented_payload_with_one_field_broken(name: str, data: st.DataObject) -> None:
    body = data.draw(_mutations(SEEDS[name]))
    _check(name, 200, json.dumps(body).encode(), {"x-sonarqube-project": "p"})


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=64), status=st.integers(min_value=100, max_value=599))
def test_any_bytes_and_status(name: str, raw: bytes, status: int) -> None:
    _check(name, status, raw)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_truncated_documented_payload(name: str) -> None:
    body = json.dumps(SEEDS[name]).encode()
    for cut in range(0, len(body), max(1, len(body) // 25)):
        with pytest.raises(ScanhubError):
            PARSERS[name](Response(200, body[:cut], {}, "op", ""))


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=200)
    | st.lists(
        st.tuples(
            st.sampled_from(["ceTaskId", "projectKey", "ceTaskUrl", "serverUrl", "x", "#c", ""]),
            st.sampled_from(["=", ":", " ", "\\=", "=\\"]),
            st.text(max_size=30),
        ),
        max_size=6,
    ).map(lambda rows: "\n".join(k + s + v for k, s, v in rows))
)
def test_report_task_any_text(text: str) -> None:
    try:
        report = sq.parse_report_task(text)
    except PayloadError:
        return
    assert report.ce_task_id and report.ce_task_id == report.ce_task_id.strip()
    if report.project_key:
        assert sq.scan_from_report_task(report, source="s").id == report.ce_task_id


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=80))
def test_report_task_any_bytes(raw: bytes) -> None:
    with contextlib.suppress(PayloadError):
        sq.parse_report_task(raw)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=80), sig=st.text(max_size=70), secret=st.text(max_size=10))
def test_webhook_verification_never_raises(body: bytes, sig: str, secret: str) -> None:
    assert sq.verify_webhook(body, sig, secret) in (True, False)


def test_the_readme_pipeline_configuration_is_valid() -> None:
    import tomllib
    from pathlib import Path

    from scanhub._config import parse_config

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    part = readme.split("### SonarQube in a pipeline", 1)[1]
    block = part.split("```toml\n", 1)[1].split("```", 1)[0]
    config = parse_config(tomllib.loads(block), "README.md")
    assert [s.vendor for s in config.sources] == ["sonarqube"]
    assert [getattr(t, "report_task", None) for t in config.tracks] == [
        ".scannerwork/report-task.txt"
    ]
