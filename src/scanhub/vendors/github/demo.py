"""GitHub code scanning's demo part: its simulator, what `scanhub sim` seeds, its role in the
demos."""

from __future__ import annotations

from typing import Any

from scanhub.sim import SimClock
from scanhub.vendors import Item, Lifecycle, Planned, Seeded, VendorDemo

from .client import GitHubCodeScanning
from .sim import GitHubSim, sample_sarif

REPOSITORY = "octo-org/webshop"
#: A commit the demo's uploads are about (any 40 hex digits do for the simulator).
COMMIT = "4b6472266afd7b471e86085a6659e8c7f2b119da"
#: The checkout URI GitHub's own example uses (upload-sarif's `checkout_uri`).
CHECKOUT = "file:///github/workspace/"


class GitHubDemo(VendorDemo):
    """GitHub code scanning in `scanhub demo`, `scanhub serve --demo` and `scanhub sim`."""

    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> GitHubSim:
        return GitHubSim(clock=clock, duration=4.0, host=host, port=port)

    def sim_source(self, sim: GitHubSim) -> tuple[dict[str, Any], dict[str, str]]:
        var = "SCANHUB_SIM_GITHUB_TOKEN"
        return {"token_env": var}, {var: sim.token}

    def sim_seed(self, sim: GitHubSim) -> list[Seeded]:
        return [
            Seeded(
                {"repository": REPOSITORY, "sarif_id": sid},
                f"SARIF upload {sid} to {REPOSITORY}",
            )
            for sid in sim.seed_uploads(REPOSITORY, 2, duration=20)
        ]

    def client(self, sim: GitHubSim) -> GitHubCodeScanning:
        return GitHubCodeScanning(sim.base_url, sim.token, name="github")

    async def _upload(
        self, client: GitHubCodeScanning, tool: str, results: int, *, broken: bool = False
    ) -> Item:
        # A broken upload names its files with a git:// URI while the checkout is file://:
        # GitHub fails it with "SARIF URI scheme "git" did not match the checkout URI scheme".
        uri = "git://github.com/octo-org/webshop/src/app.js" if broken else "src/app.js"
        return await client.upload_sarif(
            REPOSITORY,
            sample_sarif(tool, results, uri=uri),
            commit_sha=COMMIT,
            ref="refs/heads/main",
            checkout_uri=CHECKOUT,
        )

    async def scenario(self, sim: GitHubSim, client: GitHubCodeScanning) -> list[Planned]:
        sim.add_repository(REPOSITORY)
        return [
            Planned(await self._upload(client, "Semgrep OSS", 3), Lifecycle.SUCCEEDED),
            Planned(await self._upload(client, "ESLint", 2, broken=True), Lifecycle.FAILED),
        ]

    async def more(self, sim: GitHubSim, client: GitHubCodeScanning, round: int) -> list[Item]:
        sim.add_repository(REPOSITORY)
        tool = ("Semgrep OSS", "Trivy", "ESLint")[round % 3]
        return [await self._upload(client, tool, 1 + round % 5, broken=round % 3 == 2)]


DEMO = GitHubDemo()
