"""Vendor payloads exactly as the vendor documents show them, one constant per document sample.

Sources: shared/seeds/000 (IQ promote scan), 001 (ThreadFix pending scan status), 003 (AppSec+
scans), 004 (AppTrust promotions), shared/vendor-notes.md for the shapes the seeds only describe.
"""

from __future__ import annotations

import json
from typing import Any

# --- Sonatype IQ (seed 000) -------------------------------------------------------------------

IQ_APP_ID = "cb748fb6ff8f4251b40b63edf1cc465c"
IQ_STATUS_ID = "accc369749774924baa1d207494c29e1"
IQ_SCAN_ID = "896791eb6a484d51bb570dca94dc2c67"

IQ_APPLICATION_LOOKUP = {
    "applications": [
        {
            "id": IQ_APP_ID,
            "publicId": "MyApplicationPublicID",
            "name": "MyApplication",
            "organizationId": "81ae1fc7875441f2bec28d78d0f467ec",
            "contactUserName": None,
            "applicationTags": [],
        }
    ]
}
IQ_APPLICATION_LOOKUP_EMPTY: dict[str, Any] = {"applications": []}

IQ_PROMOTE_RESPONSE = {
    "statusUrl": f"api/v2/evaluation/applications/{IQ_APP_ID}/status/{IQ_STATUS_ID}"
}

IQ_STATUS_PENDING = {"status": "PENDING"}
IQ_STATUS_FAILED = {"status": "FAILED", "reason": "message"}
IQ_STATUS_COMPLETED = {
    "status": "COMPLETED",
    "reportHtmlUrl": f"ui/links/application/{IQ_APP_ID}/report/affdb6b964a64f0bad2db7170c7560dc",
    "embeddableReportHtmlUrl": f"ui/links/application/{IQ_APP_ID}/report/affdb6b964a64f0bad2db7170c7560dc/embeddable",
    "reportPdfUrl": f"ui/links/application/{IQ_APP_ID}/report/affdb6b964a64f0bad2db7170c7560dc/pdf",
    "reportDataUrl": f"api/v2/applications/{IQ_APP_ID}/reports/affdb6b964a64f0bad2db7170c7560dc",
}
#: vendor-notes: error bodies are plain text; an unknown scanId answers 400 "does not exist".
IQ_PROMOTE_UNKNOWN_SCAN = f"Scan with id {IQ_SCAN_ID} does not exist"
IQ_CLOUD_429 = (
    "Rate limit exceeded. Please wait 5 minutes. If this is a recurring issue, reach out to your "
    "administrator or contact your Sonatype support representative."
)

#: vendor-notes "Webhooks": application evaluation payload (seed 002 shows the inner part).
IQ_WEBHOOK_EVALUATION = {
    "timestamp": "2020-10-28T15:08:32.348+0000",
    "initiator": "admin",
    "id": "a3f34c0a9c3d4e2f9d0e6e0f7b1c2d3e",
    "applicationEvaluation": {
        "application": {
            "id": IQ_APP_ID,
            "publicId": "MyApplicationPublicID",
            "name": "MyApplication",
            "organizationId": "81ae1fc7875441f2bec28d78d0f467ec",
        },
        "policyEvaluationId": "debceb1d-9209-485d-8d07-bd5390de7ef5",
        "stage": "build",
        "ownerId": "6a454175-f55d-4d33-ba44-90ac3af2e8b8",
        "evaluationDate": "2015-05-05T23:40:12Z",
        "affectedComponentCount": 10,
        "criticalComponentCount": 2,
        "severeComponentCount": 5,
        "moderateComponentCount": 3,
        "outcome": "fail",
        "reportId": "affdb6b964a64f0bad2db7170c7560dc",
        "isForLatestScan": True,
    },
}

# --- ThreadFix (seed 001) ---------------------------------------------------------------------

TF_PENDING_SCAN_DONE = {
    "message": "Scan Processing Completed. Statistics Update Queued.",
    "success": True,
    "responseCode": -1,
    "object": {
        "id": 2,
        "modifiedDate": 1570117773000,
        "active": True,
        "fileDataList": [{"id": 12, "originalName": "contoso.fpr"}],
        "appId": 6,
        "errorMessage": None,
        "status": "DONE",
        "error": False,
        "scanId": 12,
        "type": "upload",
        "name": "contoso.fpr",
        "time": 1570117773000,
        "scanMessage": "Scan Processing Completed. Statistics Update Queued.",
    },
}

