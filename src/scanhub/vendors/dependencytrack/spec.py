"""OWASP Dependency-Track's entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import attrs

from scanhub.vendors import (
    EnvVar,
    Id,
    SourceConfig,
    Text,
    TrackConfig,
    Tracking,
    VendorSpec,
    need_one,
)

from . import sansio as dt
from .client import DependencyTrack

#: How tokens are followed: `sansio.API_VERSIONS` (a test holds the two equal; adapters.md,
#: "Dependency-Track versions", says what each means).
ApiVersion = Literal["v4", "v5"]


@attrs.define(kw_only=True)
class DependencyTrackSource(SourceConfig):
    """A Dependency-Track API server (base URL without /api)."""

    api_key_env: EnvVar = attrs.field(metadata={"doc": "variable holding the API key"})
    api_version: ApiVersion = attrs.field(
        default="v4",
        metadata={
            "doc": "v4: follow tokens by the processing flag (Dependency-Track 4.x and 5.0+); "
            "v5: by the workflow steps (Hyades API server 5.0 to 5.6)"
        },
    )

    SECRETS: ClassVar[tuple[str, ...]] = ("api_key",)


@attrs.define(kw_only=True)
class DependencyTrackTrack(TrackConfig):
    """A BOM upload token, with its project (by UUID, or by name and version)."""

    token: Id = attrs.field(metadata={"doc": "the token the BOM upload answered"})
    project_uuid: Id | None = attrs.field(default=None, metadata={"doc": "the project's UUID"})
    project_name: Text | None = attrs.field(
        default=None, metadata={"doc": "the project's name (with project_version; looked up)"}
    )
    project_version: Text | None = attrs.field(
        default=None, metadata={"doc": "the project's version (with project_name)"}
    )

    def problems(self) -> list[tuple[str, str]]:
        # Checked here as the server would refuse them (a 400 on every poll until the deadline
        # otherwise): the token and a project UUID are lower-case 36-character UUIDs.
        found = [
            (key, f"expected a 36-character lower-case UUID, got {value!r}")
            for key, value in (("token", self.token), ("project_uuid", self.project_uuid))
            if value is not None and not dt.is_uuid(value)
        ]
        if found:
            return found
        if self.project_uuid is not None:
            if self.project_name is not None or self.project_version is not None:
                return [("project_uuid", "give project_uuid or project_name, not both")]
            return []
        found = need_one(self, "project_uuid", "project_name")
        if found:
            return found
        if self.project_version is None:
            return [("project_version", "give project_version with project_name (missing)")]
        return []


class DependencyTrackSpec(VendorSpec):
    """OWASP Dependency-Track."""

    name = dt.VENDOR
    title = "Dependency-Track"
    client = DependencyTrack
    source_schema = DependencyTrackSource
    track_schema = DependencyTrackTrack
    demo = "scanhub.vendors.dependencytrack.demo:DEMO"

    def make_client(self, source: DependencyTrackSource, env: Mapping[str, str]) -> DependencyTrack:
        return DependencyTrack(
            source.base_url,
            source.secret("api_key_env", env),
            api_version=source.api_version,
            **source.client_options(),
        )

    async def resolve_track(self, client: DependencyTrack, track: DependencyTrackTrack) -> Tracking:
        uuid: str
        if track.project_uuid is not None:
            uuid = track.project_uuid
        else:  # problems() made sure both are given
            uuid = await client.project_uuid(str(track.project_name), str(track.project_version))
        item = dt.placeholder(client.name, track.token, uuid, client.base_url, client.api_version)
        return Tracking(items=(item,))


SPEC = DependencyTrackSpec()
