"""The module-level mapping tables, value by value, against the vendor documents they cite.

Every expected table below is written out from the documents (shared/seeds/000-004 and
shared/vendor-notes.md), with the line it comes from, never copied from the code: a change to a
table must be a change to what a document says. (mutmut mutates code inside functions only, so
these tables are checked here rather than by mutation testing; tests/test_meta.py checks that
adapters.md shows the same tables.)
"""

from __future__ import annotations

from scanhub import Lifecycle, Verdict
from scanhub.sansio import appsecplus, apptrust, iq, threadfix

L, V = Lifecycle, Verdict


def test_iq_promote_scan_status() -> None:
    # seed 000, "Step 5 - Check the Status": PENDING "is pending (still in progress)", FAILED
    # "in a rare case, the scan promotion failed" with a reason, COMPLETED with report links.
    assert dict(iq.STATUS_MAP) == {
        "PENDING": L.RUNNING,
        "COMPLETED": L.SUCCEEDED,
        "FAILED": L.FAILED,
    }


def test_iq_policy_actions_and_webhook_outcomes() -> None:
    # vendor-notes, third-party scan status: policyAction None | Warning | Failure.
    assert dict(iq.POLICY_ACTION_MAP) == {"None": V.PASS, "Warning": V.WARN, "Failure": V.FAIL}
    # seed 002 webhook outcome "fail"; the rest of IQ's policy-action words in lower case.
    assert dict(iq.OUTCOME_MAP) == {
        "fail": V.FAIL,
        "failure": V.FAIL,
        "warn": V.WARN,
        "warning": V.WARN,
        "pass": V.PASS,
        "none": V.PASS,
    }


def test_iq_stages_limits_and_report_links() -> None:
    # seed 000 step 2: build, stage-release, release, operate; vendor-notes: develop, source.
    assert iq.STAGES == ("build", "stage-release", "release", "operate", "develop", "source")
    # adapters.md: the server refuses develop as a promote target.
    assert iq.PROMOTE_TARGETS == ("build", "stage-release", "release", "operate", "source")
    # vendor-notes: Cloud allows 1,500 requests per IP per 5 minutes; the 429 says "wait 5
    # minutes" and sends no Retry-After.
    assert iq.CLOUD_RATE_LIMIT == (1500, 300.0)
    assert iq.CLOUD_429_WAIT == 300.0
    assert iq.STATUS_TTL == 7200.0  # status ids expire two hours after the promote request
    # seed 000 step 5, the COMPLETED answer's four links in order.
    assert iq.REPORT_LINKS == (
        ("report_html", "reportHtmlUrl"),
        ("report_embeddable_html", "embeddableReportHtmlUrl"),
        ("report_pdf", "reportPdfUrl"),
        ("report_data", "reportDataUrl"),
    )


def test_threadfix_pending_scan_status() -> None:
    # seed 001, "List of Scan Statuses" (all twelve); the lifecycle of each is argued in
    # adapters.md's ThreadFix table.
    assert dict(threadfix.STATUS_MAP) == {
        "QUEUED": L.QUEUED,  # Queued
        "UPLOADED": L.RUNNING,  # Uploaded
        "FINDINGS_GENERATING": L.RUNNING,  # Generating Findings
        "CHANNEL_MERGING": L.RUNNING,  # Merging Channel Findings
        "APPLICATION_MERGING": L.RUNNING,  # Merging Application Findings
        "APPLICATION_MERGED": L.RUNNING,  # Merging Application Findings Completed
        "DONE": L.SUCCEEDED,  # Scan Processing Completed. Statistics Update Queued.
        "FINISHED_FINDING_PULLING": L.SUCCEEDED,  # Findings Import From Server Finished.
        "SCAN_INTERRUPTED": L.FAILED,  # Scan processing was interrupted
        "SCAN_QUEUED_FOR_DELETE": L.CANCELLED,  # Scan queued to be deleted.
        "SCAN_DELETED": L.CANCELLED,  # Scan Deleted.
        "LINKING_DEFECTS": L.RUNNING,  # Linking Defects.
    }


def test_threadfix_api_versions() -> None:
    # vendor-notes: /rest/latest/..., /rest/v2.8/...; adapters.md "ThreadFix versions".
    assert threadfix.API_VERSIONS == (
        "latest",
        "v2.5",
        "v2.6",
        "v2.7",
        "v2.8",
        "v3.0",
        "unversioned",
    )


def test_appsecplus_status_scan_types_and_error_texts() -> None:
    # seed 003, Response Elements: "queued, running, completed, or failed".
    assert dict(appsecplus.STATUS_MAP) == {
        "queued": L.QUEUED,
        "running": L.RUNNING,
        "completed": L.SUCCEEDED,
        "failed": L.FAILED,
    }
    # seed 003: "sast, dast, sca, or container".
    assert appsecplus.SCAN_TYPES == ("sast", "dast", "sca", "container")
    # seed 003, the Errors tables of ListScans, TriggerScan and GetScan (404 is "Application
    # not found." on trigger and "Scan not found." on get: one text for both).
    assert dict(appsecplus.ERROR_TEXT) == {
        400: "Invalid application ID or scan type.",
        401: "Authentication failed.",
        403: "Insufficient permissions.",
        404: "Application or scan not found.",
        409: "Conflicting scan is already running.",
        500: "Internal server error.",
    }


def test_apptrust_promotion_status() -> None:
    # seed 004 samples: FAILED, COMPLETED; its filter docs: success, pending, failed;
    # vendor-notes: related JFrog promotion APIs use STARTED, PROCESSING, DELETING; the promote
    # and release answers say success / failure. Compared lower-case.
    assert dict(apptrust.STATUS_MAP) == {
        "failure": L.FAILED,
        "pending": L.QUEUED,
        "started": L.RUNNING,
        "processing": L.RUNNING,
        "completed": L.SUCCEEDED,
        "success": L.SUCCEEDED,
        "failed": L.FAILED,
        "deleting": L.CANCELLED,
    }


def test_apptrust_gate_decisions() -> None:
    # seed 004 sample gates: pass, fail; vendor-notes: the UI's Pass, Fail, Warning, Error
    # (Error = a technical failure; Warning does not block); the release gate says passed /
    # warn / failed. Compared lower-case.
    assert dict(apptrust.DECISION_MAP) == {
        "pass": V.PASS,
        "passed": V.PASS,
        "warn": V.WARN,
        "warning": V.WARN,
        "fail": V.FAIL,
        "failed": V.FAIL,
        "error": V.ERROR,
    }


def test_apptrust_promote_and_list_vocabulary() -> None:
    # vendor-notes: promotion_type copy, move, keep, dry_run.
    assert apptrust.PROMOTION_TYPES == ("copy", "move", "keep", "dry_run")
    # seed 004: order_by created, created_by, version, stage.
    assert apptrust.ORDER_BY == ("created", "created_by", "version", "stage")
    # adapters.md: a promote answer without created_millis matches the list record of the same
    # target stage "within 5 s".
    assert apptrust.SAME_PROMOTION_MS == 5000
