"""JFrog AppTrust's entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from ..._model import Item, Lifecycle, Promotion, Vendor, Verdict
from ..._registry import Planned, Seeded, SourceConfig, TrackConfig, Tracking, VendorSpec
from ..._schema import EnvVar, Id, Text
from ...sim._base import SimClock
from .client import AppTrust
from .sim import AppTrustSim


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

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> AppTrustSim:
        return AppTrustSim(clock=clock, duration=4.0, host=host, port=port)

    def sim_source(self, sim: AppTrustSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_APPTRUST_TOKEN"
        return {"token_env": var}, {var: sim.token}

    def sim_seed(self, sim: AppTrustSim) -> list[Seeded]:
        sim.add_version("webshop", "1.4.0")
        ids = sim.seed_promotions("webshop", "1.4.0", 2, duration=20)
        return [
            Seeded(
                {"application_key": "webshop", "version": "1.4.0"},
                f"every promotion of webshop 1.4.0 (seeded: {', '.join(ids)})",
            )
        ]

    async def demo_more(self, sim: AppTrustSim, client: AppTrust, round: int) -> list[Item]:
        # Promotions appear through the discovery rule (every promotion of webshop 1.4.0).
        sim.add_version("webshop", "1.4.0")
        sim.gate("webshop", "PROD", "fail", "Promotion blocked due to critical vulnerabilities.")
        sim.gate("webshop", "STAGING", "warn", "2 medium vulnerabilities without a fix")
        target = ("QA", "STAGING", "PROD")[round % 3]
        await client.promote("webshop", "1.4.0", target)
        return []

    def demo_client(self, sim: AppTrustSim) -> AppTrust:
        return AppTrust(sim.base_url, sim.token, name="apptrust")

    async def demo(self, sim: AppTrustSim, client: AppTrust) -> list[Planned]:
        sim.add_version("webshop", "1.4.0", stage="DEV")
        sim.gate(
            "webshop", "PROD", "fail", "Promotion blocked due to critical security vulnerabilities."
        )
        return [
            Planned(
                await client.promote("webshop", "1.4.0", "QA"), Lifecycle.SUCCEEDED, Verdict.PASS
            ),
            Planned(
                await client.promote("webshop", "1.4.0", "PROD"), Lifecycle.FAILED, Verdict.FAIL
            ),
        ]


SPEC = AppTrustSpec()
