"""Acme Scan's client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scanhub.vendors import Client, Scan, Secret

from . import sansio


class Acme(Client):
    """Acme Scan."""

    vendor = "acme"

    def __init__(self, base_url: str, key: str | Secret, **kw: Any) -> None:
        self._key = Secret(key)
        super().__init__(
            base_url, auth_headers={"X-Acme-Key": self._key.reveal()}, secrets=(self._key,), **kw
        )

    async def scan(self, scan_id: str) -> Scan:
        return await self._call(
            sansio.build_scan(self.base_url, scan_id),
            lambda r: sansio.parse_scan(r, source=self.name),
        )

    async def discover(self, app: str) -> AsyncIterator[Scan]:  # type: ignore[override]
        scans = await self._call(
            sansio.build_app_scans(self.base_url, app),
            lambda r: sansio.parse_app_scans(r, source=self.name),
        )
        for scan in scans:
            yield scan

    async def refresh(self, item: Scan) -> Scan:
        self._check_mine(item)
        return await self.scan(item.id)
