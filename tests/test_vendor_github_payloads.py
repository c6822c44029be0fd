"""GitHub code scanning payloads, shaped as GitHub documents them (no tests here).

REST description: github/rest-api-description,
descriptions/api.github.com/api.github.com.2022-11-28.json (commit 0000036e42b5e7121c2b1ac244cb7bba1d2f3914),
components/examples and components/schemas as named on each payload.
"""

from __future__ import annotations

from typing import Any

SARIF_ID = "47177e22-5596-11eb-80a1-c1e54ef945c6"

# components/examples/code-scanning-sarif-upload (the 202 answer of code-scanning/upload-sarif).
UPLOAD_RECEIPT: dict[str, Any] = {
    "id": "47177e22-5596-11eb-80a1-c1e54ef945c6",
    "url": "https://api.github.com/repos/octocat/hello-world/code-scanning/sarifs/47177e22-5596-11eb-80a1-c1e54ef945c6",
}

# components/examples/code-scanning-sarif-upload-status (the 200 answer of code-scanning/get-sarif).
STATUS_COMPLETE: dict[str, Any] = {
    "processing_status": "complete",
    "analyses_url": "https://api.github.com/repos/octocat/hello-world/code-scanning/analyses?sarif_id=47177e22-5596-11eb-80a1-c1e54ef945c6",
}

# components/schemas/code-scanning-sarifs-status: processing_status pending; analyses_url and
# errors are nullable (the description has no example of this state).
STATUS_PENDING: dict[str, Any] = {"processing_status": "pending", "analyses_url": None}

# The same schema, failed, with `errors` (a list of strings). The error is the one
# github/codeql-action's upload-lib.ts `shouldConsiderInvalidRequest` recognises
# (/^SARIF URI scheme [^\s]* did not match the checkout URI scheme [^\s]*/) and
# tenable/terrascan-action#66 shows GitHub answering.
STATUS_FAILED: dict[str, Any] = {
    "processing_status": "failed",
    "analyses_url": None,
    "errors": ['SARIF URI scheme "git" did not match the checkout URI scheme "file"'],
}

# Every value of code-scanning-sarifs-status.processing_status (2022-11-28 and 2026-03-10).
STATUSES = ("pending", "complete", "failed")

# components/examples/code-scanning-analysis-items (list-recent-analyses; two uploads).
ANALYSIS_ITEMS: list[dict[str, Any]] = [
    {
        "ref": "refs/heads/main",
        "commit_sha": "d99612c3e1f2970085cfbaeadf8f010ef69bad83",
        "analysis_key": ".github/workflows/codeql-analysis.yml:analyze",
        "environment": '{"language":"python"}',
        "error": "",
        "category": ".github/workflows/codeql-analysis.yml:analyze/language:python",
        "created_at": "2020-08-27T15:05:21Z",
        "results_count": 17,
        "rules_count": 49,
        "id": 201,
        "url": "https://api.github.com/repos/octocat/hello-world/code-scanning/analyses/201",
        "sarif_id": "6c81cd8e-b078-4ac3-a3be-1dad7dbd0b53",
        "tool": {"name": "CodeQL", "guid": None, "version": "2.4.0"},
        "deletable": True,
        "warning": "",
    },
    {
        "ref": "refs/heads/my-branch",
        "commit_sha": "c8cff6510d4d084fb1b4aa13b64b97ca12b07321",
        "analysis_key": ".github/workflows/shiftleft.yml:build",
        "environment": "{}",
        "error": "",
        "category": ".github/workflows/shiftleft.yml:build/",
        "created_at": "2020-08-31T22:46:44Z",
        "results_count": 17,
        "rules_count": 32,
        "id": 200,
        "url": "https://api.github.com/repos/octocat/hello-world/code-scanning/analyses/200",
        "sarif_id": "8981cd8e-b078-4ac3-a3be-1dad7dbd0b582",
        "tool": {"name": "Python Security Analysis", "guid": None, "version": "1.2.0"},
        "deletable": True,
        "warning": "",
    },
]

# components/examples/code-scanning-analysis-default (get-analysis; the upload above).
ANALYSIS_DEFAULT: dict[str, Any] = {
    "ref": "refs/heads/main",
    "commit_sha": "c18c69115654ff0166991962832dc2bd7756e655",
    "analysis_key": ".github/workflows/codeql-analysis.yml:analyze",
    "environment": '{"language":"javascript"}',
    "error": "",
    "category": ".github/workflows/codeql-analysis.yml:analyze/language:javascript",
    "created_at": "2021-01-13T11:55:49Z",
    "results_count": 3,
    "rules_count": 67,
    "id": 3602840,
    "url": "https://api.github.com/repos/octocat/hello-world/code-scanning/analyses/201",
    "sarif_id": "47177e22-5596-11eb-80a1-c1e54ef945c6",
    "tool": {"name": "CodeQL", "guid": None, "version": "2.4.0"},
    "deletable": True,
    "warning": "",
}

# The upload-sarif request example (its `sarif` value shortened; any gzip+Base64 log will do).
UPLOAD_COMMIT = "4b6472266afd7b471e86085a6659e8c7f2b119da"
UPLOAD_REF = "refs/heads/master"

# --- Error bodies: GitHub's envelope {"message", "documentation_url", "errors"?} ------------

# advanced-security/advanced-security-material troubleshooting/sarif-upload/troubleshooting.md
# (a GHES upload with a bad token, and one with ref "ref/heads/main").
BAD_CREDENTIALS = {
    "message": "Bad credentials",
    "documentation_url": "https://docs.github.com/enterprise/3.2/rest",
}
INVALID_REF = {
    "message": "Invalid request.\n\nref/heads/main does not match /^refs\\/(heads|pull|tags)\\/.*$/.",
    "documentation_url": "https://docs.github.com/enterprise/3.2/rest/reference/code-scanning#upload-a-sarif-file",
}
# github/codeql-action#1931: the answer to an upload without `security-events: write`.
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
# GitHub's classic validation envelope with an `errors` list of {resource, field, code}
# (as gidgethub/sansio.py reads it).
VALIDATION_FAILED = {
    "message": "Validation Failed",
    "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
    "documentation_url": "https://docs.github.com/rest",
}

# Rate limits (github/docs content/rest/using-the-rest-api/rate-limits-for-the-rest-api.md:
# primary: 403 or 429 with x-ratelimit-remaining 0, wait until x-ratelimit-reset; secondary:
# 403 or 429 with a message saying so, retry-after when present, else at least a minute).
# The primary example is GitHub's former rate-limiting documentation example (HTTP/2 403,
# Date: Tue, 20 Aug 2013 14:50:41 GMT, X-RateLimit-Reset: 1377013266).
PRIMARY_BODY = {
    "message": "API rate limit exceeded for xxx.xxx.xxx.xxx. (But here's the good news: "
    "Authenticated requests get a higher rate limit. Check out the documentation for more "
    "details.)",
    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
}
PRIMARY_HEADERS = {
    "date": "Tue, 20 Aug 2013 14:50:41 GMT",
    "x-ratelimit-limit": "60",
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": "1377013266",
}
PRIMARY_WAIT = 1377013266 - 1377010241 + 1  # reset - Date, plus plugin-throttling's second

SECONDARY_BODY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
    "try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
}
