"""The ThreadFix client: scan upload and pending-scan status."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from scanhub.sansio import FilePart
from scanhub.vendors import Client, Scan, Secret, Vendor

from . import sansio as threadfix


class ThreadFix(Client):
    """ThreadFix (scan upload and pending-scan status).

    `api_key_in_query=True` sends the key as `?apiKey=` for old servers (it is redacted from
    every log line and error).
    """

    vendor = Vendor.THREADFIX

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        api_version: str = "latest",
        api_key_in_query: bool = False,
        **kw: Any,
    ) -> None:
        self._api_key = Secret(api_key)
        self.api_version = api_version
        key = self._api_key.reveal()
        headers = threadfix.auth_headers(key)
        params: tuple[tuple[str, str], ...] = ()
        if api_key_in_query:
            headers = {"Accept": "application/json"}
            params = threadfix.auth_params(key)
        super().__init__(
            base_url, auth_headers=headers, auth_params=params, secrets=(self._api_key,), **kw
        )

    async def upload_scan(
        self, application_id: str | int, file: str | Path | bytes, *, filename: str | None = None
    ) -> Scan:
        """Upload a scanner's result file; returns the queued pending scan."""
        if isinstance(file, bytes):
            content, name = file, filename or "scan"
        else:
            path = Path(file)
            content, name = await asyncio.to_thread(path.read_bytes), filename or path.name
        app = str(application_id)
        req = threadfix.build_upload(
            self.base_url,
            app,
            FilePart("file", name, content),
            api_version=self.api_version,
            source=self.name,
        )
        return await self._call(
            req,
            lambda r: threadfix.parse_upload(
                r, source=self.name, base_url=self.base_url, application_id=app
            ),
        )

    async def pending_scan(self, application_id: str | int, pending_scan_id: str | int) -> Scan:
        """The state of a queued scan."""
        app, pid = str(application_id), str(pending_scan_id)
        return await self._call(
            threadfix.build_pending_scan(self.base_url, app, pid, api_version=self.api_version),
            lambda r: threadfix.parse_pending_scan(
                r, source=self.name, application_id=app, pending_scan_id=pid
            ),
        )

    async def refresh(self, item: Scan) -> Scan:
        """Poll a pending scan this client uploaded or fetched. A scan the open-source server
        processed during the upload is final: it has no pending scan to poll."""
        self._check_mine(item)
        if self.api_version == threadfix.UNVERSIONED and item.lifecycle.is_terminal:
            return item
        return await self.pending_scan(item.application_id, item.id)
