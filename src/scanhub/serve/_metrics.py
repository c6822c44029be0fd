"""Prometheus metrics of the service, through `prometheus-client`.

Names follow the Prometheus naming guide: a `scanhub_` prefix, base units (`_seconds`), `_total`
counters, and labels of bounded cardinality (vendor, source, kind, lifecycle, verdict, outcome;
never an item id). Gauges that describe the tracked set are computed at scrape time from the
engine's state, so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .._changes import Change

if TYPE_CHECKING:
    from .._hub import ScanHub

#: Every metric the service exports (the contrib dashboard and alerts may use only these).
METRIC_NAMES = (
    "scanhub_items",
    "scanhub_transitions_total",
    "scanhub_vendor_requests_total",
    "scanhub_vendor_request_duration_seconds",
    "scanhub_source_up",
    "scanhub_source_rate_limit_pause_seconds",
    "scanhub_webhook_deliveries_total",
    "scanhub_oldest_unfinished_item_age_seconds",
    "scanhub_sse_clients",
)


def outcome_of(status: int | None) -> str:
    """A request's outcome label: 2xx, 3xx, 4xx, 429, 5xx, or error (no answer)."""
    if status is None:
        return "error"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


class _State(Collector):
    """Scrape-time gauges from the engine."""

    def __init__(self, hub: ScanHub, clients: Any, now: Any) -> None:
        self.hub, self.clients, self.now = hub, clients, now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        items = GaugeMetricFamily(
            "scanhub_items",
            "Tracked items by vendor, source, kind, lifecycle and verdict.",
            labels=["vendor", "source", "kind", "lifecycle", "verdict"],
        )
        counts: dict[tuple[str, ...], int] = {}
        oldest: dict[str, datetime] = {}
        for item in self.hub.items:
            labels = (
                str(item.vendor),
                item.source,
                item.kind,
                item.lifecycle.value,
                item.verdict.value,
            )
            counts[labels] = counts.get(labels, 0) + 1
            if not item.lifecycle.is_terminal:
                since = item.created_at or self.hub.changed_at(item.key)
                if since is not None and (item.source not in oldest or since < oldest[item.source]):
                    oldest[item.source] = since
        for key, n in sorted(counts.items()):
            items.add_metric(list(key), n)
        yield items

        now = self.now()
        age = GaugeMetricFamily(
            "scanhub_oldest_unfinished_item_age_seconds",
            "Age of the oldest item not yet finished, per source (stuck-scan alerting).",
            labels=["source"],
        )
        for source, since in sorted(oldest.items()):
            age.add_metric([source], max(0.0, (now - since).total_seconds()))
        yield age

        up = GaugeMetricFamily(
            "scanhub_source_up",
            "1 when the source's last request succeeded.",
            labels=["source", "vendor"],
        )
        pause = GaugeMetricFamily(
            "scanhub_source_rate_limit_pause_seconds",
            "Seconds the vendor's rate limit still pauses the source.",
            labels=["source"],
        )
        for name, health in sorted(self.hub.source_health().items()):
            up.add_metric([name, str(health["vendor"])], 1.0 if health["up"] else 0.0)
            until = health["paused_until"]
            pause.add_metric([name], max(0.0, (until - now).total_seconds()) if until else 0.0)
        yield up
        yield pause

        clients = GaugeMetricFamily("scanhub_sse_clients", "Connected live-stream clients.")
        clients.add_metric([], float(self.clients()))
        yield clients


class Metrics:
    """The service's registry and the counters it updates as things happen."""

    def __init__(self, hub: ScanHub, *, clients: Any, now: Any) -> None:
        # `_created` series double every counter and histogram for no use on a dashboard
        # (prometheus-client's switch is process-wide; the service owns its process).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.transitions = Counter(
            "scanhub_transitions",
            "Recorded transitions by vendor, source, kind and the lifecycle reached.",
            ["vendor", "source", "kind", "lifecycle"],
            registry=self.registry,
        )
        self.requests = Counter(
            "scanhub_vendor_requests",
            "Requests to vendors by source and outcome (2xx, 3xx, 4xx, 429, 5xx, error).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "scanhub_vendor_request_duration_seconds",
            "Time a vendor took to answer, per source.",
            ["source"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.webhooks = Counter(
            "scanhub_webhook_deliveries",
            "Webhook deliveries by source and outcome (applied, duplicate, ignored, rejected).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.registry.register(_State(hub, clients, now))
        for client in hub.clients:
            client.transport.observers.append(self._observer(client.name))

    def _observer(self, source: str) -> Any:
        requests = self.requests
        duration = self.duration.labels(source)

        def seen(status: int | None, elapsed: float) -> None:
            requests.labels(source, outcome_of(status)).inc()
            duration.observe(elapsed)

        return seen

    def change(self, change: Change) -> None:
        """Count a recorded transition."""
        a = change.after
        self.transitions.labels(str(a.vendor), a.source, a.kind, a.lifecycle.value).inc()
