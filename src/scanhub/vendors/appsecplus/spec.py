"""AppSec+'s entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import attrs

from scanhub.vendors import (
    EnvVar,
    Id,
    Lifecycle,
    Scan,
    SourceConfig,
    TrackConfig,
    Tracking,
    Vendor,
    VendorSpec,
    need_one,
)

from .client import AppSecPlus

#: The `status` filter: the vendor's values (seed 003) or the canonical ones.
StatusFilter = Literal["queued", "running", "completed", "failed", "succeeded"]


@attrs.define(kw_only=True)
class AppSecPlusSource(SourceConfig):
    """An AppSec+ API."""

    token_env: EnvVar = attrs.field(metadata={"doc": "variable holding the bearer token"})

    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


@attrs.define(kw_only=True)
class AppSecPlusTrack(TrackConfig):
    """One AppSec+ scan, or every scan of an application (optionally in one status)."""

    scan_id: Id | None = attrs.field(default=None, metadata={"doc": "one scan"})
    application_id: Id | None = attrs.field(
        default=None, metadata={"doc": "every scan of this application"}
    )
    status: StatusFilter | None = attrs.field(
        default=None, metadata={"doc": "only scans in this status"}
    )

    def problems(self) -> list[tuple[str, str]]:
        return need_one(self, "scan_id", "application_id")


class AppSecPlusSpec(VendorSpec):
    """AppSec+."""

    name = Vendor.APPSECPLUS.value
    title = "AppSec+"
    client = AppSecPlus
    source_schema = AppSecPlusSource
    track_schema = AppSecPlusTrack
    demo = "scanhub.vendors.appsecplus.demo:DEMO"

    def make_client(self, source: AppSecPlusSource, env: Mapping[str, str]) -> AppSecPlus:
        return AppSecPlus(
            source.base_url, source.secret("token_env", env), **source.client_options()
        )

    async def resolve_track(self, client: AppSecPlus, track: AppSecPlusTrack) -> Tracking:
        if track.scan_id is not None:
            if track.application_id is None:
                # The item's key names its application: ask the server which one it is (a
                # key without it would be another item than its polls and discovery find).
                return Tracking(items=(await client.scan(track.scan_id),))
            scan = Scan(
                Vendor.APPSECPLUS,
                client.name,
                track.scan_id,
                track.application_id,
                Lifecycle.UNKNOWN,
                "",
            )
            return Tracking(items=(scan,))
        query = {"application_id": str(track.application_id)}
        if track.status is not None:
            query["status"] = track.status
        return Tracking(query=query)


SPEC = AppSecPlusSpec()
