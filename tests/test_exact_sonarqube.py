"""SonarQube, exactly: every request as sent, every task, gate, page, report-task.txt and webhook
as read, every refusal as raised (vendor, source, operation, status, body excerpt, text). The
expected values are written out from the server's payloads (tests/test_vendor_sonarqube_payloads.py,
each naming its source), not taken from the code."""

from __future__ import annotations

import base64
import copy
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanhub import Scan
from scanhub.sansio import Request
from scanhub.vendors import BadRequestError, ConfigError, Lifecycle, PayloadError, Verdict
from scanhub.vendors.sonarqube import sansio as sq

from .expect import refused
from .helpers import resp
from .test_vendor_sonarqube_payloads import (
    ACTIVITY,
    PROJECT_STATUS_ERROR,
    REPORT_TASK_TXT,
    TASK_SUCCESS,
    TASKS_BY_STATUS,
    WEBHOOK_FAILED,
    WEBHOOK_GATE_ERROR,
    WEBHOOK_SUCCESS,
)

B = "https://sonar.example.com"
JSON = {"Accept": "application/json"}
ALL = "SUCCESS,FAILED,CANCELED,PENDING,IN_PROGRESS"
PROJECT = "sonarsource_test_AYhCAUXoEy1XQQcbVndf"
TASK_ID = "AYhSC2-LY0CHkWJxvNA9"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


#: task-example.json, read: the times are +0200, two hours ahead of UTC.
TASK = Scan(
    vendor="sonarqube",
    source="sq",
    id=TASK_ID,
    application_id=PROJECT,
    lifecycle=Lifecycle.SUCCEEDED,
    vendor_status="SUCCESS",
    links={"dashboard": f"{B}/dashboard?id={PROJECT}"},
    created_at=utc(2023, 5, 25, 8, 34, 21),
    started_at=utc(2023, 5, 25, 8, 34, 22),
    finished_at=utc(2023, 5, 25, 8, 34, 25),
    updated_at=utc(2023, 5, 25, 8, 34, 25),
    scan_type="REPORT",
    triggered_by="admin",
    final_scan_id="AYhSC3WDE6ILQDIMAPIp",
)


def task(body: Any, status: int = 200, **kw: Any) -> Scan:
    return sq.parse_task(resp(status, body, operation="get task"), source="sq", base_url=B, **kw)


def gate(body: Any, status: int = 200) -> sq.QualityGate:
    return sq.parse_quality_gate(resp(status, body, operation="quality gate"), source="sq")


def activity(body: Any, page: int = 1, base_url: str = B) -> sq.ActivityPage:
    return sq.parse_activity(
        resp(200, body, operation="list tasks"), source="sq", base_url=base_url, page=page
    )


def hook(payload: Any, headers: dict[str, str] | None = None, base_url: str = "") -> Scan | None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return sq.parse_webhook(headers or {}, body, source="sq", base_url=base_url)


# --- requests -------------------------------------------------------------------------------------


def test_the_task_request() -> None:
    assert sq.build_task(B, TASK_ID) == Request(
        "GET", f"{B}/api/ce/task", "get task", params=(("id", TASK_ID),), headers=JSON
    )


def test_the_quality_gate_request() -> None:
    assert sq.build_quality_gate(B, "AX1") == Request(
        "GET",
        f"{B}/api/qualitygates/project_status",
        "quality gate",
        params=(("analysisId", "AX1"),),
        headers=JSON,
    )


@pytest.mark.parametrize("empty", ["", "   "])
def test_requests_without_an_id_are_refused_before_sending(empty: str) -> None:
    refused(
        lambda: sq.build_task(B, empty),
        BadRequestError,
        vendor="sonarqube",
        source="",
        operation="get task",
        message="task id is empty",
    )
    refused(
        lambda: sq.build_quality_gate(B, empty),
        BadRequestError,
        vendor="sonarqube",
        source="",
        operation="quality gate",
        message="analysis id is empty",
    )
    refused(
        lambda: sq.build_activity(B, empty),
        BadRequestError,
        vendor="sonarqube",
        source="",
        operation="list tasks",
        message="project key is empty",
    )


def test_the_activity_request_with_its_defaults_and_every_option() -> None:
    assert sq.build_activity(B, "webshop") == Request(
        "GET",
        f"{B}/api/ce/activity",
        "list tasks",
        params=(("component", "webshop"), ("status", ALL), ("p", "1"), ("ps", "100")),
        headers=JSON,
    )
    assert sq.build_activity(
        B, "webshop", statuses="PENDING", task_type="REPORT", page=3, page_size=1000
    ).params == (
        ("component", "webshop"),
        ("status", "PENDING"),
        ("type", "REPORT"),
        ("p", "3"),
        ("ps", "1000"),
    )
    assert sq.build_activity(B, "webshop", page=1, page_size=1).params[-2:] == (
        ("p", "1"),
        ("ps", "1"),
    )


