"""Prometheus metrics of the service, through `prometheus-client`.

Names follow the Prometheus naming guide: a `scanhub_` prefix, base units (`_seconds`), `_total`
counters, and labels of bounded cardinality (vendor, source, kind, lifecycle, verdict, outcome;
never an item id). Counters move as things happen: transitions as the committed log is read
(the same log every reader reads), requests as the transport makes them. The gauges that
describe the tracked set come from the store's kept counts (a small table, not a walk over
items), read just before each scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from .._errors import StoreUnavailable
from ..engine.sinks import OUTCOMES, SinkReport
from ..store import Count, Oldest

if TYPE_CHECKING:
    from ._app import Service

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
    "scanhub_store_up",
    "scanhub_store_pending_observations",
    "scanhub_sink_deliveries_total",
    "scanhub_sink_lag_events",
    "scanhub_sink_lag_seconds",
    "scanhub_sink_up",
)


def outcome_of(status: int | None) -> str:
    """A request's outcome label: 2xx, 3xx, 4xx, 429, 5xx, or error (no answer)."""
    if status is None:
        return "error"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


class _State(Collector):
    """The gauges, from what `Metrics.refresh` read last."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        m = self.metrics
        items = GaugeMetricFamily(
            "scanhub_items",
            "Tracked items by vendor, source, kind, lifecycle and verdict.",
            labels=["vendor", "source", "kind", "lifecycle", "verdict"],
        )
        for c in m.counts:
            items.add_metric([c.vendor, c.source, c.kind, c.lifecycle, c.verdict], c.n)
        yield items

        now = m.service.now()
        age = GaugeMetricFamily(
            "scanhub_oldest_unfinished_item_age_seconds",
            "Age of the oldest item not yet finished, per source (stuck-scan alerting).",
            labels=["source"],
        )
        for o in m.oldest:
            age.add_metric([o.source], max(0.0, (now - o.since).total_seconds()))
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
        for h in m.service.hub.source_health():
            up.add_metric([h.name, h.vendor], 1.0 if h.up else 0.0)
            pause.add_metric([h.name], h.paused_for)
        yield up
        yield pause

        recorder = m.service.hub.health().recorder
        store_up = GaugeMetricFamily(
            "scanhub_store_up",
            "1 while the store answers and takes commits, 0 while it does not.",
        )
        store_up.add_metric([], 1.0 if recorder.ok and m.store_reachable else 0.0)
        yield store_up
        pending = GaugeMetricFamily(
            "scanhub_store_pending_observations",
            "Observations waiting to be committed (polling pauses past a bound).",
        )
        pending.add_metric([], float(recorder.pending))
        yield pending

        lag = GaugeMetricFamily(
            "scanhub_sink_lag_events",
            "Transitions in the log after the sink's cursor (not delivered yet).",
            labels=["sink"],
        )
        lag_seconds = GaugeMetricFamily(
            "scanhub_sink_lag_seconds",
            "Age of the oldest transition the sink has not delivered yet (0: caught up).",
            labels=["sink"],
        )
        sink_up = GaugeMetricFamily(
            "scanhub_sink_up",
            "1 while the sink delivers (active), 0 while it retries or is disabled.",
            labels=["sink"],
        )
        for r in m.sinks:
            lag.add_metric([r.sink.name], float(r.lag_events))
            lag_seconds.add_metric([r.sink.name], r.lag_seconds)
            active = r.state is None or r.state.status.value == "active"
            sink_up.add_metric([r.sink.name], 1.0 if active else 0.0)
        yield lag
        yield lag_seconds
        yield sink_up

        clients = GaugeMetricFamily("scanhub_sse_clients", "Connected live-stream clients.")
        clients.add_metric([], float(m.service.streams))
        yield clients


class Metrics:
    """The service's registry and the counters it updates as things happen."""

    def __init__(self, service: Service) -> None:
        # `_created` series double every counter and histogram for no use on a dashboard
        # (prometheus-client's switch is process-wide; the service owns its process).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.service = service
        self.counts: list[Count] = []
        self.oldest: list[Oldest] = []
        #: Whether the store answered the last scrape's reads.
        self.store_reachable = True
        self.sinks: list[SinkReport] = []
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
        self.sink_deliveries = Counter(
            "scanhub_sink_deliveries",
            "Sink delivery attempts by sink and outcome (delivered, failed, throttled, "
            "refused, gone), and deliveries given up on (dead).",
            ["sink", "outcome"],
            registry=self.registry,
        )
        for name in service.hub.sinks.names:
            for outcome in OUTCOMES:  # every series from the start, so rate() sees the first
                self.sink_deliveries.labels(name, outcome)
        service.hub.sinks.observers.append(self._sink_observer)
        self.registry.register(_State(self))
        for client in service.hub.clients:
            client.transport.observers.append(self._observer(client.name))

    def _observer(self, source: str) -> Any:
        requests = self.requests
        duration = self.duration.labels(source)

        def seen(status: int | None, elapsed: float) -> None:
            requests.labels(source, outcome_of(status)).inc()
            duration.observe(elapsed)

        return seen

    def _sink_observer(self, sink: str, outcome: str) -> None:
        self.sink_deliveries.labels(sink, outcome).inc()

    def change(self, change: Change) -> None:
        """Count a recorded transition."""
        a = change.after
        self.transitions.labels(str(a.vendor), a.source, a.kind, a.lifecycle.value).inc()

    async def follow(self) -> None:
        """Count every transition committed from now on (every replica's, on a shared store:
        the log is the same for all)."""
        sub = self.service.hub.subscribe()
        try:
            async for change in sub:
                self.change(change)
        finally:
            sub.close()

    async def refresh(self) -> None:
        """Read the gauges' figures from the store (its kept counts; the oldest active item
        of each source), just before a scrape. While the store is away the last figures
        stand, and `scanhub_store_up` says so: a scrape is answered all the same."""
        try:
            self.counts = await self.service.store.counts()
            self.oldest = await self.service.store.oldest_active()
            self.sinks = await self.service.hub.sinks.report()
        except StoreUnavailable:
            self.store_reachable = False
        else:
            self.store_reachable = True
