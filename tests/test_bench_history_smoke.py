"""The issue-19 harness runs (tiny sizes). Benchmarks are never timed tests: this only proves
`python -m bench.history --quick` works end to end (states built through the store API, a real
`scanhub serve` and the baseline server, the readers, the store, normalization, polling and the
simulators) and writes every section, elsewhere than BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_history_quick_run_writes_every_section(tmp_path: Path) -> None:
    committed = (ROOT / "BENCHMARKS.md").read_bytes()
    out = tmp_path / "history.md"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        # States are built afresh here (and cached only for this test).
        "SCANHUB_BENCH_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench.history", "--quick", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Nothing ended unseen: an error logged (a part of the engine, a generator closed by
    # the collector) is a defect of the harness or of scanhub, not noise.
    for unseen in ("Traceback", "Task was destroyed but it is pending"):
        assert unseen not in proc.stderr, proc.stderr[-3000:]
    assert (ROOT / "BENCHMARKS.md").read_bytes() == committed
    text = out.read_text()
    for heading in (
        "## A year of history (issue 19)",
        "### The service on a year of history",
        "### Writes, normalization, polling, simulators",
        "### Targets missed",
    ):
        assert heading in text
    assert "--quick smoke run" in text
    for figure in (
        "`GET /api/v1/items?limit=100` p99",
        "`?lifecycle=failed` p99",
        "`?q=` text search p99",
        "page 20 via `next_cursor` p99",
        "`GET /api/v1/items/{key}` p99",
        "`GET /api/v1/summary` p99",
        "`GET /metrics` p99",
        "50 readers",
        "`/healthz` p99 / max while they read",
        "engine polls/s while they read",
        "start → `/readyz`",
        "RSS after start",
        "SQLite: transitions/s",
        "a watch poll's CPU",
        "one simulator process",
    ):
        assert figure in text, figure
    # Every built-in vendor's normalization is measured.
    for vendor in (
        "iq",
        "threadfix",
        "appsecplus",
        "apptrust",
        "sonarqube",
        "github",
        "dependencytrack",
    ):
        assert f"normalization, {vendor} " in text, vendor
    results = json.loads(out.with_suffix(".json").read_text())
    assert [s["items"] for s in results["sizes"]] == [300, 1200]
    # The service really served the states and the readers got answers from both servers.
    for size in results["sizes"]:
        assert size["load"]["answered"] > 0 and size["baseline_load"]["answered"] > 0
        assert size["built"]["transitions"] > size["items"] * 3
    # The engine polled the items under way (the simulators counted its requests).
    assert results["sizes"][-1]["unloaded_polls_per_s"] > 0
    # The cache was used for the states, not the repository.
    assert any((tmp_path / "cache").iterdir())
    assert not list(ROOT.glob("state-n*.db"))
