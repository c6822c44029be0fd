"""The SonarQube client: Compute Engine tasks and the quality gate of their analysis."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from scanhub.vendors import BadRequestError, Client, NotFoundError, PayloadError, Scan, Secret

from . import sansio as sq


class SonarQube(Client):
    """SonarQube Server (and SonarCloud, whose API is the same for these calls).

    `auth="bearer"` sends `Authorization: Bearer <token>` (SonarQube 10.0+ and SonarCloud);
    `auth="basic"` sends the token as the Basic user name with an empty password, which older
    servers need. A task that SUCCEEDED with an analysis is read together with that analysis's
    quality gate, so a finished Scan carries its verdict.
    """

    vendor = sq.VENDOR

    #: How many analyses' quality gates are remembered (a gate computed for an analysis does not
    #: change, so discovery re-run every minute does not ask again).
    gate_cache_size = 2048

    def __init__(
        self, base_url: str, token: str | Secret, *, auth: str = "bearer", **kw: Any
    ) -> None:
        self._token = Secret(token)
        self.auth = auth
        super().__init__(
            base_url,
            auth_headers=sq.auth_headers(self._token.reveal(), auth),
            secrets=(self._token,),
            **kw,
        )
        if auth == "basic":
            self.transport.redact.add_basic(self._token.reveal(), "")
        self._gates: OrderedDict[str, sq.QualityGate] = OrderedDict()

    async def task(self, task_id: str) -> Scan:
        """A Compute Engine task as it stands, with its quality gate once it has SUCCEEDED."""
        scan = await self._call(
            sq.build_task(self.base_url, task_id),
            functools.partial(sq.parse_task, source=self.name, base_url=self.base_url),
        )
        return await self._with_gate(scan)

    async def quality_gate(self, analysis_id: str) -> sq.QualityGate:
        """The quality gate of one analysis (`project_status?analysisId=`)."""
        cached = self._gates.get(analysis_id)
        if cached is not None:
            return cached
        gate = await self._call(
            sq.build_quality_gate(self.base_url, analysis_id),
            functools.partial(sq.parse_quality_gate, source=self.name),
        )
        self._gates[analysis_id] = gate
        while len(self._gates) > self.gate_cache_size:
            self._gates.popitem(last=False)
        return gate

    async def activity(
        self,
        project_key: str,
        *,
        status: str | None = None,
        task_type: str | None = None,
        page_size: int = sq.DEFAULT_PAGE_SIZE,
        max_tasks: int = sq.DEFAULT_PAGE_SIZE,
    ) -> AsyncGenerator[Scan, None]:
        """A project's tasks, newest first (those in the queue come first), as the activity
        lists them: without their quality gates. `status` is a comma-separated list of the
        vendor's statuses or lifecycle names (default: all five). Pages are read as the
        iteration goes, at most `max_tasks` tasks; paging always ends, and never yields a task
        twice."""
        if max_tasks < 1:
            raise BadRequestError(
                "max_tasks must be at least 1",
                vendor=self.vendor,
                source=self.name,
                operation="list tasks",
            )
        statuses = sq.statuses_param(status, source=self.name)
        size = max(1, min(page_size, max_tasks, sq.MAX_PAGE_SIZE))
        seen: set[str] = set()
        page = 1
        while True:
            req = sq.build_activity(
                self.base_url,
                project_key,
                statuses=statuses,
                task_type=task_type,
                page=page,
                page_size=size,
            )
            result = await self._call(
                req,
                functools.partial(
                    sq.parse_activity, source=self.name, base_url=self.base_url, page=page
                ),
            )
            if result.page_index is not None and result.page_index != page:
                raise PayloadError(
                    f"asked for page {page} of {project_key}'s tasks, the server answered page "
                    f"{result.page_index}",
                    vendor=self.vendor,
                    source=self.name,
                    operation="list tasks",
                )
            new = [s for s in result.scans if s.id not in seen]
            for scan in new:
                seen.add(scan.id)
                yield scan
                if len(seen) >= max_tasks:
                    return
            if not new or not result.more(size):
                return
            page += 1

    async def discover(  # type: ignore[override]
        self,
        project_key: str,
        status: str | None = None,
        task_type: str | None = None,
        max_tasks: str | int | None = None,
    ) -> AsyncIterator[Scan]:
        """Discovery: a project's recent tasks (`api/ce/activity?component=`), each finished
        one with its quality gate. `max_tasks` (default 100) bounds how far back it looks."""
        limit = sq.DEFAULT_PAGE_SIZE
        if max_tasks is not None:
            try:
                limit = int(max_tasks)
            except ValueError:
                raise BadRequestError(
                    f"max_tasks must be a whole number, got {max_tasks!r}",
                    vendor=self.vendor,
                    source=self.name,
                    operation="discover",
                ) from None
        async for scan in self.activity(
            project_key, status=status, task_type=task_type, max_tasks=limit
        ):
            yield await self._with_gate(scan)

    async def refresh(self, item: Scan) -> Scan:
        """The task's current state; once it has SUCCEEDED with an analysis, one more request
        reads that analysis's quality gate, so the final state carries the verdict."""
        self._check_mine(item)
        scan = await self._call(
            sq.build_task(self.base_url, item.id),
            functools.partial(
                sq.parse_task, source=self.name, base_url=self.base_url, previous=item
            ),
        )
        return await self._with_gate(scan)

    async def _with_gate(self, scan: Scan) -> Scan:
        if not sq.needs_quality_gate(scan):
            return scan
        assert scan.final_scan_id is not None
        try:
            gate = await self.quality_gate(scan.final_scan_id)
        except NotFoundError as exc:
            # The analysis is gone (housekeeping purged it): the task still succeeded.
            return sq.without_quality_gate(scan, exc.message)
        return sq.with_quality_gate(scan, gate)
