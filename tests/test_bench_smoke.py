"""The benchmark harness runs (tiny sizes). Benchmarks are never timed tests: this only proves
`python -m bench.run` works end to end and writes every section."""

from __future__ import annotations

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
