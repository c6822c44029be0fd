"""The Dependency-Track client: upload a BOM, follow its token, read the project's verdict."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scanhub.vendors import (
    BadRequestError,
    Client,
    Lifecycle,
    NotFoundError,
    Scan,
    Secret,
    Verdict,
)

from . import sansio as dt


class DependencyTrack(Client):
    """OWASP Dependency-Track (BOM upload and its processing).

    `api_version="v4"` (the default) follows a token with `GET /api/v1/event/token/{uuid}` and
    the project's evidence; `"v5"` with the Hyades API server's workflow steps
    (`GET /api/v1/workflow/token/{uuid}/status`). adapters.md says how each decides that an
    upload finished. The key is sent as `X-Api-Key`.
    """

    vendor = dt.VENDOR

    def __init__(
        self, base_url: str, api_key: str | Secret, *, api_version: str = "v4", **kw: Any
    ) -> None:
        if api_version not in dt.API_VERSIONS:
            raise BadRequestError(
                f"api_version must be one of {', '.join(dt.API_VERSIONS)}, got {api_version!r}",
                vendor=dt.VENDOR,
                source=kw.get("name"),
                operation="configure",
            )
        self._api_key = Secret(api_key)
        self.api_version = api_version
        super().__init__(
            base_url,
            auth_headers=dt.auth_headers(self._api_key.reveal()),
            secrets=(self._api_key,),
            **kw,
        )

    # --- projects --------------------------------------------------------------------------

    async def project(self, project_uuid: str) -> dt.Project:
        """A project by UUID (its `lastBomImport` included)."""
        return await self._call(
            dt.build_project(self.base_url, project_uuid),
            lambda r: dt.parse_project(r, source=self.name),
        )

    async def project_uuid(self, name: str, version: str) -> str:
        """The UUID of the project with this name and version (`NotFoundError` if none)."""
        found = await self._call(
            dt.build_project_lookup(self.base_url, name, version),
            lambda r: dt.parse_project(r, source=self.name),
        )
        return found.uuid

    # --- upload ----------------------------------------------------------------------------

    async def upload_bom(
        self,
        bom: bytes | str | Path,
        *,
        project: str | None = None,
        project_name: str | None = None,
        project_version: str | None = None,
        auto_create: bool = False,
        parent_uuid: str | None = None,
        parent_name: str | None = None,
        parent_version: str | None = None,
        is_latest: bool = False,
        project_tags: Sequence[str] = (),
    ) -> Scan:
        """Upload a CycloneDX BOM (bytes, or a path to read) with `PUT /api/v1/bom`; returns
        the `queued` upload, whose id is the token and whose `application_id` is the project's
        UUID.

        Give the project as `project` (its UUID) or as `project_name` + `project_version`. By
        name, the project is looked up first (an upload is followed through its project, so
        the key must be able to read it); if it does not exist and `auto_create` is set, the
        upload creates it (`parent_*`, `is_latest` and `project_tags` apply then) and it is
        looked up again after.
        """
        dt.check_project(project, project_name, project_version, source=self.name)
        content = bom if isinstance(bom, bytes) else await _read(bom)
        uuid = project
        if project is None and project_name is not None and project_version is not None:
            try:
                uuid = await self.project_uuid(project_name, project_version)
            except NotFoundError:
                if not auto_create:
                    raise
                uuid = None
        req = dt.build_upload(
            self.base_url,
            content,
            project=uuid,
            project_name=None if uuid is not None else project_name,
            project_version=None if uuid is not None else project_version,
            auto_create=auto_create,
            parent_uuid=parent_uuid,
            parent_name=parent_name,
            parent_version=parent_version,
            is_latest=is_latest,
            project_tags=project_tags,
            source=self.name,
        )
        pending = await self._call(
            req,
            lambda r: dt.parse_upload(
                r,
                source=self.name,
                base_url=self.base_url,
                project_uuid=uuid or "",
                api_version=self.api_version,
            ),
        )
        if uuid is None and project_name is not None and project_version is not None:
            # The project was created by this upload: its UUID exists now.
            uuid = await self.project_uuid(project_name, project_version)
            pending = dt.with_project(pending, self.base_url, uuid, self.api_version)
        return pending

    # --- following a token -----------------------------------------------------------------

    async def upload(self, project_uuid: str, token: str) -> Scan:
        """The state of the upload `token` of a project (a token scanhub did not upload: its
        upload time is unknown, which the v4 rule has to do without)."""
        placeholder = dt.placeholder(
            self.name, token, project_uuid, self.base_url, self.api_version
        )
        return await self.refresh(placeholder)

    async def refresh(self, item: Scan) -> Scan:
        """Poll an upload this client made or fetched; once it has finished, read the project's
        policy violations (verdict) and current metrics (findings)."""
        self._check_mine(item)
        if self.api_version == "v5":
            return await self._refresh_v5(item)
        return await self._refresh_v4(item)

    async def _refresh_v5(self, item: Scan) -> Scan:
        req = dt.build_workflow_status(self.base_url, item.id)
        try:
            steps = await self._call(req, lambda r: dt.parse_workflow(r, source=self.name))
        except NotFoundError as error:
            if item.vendor_status:  # seen before: the server forgot a finished workflow
                return dt.expired(item, error)
            raise
        scan = dt.workflow_scan(item, steps, status_url=req.url)
        if scan.lifecycle is not Lifecycle.SUCCEEDED:
            return scan
        metrics = await self._metrics(item.application_id)
        return dt.with_results(scan, await self._verdicts(item.application_id), metrics)

    async def _refresh_v4(self, item: Scan) -> Scan:
        req = dt.build_token_status(self.base_url, item.id)
        state = await self._call(req, lambda r: dt.parse_token_status(r, source=self.name))
        if state.processing is not False:
            return dt.judge_v4(item, state, status_url=req.url)
        project = await self.project(item.application_id)
        if not dt.imported_since(project, item.created_at):
            return dt.judge_v4(item, state, project=project, status_url=req.url)
        metrics = await self._metrics(item.application_id)
        scan = dt.judge_v4(item, state, project=project, metrics=metrics, status_url=req.url)
        if scan.lifecycle is not Lifecycle.SUCCEEDED:
            return scan
        return dt.with_results(scan, await self._verdicts(item.application_id), metrics)

    async def _metrics(self, project_uuid: str) -> dt.Metrics | None:
        return await self._call(
            dt.build_metrics(self.base_url, project_uuid),
            lambda r: dt.parse_metrics(r, source=self.name),
        )

    async def _verdicts(self, project_uuid: str) -> dt.Verdicts:
        """Read violation pages until the last, the first FAIL (nothing is worse), or
        `MAX_VIOLATION_PAGES`."""
        pages: list[dt.ViolationPage] = []
        for number in range(1, dt.MAX_VIOLATION_PAGES + 1):
            page = await self._call(
                dt.build_violations(self.base_url, project_uuid, page=number),
                functools.partial(dt.parse_violations, source=self.name, page=number),
            )
            pages.append(page)
            worst = (v.verdict for v in page.violations if not v.suppressed)
            if not page.more() or Verdict.FAIL in worst:
                break
        return dt.judge_violations(pages)


async def _read(bom: str | Path) -> bytes:
    return await asyncio.to_thread(Path(bom).read_bytes)