@pytest.mark.parametrize(("page", "size"), [(0, 100), (1, 0), (1, 1001), (-1, 10)])
def test_pages_the_server_would_refuse_are_refused_before_sending(page: int, size: int) -> None:
    refused(
        lambda: sq.build_activity(B, "webshop", page=page, page_size=size),
        BadRequestError,
        vendor="sonarqube",
        source="",
        operation="list tasks",
        message="page must be >= 1 and page size 1..1000",
    )


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (None, ALL),
        ("", ALL),
        (" , ", ALL),
        ("queued", "PENDING"),
        ("running,in_progress", "IN_PROGRESS"),
        ("succeeded, failed , cancelled", "SUCCESS,FAILED,CANCELED"),
        ("pending,,in_progress", "PENDING,IN_PROGRESS"),
        ("canceled,cancelled", "CANCELED"),
    ],
)
def test_the_status_filter_speaks_the_servers_words(given: str | None, sent: str) -> None:
    assert sq.statuses_param(given) == sent


def test_a_status_the_server_cannot_filter_by_is_refused() -> None:
    refused(
        lambda: sq.statuses_param("queued,DONE", source="sq"),
        BadRequestError,
        vendor="sonarqube",
        source="sq",
        operation="list tasks",
        message="status 'DONE' is not one of SUCCESS, FAILED, CANCELED, PENDING, IN_PROGRESS "
        "(or queued, running, succeeded, failed, cancelled)",
    )


def test_auth_headers_in_both_forms_and_no_other() -> None:
    assert sq.auth_headers("squ_abc") == {"Authorization": "Bearer squ_abc"}
    assert sq.auth_headers("squ_abc", "bearer") == {"Authorization": "Bearer squ_abc"}
    # the token as the Basic user name, an empty password: base64("squ_abc:")
    assert sq.auth_headers("squ_abc", "basic") == {"Authorization": "Basic c3F1X2FiYzo="}
    assert base64.b64decode("c3F1X2FiYzo=") == b"squ_abc:"
    refused(
        lambda: sq.auth_headers("squ_abc", "digest"),
        BadRequestError,
        vendor="sonarqube",
        source="",
        operation="configure",
        message="auth must be one of bearer, basic, got 'digest'",
    )


# --- one task -------------------------------------------------------------------------------------


def test_the_task_example_read_exactly() -> None:
    assert task(TASK_SUCCESS) == TASK


def test_every_task_state_read_exactly() -> None:
    queued = Scan(
        vendor="sonarqube",
        source="sq",
        id=TASK_ID,
        application_id=PROJECT,
        lifecycle=Lifecycle.QUEUED,
        vendor_status="PENDING",
        links={"dashboard": f"{B}/dashboard?id={PROJECT}"},
        created_at=utc(2023, 5, 25, 8, 34, 21),
        updated_at=utc(2023, 5, 25, 8, 34, 21),
        scan_type="REPORT",
        triggered_by="admin",
    )
    assert task(TASKS_BY_STATUS["PENDING"]) == queued
    running = attrs.evolve(
        queued,
        lifecycle=Lifecycle.RUNNING,
        vendor_status="IN_PROGRESS",
        started_at=utc(2023, 5, 25, 8, 34, 22),
        updated_at=utc(2023, 5, 25, 8, 34, 22),
    )
    assert task(TASKS_BY_STATUS["IN_PROGRESS"]) == running
    failed = task(TASKS_BY_STATUS["FAILED"])
    assert failed == attrs.evolve(
        TASK,
        lifecycle=Lifecycle.FAILED,
        vendor_status="FAILED",
        final_scan_id=None,
        message=TASKS_BY_STATUS["FAILED"]["task"]["errorMessage"],
    )
    cancelled = task(TASKS_BY_STATUS["CANCELED"])
    assert cancelled == attrs.evolve(
        queued,
        lifecycle=Lifecycle.CANCELLED,
        vendor_status="CANCELED",
        finished_at=utc(2023, 5, 25, 8, 35),
        updated_at=utc(2023, 5, 25, 8, 35),
    )


def test_a_succeeded_task_never_carries_an_error_message() -> None:
    body = copy.deepcopy(TASK_SUCCESS)
    body["task"]["errorMessage"] = "left over"
    assert task(body).message is None


