"""Conventions that hold across every adapter (in the spirit of python-gitlab's tests/unit/meta)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import scanhub
from scanhub import Client, Lifecycle, Vendor, Verdict
from scanhub.sansio import appsecplus, apptrust, iq, threadfix

ROOT = Path(__file__).resolve().parents[1]
SANSIO = ROOT / "src" / "scanhub" / "sansio"
ADAPTERS_MD = (ROOT / "adapters.md").read_text()


def section(name: str) -> str:
    """The part of adapters.md about one vendor (its heading names `scanhub.sansio.<name>`)."""
    for part in ADAPTERS_MD.split("\n## ")[1:]:
        if f"scanhub.sansio.{name}`" in part.splitlines()[0]:
            return part
    raise AssertionError(f"adapters.md has no section for {name}")


VENDOR_MODULES = {"iq": iq, "threadfix": threadfix, "appsecplus": appsecplus, "apptrust": apptrust}


@pytest.mark.parametrize("path", sorted(SANSIO.glob("*.py")), ids=lambda p: p.name)
def test_vendor_logic_does_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"aiohttp", "asyncio", "requests", "socket", "time", "urllib3"}
    assert "datetime.now" not in path.read_text()


def test_every_vendor_has_a_module_and_an_exported_client() -> None:
    ours = [c for c in Client.__subclasses__() if c.__module__.startswith("scanhub.")]
    assert {c.vendor for c in ours} == set(Vendor)
    assert set(VENDOR_MODULES) == {v.value for v in Vendor}
    for cls in ours:
        assert getattr(scanhub, cls.__name__) is cls


@pytest.mark.parametrize("name", sorted(VENDOR_MODULES))
def test_status_tables_map_to_lifecycle_and_appear_in_adapters_md(name: str) -> None:
    module = VENDOR_MODULES[name]
    for raw, lifecycle in module.STATUS_MAP.items():
        assert isinstance(lifecycle, Lifecycle)
        assert lifecycle is not Lifecycle.UNKNOWN, "a documented value is never unknown"
        row = re.search(rf"^\| `{re.escape(raw)}` .*$", section(name), re.MULTILINE | re.IGNORECASE)
        assert row, f"{name} status {raw} missing from adapters.md"
        assert f"| `{lifecycle.value}` |" in row.group(0), f"{raw} row disagrees with the table"


@pytest.mark.parametrize(
    ("name", "table"),
    [("iq", iq.POLICY_ACTION_MAP), ("iq", iq.OUTCOME_MAP), ("apptrust", apptrust.DECISION_MAP)],
    ids=["iq.policy", "iq.outcome", "apptrust"],
)
def test_decision_tables_map_to_verdict_and_appear_in_adapters_md(
    name: str, table: dict[str, Verdict]
) -> None:
    for raw, verdict in table.items():
        assert isinstance(verdict, Verdict)
        row = re.search(rf"^\|[^\n]*`{re.escape(raw)}`[^\n]*$", section(name), re.MULTILINE)
        assert row and f"`{verdict.value}`" in row.group(0), raw


def test_status_tables_are_lower_case_where_matching_is_case_insensitive() -> None:
    assert all(k == k.lower() for k in apptrust.STATUS_MAP)
    assert all(k == k.lower() for k in apptrust.DECISION_MAP)
    assert all(k == k.lower() for k in iq.OUTCOME_MAP)


def test_readme_configuration_example_is_valid() -> None:
    from scanhub._config import parse_config

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    import tomllib

    config = parse_config(tomllib.loads(block), "README.md")
    assert [s.vendor.value for s in config.sources] == ["iq", "threadfix", "appsecplus", "apptrust"]
    assert len(config.tracks) == 4
