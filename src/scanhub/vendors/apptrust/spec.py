"""JFrog AppTrust's entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from scanhub.vendors import (
    EnvVar,
    Id,
    Lifecycle,
    Promotion,
    SourceConfig,
    Text,
    TrackConfig,
    Tracking,
    Vendor,
    VendorSpec,
)

from .client import AppTrust


@attrs.define(kw_only=True)
class AppTrustSource(SourceConfig):
    """A JFrog AppTrust API (base URL https://HOST/apptrust/api/v1)."""

    token_env: EnvVar = attrs.field(metadata={"doc": "variable holding the access token"})

    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


@attrs.define(kw_only=True)
class AppTrustTrack(TrackConfig):
    """Every promotion of an application version (optionally filtered), or one by id."""

    application_key: Id = attrs.field(metadata={"doc": "the application key"})
    version: Id = attrs.field(metadata={"doc": "the application version"})
    promotion_id: Id | None = attrs.field(
        default=None, metadata={"doc": "one promotion (its created_millis)"}
    )
    target_stage: Text | None = attrs.field(default=None, metadata={"doc": "filter"})
    status: Text | None = attrs.field(default=None, metadata={"doc": "filter"})
    promoted_by: Text | None = attrs.field(default=None, metadata={"doc": "filter"})


class AppTrustSpec(VendorSpec):
    """JFrog AppTrust."""

    name = Vendor.APPTRUST.value
    title = "JFrog AppTrust"
    client = AppTrust
    source_schema = AppTrustSource
    track_schema = AppTrustTrack
    demo = "scanhub.vendors.apptrust.demo:DEMO"

    def make_client(self, source: AppTrustSource, env: Mapping[str, str]) -> AppTrust:
        return AppTrust(source.base_url, source.secret("token_env", env), **source.client_options())

    async def resolve_track(self, client: AppTrust, track: AppTrustTrack) -> Tracking:
        if track.promotion_id is not None:
            promo = Promotion(
                Vendor.APPTRUST,
                client.name,
                track.promotion_id,
                track.application_key,
                Lifecycle.UNKNOWN,
                "",
                version=track.version,
            )
            return Tracking(items=(promo,))
        query = {"application_key": track.application_key, "version": track.version}
        for key in ("target_stage", "status", "promoted_by"):
            value = getattr(track, key)
            if value is not None:
                query[key] = value
        return Tracking(query=query)


SPEC = AppTrustSpec()