def test_the_task_type_is_read_from_older_servers_task_type_too() -> None:
    body = copy.deepcopy(TASK_SUCCESS)
    del body["task"]["type"]
    body["task"]["taskType"] = "REPORT"
    assert task(body).scan_type == "REPORT"


def test_an_unknown_status_is_warned_naming_sonarqube(caplog: pytest.LogCaptureFixture) -> None:
    value = f"PAUSED-{uuid.uuid4().hex[:8]}"  # its own each run: warnings are once per process
    body = copy.deepcopy(TASK_SUCCESS)
    body["task"]["status"] = value
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        scan = task(body)
    assert (scan.lifecycle, scan.vendor_status, scan.finished_at) == (
        Lifecycle.UNKNOWN,
        value,
        None,
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown sonarqube status value {value!r} mapped to unknown"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the response is an array, expected an object"),
        ({"tasks": []}, "`task` is null, expected an object"),
        ({"task": "AX"}, "`task` is a string, expected an object"),
        ({"task": {"status": "SUCCESS"}}, "missing identity field id"),
    ],
)
def test_a_task_answer_that_is_not_a_task_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: task(body),
        PayloadError,
        vendor="sonarqube",
        source="sq",
        operation="get task",
        status=200,
        body=json.dumps(body),
        message=message,
    )


def test_refreshing_refuses_an_answer_about_another_task() -> None:
    previous = attrs.evolve(TASK, id="another", lifecycle=Lifecycle.RUNNING)
    refused(
        lambda: task(TASK_SUCCESS, previous=previous),
        PayloadError,
        vendor="sonarqube",
        source="sq",
        operation="get task",
        status=200,
        body=json.dumps(TASK_SUCCESS),
        message=f"asked for task 'another', the server answered task {TASK_ID!r}",
    )


def test_refreshing_keeps_the_tracked_project_key_and_only_that() -> None:
    tracked = attrs.evolve(TASK, application_id="org:app", lifecycle=Lifecycle.UNKNOWN)
    assert task(TASK_SUCCESS, previous=tracked) == attrs.evolve(TASK, application_id="org:app")
    unnamed = attrs.evolve(TASK, application_id="", lifecycle=Lifecycle.UNKNOWN)
    assert task(TASK_SUCCESS, previous=unnamed) == TASK  # no key to keep: the server's


def test_a_tracks_first_answer_naming_another_project_is_the_tracks_config_error() -> None:
    """A track of task_id + project_key that do not belong together: the first answer names
    another project, whose gate must not be reported under the tracked one (exit 2, not a
    pass or a failure of the wrong project). Once answered, a rename keeps the key (above)."""
    placeholder = Scan(sq.VENDOR, "sq", TASK_ID, "payments", Lifecycle.UNKNOWN, "")
    refused(
        lambda: task(TASK_SUCCESS, previous=placeholder),
        ConfigError,
        vendor="sonarqube",
        source="sq",
        operation="get task",
        status=200,
        body=json.dumps(TASK_SUCCESS),
        message=f"task {TASK_ID!r} is project {TASK.application_id!r}'s, not the tracked"
        " 'payments': check the track's project_key",
    )
    same = Scan(sq.VENDOR, "sq", TASK_ID, TASK.application_id, Lifecycle.UNKNOWN, "")
    assert task(TASK_SUCCESS, previous=same) == TASK


def test_dashboard_links_quote_every_reserved_character() -> None:
    body = copy.deepcopy(TASK_SUCCESS)
    body["task"].update(componentKey="org.example:web/shop", branch="feature/a&b")
    assert task(body).links == {
        "dashboard": f"{B}/dashboard?id=org.example%3Aweb%2Fshop&branch=feature%2Fa%26b"
    }
    body["task"]["pullRequest"] = "4/2"
    assert task(body).links == {
        "dashboard": f"{B}/dashboard?id=org.example%3Aweb%2Fshop&pullRequest=4%2F2"
    }


# --- the quality gate -----------------------------------------------------------------------------


def test_the_project_status_example_read_exactly() -> None:
    assert gate(PROJECT_STATUS_ERROR) == sq.QualityGate(
        "ERROR",
        Verdict.FAIL,
        (
            sq.Condition("new_coverage", "ERROR", "LT", "82.50562381034781", "85"),
            sq.Condition("new_blocker_violations", "ERROR", "GT", "14", "0"),
            sq.Condition("new_critical_violations", "ERROR", "GT", "1", "0"),
            sq.Condition("new_sqale_debt_ratio", "OK", "GT", "0.6562109862671661", "5"),
            sq.Condition("reopened_issues", "OK", "GT", "0"),
            sq.Condition("open_issues", "ERROR", "GT", "17"),
            sq.Condition("skipped_tests", "OK", "GT", "0"),
        ),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"OK"', "the response is a string, expected an object"),
        ({}, "`projectStatus` is null, expected an object"),
        ({"projectStatus": [1]}, "`projectStatus` is an array, expected an object"),
    ],
)
def test_a_gate_answer_that_is_not_a_gate_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: gate(body),
        PayloadError,
        vendor="sonarqube",
        source="sq",
        operation="quality gate",
        status=200,
        body=body.decode() if isinstance(body, bytes) else json.dumps(body),
        message=message,
    )


