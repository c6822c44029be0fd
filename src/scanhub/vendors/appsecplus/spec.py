"""AppSec+'s entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs

from ..._model import Item, Lifecycle, Scan, Vendor
from ..._registry import (
    Planned,
    Seeded,
    SourceConfig,
    TrackConfig,
    Tracking,
    VendorSpec,
    need_one,
)
from ..._schema import EnvVar, Id
from ..._transport import RetryPolicy
from ...sim._base import Faults, SimClock
from .client import AppSecPlus
from .sim import AppSecPlusSim

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

    def make_client(self, source: AppSecPlusSource, env: Mapping[str, str]) -> AppSecPlus:
        return AppSecPlus(
            source.base_url, source.secret("token_env", env), **source.client_options()
        )

    async def resolve_track(self, client: AppSecPlus, track: AppSecPlusTrack) -> Tracking:
        if track.scan_id is not None:
            scan = Scan(
                Vendor.APPSECPLUS,
                client.name,
                track.scan_id,
                track.application_id or "",
                Lifecycle.UNKNOWN,
                "",
            )
            return Tracking(items=(scan,))
        query = {"application_id": str(track.application_id)}
        if track.status is not None:
            query["status"] = track.status
        return Tracking(query=query)

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> AppSecPlusSim:
        return AppSecPlusSim(clock=clock, duration=5.0, host=host, port=port)

    def sim_source(self, sim: AppSecPlusSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_APPSECPLUS_TOKEN"
        return {"token_env": var}, {var: sim.token}

    def sim_seed(self, sim: AppSecPlusSim) -> list[Seeded]:
        sim.add_application("app-12345")
        # No sast scan, so that triggering one (README's quickstart) does not conflict (409).
        ids = sim.seed_scans("app-12345", 3, duration=15, types=("dast", "sca", "container"))
        return [
            Seeded(
                {"application_id": "app-12345"},
                f"every scan of application app-12345 (seeded: {', '.join(ids)})",
            )
        ]

    async def demo_more(self, sim: AppSecPlusSim, client: AppSecPlus, round: int) -> list[Item]:
        # New scans appear through the discovery rule (every scan of app-12345); this only
        # starts them, a different type each round so none conflicts with a running one. This
        # is the demo's faulty source: 5xx, 429 with Retry-After, some latency.
        if round == 1:
            sim.faults = Faults(
                latency=0.05, error_rate=0.1, rate_limit_rate=0.05, retry_after=1, seed=11
            )
        sim.add_application("app-12345")
        sim.seed_scans("app-12345", 1, types=(("sast", "dast", "sca", "container")[round % 4],))
        return []

    def demo_client(self, sim: AppSecPlusSim) -> AppSecPlus:
        # This source turns faulty in the demo: a short backoff keeps the show moving.
        retry = RetryPolicy(attempts=3, backoff_initial=0.05, backoff_max=0.5)
        return AppSecPlus(sim.base_url, sim.token, name="appsec-flaky", retry=retry)

    async def demo(self, sim: AppSecPlusSim, client: AppSecPlus) -> list[Planned]:
        sim.add_application("app-12345")
        sim.fail("app-12345", "dast")
        plan = [
            Planned(await client.trigger_scan("app-12345", "sast", "demo"), Lifecycle.SUCCEEDED),
            Planned(await client.trigger_scan("app-12345", "dast", "demo"), Lifecycle.FAILED),
            Planned(
                await client.trigger_scan("app-12345", "container", "demo"), Lifecycle.SUCCEEDED
            ),
        ]
        # From here on this source misbehaves; the watch must ride through it.
        sim.faults = Faults(
            latency=0.05,
            error_rate=0.2,
            rate_limit_rate=0.15,
            retry_after=0.3,
            malformed_rate=0.1,
            html_rate=0.05,
            seed=7,
        )
        return plan


SPEC = AppSecPlusSpec()
