"""Conventions that hold across every adapter (in the spirit of python-gitlab's tests/unit/meta)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

import scanhub
from scanhub import Client, Lifecycle, Vendor, Verdict
from scanhub.sansio import appsecplus, apptrust, iq, threadfix
from scanhub.vendors import registry
from scanhub.vendors.dependencytrack import sansio as dependencytrack
from scanhub.vendors.github import sansio as github
from scanhub.vendors.sonarqube import sansio as sonarqube

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "scanhub"
VENDORS = SRC / "vendors"
ADAPTERS_MD = (ROOT / "adapters.md").read_text()


def section(name: str) -> str:
    """The part of adapters.md about one vendor (its heading names `scanhub.sansio.<name>`, or
    `scanhub.vendors.<name>.sansio` for a vendor without a historical name)."""
    for part in ADAPTERS_MD.split("\n## ")[1:]:
        head = part.splitlines()[0]
        if f"scanhub.sansio.{name}`" in head or f"scanhub.vendors.{name}.sansio`" in head:
            return part
    raise AssertionError(f"adapters.md has no section for {name}")


VENDOR_MODULES = {
    "iq": iq,
    "threadfix": threadfix,
    "appsecplus": appsecplus,
    "apptrust": apptrust,
    "sonarqube": sonarqube,
    "dependencytrack": dependencytrack,
    "github": github,
}


# --- one vendor, one place ----------------------------------------------------------------------

#: Modules outside vendor packages allowed to *import* a vendor package: the package root
#: re-exports the built-in clients under their public names (`scanhub.IQServer`), and branches
#: on nothing. (`scanhub.sansio` and `scanhub.sim` reach the historical names lazily, by name.)
REEXPORTS = {"__init__.py"}


def vendor_branches(source: str, vendor_names: set[str], class_names: set[str]) -> list[str]:
    """Places in `source` that branch on a vendor: a comparison with a vendor name or a
    `Vendor.X` member, `isinstance`/`issubclass` against a vendor's class, a `match` case on a
    vendor name, or a table keyed by vendor names."""
    found = []

    def is_vendor(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant) and node.value in vendor_names:
            return True
        return (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Vendor"
        )

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(is_vendor(o) for o in operands):
                found.append(f"line {node.lineno}: compares with a vendor")
            for o in operands:  # `x in ("iq", "threadfix")`
                if isinstance(o, ast.Tuple | ast.List | ast.Set) and any(
                    is_vendor(e) for e in o.elts
                ):
                    found.append(f"line {node.lineno}: tests membership in vendor names")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                if names & class_names:
                    found.append(f"line {node.lineno}: isinstance on a vendor class")
        elif isinstance(node, ast.match_case):
            if any(is_vendor(n) for n in ast.walk(node.pattern)):
                found.append(f"line {node.pattern.lineno}: match case on a vendor")
        elif (
            isinstance(node, ast.Dict)
            and sum(1 for k in node.keys if k is not None and is_vendor(k)) >= 2
        ):
            found.append(f"line {node.lineno}: a table keyed by vendor names")
    return found


def _vendor_classes() -> set[str]:
    names = set()
    for spec in registry():
        names |= {spec.client.__name__, spec.source_schema.__name__, spec.track_schema.__name__}
        names.add(type(spec).__name__)
    return names | {"IQSim", "ThreadFixSim", "AppSecPlusSim", "AppTrustSim"}


def test_the_branch_finder_finds_branches() -> None:
    names, classes = {"iq", "threadfix"}, {"IQServer"}
    planted = [
        'if client.vendor == "iq":\n    pass',
        "if item.vendor is Vendor.THREADFIX:\n    pass",
        "ok = isinstance(client, IQServer)",
        'ok = v in ("iq", "threadfix")',
        'match v:\n    case "iq":\n        pass',
        'T = {"iq": 1, "threadfix": 2}',
    ]
    for code in planted:
        assert vendor_branches(code, names, classes), code
    assert not vendor_branches('x = spec.name == name\nlabel = "iq-cloud"', names, classes)


NON_VENDOR_FILES = sorted(
    p for p in SRC.rglob("*.py") if VENDORS not in p.parents or p.parent == VENDORS
)


@pytest.mark.parametrize("path", NON_VENDOR_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_per_vendor_branch_outside_a_vendor_package(path: Path) -> None:
    names = set(registry().names())
    assert vendor_branches(path.read_text(), names, _vendor_classes()) == []


@pytest.mark.parametrize("path", NON_VENDOR_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_reexports_import_a_vendor_package(path: Path) -> None:
    rel = str(path.relative_to(SRC))
    tree = ast.parse(path.read_text())
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imports.append(node.module)
        elif isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
    vendor_imports = [m for m in imports if re.search(r"(^|\.)vendors\.\w+", m)]
    if rel not in REEXPORTS:
        assert vendor_imports == [], f"{rel} imports a vendor package: {vendor_imports}"


def test_each_builtin_vendor_is_one_package() -> None:
    names = registry().names()
    assert names[:4] == ["iq", "threadfix", "appsecplus", "apptrust"]
    for name in names[:4]:
        for part in ("__init__", "sansio", "client", "sim", "spec", "demo"):
            assert (VENDORS / name / f"{part}.py").is_file(), f"{name}/{part}.py"
    # Nothing vendor-specific is left where it used to be spread out.
    assert not (SRC / "sansio" / "iq.py").exists()
    assert not (SRC / "sim" / "iq.py").exists()


def test_public_names_keep_working() -> None:
    for spec in list(registry())[:4]:
        assert getattr(scanhub, spec.client.__name__) is spec.client
        assert spec.client.vendor == spec.name
        assert Vendor(spec.name) == spec.name
    from scanhub.sansio import iq as by_name
    from scanhub.sim import IQSim

    assert by_name is iq is scanhub.vendors.iq.sansio
    assert IQSim is scanhub.vendors.iq.sim.IQSim
    assert {c for c in Client.__subclasses__() if c.__module__.startswith("scanhub.")} == {
        s.client for s in registry() if s.client.__module__.startswith("scanhub.")
    }


BUILTIN_VENDOR_FILES = sorted(p for p in VENDORS.glob("*/*.py"))


@pytest.mark.parametrize("path", BUILTIN_VENDOR_FILES, ids=lambda p: str(p.relative_to(VENDORS)))
def test_builtin_vendors_use_only_the_public_vendor_api(path: Path) -> None:
    """A built-in vendor is written as a plugin would be: from its own package and the public
    `scanhub`, `scanhub.vendors`, `scanhub.sansio` and `scanhub.sim`, never a private module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level > 1:
                found.append(
                    f"line {node.lineno}: reaches outside its package ({'.' * node.level})"
                )
            elif (
                node.level == 0
                and node.module
                and node.module.startswith("scanhub")
                and any(part.startswith("_") for part in node.module.split("."))
            ):
                found.append(f"line {node.lineno}: imports private {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("scanhub") and "._" in alias.name:
                    found.append(f"line {node.lineno}: imports private {alias.name}")
    assert found == []


def test_loading_the_registry_imports_no_simulator() -> None:
    code = (
        "import sys, scanhub\n"
        "reg = scanhub.registry()\n"
        "loaded = [m for m in sys.modules if m.startswith('scanhub.vendors.')"
        " and m.rsplit('.', 1)[1] in ('sim', 'demo')]\n"
        "assert len(reg) >= 4 and not loaded, loaded\n"
        "reg.get('iq').load_demo()\n"
        "assert 'scanhub.vendors.iq.sim' in sys.modules\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", sorted(VENDORS.glob("*/sansio.py")), ids=lambda p: p.parent.name)
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


# --- mapping tables and adapters.md -------------------------------------------------------------


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
    [
        ("iq", iq.POLICY_ACTION_MAP),
        ("iq", iq.OUTCOME_MAP),
        ("apptrust", apptrust.DECISION_MAP),
        ("sonarqube", sonarqube.QUALITY_GATE_MAP),
    ],
    ids=["iq.policy", "iq.outcome", "apptrust", "sonarqube.gate"],
)
def test_decision_tables_map_to_verdict_and_appear_in_adapters_md(
    name: str, table: dict[str, Verdict]
) -> None:
    for raw, verdict in table.items():
        assert isinstance(verdict, Verdict)
        # Rows whose first cell names the value; one of them (in the decision table) must say
        # the verdict.
        rows = re.findall(rf"^\|[^|\n]*`{re.escape(raw)}`[^|\n]*\|.*$", section(name), re.MULTILINE)
        assert any(f"| `{verdict.value}` |" in row for row in rows), raw