def test_odd_conditions_are_skipped_or_read_with_placeholders() -> None:
    qg = sq.quality_gate_from(
        {"conditions": [None, "x", {"comparator": "GT"}, {"metricKey": "m", "status": "WARN"}]},
        webhook=False,
    )
    assert qg == sq.QualityGate(
        "", Verdict.NONE, (sq.Condition("?", "", "GT"), sq.Condition("m", "WARN"))
    )


def test_webhook_conditions_read_metric_operator_and_value() -> None:
    qg = sq.quality_gate_from(
        {
            "status": "ERROR",
            "conditions": [
                {"metric": "new_coverage", "operator": "LESS_THAN", "value": "62.5",
                 "status": "ERROR", "errorThreshold": "80"},
                {"metricKey": "old_style", "status": "OK"},
            ],
        },
        webhook=True,
    )  # fmt: skip
    assert qg.conditions == (
        sq.Condition("new_coverage", "ERROR", "LESS_THAN", "62.5", "80"),
        sq.Condition("old_style", "OK"),
    )
    # project_status's names mean nothing in a webhook, and the webhook's nothing there
    assert sq.quality_gate_from(
        {"conditions": [{"metric": "m", "comparator": "GT", "actualValue": "1"}]}, webhook=True
    ).conditions == (sq.Condition("m", ""),)
    assert sq.quality_gate_from(
        {"conditions": [{"metric": "m", "operator": "GT", "value": "1"}]}, webhook=False
    ).conditions == (sq.Condition("?", ""),)


def test_an_unknown_gate_status_is_warned_naming_sonarqube(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = f"AMBER-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        qg = sq.quality_gate_from({"status": value}, webhook=False)
    assert (qg.status, qg.verdict) == (value, Verdict.NONE)
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown sonarqube decision value {value!r} mapped to none"
    ]


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        # ERROR names the error threshold even when a warning threshold is set
        (sq.Condition("cov", "ERROR", "LT", "62", "80", "90"), "cov 62 < 80 (ERROR)"),
        # WARN names the warning threshold
        (sq.Condition("cov", "WARN", "LT", "85", "80", "90"), "cov 85 < 90 (WARN)"),
        # ... or the error threshold when it has no warning threshold
        (sq.Condition("cov", "WARN", "LT", "85", "80"), "cov 85 < 80 (WARN)"),
        (sq.Condition("cov", "ERROR", "LT", "62", None, "90"), "cov 62 < 90 (ERROR)"),
        (sq.Condition("bugs", "ERROR", "NOT_EQUALS", "3", "0"), "bugs 3 != 0 (ERROR)"),
        (sq.Condition("bugs", "ERROR", "ODD", "3", "0"), "bugs 3 ODD 0 (ERROR)"),
        (sq.Condition("bugs", "ERROR", None, "3", "0"), "bugs 3 ? 0 (ERROR)"),
        (sq.Condition("bugs", "ERROR", "GT", None, "0"), "bugs (no value) > 0 (ERROR)"),
        (sq.Condition("bugs", "ERROR", "GT", "0"), "bugs 0 (ERROR)"),
        (sq.Condition("bugs", "ERROR", "GT"), "bugs (no value) (ERROR)"),
    ],
)
def test_each_condition_described(condition: sq.Condition, text: str) -> None:
    assert condition.describe() == text


def test_one_condition_too_many_is_counted() -> None:
    conditions = tuple(sq.Condition(f"m{i}", "ERROR", "GT", "1", "0") for i in range(9))
    summary = sq.QualityGate("ERROR", Verdict.FAIL, conditions).summary()
    assert (
        summary
        == "quality gate ERROR: "
        + "; ".join(f"m{i} 1 > 0 (ERROR)" for i in range(8))
        + "; and 1 more"
    )
    eight = sq.QualityGate("ERROR", Verdict.FAIL, conditions[:8]).summary()
    assert eight is not None and eight.endswith("m7 1 > 0 (ERROR)")


