"""Any JSON, any bytes, any status into Dependency-Track's parsers and rules: a model (or a
value of `sansio`) or a ScanhubError, nothing else (as tests/test_fuzz.py does for the others)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanhub import Lifecycle, Scan, ScanhubError
from scanhub.sansio import Response
from scanhub.vendors.dependencytrack import sansio as dt

from .test_fuzz import _mutations, json_values
from .test_vendor_dependencytrack import (
    DT_METRICS,
    DT_PROCESSING_FALSE,
    DT_PROJECT,
    DT_UPLOAD,
    DT_WORKFLOW_RUNNING,
    DT_WORKFLOW_VULN_FAILED,
    PROJECT,
    TOKEN,
    violation,
)

PREVIOUS = Scan(
    dt.VENDOR,
    "s",
    TOKEN,
    PROJECT,
    Lifecycle.RUNNING,
    "BOM_PROCESSING=PENDING",
    created_at=datetime(2024, 6, 10, tzinfo=UTC),
    raw={},
)


def _workflow(r: Response) -> Any:
    return dt.workflow_scan(PREVIOUS, dt.parse_workflow(r, source="s"))


def _v4(r: Response) -> Any:
    """The token status, and the same body read as the project and the metrics, judged."""
    state = dt.parse_token_status(r, source="s")
    try:
        project = dt.parse_project(r, source="s")
    except ScanhubError:
        project = dt.Project(PROJECT)
    try:
        metrics = dt.parse_metrics(r, source="s")
    except ScanhubError:
        metrics = None
    return dt.judge_v4(PREVIOUS, state, project=project, metrics=metrics)


def _results(r: Response) -> Any:
    page = dt.parse_violations(r, source="s")
    judged = dt.judge_violations([page])
    judged.summary()
    return dt.with_results(PREVIOUS, judged, None)


PARSERS: dict[str, Callable[[Response], Any]] = {
    "upload": lambda r: dt.parse_upload(r, source="s", base_url="http://h", project_uuid=PROJECT),
    "token": _v4,
    "workflow": _workflow,
    "project": lambda r: dt.parse_project(r, source="s"),
    "metrics": lambda r: dt.parse_metrics(r, source="s"),
    "violations": _results,
}
SEEDS: dict[str, Any] = {
    "upload": DT_UPLOAD,
    "token": {**DT_PROCESSING_FALSE, **DT_PROJECT, **DT_METRICS},
    "workflow": DT_WORKFLOW_RUNNING,
    "project": DT_PROJECT,
    "metrics": DT_METRICS,
    "violations": [violation("FAIL"), violation("WARN")],
}
FAILED_SEED = DT_WORKFLOW_VULN_FAILED


def _check(name: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    try:
        out = PARSERS[name](Response(status, body, headers or {}, "op", ""))
    except ScanhubError:
        return
    assert out is None or isinstance(out, Scan | dt.Project | dt.Metrics)
    if isinstance(out, Scan):
        assert isinstance(out.lifecycle, Lifecycle) and isinstance(out.vendor_status, str)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=json_values, status=st.sampled_from([200, 200, 204, 400, 401, 403, 404, 500]))
def test_any_json(name: str, data: Any, status: int) -> None:
    _check(name, status, json.dumps(data).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_documented_payload_with_one_field_broken(name: str, data: st.DataObject) -> None:
    body = data.draw(_mutations(SEEDS[name]))
    total = data.draw(st.none() | st.text(max_size=6) | st.integers().map(str))
    _check(name, 200, json.dumps(body).encode(), {"x-total-count": total} if total else None)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_any_step_statuses(data: st.DataObject) -> None:
    """Every combination of documented and invented step names and statuses gives a Scan."""
    statuses = st.sampled_from([*dt.STATUS_MAP, "", "SUSPENDED"]) | st.text(max_size=8)
    names = st.sampled_from([*dt.STEPS, "PROJECT_CLONE"]) | st.text(min_size=1, max_size=8)
    body = data.draw(
        st.lists(
            st.fixed_dictionaries(
                {"step": names, "status": statuses},
                optional={"startedAt": json_values, "updatedAt": json_values,
                          "failureReason": json_values},
            ),
            min_size=1,
            max_size=7,
        )
    )  # fmt: skip
    scan = _workflow(Response(200, json.dumps(body).encode(), {}, "op", ""))
    assert isinstance(scan, Scan) and "=" in scan.vendor_status


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=64))
def test_any_bytes(name: str, raw: bytes) -> None:
    _check(name, 200, raw)


@pytest.mark.parametrize("name", ["upload", "workflow", "project", "violations"])
def test_truncated_documented_payload(name: str) -> None:
    body = json.dumps(SEEDS[name]).encode()
    for cut in range(1, len(body), max(1, len(body) // 25)):
        with pytest.raises(ScanhubError):
            PARSERS[name](Response(200, body[:cut], {}, "op", ""))


def test_the_failed_seed_is_failed() -> None:
    body = json.dumps(FAILED_SEED).encode()
    assert _workflow(Response(200, body, {}, "op", "")).lifecycle is Lifecycle.FAILED
