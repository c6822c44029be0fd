"""scanhub benchmarks: `python -m bench.run` (see BENCHMARKS.md)."""