def test_the_gate_joins_a_task_without_a_payload_and_leaves_one_it_lost() -> None:
    qg = gate(PROJECT_STATUS_ERROR)
    bare = attrs.evolve(TASK, raw=None)
    joined = sq.with_quality_gate(bare, qg)
    assert joined.raw == {"projectStatus": PROJECT_STATUS_ERROR["projectStatus"]}
    assert (joined.verdict, joined.message) == (Verdict.FAIL, qg.summary())
    lost = sq.without_quality_gate(joined, "purged")
    assert lost == attrs.evolve(
        TASK, verdict=Verdict.NONE, message="quality gate not available: purged"
    )


# --- a project's tasks ----------------------------------------------------------------------------


def test_the_activity_example_read_exactly() -> None:
    got = activity(ACTIVITY)
    provisioning = Scan(
        vendor="sonarqube",
        source="sq",
        id="71",
        application_id="",
        lifecycle=Lifecycle.SUCCEEDED,
        vendor_status="SUCCESS",
        created_at=utc(1970, 1, 1),
        started_at=utc(2023, 5, 23, 8, 28, 41),
        finished_at=utc(2023, 5, 23, 8, 29, 45),
        updated_at=utc(2023, 5, 23, 8, 29, 45),
        scan_type="GITHUB_AUTH_PROVISIONING",
    )
    assert got == sq.ActivityPage([TASK, provisioning], 1, 1, 10, 2)
    assert activity({}, page=3) == sq.ActivityPage([], 3, None, None, None)
    first = sq.parse_activity(resp(200, {}, operation="list tasks"), source="sq", base_url=B)
    assert first.page == 1  # the first page unless told


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (["x"], "the response is an array, expected an object"),
        ({"tasks": {}}, "`tasks` is an object, expected an array"),
        ({"tasks": [7]}, "a task is a number, expected an object"),
        ({"tasks": [{"status": "SUCCESS"}]}, "missing identity field id"),
    ],
)
def test_a_page_that_is_not_a_page_of_tasks_is_refused(body: Any, message: str) -> None:
    refused(
        lambda: activity(body),
        PayloadError,
        vendor="sonarqube",
        source="sq",
        operation="list tasks",
        status=200,
        body=json.dumps(body),
        message=message,
    )


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        # (page asked, scans, pageIndex, pageSize, total), size asked 2 -> another page?
        ((1, 2, 1, 2, 5), True),
        ((2, 2, 2, 2, 5), True),  # 4 of 5 seen
        ((2, 2, 2, 2, 4), False),  # 4 of 4 seen: the last full page
        ((1, 1, 1, 2, 5), False),  # a short page is the last
        ((1, 2, 1, None, 5), True),  # no pageSize: the size asked
        ((1, 2, None, 2, 5), False),  # no paging (before 9.4): one page only
        ((1, 2, 1, 2, None), False),  # no total
        ((1, 0, 1, 2, 5), False),  # nothing on this page
        ((3, 3, 3, 3, 10), True),  # 9 of 10
    ],
)
def test_when_another_page_is_worth_asking_for(
    page: tuple[int, int, int | None, int | None, int | None], expected: bool
) -> None:
    number, count, index, size, total = page
    scans = [attrs.evolve(TASK, id=str(i)) for i in range(count)]
    assert sq.ActivityPage(scans, number, index, size, total).more(2) is expected


# --- report-task.txt ------------------------------------------------------------------------------


def test_the_report_task_read_exactly() -> None:
    report = sq.parse_report_task(REPORT_TASK_TXT, source="sq")
    assert report == sq.ReportTask(
        ce_task_id=TASK_ID,
        project_key="org.example:webshop",
        server_url="https://sonar.example.com",
        ce_task_url=f"https://sonar.example.com/api/ce/task?id={TASK_ID}",
        dashboard_url="https://sonar.example.com/dashboard?id=org.example%3Awebshop"
        "&branch=feature%2Flogin",
        organization="acme",
        branch="feature/login",
        server_version="10.5.1.90531",
    )
    assert report.properties["serverVersion"] == "10.5.1.90531" and len(report.properties) == 8
    assert sq.scan_from_report_task(report, source="sq") == Scan(
        vendor="sonarqube",
        source="sq",
        id=TASK_ID,
        application_id="org.example:webshop",
        lifecycle=Lifecycle.UNKNOWN,
        vendor_status="",
        links={"dashboard": report.dashboard_url or ""},
    )


