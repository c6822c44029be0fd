"""The benchmark harness runs (tiny sizes). Benchmarks are never timed tests: this only proves
`python -m bench.run` works end to end and writes every section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    for heading in (
        "## Summary",
        "## 1. Snapshot latency",
        "## 2. CPU per refreshed item",
        "## 3. Normalization throughput",
        "## 4. Scale",
        "## 5. Politeness",
    ):
        assert heading in text
    assert "--quick smoke run" in text
    assert text.count("| apptrust") >= 1 and "sequential `requests`" in text
