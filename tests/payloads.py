"""Vendor payloads exactly as the vendor documents show them, one constant per document sample.

Sources: shared/seeds/000 (IQ promote scan), 001 (ThreadFix pending scan status), 003 (AppSec+
scans), 004 (AppTrust promotions), shared/vendor-notes.md for the shapes the seeds only describe.
"""

from __future__ import annotations

import json
from typing import Any

# --- Sonatype IQ (seed 000) -------------------------------------------------------------------

IQ_APP_ID = "cb748fb6ff8f4251b40b63edf1cc465c"
IQ_PUBLIC_ID = "MyApplicationPublicID"
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
    # The server builds every link with the application's *public* id (getScanStatus in
    # ApiPromoteScanServiceV2), not the internal id of the path.
    "reportHtmlUrl": f"ui/links/application/{IQ_PUBLIC_ID}/report/affdb6b964a64f0bad2db7170c7560dc",
    "embeddableReportHtmlUrl": f"ui/links/application/{IQ_PUBLIC_ID}/report/affdb6b964a64f0bad2db7170c7560dc/embeddable",
    "reportPdfUrl": f"ui/links/application/{IQ_PUBLIC_ID}/report/affdb6b964a64f0bad2db7170c7560dc/pdf",
    "reportDataUrl": f"api/v2/applications/{IQ_PUBLIC_ID}/reports/affdb6b964a64f0bad2db7170c7560dc",
}
#: ApiPromoteScanServiceV2: a failed promotion's reason is the failure's message, possibly null.
IQ_STATUS_FAILED_NO_REASON = {"status": "FAILED", "reason": None}
#: ApiPromoteScanServiceV2.validateRequest: error bodies are plain text.
IQ_PROMOTE_UNKNOWN_SCAN = (
    f"A scan with ID {IQ_SCAN_ID} does not exist on the server and may be obsolete. Note that "
    "only the most recent scan for the given stage can be promoted."
)
IQ_STAGE_INVALID = "Stage develop is invalid."
#: getScanStatus: the status id left the two-hour cache (or never was in it).
IQ_STATUS_GONE = (
    f"Scan status with id {IQ_STATUS_ID} for application with id {IQ_APP_ID} was not found."
)
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


#: "Upload Scan - API", sample output v2.8.8 through latest: the object is a sentence and the
#: pending scan id is only in links[].href.
TF_UPLOAD_QUEUED = {
    "message": "",
    "success": True,
    "responseCode": -1,
    "object": "Scan upload process started.",
    "links": [
        {
            "method": "GET",
            "rel": "related",
            "href": "http://localhost:8080/threadfix/rest/latest/applications/6/pendingScan/41/status",
        }
    ],
}
#: "Upload Scan - API", 2.4.5 to 2.4.x: queued, and no links section yet (added in 2.5).
TF_UPLOAD_2_4_5 = {
    "message": "",
    "success": True,
    "responseCode": -1,
    "object": "Scan upload process started.",
}
#: The open-source server (denimgroup/threadfix UploadScanServiceImpl): the upload processes the
#: file at once and answers RestResponse.success(scan), the Scan entity's REST view.
TF_UPLOAD_OSS = {
    "message": "",
    "success": True,
    "responseCode": -1,
    "object": {
        "id": 12,
        "importTime": 1570117773000,
        "scannerName": "Fortify 360",
        "numberTotalVulnerabilities": 9,
        "numberCriticalVulnerabilities": 1,
        "numberHighVulnerabilities": 3,
        "numberMediumVulnerabilities": 4,
        "numberLowVulnerabilities": 1,
        "numberInfoVulnerabilities": 0,
        "numberNewVulnerabilities": 9,
        "numberOldVulnerabilities": 0,
        "numberClosedVulnerabilities": 0,
        "numberResurfacedVulnerabilities": 0,
        "numberRepeatFindings": 0,
        "numberRepeatResults": 0,
    },
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


# --- AppTrust, beyond seed 004 (JFrog REST reference, jfrog-cli-application) ---------------------

#: "Promote Application Version", synchronous (201): the outcome is `status` success / failure.
AT_PROMOTE_SYNC_SUCCESS = {
    "application_key": "catalina-app",
    "application_version": "1.0.0",
    "source_stage": "DEV",
    "target_stage": "QA",
    "promotion_type": "copy",
    "status": "success",
    "message": "Application version promoted to QA",
    "included_repository_keys": [],
    "excluded_repository_keys": [],
    "artifact_additional_properties": [],
    "promoted": "2023-05-19T06:21:44.916Z",
    "evaluations": {
        "exit_gate": {"stage": "DEV", "eval_id": "eval-exit-1a2b", "decision": "pass"},
        "entry_gate": {
            "stage": "QA",
            "eval_id": "eval-entry-3c4d",
            "decision": "warn",
            "explanation": "2 medium vulnerabilities without a fix version",
        },
    },
}
AT_PROMOTE_SYNC_FAILURE = {
    **AT_PROMOTE_SYNC_SUCCESS,
    "target_stage": "PROD",
    "source_stage": "QA",
    "status": "failure",
    "message": "Promotion blocked due to critical security vulnerabilities.",
    "evaluations": {
        "exit_gate": {"stage": "QA", "eval_id": "eval-exit-5e6f", "decision": "pass"},
        "entry_gate": {"stage": "PROD", "eval_id": "eval-entry-7a8b", "decision": "fail"},
    },
}
#: "Release Application Version": the release gate speaks passed / warn / failed.
AT_RELEASE_WARN = {
    "application_key": "catalina-app",
    "application_version": "1.0.0",
    "source_stage": "QA",
    "target_stage": "PROD",
    "status": "success",
    "message": "Application version released",
    "promoted": "2023-05-20T08:00:00.000Z",
    "evaluations": {
        "exit_gate": {"stage": "QA", "eval_id": "eval-exit-9c0d", "decision": "pass"},
        "release_gate": {"stage": "PROD", "eval_id": "eval-rel-1e2f", "decision": "warn"},
    },
}
#: Error bodies may name the field and a code beside status and message.
AT_ERROR_FIELD = {
    "errors": [
        {
            "status": 400,
            "code": "BAD_REQUEST",
            "field": "promotion_type",
            "message": "invalid promotion type: clone",
        }
    ]
}
#: "Get Application Version Promotion Details": no status and no evaluations.
AT_PROMOTION_DETAILS = {
    "target_stage": "QA",
    "created_by": "admin",
    "created": "2023-05-19T06:21:44.916Z",
    "created_millis": 1684477304916,
    "artifacts": [
        {
            "path": "commons-qa-maven-local/org/apache/tomcat/commons/1.0.0/commons-1.0.0.jar",
            "checksum": "0d2053f76605e0734f5251a78c5dade5ee81b0f3730b3f603aedb90bc58033fb",
            "package_type": "maven",
            "package_name": "org.apache.tomcat:commons",
            "package_version": "1.0.0",
        }
    ],
}