def test_status_tables_are_lower_case_where_matching_is_case_insensitive() -> None:
    assert all(k == k.lower() for k in apptrust.STATUS_MAP)
    assert all(k == k.lower() for k in apptrust.DECISION_MAP)
    assert all(k == k.lower() for k in iq.OUTCOME_MAP)


def test_readme_configuration_example_is_valid() -> None:
    from scanhub._config import parse_config

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    config = parse_config(tomllib.loads(block), "README.md")
    assert [s.vendor for s in config.sources] == ["iq", "threadfix", "appsecplus", "apptrust"]
    assert len(config.tracks) == 4


def test_adapters_md_says_how_to_add_a_vendor() -> None:
    text = ADAPTERS_MD.split("## Adding a vendor", 1)[1]
    for needle in ("VendorSpec", "scanhub.vendors", "tests/test_contract.py", "STATUS_MAP"):
        assert needle in text


# --- parts keep to their own ------------------------------------------------------------------


def private_reads(source: str) -> list[str]:
    """Places in `source` that read another object's private attribute (`x._name` where `x` is
    not `self` or `cls`): one part reaching into another's insides. An enum's `_value_` and
    `_name_` are not private: the enum module documents its `_sunder_` names as supported."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in ("_value_", "_name_")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_private_reads_finder_finds_them() -> None:
    assert private_reads("x = hub._opened\ny = site._server.sockets") == [
        "line 1: hub._opened",
        "line 2: site._server",
    ]
    assert private_reads("x = self._a\ny = cls._b\nz = type(a).__name__") == []
    assert private_reads("x = member._value_\ny = member._name_\nz = member._valu") == [
        "line 3: member._valu"
    ]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_part_reads_another_parts_private_attributes(path: Path) -> None:
    assert private_reads(path.read_text()) == []


def _imports_of(module: str) -> set[str]:
    """The scanhub modules `module` imports at module level (not inside functions), by name."""
    path = SRC / (module.removeprefix("scanhub.").replace(".", "/") + ".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            names = [name] + [f"{name}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for n in names:
            if n.startswith("scanhub") and _module_exists(n):
                found.add(n)
    return found


def _module_exists(name: str) -> bool:
    rel = name.removeprefix("scanhub").lstrip(".").replace(".", "/")
    return (SRC / f"{rel}.py").exists() or (SRC / rel / "__init__.py").exists()


def test_configuration_imports_nothing_of_the_engine_store_or_service() -> None:
    # _config.py is a leaf of the house (ARCHITECTURE.md): everything it reaches, at import
    # time, stays outside the engine, the stores, the service, composition and the CLI.
    seen, todo = set(), ["scanhub._config"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += sorted(_imports_of(module) - seen - {"scanhub"})
    parts = ("scanhub.engine", "scanhub.store", "scanhub.serve", "scanhub._compose", "scanhub.cli")
    assert len(seen) > 3  # it reads its own modules (_schema, _registry, _defaults, ...)
    assert sorted(m for m in seen if m.startswith(parts)) == []


# --- parts a newcomer can name (issue 18) ------------------------------------------------------

#: Issue 18's yardstick: no class beyond about 300 lines or 25 methods.
MOST_LINES, MOST_METHODS = 300, 25


def oversized_classes(source: str) -> list[str]:
    """The classes of `source` beyond the yardstick, with their size."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            methods = sum(isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) for b in node.body)
            if lines > MOST_LINES or methods > MOST_METHODS:
                found.append(f"{node.name}: {lines} lines, {methods} methods")
    return found


def test_the_oversized_class_finder_finds_them() -> None:
    many = "class Many:\n" + "".join(f"    def m{i}(self): pass\n" for i in range(26))
    assert oversized_classes(many) == ["Many: 27 lines, 26 methods"]
    assert oversized_classes("class Few:\n    def m(self): pass\n") == []


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_every_class_keeps_to_the_yardstick(path: Path) -> None:
    # Each part has one job a newcomer can name and read through: the facade (`ScanHub`), the
    # store and its parts (queries, the sinks' ledger), each simulator's world apart from its
    # HTTP answers, and so on.
    assert oversized_classes(path.read_text()) == []
