"""Acme Scan's entry in scanhub's vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from scanhub.vendors import (
    SourceConfig,
    TrackConfig,
    Tracking,
    VendorSpec,
    need_one,
)

from .client import Acme


@attrs.define(kw_only=True)
class AcmeSource(SourceConfig):
    """An Acme Scan server."""

    key_env: str

    SECRETS: ClassVar[tuple[str, ...]] = ("key",)


@attrs.define(kw_only=True)
class AcmeTrack(TrackConfig):
    """One Acme scan, or every scan of an app."""

    scan_id: str | None = None
    app: str | None = None

    def problems(self) -> list[tuple[str, str]]:
        return need_one(self, "scan_id", "app")


class AcmeSpec(VendorSpec):
    name = "acme"
    title = "Acme Scan"
    client = Acme
    source_schema = AcmeSource
    track_schema = AcmeTrack
    demo = "scanhub_acme.demo:DEMO"

    def make_client(self, source: AcmeSource, env: Mapping[str, str]) -> Acme:
        return Acme(source.base_url, source.secret("key_env", env), **source.client_options())

    async def resolve_track(self, client: Acme, track: AcmeTrack) -> Tracking:
        if track.scan_id is not None:
            # An item's key names its application: a scan tracked by its id alone is read
            # once to learn it (a placeholder without it would be another item than the
            # scan its polls return, and those are refused).
            return Tracking(items=(await client.scan(track.scan_id),))
        return Tracking(query={"app": str(track.app)})


SPEC = AcmeSpec()
