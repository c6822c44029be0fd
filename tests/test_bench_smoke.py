"""The benchmark harnesses run (tiny sizes). Benchmarks are never timed tests: this only proves
`python -m bench.run` and `python -m bench.prune` work end to end and write every section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_run_writes_every_section_elsewhere() -> None:
    committed = {p: p.read_bytes() for p in (ROOT / "BENCHMARKS.md", ROOT / "BENCHMARKS.json")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Nothing ended unseen: an error logged (a part of the engine, a generator closed by
    # the collector) is a defect of the harness or of scanhub, not noise.
    for unseen in ("Traceback", "Task was destroyed but it is pending"):
        assert unseen not in proc.stderr, proc.stderr[-3000:]
    # A smoke run never rewrites the committed figures: it writes to a temporary directory.
    for path, before in committed.items():
        assert path.read_bytes() == before, f"{path.name} was rewritten by --quick"
    out = Path(proc.stderr.rsplit("report written to ", 1)[1].strip())
    assert out.parent != ROOT and out.with_suffix(".json").is_file()
    text = out.read_text()
    for heading in (
        "## Summary",
        "## 1. Snapshot latency",
        "## 2. CPU per refreshed item",
        "## 3. Normalization throughput",
        "## 4. Scale",
        "## 5. Politeness",
        "## 12. Sinks",
        "## 13. The page",
    ):
        assert heading in text
    assert "--quick smoke run" in text
    assert text.count("| apptrust") >= 1 and "sequential `requests`" in text


def test_prune_quick_run_writes_every_section(tmp_path: Path) -> None:
    """`python -m bench.prune --quick`: scanhub's pruning and the baseline's, by count and by
    age (on the year's state and on the hot items'), on tiny states built here, written
    elsewhere than BENCHMARKS.md."""
    committed = (ROOT / "BENCHMARKS.md").read_bytes()
    out = tmp_path / "prune.md"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
        ),
        # The state is built afresh here (and cached only for this test).
        "SCANHUB_BENCH_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench.prune", "--quick", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
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
        "## Retention pruning on SQLite",
        "### By count (`max_per_item=2`)",
        "### By age (`max_age`",
    ):
        assert heading in text, heading
    assert "--quick smoke run" in text and "`bench.history.yardstick`" in text
    # Each row by a start no other row has ("the first after open" was also the start of "the
    # first after opening again": it held nothing once the first row was renamed).
    for row in (
        "| the first by count,",
        "| hourly, after",
        "| the first after opening again",
        "| hourly, the oldest",
        "| hot items: hourly,",
    ):
        assert row in text, row
    results = json.loads(out.with_suffix(".json").read_text())
    for key in ("yardstick_before", "yardstick_after", "state_bytes", "transitions"):
        assert key in results, key
    assert set(results["count"]) >= {"first", "baseline_first", "hourly", "baseline_hourly"}
    assert set(results["age"]) >= {"scanhub", "baseline"}
    # The hot items' pruning by age (20 items of 10,000 transitions each at full size): both
    # remove the same transitions (that log is in time order by id: no disagreement at the
    # cutoff), and some.
    assert set(results["hot"]) >= {"scanhub", "baseline"}
    assert results["hot"]["scanhub"]["removed"] == results["hot"]["baseline"]["removed"] > 0
