"""SonarQube payloads as the server writes them, one constant per sample, each naming its source.

SonarSource/sonarqube: `server/sonar-webserver-webapi/src/main/resources/org/sonar/server/
ce/ws/task-example.json` and `activity-example.json`, `.../qualitygate/ws/
project_status-example.json`; the shapes the example files do not show are built field by field
from `TaskFormatter.java` (formatQueue / formatActivity) and `ws-ce.proto`; error envelopes
from `WebServiceEngine.java` with the texts of `TaskAction`, `ProjectStatusAction`,
`ActivityAction` and `ValidatingRequest`; webhook payloads from docs.sonarsource.com
"Webhooks" (the payload example) and `WebhookPayloadFactoryImpl.java`; report-task.txt from
`sonar-scanner-engine/.../report/ReportPublisher.java` (logSuccess / dumpMetadata) and
sonarqube-quality-gate-action's `test/check-quality-gate-test.bats`.

(No tests here: the constants are shared by the SonarQube test modules.)
"""

from __future__ import annotations

import copy
from typing import Any

# --- api/ce/task -----------------------------------------------------------------------------

#: task-example.json, verbatim.
TASK_SUCCESS: dict[str, Any] = {
    "task": {
        "id": "AYhSC2-LY0CHkWJxvNA9",
        "type": "REPORT",
        "componentId": "AYhNmk00XxCL_lBVBziT",
        "componentKey": "sonarsource_test_AYhCAUXoEy1XQQcbVndf",
        "componentName": "test-scanner-maven",
        "componentQualifier": "TRK",
        "analysisId": "AYhSC3WDE6ILQDIMAPIp",
        "status": "SUCCESS",
        "submittedAt": "2023-05-25T10:34:21+0200",
        "submitterLogin": "admin",
        "startedAt": "2023-05-25T10:34:22+0200",
        "executedAt": "2023-05-25T10:34:25+0200",
        "executionTimeMs": 2840,
        "hasScannerContext": True,
        "warningCount": 2,
        "warnings": [
            "The properties 'sonar.login' and 'sonar.password' are deprecated and will be removed in the future. Please pass a token with the 'sonar.token' property instead.",
            'Missing blame information for 2 files. This may lead to some features not working correctly. Please check the analysis logs and refer to <a href="https://docs.sonarqube.org/latest/analyzing-source-code/scm-integration/" rel="noopener noreferrer" target="_blank">the documentation</a>.',
        ],
    }
}


def _queued(status: str, **extra: Any) -> dict[str, Any]:
    """TaskFormatter.formatQueue: component, id, status, type, submitter, submittedAt, then
    startedAt and executionTimeMs (now - startedAt) once a worker has it; no analysisId."""
    task = {
        k: TASK_SUCCESS["task"][k]
        for k in (
            "id",
            "type",
            "componentId",
            "componentKey",
            "componentName",
            "componentQualifier",
            "submitterLogin",
            "submittedAt",
        )
    }
    task["status"] = status
    task.update(extra)
    return {"task": task}


#: formatQueue of a task nobody has taken yet.
TASK_PENDING = _queued("PENDING")
#: formatQueue of a task a worker is processing.
TASK_IN_PROGRESS = _queued(
    "IN_PROGRESS", startedAt="2023-05-25T10:34:22+0200", executionTimeMs=1200
)

#: formatActivity of a task that failed: errorMessage and errorType, no analysisId (the text is
#: ValidateProjectStep's).
TASK_FAILED: dict[str, Any] = copy.deepcopy(TASK_SUCCESS)
del TASK_FAILED["task"]["analysisId"]
TASK_FAILED["task"].update(
    status="FAILED",
    errorMessage=(
        'Date of analysis cannot be older than the date of the last known analysis on this project. Value: "2023-05-20T10:00:00+0200". Latest analysis: "2023-05-25T10:34:25+0200". It\'s only possible to rebuild the past in a chronological order.'
    ),
    errorType="PROJECT_VALIDATION",
    hasScannerContext=True,
    warningCount=0,
    warnings=[],
)

#: formatActivity of a task canceled while pending (CancelAction): never started.
TASK_CANCELED: dict[str, Any] = {
    "task": {
        **{k: v for k, v in TASK_PENDING["task"].items() if k != "status"},
        "status": "CANCELED",
        "executedAt": "2023-05-25T10:35:00+0200",
        "hasScannerContext": False,
        "warningCount": 0,
        "warnings": [],
    }
}

TASKS_BY_STATUS = {
    "PENDING": TASK_PENDING,
    "IN_PROGRESS": TASK_IN_PROGRESS,
    "SUCCESS": TASK_SUCCESS,
    "FAILED": TASK_FAILED,
    "CANCELED": TASK_CANCELED,
}

# --- api/ce/activity -------------------------------------------------------------------------

