"""The Sonatype IQ Server client: promote scan and its status."""

from __future__ import annotations

from typing import Any

import attrs

from scanhub.vendors import Client, Promotion, RetryPolicy, Secret, Vendor

from . import sansio as iq


class IQServer(Client):
    """Sonatype IQ Server / Sonatype Cloud (promote scan and its status).

    `username`/`password` may be a user token pair (userCode/passCode). For Sonatype Cloud give
    the base URL with its `/platform` prefix and consider `rate_limit=RateLimit.iq_cloud()`.
    `csrf_token` is sent as header and cookie on mutating calls behind reverse-proxy auth.
    """

    vendor = Vendor.IQ

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str | Secret,
        *,
        csrf_token: str | None = None,
        retry: RetryPolicy | None = None,
        **kw: Any,
    ) -> None:
        self._password = Secret(password)
        self._csrf = csrf_token
        super().__init__(
            base_url,
            auth_headers=iq.auth_headers(username, self._password.reveal()),
            secrets=(self._password,),
            # IQ Cloud's 429 sends no Retry-After and asks for 5 minutes.
            retry=retry or RetryPolicy(default_429_wait=iq.CLOUD_429_WAIT),
            **kw,
        )
        self.transport.redact.add_basic(username, self._password.reveal())
        #: Internal id -> public id, of the applications this client looked up: the promotions
        #: it produces carry the public id people know (`application_name`).
        self._public_ids: dict[str, str] = {}

    async def application_id(self, public_id: str) -> str:
        """The internal id of the application with this public id (remembered, so promotions
        of it carry the public id as their `application_name`)."""
        internal = await self._call(
            iq.build_application_lookup(self.base_url, public_id),
            lambda r: iq.parse_application_lookup(r, source=self.name, public_id=public_id),
        )
        self._public_ids[internal] = public_id
        return internal

    def _named(self, promo: Promotion) -> Promotion:
        name = self._public_ids.get(promo.application_id)
        if name is None or promo.application_name == name:
            return promo
        return attrs.evolve(promo, application_name=name)

    async def promote_scan(
        self,
        application_id: str,
        *,
        target_stage: str,
        scan_id: str | None = None,
        source_stage: str | None = None,
    ) -> Promotion:
        """Submit a promotion of `scan_id` (or of the latest scan of `source_stage`)."""
        req = iq.build_promote(
            self.base_url,
            application_id,
            target_stage=target_stage,
            scan_id=scan_id,
            source_stage=source_stage,
            csrf_token=self._csrf,
            source=self.name,
        )
        return self._named(
            await self._call(
                req,
                lambda r: iq.parse_promote(
                    r,
                    source=self.name,
                    base_url=self.base_url,
                    application_id=application_id,
                    target_stage=target_stage,
                    scan_id=scan_id,
                    source_stage=source_stage,
                ),
            )
        )

    async def promotion(self, application_id: str, status_id: str) -> Promotion:
        """The state of a promote-scan request."""
        return self._named(
            await self._call(
                iq.build_status(self.base_url, application_id, status_id),
                lambda r: iq.parse_status(
                    r,
                    source=self.name,
                    base_url=self.base_url,
                    application_id=application_id,
                    status_id=status_id,
                ),
            )
        )

    async def refresh(self, item: Promotion) -> Promotion:
        """Poll the status of a promotion this client submitted or fetched."""
        self._check_mine(item)
        if item.application_name:
            self._public_ids.setdefault(item.application_id, item.application_name)
        return self._named(
            await self._call(
                iq.build_status(self.base_url, item.application_id, item.id),
                lambda r: iq.parse_status(
                    r, source=self.name, base_url=self.base_url, previous=item
                ),
            )
        )