def test_the_task_id_comes_first_from_ce_task_id_then_from_the_url() -> None:
    both = "ceTaskId=FROM-ID\nceTaskUrl=https://s/api/ce/task?id=FROM-URL\nprojectKey=p\n"
    assert sq.parse_report_task(both).ce_task_id == "FROM-ID"
    url_only = "ceTaskUrl=https://s/api/ce/task?other=1&id=%20FROM-URL%20\n"
    report = sq.parse_report_task(url_only.encode())
    assert (report.ce_task_id, report.project_key) == ("FROM-URL", None)
    refused(
        lambda: sq.scan_from_report_task(report, source="sq"),
        BadRequestError,
        vendor="sonarqube",
        source="sq",
        operation="read report-task.txt",
        message="no projectKey",
    )
    no_dashboard = sq.scan_from_report_task(
        sq.parse_report_task("ceTaskId=T\nprojectKey=p\n"), source="sq"
    )
    assert no_dashboard.links == {}


@pytest.mark.parametrize(
    "text",
    [
        "projectKey=p\n",
        "ceTaskId=  \nceTaskUrl=https://s/api/ce/task?x=1\n",
        "ceTaskUrl=https://[sonar/api/ce/task?id=T\n",  # not a URL
        "",
    ],
)
def test_a_file_naming_no_task_is_refused(text: str) -> None:
    refused(
        lambda: sq.parse_report_task(text, source="sq"),
        PayloadError,
        vendor="sonarqube",
        source="sq",
        operation="read report-task.txt",
        message="report-task.txt has no ceTaskId (nor a ceTaskUrl with an id)",
    )


def test_a_file_that_is_not_utf8_is_refused() -> None:
    refused(
        lambda: sq.parse_report_task(b"ceTaskId=\xff\xfe", source="sq"),
        PayloadError,
        vendor="sonarqube",
        source="sq",
        operation="read report-task.txt",
        message="report-task.txt is not UTF-8 text",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Java's white space is space, tab and form feed: nothing else is skipped
        ("  \t\fkey = value", {"key": "value"}),
        ("\u2003key=v", {"\u2003key": "v"}),
        ("k \u2003v", {"k": "\u2003v"}),
        ("k=\u2003v", {"k": "\u2003v"}),
        ("k=a\\\n\u2003b", {"k": "a\u2003b"}),
        # an X is an ordinary character, at the start of a line, a key, a value or a continuation
        ("Xkey=Xvalue", {"Xkey": "Xvalue"}),
        ("serverX=1", {"serverX": "1"}),
        ("k Xv", {"k": "Xv"}),
        ("k=a\\\nXb", {"k": "aXb"}),
        # separators: =, :, white space; an escaped one belongs to the key
        ("k:v", {"k": "v"}),
        ("k v", {"k": "v"}),
        ("=v", {"": "v"}),
        ("a\\==c", {"a=": "c"}),
        # comments, continuations and escapes
        ("# c\n! c\nk=v", {"k": "v"}),
        ("k=a\\\\\\\\\nx=1", {"k": "a\\\\", "x": "1"}),  # four backslashes: two, no continuation
        ("k=a\\\\\\\nb", {"k": "a\\b"}),  # three: one, and a continuation
        ("k=\\u20ac \\t\\uzz", {"k": "\u20ac \tuzz"}),
        # a continuation at the end of the file: Java's LineReader drops the backslash (one
        # continuation, or the last of several lines)
        ("k=ab\\", {"k": "ab"}),
        ("k=a\\\nb\\", {"k": "ab"}),
        ("k=ab\\\\", {"k": "ab\\"}),  # two backslashes: an escaped one, no continuation
    ],
)
def test_java_properties_as_java_reads_them(text: str, expected: dict[str, str]) -> None:
    assert sq.parse_properties(text) == expected