#: activity-example.json, verbatim (the second task has no component: a GitHub provisioning
#: task).
ACTIVITY: dict[str, Any] = {
    "tasks": [
        copy.deepcopy(TASK_SUCCESS["task"]),
        {
            "id": "71",
            "type": "GITHUB_AUTH_PROVISIONING",
            "status": "SUCCESS",
            "submittedAt": "1970-01-01T01:00:00+0100",
            "startedAt": "2023-05-23T10:28:41+0200",
            "executedAt": "2023-05-23T10:29:45+0200",
            "executionTimeMs": 64861,
            "hasScannerContext": False,
            "warningCount": 0,
            "warnings": [],
        },
    ],
    "paging": {"pageIndex": 1, "pageSize": 10, "total": 2},
}

# --- api/qualitygates/project_status ---------------------------------------------------------

#: project_status-example.json, verbatim.
PROJECT_STATUS_ERROR: dict[str, Any] = {
    "projectStatus": {
        "status": "ERROR",
        "ignoredConditions": False,
        "caycStatus": "non-compliant",
        "conditions": [
            {
                "status": "ERROR",
                "metricKey": "new_coverage",
                "comparator": "LT",
                "errorThreshold": "85",
                "actualValue": "82.50562381034781",
            },
            {
                "status": "ERROR",
                "metricKey": "new_blocker_violations",
                "comparator": "GT",
                "errorThreshold": "0",
                "actualValue": "14",
            },
            {
                "status": "ERROR",
                "metricKey": "new_critical_violations",
                "comparator": "GT",
                "errorThreshold": "0",
                "actualValue": "1",
            },
            {
                "status": "OK",
                "metricKey": "new_sqale_debt_ratio",
                "comparator": "GT",
                "errorThreshold": "5",
                "actualValue": "0.6562109862671661",
            },
            {
                "status": "OK",
                "metricKey": "reopened_issues",
                "comparator": "GT",
                "actualValue": "0",
            },
            {
                "status": "ERROR",
                "metricKey": "open_issues",
                "comparator": "GT",
                "actualValue": "17",
            },
            {"status": "OK", "metricKey": "skipped_tests", "comparator": "GT", "actualValue": "0"},
        ],
        "period": {
            "mode": "last_version",
            "date": "2000-04-27T00:45:23+0200",
            "parameter": "2015-12-07",
        },
    }
}


