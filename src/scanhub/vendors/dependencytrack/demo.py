"""Dependency-Track's demo part: its simulator, what `scanhub sim` seeds, its role in the demos."""

from __future__ import annotations

import json
from typing import Any

from scanhub.sim import SimClock
from scanhub.vendors import Item, Lifecycle, Planned, Seeded, VendorDemo, Verdict

from .client import DependencyTrack
from .sim import DependencyTrackSim, Profile


def cyclonedx(name: str, *components: str) -> bytes:
    """A small CycloneDX 1.5 JSON BOM with these library components."""
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "version": 1,
            "metadata": {"component": {"type": "application", "name": name}},
            "components": [
                {
                    "type": "library",
                    "name": c,
                    "version": "1.0.0",
                    "purl": f"pkg:npm/{c}@1.0.0",
                }
                for c in components
            ],
        }
    ).encode()


WEBSHOP = Profile(
    violations=[
        ("FAIL", "Forbidden licenses", "left-pad"),
        ("WARN", "Outdated components", "lodash"),
    ],
    severities=(1, 2, 4, 1, 0),
)
PAYMENTS = Profile(
    violations=[("WARN", "Outdated components", "moment")], severities=(0, 0, 2, 3, 1)
)
BILLING_FAILS = Profile(
    fail=("VULN_ANALYSIS", "Failure threshold of 5.00% exceeded: 3/12 of scans failed")
)


class DependencyTrackDemo(VendorDemo):
    """Dependency-Track in `scanhub demo`, `scanhub serve --demo` and `scanhub sim`."""

    def make_sim(
        self, clock: SimClock, host: str = "127.0.0.1", port: int = 0
    ) -> DependencyTrackSim:
        return DependencyTrackSim(clock=clock, duration=5.0, host=host, port=port)

    def sim_source(self, sim: DependencyTrackSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_DEPENDENCYTRACK_KEY"
        return {"api_key_env": var, "api_version": sim.api_version}, {var: sim.api_key}

    def sim_seed(self, sim: DependencyTrackSim) -> list[Seeded]:
        project = sim.add_project("webshop", "1.4.0", WEBSHOP)
        return [
            Seeded(
                {"token": token, "project_uuid": project},
                f"BOM upload {token} of project webshop 1.4.0",
            )
            for token in (sim.seed_upload(project, duration=25) for _ in range(2))
        ]

    def client(self, sim: DependencyTrackSim) -> DependencyTrack:
        return DependencyTrack(
            sim.base_url, sim.api_key, api_version=sim.api_version, name="dependencytrack"
        )

    async def scenario(self, sim: DependencyTrackSim, client: DependencyTrack) -> list[Planned]:
        sim.add_project("webshop", "1.4.0", WEBSHOP)
        sim.add_project("billing", "3.1.0", BILLING_FAILS)
        webshop = await client.upload_bom(
            cyclonedx("webshop", "left-pad", "lodash", "express"),
            project_name="webshop",
            project_version="1.4.0",
        )
        inventory = await client.upload_bom(
            cyclonedx("inventory", "express"),
            project_name="inventory",
            project_version="0.9.0",
            auto_create=True,
        )
        billing = await client.upload_bom(
            cyclonedx("billing", "axios", "moment"), project_name="billing", project_version="3.1.0"
        )
        return [
            Planned(webshop, Lifecycle.SUCCEEDED, Verdict.FAIL),
            Planned(inventory, Lifecycle.SUCCEEDED, Verdict.PASS),
            Planned(billing, Lifecycle.FAILED),
        ]

    async def more(
        self, sim: DependencyTrackSim, client: DependencyTrack, round: int
    ) -> list[Item]:
        if round % 4 == 0:
            sim.add_project("billing", "3.1.0", BILLING_FAILS)
            name, version = "billing", "3.1.0"
        elif round % 2:
            sim.add_project("payments", "2.0.0", PAYMENTS)
            name, version = "payments", "2.0.0"
        else:
            sim.add_project("webshop", "1.4.0", WEBSHOP)
            name, version = "webshop", "1.4.0"
        bom = cyclonedx(name, "express", "lodash", "moment")
        return [await client.upload_bom(bom, project_name=name, project_version=version)]


DEMO = DependencyTrackDemo()
