"""ThreadFix pure functions against seed 001 and the envelope quirks of vendor-notes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scanhub import AuthenticationError, BadRequestError, Lifecycle, NotFoundError, PayloadError
from scanhub.sansio import FilePart, threadfix

from .helpers import resp
from .payloads import (
    TF_AUTH_FAILED,
    TF_PENDING_SCAN_DONE,
    TF_RESTRICTED,
    TF_STATUSES,
    TF_UPLOAD_QUEUED,
    tf_pending_scan,
)

BASE = "http://localhost:8080/threadfix"

EXPECTED = {
    "QUEUED": Lifecycle.QUEUED,
    "UPLOADED": Lifecycle.RUNNING,
    "FINDINGS_GENERATING": Lifecycle.RUNNING,
    "CHANNEL_MERGING": Lifecycle.RUNNING,
    "APPLICATION_MERGING": Lifecycle.RUNNING,
    "APPLICATION_MERGED": Lifecycle.RUNNING,
    "LINKING_DEFECTS": Lifecycle.RUNNING,
    "DONE": Lifecycle.SUCCEEDED,
    "FINISHED_FINDING_PULLING": Lifecycle.SUCCEEDED,
    "SCAN_INTERRUPTED": Lifecycle.FAILED,
    "SCAN_QUEUED_FOR_DELETE": Lifecycle.CANCELLED,
    "SCAN_DELETED": Lifecycle.CANCELLED,
}


def test_table_covers_exactly_the_twelve_documented_statuses() -> None:
    assert set(threadfix.STATUS_MAP) == set(TF_STATUSES) == set(EXPECTED)
    assert dict(threadfix.STATUS_MAP) == EXPECTED


@pytest.mark.parametrize(("status", "lifecycle"), sorted(EXPECTED.items()))
def test_each_status_through_the_parser(status: str, lifecycle: Lifecycle) -> None:
    scan = threadfix.parse_pending_scan(resp(200, tf_pending_scan(status)), source="tf")
    assert scan.lifecycle is lifecycle
    assert scan.vendor_status == status
    assert scan.message == TF_STATUSES[status]


def test_seed_sample_done() -> None:
    scan = threadfix.parse_pending_scan(resp(200, TF_PENDING_SCAN_DONE), source="tf")
    assert (scan.id, scan.application_id, scan.final_scan_id) == ("2", "6", "12")
    assert scan.lifecycle is Lifecycle.SUCCEEDED
    # modifiedDate and time are epoch milliseconds
    when = datetime(2019, 10, 3, 15, 49, 33, tzinfo=UTC)
    assert scan.updated_at == when and scan.created_at == when and scan.finished_at == when
    assert scan.raw == TF_PENDING_SCAN_DONE


@pytest.mark.parametrize(
    "overrides",
    [
        {"error": True},
        {"errorMessage": "Unable to parse file"},
        {"error": True, "errorMessage": "x"},
    ],
)
def test_error_flag_or_message_means_failed_whatever_status(overrides: dict[str, object]) -> None:
    body = tf_pending_scan("DONE", **overrides)
    scan = threadfix.parse_pending_scan(resp(200, body), source="tf")
    assert scan.lifecycle is Lifecycle.FAILED
    assert scan.vendor_status == "DONE"
    assert scan.message


@pytest.mark.parametrize("payload", [TF_AUTH_FAILED, TF_RESTRICTED])
def test_auth_message_on_http_200_is_authentication_error(payload: dict[str, object]) -> None:
    with pytest.raises(AuthenticationError, match="API Key"):
        threadfix.parse_pending_scan(resp(200, payload), source="tf")


def test_success_false_is_an_error_even_on_200() -> None:
    body = {
        "message": "Couldn't find Application with ID 99",
        "success": False,
        "responseCode": -1,
        "object": None,
    }
    with pytest.raises(NotFoundError):
        threadfix.parse_pending_scan(resp(200, body), source="tf")
    body["message"] = "Invalid file format."
    with pytest.raises(BadRequestError, match="Invalid file format"):
        threadfix.parse_pending_scan(resp(200, body), source="tf")


def test_response_code_minus_one_is_not_an_http_status() -> None:
    scan = threadfix.parse_pending_scan(resp(200, tf_pending_scan("QUEUED")), source="tf")
    assert scan.lifecycle is Lifecycle.QUEUED


def test_http_401_with_envelope_is_authentication_error() -> None:
    with pytest.raises(AuthenticationError):
        threadfix.parse_pending_scan(resp(401, TF_AUTH_FAILED), source="tf")


def test_unknown_status_keeps_raw() -> None:
    scan = threadfix.parse_pending_scan(resp(200, tf_pending_scan("SOMETHING_NEW")), source="tf")
    assert scan.lifecycle is Lifecycle.UNKNOWN and scan.vendor_status == "SOMETHING_NEW"


def test_object_null_on_success_is_payload_error() -> None:
    body = {"message": "", "success": True, "responseCode": -1, "object": None}
    with pytest.raises(PayloadError, match="object"):
        threadfix.parse_pending_scan(resp(200, body), source="tf")


def test_requests_have_version_and_accept() -> None:
    req = threadfix.build_pending_scan(BASE, "6", "41", api_version="v2.8")
    assert req.url == f"{BASE}/rest/v2.8/applications/6/pendingScan/41/status"
    assert threadfix.auth_headers("k") == {
        "Authorization": "APIKEY k",
        "Accept": "application/json",
    }
    up = threadfix.build_upload(BASE, "6", FilePart("x", "scan.fpr", b"data"))
    assert up.url == f"{BASE}/rest/latest/applications/6/upload"
    assert up.file is not None and up.file.field_name == "file" and not up.idempotent


def test_empty_upload_is_refused_before_sending() -> None:
    with pytest.raises(BadRequestError, match="empty"):
        threadfix.build_upload(BASE, "6", FilePart("file", "scan.fpr", b""))


def test_upload_pending_id_from_links() -> None:
    scan = threadfix.parse_upload(
        resp(200, TF_UPLOAD_QUEUED),
        source="tf",
        base_url=BASE,
        application_id="6",
    )
    assert scan.id == "41" and scan.application_id == "6"
    assert scan.lifecycle is Lifecycle.QUEUED
    assert scan.message == "Scan upload process started."
    assert scan.links["status"].endswith("/pendingScan/41/status")


def test_upload_without_link_is_payload_error() -> None:
    body = dict(TF_UPLOAD_QUEUED, links=[])
    with pytest.raises(PayloadError, match="pendingScan"):
        threadfix.parse_upload(resp(200, body), source="tf", base_url=BASE, application_id="6")