def _gate(status: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    body = copy.deepcopy(PROJECT_STATUS_ERROR)
    body["projectStatus"]["status"] = status
    body["projectStatus"]["caycStatus"] = "compliant"
    body["projectStatus"]["conditions"] = conditions
    return body


#: The example's shape with every condition OK.
PROJECT_STATUS_OK = _gate(
    "OK",
    [
        {
            "status": "OK",
            "metricKey": "new_coverage",
            "comparator": "LT",
            "errorThreshold": "85",
            "actualValue": "91.2",
        }
    ],
)
#: WARN (deprecated since 7.6 but still in ws-qualitygates.proto): a warning threshold reached.
PROJECT_STATUS_WARN = _gate(
    "WARN",
    [
        {
            "status": "WARN",
            "metricKey": "new_coverage",
            "comparator": "LT",
            "warningThreshold": "90",
            "errorThreshold": "85",
            "actualValue": "87.0",
        }
    ],
)
#: NONE: "no quality gate associated with the analysis" (QualityGateDetailsFormatter without
#: details: no conditions).
PROJECT_STATUS_NONE: dict[str, Any] = {
    "projectStatus": {"status": "NONE", "ignoredConditions": False}
}

GATES_BY_STATUS = {
    "OK": PROJECT_STATUS_OK,
    "WARN": PROJECT_STATUS_WARN,
    "ERROR": PROJECT_STATUS_ERROR,
    "NONE": PROJECT_STATUS_NONE,
}

# --- errors (WebServiceEngine.sendErrors) ----------------------------------------------------

ERROR_TASK_NOT_FOUND = {"errors": [{"msg": "No activity found for task 'AYhSC2-LY0CHkWJxvNA9'"}]}
ERROR_ANALYSIS_NOT_FOUND = {
    "errors": [{"msg": "Analysis with id 'AYhSC3WDE6ILQDIMAPIp' is not found"}]
}
ERROR_COMPONENT_NOT_FOUND = {"errors": [{"msg": "Component 'webshop' does not exist"}]}
ERROR_FORBIDDEN = {"errors": [{"msg": "Insufficient privileges"}]}
ERROR_PAGING = {"errors": [{"msg": "Can return only the first 2 results. 101th result asked."}]}
ERROR_STATUS_PARAM = {
    "errors": [
        {
            "msg": "Value of parameter 'status' (DONE) must be one of: [SUCCESS, FAILED, CANCELED, PENDING, IN_PROGRESS]"
        }
    ]
}
ERROR_INTERNAL = {"errors": [{"msg": "An error has occurred. Please contact your administrator"}]}

# --- webhooks --------------------------------------------------------------------------------

#: docs.sonarsource.com "Webhooks", payload example (serverUrl, taskId, status, analysedAt,
#: revision, project; the conditions of the 6.7 page's example), with `changedAt`, `branch`
#: and project `url` as WebhookPayloadFactoryImpl writes them.
WEBHOOK_SUCCESS: dict[str, Any] = {
    "serverUrl": "http://localhost:9000",
    "taskId": "AVh21JS2JepAEhwQ-b3u",
    "status": "SUCCESS",
    "analysedAt": "2016-11-18T10:46:28+0100",
    "revision": "c739069ec7105e01303e8b3065a81141aad9f129",
    "changedAt": "2016-11-18T10:46:28+0100",
    "project": {
        "key": "org.sonarqube:example",
        "name": "Example",
        "url": "http://localhost:9000/dashboard?id=org.sonarqube%3Aexample",
    },
    "branch": {
        "name": "master",
        "type": "BRANCH",
        "isMain": True,
        "url": "http://localhost:9000/dashboard?id=org.sonarqube%3Aexample",
    },
    "qualityGate": {
        "conditions": [
            {
                "errorThreshold": "1",
                "metric": "new_security_rating",
                "onLeakPeriod": True,
                "operator": "GREATER_THAN",
                "status": "OK",
                "value": "1",
            },
            {
                "errorThreshold": "1",
                "metric": "new_reliability_rating",
                "onLeakPeriod": True,
                "operator": "GREATER_THAN",
                "status": "OK",
                "value": "1",
            },
            {
                "errorThreshold": "1",
                "metric": "new_maintainability_rating",
                "onLeakPeriod": True,
                "operator": "GREATER_THAN",
                "status": "OK",
                "value": "1",
            },
            {
                "errorThreshold": "80",
                "metric": "new_coverage",
                "onLeakPeriod": True,
                "operator": "LESS_THAN",
                "status": "NO_VALUE",
            },
        ],
        "name": "SonarQube way",
        "status": "OK",
    },
    "properties": {},
}

#: The same delivery for an analysis whose gate failed.
WEBHOOK_GATE_ERROR: dict[str, Any] = copy.deepcopy(WEBHOOK_SUCCESS)
WEBHOOK_GATE_ERROR["qualityGate"]["status"] = "ERROR"
WEBHOOK_GATE_ERROR["qualityGate"]["conditions"][3] = {
    "errorThreshold": "80",
    "metric": "new_coverage",
    "onLeakPeriod": True,
    "operator": "LESS_THAN",
    "status": "ERROR",
    "value": "62.5",
}

#: A task that failed: CeTask.Status FAILED; no analysis, so no quality gate.
WEBHOOK_FAILED: dict[str, Any] = {
    k: v for k, v in WEBHOOK_SUCCESS.items() if k not in ("qualityGate", "analysedAt", "revision")
}
WEBHOOK_FAILED["status"] = "FAILED"

#: A quality gate change after an issue update: no CE task, so no taskId (writeTask writes
#: status SUCCESS by default).
WEBHOOK_NO_TASK: dict[str, Any] = {k: v for k, v in WEBHOOK_SUCCESS.items() if k != "taskId"}

# --- report-task.txt -------------------------------------------------------------------------

#: ReportPublisher.logSuccess / dumpMetadata: plain `key=value` lines in this order.
REPORT_TASK_TXT = """\
organization=acme
projectKey=org.example:webshop
serverUrl=https://sonar.example.com
serverVersion=10.5.1.90531
branch=feature/login
dashboardUrl=https://sonar.example.com/dashboard?id=org.example%3Awebshop&branch=feature%2Flogin
ceTaskId=AYhSC2-LY0CHkWJxvNA9
ceTaskUrl=https://sonar.example.com/api/ce/task?id=AYhSC2-LY0CHkWJxvNA9
"""

#: The same written by java.util.Properties.store (a date comment, `:` and `=` escaped).
REPORT_TASK_PROPERTIES_STORE = """\
#Thu May 25 10:34:21 CEST 2023
projectKey=org.example\\:webshop
serverUrl=https\\://sonar.example.com
dashboardUrl=https\\://sonar.example.com/dashboard?id\\=org.example%3Awebshop
ceTaskId=AYhSC2-LY0CHkWJxvNA9
ceTaskUrl=https\\://sonar.example.com/api/ce/task?id\\=AYhSC2-LY0CHkWJxvNA9
"""

#: sonarqube-quality-gate-action's test metadata: serverUrl and ceTaskUrl only.
REPORT_TASK_ACTION_TEST = """\
serverUrl=http://localhost:9000
ceTaskUrl=http://localhost:9000/api/ce/task?id=AXlCe3gsFwOUsY8YKHTn
"""
