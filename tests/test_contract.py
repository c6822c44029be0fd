"""The adapter contract: what every registered vendor must pass, built in or third party.

Parametrized over the registry (with the example plugin of tests/example_plugin installed), so
a new vendor gets these tests by registering. adapters.md, "Adding a vendor", lists them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from scanhub import Client, Lifecycle, ScanHub
from scanhub._compose import apply_tracks, build_clients
from scanhub._config import parse_config
from scanhub._schema import json_schema
from scanhub.sim import SimClock
from scanhub.vendors import NotProvided, SourceConfig, TrackConfig, VendorSpec

from .plugin import registry_with_plugin

REGISTRY = registry_with_plugin()
SPECS = list(REGISTRY)


def ids(spec: VendorSpec) -> str:
    return spec.name


def test_the_contract_covers_builtins_and_the_plugin() -> None:
    assert [s.name for s in SPECS] == [
        "iq",
        "threadfix",
        "appsecplus",
        "apptrust",
        "sonarqube",
        "dependencytrack",
        "github",
        "acme",
    ]


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_spec_declares_its_parts(spec: VendorSpec) -> None:
    assert spec.name and spec.name == spec.name.strip().lower()
    assert spec.title
    assert issubclass(spec.client, Client) and spec.client.vendor == spec.name
    assert issubclass(spec.source_schema, SourceConfig) and attrs.has(spec.source_schema)
    assert issubclass(spec.track_schema, TrackConfig) and attrs.has(spec.track_schema)
    names = {f.name for f in attrs.fields(spec.source_schema)}
    for secret in spec.source_schema.SECRETS:
        assert secret not in names, "a secret is never a key of the file"
        assert f"{secret}_env" in names
    for schema in (spec.source_schema, spec.track_schema):
        assert json_schema(schema)["type"] == "object"


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_mapping_table_is_data_and_complete(spec: VendorSpec) -> None:
    package = spec.client.__module__.rsplit(".", 1)[0]
    sansio = importlib.import_module(f"{package}.sansio")
    table: Mapping[str, Lifecycle] = sansio.STATUS_MAP
    assert table, "a vendor documents at least one status"
    assert all(isinstance(v, Lifecycle) and v is not Lifecycle.UNKNOWN for v in table.values())
    assert any(v.is_terminal for v in table.values())


def _config_for(spec: VendorSpec, sim: Any) -> tuple[dict[str, Any], dict[str, str]]:
    part = spec.load_demo()
    options, env = part.sim_source(sim)
    seeded = part.sim_seed(sim)
    assert seeded, "a simulator seeds something to track"
    doc = {
        "interval": 0.05,
        "source": [{"name": spec.name, "vendor": spec.name, "base_url": sim.base_url, **options}],
        "track": [{"source": spec.name, **s.track} for s in seeded],
    }
    return doc, env


@pytest.mark.parametrize("spec", SPECS, ids=ids)
async def test_from_config_to_finished_items_over_its_simulator(spec: VendorSpec) -> None:
    try:
        sim = spec.load_demo().make_sim(SimClock(speed=200.0))
    except NotProvided:
        pytest.skip(f"{spec.name} ships no simulator")
    async with sim:
        doc, env = _config_for(spec, sim)
        config = parse_config(doc, "contract.toml", env=env, vendors=REGISTRY)
        clients = build_clients(config, env, vendors=REGISTRY)
        for secret in env.values():
            assert secret not in repr(clients[0])
        async with ScanHub(clients, interval=0.05, max_interval=0.2) as hub:
            await apply_tracks(hub, config, vendors=REGISTRY)
            assert await hub.current(), "the seeded tracks find items"
            assert not hub.discovery.errors
            async for _ in hub.watch(deadline=20):
                pass
            items = await hub.current()
            assert hub.errors() == {}
    for item in items:
        assert item.vendor == spec.name and item.source == spec.name
        assert item.lifecycle.is_terminal, item
        assert item.vendor_status, "the vendor's own status is kept"
