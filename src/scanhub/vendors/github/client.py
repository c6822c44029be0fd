"""The GitHub code scanning client: upload a SARIF log, follow its processing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from scanhub.vendors import Client, Lifecycle, RetryPolicy, Scan, ScanhubError, Secret

from . import sansio as github

log = logging.getLogger("scanhub")

#: A 429 without `retry-after` waits a minute (rate-limits-for-the-rest-api.md) and is never
#: retried inside the call: the parser reads the exact wait (`x-ratelimit-reset` against the
#: answer's `Date`) and the source pauses for it, instead of asking again while limited.
RETRY = RetryPolicy(default_429_wait=github.SECONDARY_WAIT, max_retry_after=30.0)


class GitHubCodeScanning(Client):
    """GitHub code scanning: SARIF uploads (`POST .../code-scanning/sarifs`) and their
    processing status (`GET .../code-scanning/sarifs/{sarif_id}`), on github.com
    (`https://api.github.com`) or GitHub Enterprise Server (`https://HOST/api/v3`).

    `token` is a fine-grained or classic personal access token or a GitHub App installation
    token (sent as `Authorization: Bearer`). Once an upload is `complete`, `refresh` reads its
    analyses once for the finding count (`fetch_findings=False` skips that request).
    """

    vendor = github.VENDOR

    def __init__(
        self,
        base_url: str,
        token: str | Secret,
        *,
        api_version: str = github.DEFAULT_API_VERSION,
        fetch_findings: bool = True,
        retry: RetryPolicy | None = None,
        **kw: Any,
    ) -> None:
        self._token = Secret(token)
        self.api_version = api_version
        self.fetch_findings = fetch_findings
        super().__init__(
            base_url,
            auth_headers=github.auth_headers(self._token.reveal(), api_version),
            secrets=(self._token,),
            retry=retry or RETRY,
            **kw,
        )

    async def upload_sarif(
        self,
        repository: str,
        sarif: bytes | str | Path | Mapping[str, Any],
        *,
        commit_sha: str,
        ref: str,
        checkout_uri: str | None = None,
        started_at: datetime | str | None = None,
        tool_name: str | None = None,
        validate: bool | None = None,
    ) -> Scan:
        """Upload a SARIF log to `repository` ("owner/repo"); returns the upload, `queued`.

        `sarif` is a path to a `.sarif` file (a `Path`, or a string that does not start with
        `{`), the log as JSON text or bytes, a parsed log, or bytes already gzip-compressed.
        It is gzip-compressed and Base64-encoded here, as the API requires."""
        content: bytes | str | Mapping[str, Any]
        if isinstance(sarif, Path):
            content = await asyncio.to_thread(sarif.read_bytes)
        elif isinstance(sarif, str) and not _json_text(sarif):
            content = await asyncio.to_thread(Path(sarif).read_bytes)
        else:
            content = sarif
        req = github.build_upload(
            self.base_url,
            repository,
            content,
            commit_sha=commit_sha,
            ref=ref,
            checkout_uri=checkout_uri,
            started_at=started_at,
            tool_name=tool_name,
            validate=validate,
            source=self.name,
        )
        return await self._call(
            req,
            lambda r: github.parse_upload(
                r, source=self.name, repository=repository, started_at=started_at
            ),
        )

    async def sarif_upload(self, repository: str, sarif_id: str) -> Scan:
        """The processing status of an upload (with its finding count once complete)."""
        return await self._status(repository, str(sarif_id), None)

    async def analyses(self, repository: str, sarif_id: str) -> list[github.Analysis]:
        """The analyses an upload produced (one per SARIF run), once it is complete."""
        return await self._call(
            github.build_analyses(self.base_url, repository, str(sarif_id)),
            lambda r: github.parse_analyses(r, source=self.name, sarif_id=str(sarif_id)),
        )

    async def refresh(self, item: Scan) -> Scan:
        """Poll an upload this client made or fetched."""
        self._check_mine(item)
        return await self._status(item.application_id, item.id, item)

    async def _status(self, repository: str, sarif_id: str, previous: Scan | None) -> Scan:
        scan = await self._call(
            github.build_status(self.base_url, repository, sarif_id),
            lambda r: github.parse_status(
                r, source=self.name, repository=repository, sarif_id=sarif_id, previous=previous
            ),
        )
        if scan.lifecycle is not Lifecycle.SUCCEEDED or scan.findings is not None:
            return scan
        if not self.fetch_findings:
            return scan
        try:
            return github.with_findings(scan, await self.analyses(repository, sarif_id))
        except ScanhubError as error:
            if error.retryable:
                raise  # rate limited or GitHub failing: the upload is polled again later
            # The count is extra: an upload that finished stays finished without it.
            log.warning("%s: no finding count for SARIF upload %s: %s", self.name, sarif_id, error)
            return scan


def _json_text(text: str) -> bool:
    """True for SARIF given as JSON text rather than as a file name."""
    return text.lstrip().startswith("{")