# Every character Python's str.splitlines() breaks a line on that Java does not.
NOT_JAVA_LINE_ENDS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@pytest.mark.parametrize("ch", NOT_JAVA_LINE_ENDS)
def test_a_natural_line_ends_only_at_cr_lf_or_crlf(ch: str) -> None:
    # Java ends a natural line at \n, \r or \r\n only: anything else is part of the value
    # (a form feed is white space, so it is kept inside a value but skipped before a key).
    text = f"ceTaskId=A{ch}B\nprojectKey=p{ch}\n"
    assert sq.parse_properties(text) == {"ceTaskId": f"A{ch}B", "projectKey": f"p{ch}"}
    assert sq.parse_report_task(text.encode()).ce_task_id == f"A{ch}B"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1\rb=2\r\nc=3\nd=4", {"a": "1", "b": "2", "c": "3", "d": "4"}),
        ("a=x\\\r  y\r\nb=z\\\r\n\tw", {"a": "xy", "b": "zw"}),  # continued after \r, \r\n
        ("a=1\r\n\r\n# c\r!c\rb=2", {"a": "1", "b": "2"}),  # blank and comment lines
        ("a=1\n\r", {"a": "1"}),  # \n then \r: two line ends, not one
    ],
)
def test_cr_lf_and_crlf_each_end_a_line(text: str, expected: dict[str, str]) -> None:
    assert sq.parse_properties(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a UTF-16 surrogate pair, as Properties.store(OutputStream) writes U+1F600, is one
        # character; so is a pair split across a continuation
        ("k=\\uD83D\\uDE00", {"k": "\U0001f600"}),
        ("k=\\ud83d\\ude00!", {"k": "\U0001f600!"}),
        ("\\uD83D\\uDE00=v", {"\U0001f600": "v"}),
        ("k=\\uD83D\\\n  \\uDE00", {"k": "\U0001f600"}),
        # a lone surrogate (no character at all) is U+FFFD, the replacement character
        ("k=\\uD83D", {"k": "\ufffd"}),
        ("k=a\\uDE00b", {"k": "a\ufffdb"}),
        ("k=\\uDE00\\uD83D", {"k": "\ufffd\ufffd"}),  # low before high: two lone ones
        ("k=\\uD83D\\uD83D\\uDE00", {"k": "\ufffd\U0001f600"}),
    ],
)
def test_escaped_surrogates_join_into_one_character(text: str, expected: dict[str, str]) -> None:
    got = sq.parse_properties(text)
    assert got == expected
    for key, value in got.items():
        (key + value).encode("utf-8")  # no lone surrogate is left to fail later


def java_store(props: dict[str, str], *, escape_unicode: bool) -> str:
    """`props` as `java.util.Properties.store` writes them (`saveConvert` of the JDK, with its
    date comment): `escape_unicode` as store(OutputStream) (every UTF-16 code unit outside
    U+0020..U+007E as \\uXXXX), else as store(Writer) (written as they are)."""

    def convert(text: str, escape_space: bool) -> str:
        out = []
        for i, ch in enumerate(text):
            if ch == " ":
                out.append("\\ " if i == 0 or escape_space else " ")
            elif ch in "\t\n\r\f":
                out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f"}[ch])
            elif ch in "=:#!\\":
                out.append("\\" + ch)
            elif escape_unicode and not " " <= ch <= "~":
                units = ch.encode("utf-16-be")
                for j in range(0, len(units), 2):
                    out.append(f"\\u{int.from_bytes(units[j : j + 2]):04X}")
            else:
                out.append(ch)
        return "".join(out)

    lines = ["#comment", "#Mon Jan 01 00:00:00 UTC 2024"]
    lines += [f"{convert(k, True)}={convert(v, False)}" for k, v in props.items()]
    return "".join(line + "\n" for line in lines)


# Any text a Java string can hold as characters (no lone surrogate).
JAVA_TEXT = st.text(st.characters(exclude_categories=["Cs"]))


@given(props=st.dictionaries(JAVA_TEXT, JAVA_TEXT, max_size=8), escape_unicode=st.booleans())
@settings(max_examples=300)
def test_what_java_writes_reads_back_equal(props: dict[str, str], escape_unicode: bool) -> None:
    assert sq.parse_properties(java_store(props, escape_unicode=escape_unicode)) == props


@given(
    props=st.dictionaries(JAVA_TEXT, JAVA_TEXT, max_size=8),
    ending=st.sampled_from(["\n", "\r", "\r\n"]),
)
def test_what_java_writes_reads_back_equal_whatever_the_line_ends(
    props: dict[str, str], ending: str
) -> None:
    text = java_store(props, escape_unicode=False).replace("\n", ending)
    assert sq.parse_properties(text) == props


# --- webhooks -------------------------------------------------------------------------------------

HOOK = Scan(
    vendor="sonarqube",
    source="sq",
    id="AVh21JS2JepAEhwQ-b3u",
    application_id="org.sonarqube:example",
    lifecycle=Lifecycle.SUCCEEDED,
    vendor_status="SUCCESS",
    verdict=Verdict.PASS,
    links={"dashboard": "http://localhost:9000/dashboard?id=org.sonarqube%3Aexample"},
    finished_at=utc(2016, 11, 18, 9, 46, 28),
    updated_at=utc(2016, 11, 18, 9, 46, 28),
    scan_type="REPORT",
)


def test_the_webhook_examples_read_exactly() -> None:
    assert hook(WEBHOOK_SUCCESS) == HOOK
    assert hook(WEBHOOK_GATE_ERROR) == attrs.evolve(
        HOOK,
        verdict=Verdict.FAIL,
        message="quality gate ERROR: new_coverage 62.5 < 80 (ERROR)",
    )
    assert hook(WEBHOOK_FAILED) == attrs.evolve(
        HOOK, lifecycle=Lifecycle.FAILED, vendor_status="FAILED", verdict=Verdict.NONE
    )


