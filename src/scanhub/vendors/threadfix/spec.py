"""ThreadFix's entry in the vendor registry."""

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
)

from .client import ThreadFix

#: The REST API versions scanhub speaks: `sansio.API_VERSIONS` (a test holds the two equal;
#: adapters.md, "ThreadFix versions", says what each means).
ApiVersion = Literal["latest", "v2.5", "v2.6", "v2.7", "v2.8", "v3.0", "unversioned"]


@attrs.define(kw_only=True)
class ThreadFixSource(SourceConfig):
    """A ThreadFix server (base URL usually ends in /threadfix)."""

    api_key_env: EnvVar = attrs.field(metadata={"doc": "variable holding the API key"})
    api_version: ApiVersion = attrs.field(
        default="latest",
        metadata={"doc": "the REST API version in the path; unversioned: the open-source server"},
    )
    api_key_in_query: bool = attrs.field(
        default=False, metadata={"doc": "send the key as ?apiKey= (old servers)"}
    )

    SECRETS: ClassVar[tuple[str, ...]] = ("api_key",)


@attrs.define(kw_only=True)
class ThreadFixTrack(TrackConfig):
    """A ThreadFix pending scan."""

    application_id: Id = attrs.field(metadata={"doc": "the application id"})
    pending_scan_id: Id = attrs.field(metadata={"doc": "the pending scan id"})


class ThreadFixSpec(VendorSpec):
    """ThreadFix."""

    name = Vendor.THREADFIX.value
    title = "ThreadFix"
    client = ThreadFix
    source_schema = ThreadFixSource
    track_schema = ThreadFixTrack
    demo = "scanhub.vendors.threadfix.demo:DEMO"

    def make_client(self, source: ThreadFixSource, env: Mapping[str, str]) -> ThreadFix:
        return ThreadFix(
            source.base_url,
            source.secret("api_key_env", env),
            api_version=source.api_version,
            api_key_in_query=source.api_key_in_query,
            **source.client_options(),
        )

    async def resolve_track(self, client: ThreadFix, track: ThreadFixTrack) -> Tracking:
        placeholder = Scan(
            Vendor.THREADFIX,
            client.name,
            track.pending_scan_id,
            track.application_id,
            Lifecycle.UNKNOWN,
            "",
        )
        return Tracking(items=(placeholder,))


SPEC = ThreadFixSpec()
