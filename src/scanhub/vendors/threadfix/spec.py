"""ThreadFix's entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs

from ..._model import Item, Lifecycle, Scan, Vendor
from ..._registry import Planned, Seeded, SourceConfig, TrackConfig, Tracking, VendorSpec
from ..._schema import EnvVar, Id
from ...sim._base import SimClock
from .client import ThreadFix
from .sim import ThreadFixSim

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

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> ThreadFixSim:
        return ThreadFixSim(clock=clock, duration=6.0, host=host, port=port)

    def sim_source(self, sim: ThreadFixSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_THREADFIX_KEY"
        return {"api_key_env": var}, {var: sim.api_key}

    def sim_seed(self, sim: ThreadFixSim) -> list[Seeded]:
        return [
            Seeded(
                {"application_id": 6, "pending_scan_id": pid},
                f"pending scan {pid} of application 6",
            )
            for pid in sim.seed_pending(6, 2, duration=25)
        ]

    async def demo_more(self, sim: ThreadFixSim, client: ThreadFix, round: int) -> list[Item]:
        sim.add_application(6)
        name = f"nightly-{round}.fpr" if round % 4 else f"nightly-{round}-zap.xml"
        if round % 4 == 0:
            sim.interrupt(name, "Unable to parse ZAP report: unexpected end of file")
        return [await client.upload_scan(6, b"<FVDL/>", filename=name)]

    def demo_client(self, sim: ThreadFixSim) -> ThreadFix:
        return ThreadFix(sim.base_url, sim.api_key, name="threadfix")

    async def demo(self, sim: ThreadFixSim, client: ThreadFix) -> list[Planned]:
        sim.add_application(6)
        sim.interrupt("webshop-zap.xml", "Unable to parse ZAP report: unexpected end of file")
        return [
            Planned(
                await client.upload_scan(6, b"<FVDL/>", filename="webshop-fortify.fpr"),
                Lifecycle.SUCCEEDED,
            ),
            Planned(
                await client.upload_scan(6, b"<OWASPZAPReport>", filename="webshop-zap.xml"),
                Lifecycle.FAILED,
            ),
        ]


SPEC = ThreadFixSpec()