def test_a_failed_task_takes_no_verdict_from_a_gate_it_was_sent_with() -> None:
    payload = {**WEBHOOK_GATE_ERROR, "status": "FAILED"}
    got = hook(payload)
    assert got is not None and (got.verdict, got.message) == (Verdict.NONE, None)


def test_webhook_times_and_links_fall_back_in_order() -> None:
    payload = copy.deepcopy(WEBHOOK_SUCCESS)
    payload["changedAt"] = "2016-11-18T10:50:00+0100"
    payload["branch"]["url"] = "http://localhost:9000/dashboard?id=x&branch=b"
    got = hook(payload)
    assert got is not None
    assert (got.finished_at, got.updated_at) == (
        utc(2016, 11, 18, 9, 46, 28),
        utc(2016, 11, 18, 9, 50),
    )
    assert got.links == {"dashboard": "http://localhost:9000/dashboard?id=x&branch=b"}
    del payload["analysedAt"], payload["branch"]
    got = hook(payload)
    assert got is not None
    assert (got.finished_at, got.updated_at) == (utc(2016, 11, 18, 9, 50), utc(2016, 11, 18, 9, 50))
    assert got.links == {"dashboard": "http://localhost:9000/dashboard?id=org.sonarqube%3Aexample"}
    del payload["changedAt"]
    payload["analysedAt"] = "2016-11-18T10:46:28+0100"
    payload["project"]["url"] = "/relative"  # not a URL: built from base_url instead
    got = hook(payload, base_url=B)
    assert got is not None and got.updated_at == utc(2016, 11, 18, 9, 46, 28)
    assert got.links == {"dashboard": f"{B}/dashboard?id=org.sonarqube%3Aexample"}
    got = hook(payload)
    assert got is not None and got.links == {}  # no base_url: no link
    got = sq.parse_webhook({}, json.dumps(payload).encode(), source="sq")  # none by default
    assert got is not None and got.links == {}


def test_an_unfinished_status_in_a_webhook_has_no_end() -> None:
    got = hook({**WEBHOOK_SUCCESS, "status": "IN_PROGRESS"})
    assert got is not None and got.finished_at is None and got.lifecycle is Lifecycle.RUNNING
    missing = hook({k: v for k, v in WEBHOOK_FAILED.items() if k != "status"})
    assert missing is not None and (missing.lifecycle, missing.vendor_status) == (
        Lifecycle.UNKNOWN,
        "",
    )


def test_the_project_key_may_come_from_the_header() -> None:
    payload = {**WEBHOOK_FAILED, "project": "not an object"}
    got = hook(payload, {"X-SonarQube-Project": " org:app "})
    assert got is not None and got.application_id == "org:app"


def test_an_unknown_webhook_status_is_warned_naming_sonarqube(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = f"HALTED-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="scanhub"):
        got = hook({**WEBHOOK_FAILED, "status": value})
    assert got is not None and got.lifecycle is Lifecycle.UNKNOWN
    assert [r.getMessage() for r in caplog.records] == [
        f"scanhub: unknown sonarqube status value {value!r} mapped to unknown"
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1], "the payload is an array, expected an object"),
        ({"taskId": "T", "project": {"name": "x"}}, "missing identity field project.key (and "
         "X-SonarQube-Project)"),
    ],
)  # fmt: skip
def test_a_delivery_that_cannot_be_read_is_refused(payload: Any, message: str) -> None:
    refused(
        lambda: hook(payload),
        PayloadError,
        vendor="sonarqube",
        source="sq",
        operation="webhook",
        status=200,
        body=json.dumps(payload),
        message=message,
    )


# --- errors ---------------------------------------------------------------------------------------


def test_error_text_reads_the_envelope_and_explains_a_bare_401() -> None:
    assert sq.error_text(resp(200, {"errors": [{"msg": "no"}]})) is None
    assert sq.error_text(resp(300, {"errors": [{"msg": "moved"}]})) == "moved"
    assert sq.error_text(resp(400, {"errors": [{"msg": "a"}, "b", {"msg": ""}, {"msg": "c"}]})) == (
        "a; c"
    )
    assert sq.error_text(resp(400, {"errors": [], "message": "from message"})) == "from message"
    assert sq.error_text(resp(400, {"msg": "from msg"})) == "from msg"
    assert sq.error_text(resp(404, b"not json")) is None
    assert sq.error_text(resp(401, b"")) == (
        'the token was refused (401, no detail): check the token, and use auth = "basic" '
        "for SonarQube before 10.0, which does not read Bearer tokens"
    )
    assert sq.error_text(resp(401, {"errors": [{"msg": "expired"}]})) == "expired"
