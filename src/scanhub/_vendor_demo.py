"""A vendor's demo part: its simulator, what `scanhub sim` seeds, and its role in the demos.

Kept apart from the core `VendorSpec` and loaded only when asked for (`VendorSpec.load_demo`),
so that loading the registry never imports a simulator. A vendor package names its part in
`VendorSpec.demo` as `"module:attribute"`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ._model import Item, Lifecycle, Verdict

if TYPE_CHECKING:
    from ._clients import Client
    from .sim._base import SimClock, SimServer


@frozen
class Planned:
    """A demo item and the final state it is designed to reach (verdict None: any)."""

    item: Item
    lifecycle: Lifecycle
    verdict: Verdict | None = None


@frozen
class Seeded:
    """Something `scanhub sim` seeded: a `[[track]]` table for the config it writes, and a line
    that tells a person what it is."""

    track: Mapping[str, str | int]
    description: str


class VendorDemo(abc.ABC):
    """A vendor's simulator and its part in `scanhub demo`, `scanhub serve --demo` and
    `scanhub sim`. Subclass it in the vendor package's `demo` module."""

    @abc.abstractmethod
    def make_sim(self, clock: SimClock, host: str = "127.0.0.1", port: int = 0) -> SimServer:
        """A simulator of this vendor (not started)."""

    @abc.abstractmethod
    def sim_source(self, sim: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """The `[[source]]` keys (besides name, vendor, base_url) that reach `sim`, and the
        environment variables they name, with their values."""

    def sim_seed(self, sim: Any) -> list[Seeded]:
        """Seed `sim` with items for `scanhub sim`; returns what to track and how to say it."""
        return []

    @abc.abstractmethod
    def client(self, sim: Any) -> Client:
        """The client the demo uses against `sim`."""

    async def scenario(self, sim: Any, client: Any) -> list[Planned]:
        """Set `scanhub demo`'s scenario up on `sim`, start its items through `client`, and
        return them with their designed final states. Empty: no part in it."""
        return []

    async def more(self, sim: Any, client: Any, round: int) -> list[Item]:
        """`scanhub serve --demo` keeps moving: start some new items on round `round` (a few
        seconds apart) and return those to track (items found by a discovery rule need not
        be returned)."""
        return []

    def deliver_webhooks(self, sim: Any, url: str) -> None:
        """Have `sim` deliver its webhooks to `url` (the service's endpoint for its source),
        for vendors that send webhooks; the others have nothing to do."""
        return


__all__ = ["Planned", "Seeded", "VendorDemo"]
