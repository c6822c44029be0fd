"""The JFrog AppTrust client: version promotions with entry/exit gates."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Unpack

import attrs

from scanhub.sansio import Request
from scanhub.vendors import Client, NotFoundError, PayloadError, Promotion, Secret, Vendor

from . import sansio as apptrust


class AppTrust(Client):
    """JFrog AppTrust (application version promotions with entry/exit gates)."""

    vendor = Vendor.APPTRUST

    #: How long (seconds) promotions read from the list answer later refreshes without asking
    #: again: a snapshot of many promotions of one version reads the list once, not per item.
    list_cache_ttl = 1.0

    def __init__(self, base_url: str, token: str | Secret, **kw: Any) -> None:
        self._token = Secret(token)
        super().__init__(
            base_url,
            auth_headers=apptrust.auth_headers(self._token.reveal()),
            secrets=(self._token,),
            **kw,
        )
        self._batches: dict[tuple[str, str, str | None], _Batch] = {}
        self._recent: dict[tuple[str, str, str | None], tuple[float, dict[str, Promotion]]] = {}

    async def promotions(
        self,
        application_key: str,
        version: str,
        *,
        target_stage: str | None = None,
        status: str | None = None,
        promoted_by: str | None = None,
        order_by: str = "created",
        ascending: bool = False,
        page_size: int = 100,
        max_pages: int = 10_000,
    ) -> AsyncGenerator[Promotion, None]:
        """Every promotion of a version, fetched page by page as the iteration goes. Paging
        always ends and never yields a record twice; a server that pages wrongly (stuck or
        backward offsets, repeated pages, more than `max_pages`) ends it with a
        `PayloadError` after what was new."""
        filters = apptrust.Filters(target_stage, status, promoted_by)
        pager = apptrust.Pager(page_size, max_pages=max_pages)
        while not pager.done:
            offset = pager.offset
            req = apptrust.build_promotions(
                self.base_url,
                application_key,
                version,
                offset=offset,
                limit=page_size,
                filters=filters,
                order_by=order_by,
                ascending=ascending,
            )
            parse = functools.partial(
                apptrust.parse_promotions,
                source=self.name,
                application_key=application_key,
                version=version,
                offset=offset,
                filters=filters,
            )
            page = await self._call(req, parse)
            for promo in pager.accept(page, offset):
                yield promo
        if pager.fault is not None:
            raise PayloadError(
                f"paging {application_key} {version} promotions: {pager.fault}",
                vendor=self.vendor,
                source=self.name,
                operation="list promotions",
            )

    async def discover(  # type: ignore[override]
        self,
        application_key: str,
        version: str,
        target_stage: str | None = None,
        status: str | None = None,
        promoted_by: str | None = None,
    ) -> AsyncIterator[Promotion]:
        """Discovery: every promotion of an application version (optionally filtered)."""
        async for promo in self.promotions(
            application_key,
            version,
            target_stage=target_stage,
            status=status,
            promoted_by=promoted_by,
        ):
            yield promo

    async def promotion(self, application_key: str, version: str, promotion_id: str) -> Promotion:
        """One promotion's details by its id (`created_millis`): stage, creator, time and (in
        `raw`) its artifacts. The details carry no status: use `refresh` to follow one."""
        return await self._call(
            apptrust.build_promotion(self.base_url, application_key, version, promotion_id),
            lambda r: apptrust.parse_promotion(
                r, source=self.name, application_key=application_key, version=version
            ),
        )

    async def promote(
        self,
        application_key: str,
        version: str,
        target_stage: str,
        **options: Unpack[apptrust.PromoteOptions],
    ) -> Promotion:
        """Promote a version to `target_stage` (`promotion_type`, repository keys, `run_async`:
        see `PromoteOptions`); returns the promotion as the server answered."""
        req = apptrust.build_promote(
            self.base_url, application_key, version, target_stage, source=self.name, **options
        )
        return await self._promoted(req, application_key, version, target_stage)

    async def release(
        self, application_key: str, version: str, **options: Unpack[apptrust.PromoteOptions]
    ) -> Promotion:
        """Release a version (promote it to PROD through the release gate)."""
        req = apptrust.build_release(
            self.base_url, application_key, version, source=self.name, **options
        )
        return await self._promoted(req, application_key, version, "PROD")

    async def _promoted(
        self, req: Request, application_key: str, version: str, target_stage: str
    ) -> Promotion:
        return await self._call(
            req,
            lambda r: apptrust.parse_promote(
                r,
                source=self.name,
                application_key=application_key,
                version=version,
                target_stage=target_stage,
            ),
        )

    async def refresh(self, item: Promotion) -> Promotion:
        """A promotion's current status and gates, read from the documented promotions list
        (newest first, filtered by its target stage) since the details endpoint has none. The
        promotion keeps its id, so its key does not change.

        Refreshes of promotions of the same version and stage that are under way together share
        one read of the list: a snapshot of many promotions costs a few pages, not a listing
        each."""
        self._check_mine(item)
        group = (item.application_id, item.version or "", item.target_stage)
        recent = self._recent.get(group)
        if recent is not None and time.monotonic() - recent[0] < self.list_cache_ttl:
            cached = recent[1].get(item.id)
            if cached is not None:
                return cached
        batch = self._batches.get(group)
        if batch is None:
            batch = self._batches[group] = _Batch()
            batch.task = asyncio.get_running_loop().create_task(self._read_batch(group, batch))
            # A read whose every caller went away (a deadline) still ends quietly.
            batch.task.add_done_callback(lambda t: t.cancelled() or t.exception())
        batch.wanted.append(item)
        assert batch.task is not None
        found = await asyncio.shield(batch.task)
        promo = found.get(item.id)
        if promo is not None:
            return promo if promo.id == item.id else attrs.evolve(promo, id=item.id)
        raise NotFoundError(
            f"promotion {item.id} of {item.application_id} {item.version} to "
            f"{item.target_stage} is not in the promotions list",
            vendor=self.vendor,
            source=self.name,
            operation="refresh promotion",
        )

    async def _read_batch(
        self, group: tuple[str, str, str | None], batch: _Batch
    ) -> dict[str, Promotion]:
        await asyncio.sleep(0)  # let the refreshes started together join this read
        del self._batches[group]  # later refreshes start a new read
        application_key, version, stage = group
        wanted = batch.wanted
        seen: dict[str, Promotion] = {}
        started = time.monotonic()
        pages = self.promotions(
            application_key, version, target_stage=stage, order_by="created", ascending=False
        )
        async with contextlib.aclosing(pages):
            async for promo in pages:
                seen[promo.id] = promo
                if not apptrust.more_to_find(promo, wanted, seen):
                    break
        # Whatever the pages carried answers the refreshes that follow for a moment.
        self._recent[group] = (started, seen)
        return apptrust.match_promotions(seen.values(), wanted)


@attrs.define(eq=False)
class _Batch:
    wanted: list[Promotion] = attrs.field(factory=list)
    task: asyncio.Task[dict[str, Promotion]] | None = None
