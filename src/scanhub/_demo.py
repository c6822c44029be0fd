"""`scanhub demo`: every vendor's simulator in-process, a designed scenario, watched to the end.

Each vendor's part is its `VendorSpec.demo`. The built-in scenario (each item's designed final
state is checked at the end):

- IQ (Sonatype Cloud shape, `/platform`): promote the build scan to stage-release (succeeds);
  promote build to release (FAILED, with the reason).
- ThreadFix: upload a Fortify file (walks all processing statuses to DONE); upload a ZAP file
  that is interrupted (SCAN_INTERRUPTED, error message).
- AppSec+: sast and container scans complete, a dast scan fails. Once they are triggered this
  source turns faulty: latency, 5xx, 429 with Retry-After, truncated JSON, HTML error pages.
  The watch rides through it.
- AppTrust: promote 1.4.0 to QA (gates pass); promote it to PROD, blocked by the entry gate
  (FAILED, verdict fail).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from attrs import frozen

from ._model import Lifecycle, Verdict
from ._registry import NotProvided, Planned, Registry, registry
from .engine import Change, ScanHub, Snapshot
from .sim._base import SimClock

log = logging.getLogger("scanhub")


@frozen
class DemoResult:
    """The final snapshot and whether every item ended as designed."""

    snapshot: Snapshot
    expected: dict[str, tuple[Lifecycle, Verdict | None]]
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        """True when the demo ran as designed."""
        return not self.mismatches


@contextlib.asynccontextmanager
async def running_sims(
    speed: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 0,
    vendors: Registry | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Start a simulator of every registered vendor that ships one; yields them by vendor name.
    With `port`, the first listens there and the others on the following ports; otherwise on
    any free ports."""
    clock = SimClock(speed=speed)
    reg = vendors or registry()
    sims: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        for spec in reg:
            try:
                part = spec.load_demo()
            except NotProvided:
                continue
            except Exception as exc:  # a plugin's broken part: reported, never fatal to the rest
                log.error("scanhub: vendor %s: its demo part failed to load: %s", spec.name, exc)
                continue
            sim = part.make_sim(clock, host=host, port=port + len(sims) if port else 0)
            sims[spec.name] = await stack.enter_async_context(sim)
        yield sims


async def run_demo(
    on_change: Callable[[Change, ScanHub], None] | None = None,
    *,
    speed: float = 1.0,
    deadline: float = 50.0,
    interval: float = 0.5,
    vendors: Registry | None = None,
) -> DemoResult:
    """Run the scenario (every registered vendor's part); `on_change` sees every change (the
    CLI draws with it)."""
    reg = vendors or registry()
    async with running_sims(speed, vendors=reg) as sims:
        parts, clients = [], []
        for name, sim in sims.items():
            part = reg.get(name).load_demo()
            clients.append(part.client(sim))
            parts.append((part, sim))
        async with ScanHub(clients, interval=interval, max_interval=2.0) as hub:
            plan: list[Planned] = []
            for (part, sim), client in zip(parts, clients, strict=True):
                plan += await part.scenario(sim, client)
            expected = {}
            for p in plan:
                expected[hub.track(p.item)] = (p.lifecycle, p.verdict)
            async for change in hub.watch(deadline=deadline):
                if on_change is not None:
                    on_change(change, hub)
            snap = Snapshot(tuple(await hub.current()), hub.errors(), datetime.now(UTC))
    mismatches = []
    by_key = {i.key: i for i in snap.items}
    for key, (lifecycle, verdict) in expected.items():
        got = by_key[key]
        if got.lifecycle is not lifecycle or (verdict is not None and got.verdict is not verdict):
            mismatches.append(
                f"{key}: {got.lifecycle.value}/{got.verdict.value}, designed "
                f"{lifecycle.value}/{verdict.value if verdict else '*'}"
            )
    return DemoResult(snap, expected, mismatches)


def run(on_change: Callable[[Change, ScanHub], None] | None = None, **kw: Any) -> DemoResult:
    """`run_demo` in a fresh event loop."""
    return asyncio.run(run_demo(on_change, **kw))


def sim_config(
    sims: dict[str, Any], seeded: dict[str, Any], vendors: Registry | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A configuration document (as TOML would give it) for running simulators and what was
    seeded on them, and the environment variables it names (URLs and credentials)."""
    reg = vendors or registry()
    doc: dict[str, Any] = {"interval": 2, "timeout": 120, "source": [], "track": []}
    env: dict[str, str] = {}
    for name, sim in sims.items():
        options, variables = reg.get(name).load_demo().sim_source(sim)
        env[f"SCANHUB_SIM_{name.upper()}_URL"] = sim.base_url
        env.update(variables)
        doc["source"].append({"name": name, "vendor": name, "base_url": sim.base_url, **options})
    for name, items in seeded.items():
        for item in items:
            doc["track"].append({"source": name, **item.track})
    return doc, env