#: The twelve statuses of seed 001 with their UI texts.
TF_STATUSES = {
    "QUEUED": "Queued",
    "UPLOADED": "Uploaded",
    "FINDINGS_GENERATING": "Generating Findings",
    "CHANNEL_MERGING": "Merging Channel Findings",
    "APPLICATION_MERGING": "Merging Application Findings",
    "APPLICATION_MERGED": "Merging Application Findings Completed",
    "DONE": "Scan Processing Completed. Statistics Update Queued.",
    "FINISHED_FINDING_PULLING": "Findings Import From Server Finished.",
    "SCAN_INTERRUPTED": "Scan processing was interrupted",
    "SCAN_QUEUED_FOR_DELETE": "Scan queued to be deleted.",
    "SCAN_DELETED": "Scan Deleted.",
    "LINKING_DEFECTS": "Linking Defects.",
}


def tf_pending_scan(status: str, **overrides: Any) -> dict[str, Any]:
    """The seed 001 sample with another status (and scanId only once DONE)."""
    body = json.loads(json.dumps(TF_PENDING_SCAN_DONE))
    body["message"] = TF_STATUSES.get(status, status)
    body["object"].update(status=status, scanMessage=TF_STATUSES.get(status, status))
    if status not in ("DONE", "FINISHED_FINDING_PULLING"):
        body["object"]["scanId"] = None
    body["object"].update(overrides)
    return body


#: vendor-notes: since 2.4.5 the upload answer's object is a sentence; the id is in links[].href.
TF_UPLOAD_QUEUED = {
    "message": "",
    "success": True,
    "responseCode": -1,
    "object": "The scan has been queued for processing.",
    "links": [
        {
            "href": "http://localhost:8080/threadfix/rest/latest/applications/6/pendingScan/41/status",
        }
    ],
}
TF_AUTH_FAILED = {
    "message": "Authentication failed, check your API Key.",
    "success": False,
    "responseCode": -1,
    "object": None,
}
TF_RESTRICTED = {
    "message": "The requested URL is restricted for your API Key.",
    "success": False,
    "responseCode": -1,
    "object": None,
}

# --- AppSec+ (seed 003) -----------------------------------------------------------------------

ASP_SCAN_COMPLETED = {
    "id": "scan-001",
    "applicationId": "app-12345",
    "scanType": "sast",
    "status": "completed",
    "triggeredBy": "ci-pipeline",
    "startedAt": "2025-11-01T12:00:00Z",
    "completedAt": "2025-11-01T12:05:00Z",
    "summary": {"totalFindings": 42, "critical": 1, "high": 5, "medium": 10, "low": 26},
}
ASP_LIST_SCANS = [ASP_SCAN_COMPLETED]
ASP_TRIGGER_RESPONSE = {
    "id": "scan-001",
    "applicationId": "app-12345",
    "scanType": "sast",
    "status": "queued",
    "triggeredBy": "ci-pipeline",
    "startedAt": None,
    "completedAt": None,
    "summary": None,
}

# --- JFrog AppTrust (seed 004) ----------------------------------------------------------------

AT_PROMOTIONS_SAMPLE = {
    "promotions": [
        {
            "status": "FAILED",
            "project_key": "catalina",
            "application_key": "my-app",
            "application_version": "1.0.0",
            "source_stage": "QA",
            "target_stage": "PROD",
            "promoted_by": "admin",
            "promoted": "2023-05-19T06:47:56.518Z",
            "created_millis": 1684478876518,
            "evaluations": {
                "exit_gate": {"stage": "QA", "eval_id": "eval-exit-b4c3d2a1", "decision": "pass"},
                "entry_gate": {
                    "stage": "PROD",
                    "eval_id": "eval-entry-h8g7f6e5",
                    "decision": "fail",
                    "explanation": "Promotion blocked due to critical security vulnerabilities.",
                },
            },
        },
        {
            "status": "COMPLETED",
            "project_key": "catalina",
            "application_key": "my-app",
            "application_version": "1.0.0",
            "source_stage": "DEV",
            "target_stage": "QA",
            "created_by": "admin",
            "created": "2023-05-19T06:21:44.916Z",
            "created_millis": 1684477304916,
            "evaluations": {
                "exit_gate": {"stage": "DEV", "eval_id": "eval-exit-a1b2c3d4", "decision": "pass"},
                "entry_gate": {"stage": "QA", "eval_id": "eval-entry-e5f6g7h8", "decision": "pass"},
            },
        },
    ],
    "total": 2,
    "limit": 1000,
    "offset": 0,
}
#: The field table of seed 004 (promoted_at / promoted_millis), as opposed to the samples.
AT_PROMOTION_FIELD_TABLE_SHAPE = {
    "application_key": "my-app",
    "application_version": "1.0.0",
    "project_key": "catalina",
    "status": "success",
    "source_stage": "DEV",
    "target_stage": "QA",
    "promoted_by": "admin",
    "promoted_at": "2023-05-19T06:21:44.916Z",
    "promoted_millis": 1684477304916,
}
AT_ERROR_404 = {"errors": [{"status": 404, "message": "Application version not found"}]}
AT_ERROR_CODE = {"errors": [{"code": "UNAUTHORIZED", "message": "Bad Credentials"}]}
AT_ERROR_BARE = {"message": "Permission Denied"}
