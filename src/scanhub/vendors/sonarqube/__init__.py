"""SonarQube (and SonarCloud): Compute Engine tasks, their quality gate, webhooks.

`sansio` holds the mapping tables and pure functions (including `parse_report_task` for the
`report-task.txt` a scanner leaves), `client` the `SonarQube` client, `sim` the simulator,
`spec` the registry entry (configuration schema, tracking, webhooks, demo)."""

from .client import SonarQube
from .sansio import QualityGate, ReportTask, parse_report_task
from .spec import SPEC, SonarQubeSource, SonarQubeSpec, SonarQubeTrack

__all__ = [
    "SPEC",
    "QualityGate",
    "ReportTask",
    "SonarQube",
    "SonarQubeSource",
    "SonarQubeSpec",
    "SonarQubeTrack",
    "parse_report_task",
]
