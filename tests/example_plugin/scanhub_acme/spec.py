"""Acme Scan's entry in scanhub's vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from scanhub import Lifecycle, Scan, Verdict
from scanhub.sim import SimClock
from scanhub.vendors import (
    Planned,
    Seeded,
    SourceConfig,
    TrackConfig,
    Tracking,
    VendorSpec,
    need_one,
)

from .client import Acme
from .sim import AcmeSim


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

    def make_client(self, source: AcmeSource, env: Mapping[str, str]) -> Acme:
        return Acme(source.base_url, source.secret("key_env", env), **source.client_options())

    async def resolve_track(self, client: Acme, track: AcmeTrack) -> Tracking:
        if track.scan_id is not None:
            item = Scan("acme", client.name, track.scan_id, "", Lifecycle.UNKNOWN, "")
            return Tracking(items=(item,))
        return Tracking(query={"app": str(track.app)})

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> AcmeSim:
        return AcmeSim(clock=clock, host=host, port=port)

    def sim_source(self, sim: AcmeSim) -> tuple[dict[str, Any], dict[str, str]]:
        return {"key_env": "ACME_KEY"}, {"ACME_KEY": sim.key}

    def sim_seed(self, sim: AcmeSim) -> list[Seeded]:
        sim.add_scan("a-1", "shop")
        sim.add_scan("a-2", "shop", issues=3)
        return [Seeded({"app": "shop"}, "every scan of app shop (a-1, a-2)")]

    def demo_client(self, sim: AcmeSim) -> Acme:
        return Acme(sim.base_url, sim.key, name="acme")

    async def demo(self, sim: AcmeSim, client: Acme) -> list[Planned]:
        sim.add_scan("demo-1", "shop", issues=1)
        return [Planned(await client.scan("demo-1"), Lifecycle.SUCCEEDED, Verdict.FAIL)]


SPEC = AcmeSpec()
