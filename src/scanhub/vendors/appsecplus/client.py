"""The AppSec+ client: list, trigger and get scans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scanhub.vendors import Client, Scan, Secret, Vendor

from . import sansio as appsecplus


class AppSecPlus(Client):
    """AppSec+ (SAST / DAST / SCA / container scans)."""

    vendor = Vendor.APPSECPLUS

    def __init__(self, base_url: str, token: str | Secret, **kw: Any) -> None:
        self._token = Secret(token)
        super().__init__(
            base_url,
            auth_headers=appsecplus.auth_headers(self._token.reveal()),
            secrets=(self._token,),
            **kw,
        )

    async def scans(
        self, application_id: str | None = None, status: str | None = None
    ) -> list[Scan]:
        """Scans, optionally of one application and/or in one status."""
        req = appsecplus.build_list(self.base_url, application_id=application_id, status=status)
        return await self._call(
            req, lambda r: appsecplus.parse_list(r, source=self.name, base_url=self.base_url)
        )

    async def trigger_scan(
        self, application_id: str, scan_type: str, triggered_by: str | None = None
    ) -> Scan:
        """Queue a scan (`scan_type` is sast, dast, sca or container)."""
        req = appsecplus.build_trigger(
            self.base_url, application_id, scan_type, triggered_by, source=self.name
        )
        return await self._call(
            req, lambda r: appsecplus.parse_scan(r, source=self.name, base_url=self.base_url)
        )

    async def scan(self, scan_id: str) -> Scan:
        """One scan by id."""
        return await self._call(
            appsecplus.build_get(self.base_url, scan_id),
            lambda r: appsecplus.parse_scan(r, source=self.name, base_url=self.base_url),
        )

    async def discover(  # type: ignore[override]
        self, application_id: str | None = None, status: str | None = None
    ) -> AsyncIterator[Scan]:
        """Discovery: every scan of an application (optionally in one status)."""
        for scan in await self.scans(application_id, status):
            yield scan

    async def refresh(self, item: Scan) -> Scan:
        """Poll a scan."""
        self._check_mine(item)
        return await self.scan(item.id)
