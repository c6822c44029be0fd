"""Prometheus metrics of the service, through `prometheus-client`.

Names follow the Prometheus naming guide: a `scanhub_` prefix, base units (`_seconds`), `_total`
counters, and labels of bounded cardinality (vendor, source, kind, lifecycle, verdict, outcome,
phase; never an item id). Counters move as things happen: transitions as the committed log is
read (the same log every reader reads), requests as the transport makes them. Time in state
(`scanhub_item_phase_seconds`) is observed once per item as it leaves a phase, read from the
transition that left it and the item's kept times (the same times the store's stats use). The
gauges that describe the tracked set come from the store's kept counts (a small table, not a
walk over items) and, for stuck items, an indexed count per source and kind, read just before
each scrape.
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
from .._model import Lifecycle
from ..engine.sinks import OUTCOMES, SinkReport
from ..store import Count, Oldest, phases

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
    "scanhub_item_phase_seconds",
    "scanhub_stuck_items",
)
#: Buckets of `scanhub_item_phase_seconds`: from seconds (a fast scan's queue) to a day (a
#: promotion waiting for approval).
PHASE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


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
        for h in m.service.hub.sources.health():
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

        stuck = GaugeMetricFamily(
            "scanhub_stuck_items",
            "Unfinished items under way longer than their source and kind's stuck threshold.",
            labels=["vendor", "source", "kind"],
        )
        for s in m.stuck:
            stuck.add_metric([s["vendor"], s["source"], s["kind"]], float(s["stuck"]))
        yield stuck

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
        #: The id of the last transition `follow` took (None: it starts from now).
        self.position: int | None = None
        self.sinks: list[SinkReport] = []
        self.stuck: list[dict[str, Any]] = []
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
        self.phases = Histogram(
            "scanhub_item_phase_seconds",
            "Time an item spent in a phase (queued, running; total: under way until it "
            "finished), observed once per item as it leaves the phase.",
            ["vendor", "source", "kind", "phase"],
            buckets=PHASE_BUCKETS,
            registry=self.registry,
        )
        self.webhooks = Counter(
            "scanhub_webhook_deliveries",
            "Webhook deliveries by source and outcome "
            "(applied, duplicate, ignored, invalid, rejected).",
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
        for client in service.hub.sources.clients:
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

    async def left_phase(self, change: Change) -> None:
        """Observe the phases an item left with this transition: queued when it was first
        seen running (or finished), running and total when it was first seen finished. An
        item first seen finished left no phase scanhub saw (it has no kept times)."""
        a, b = change.after, change.before
        if not (a.lifecycle is Lifecycle.RUNNING or a.lifecycle.is_terminal):
            return
        if b is not None and b.lifecycle.is_terminal:
            return
        try:
            stored = await self.service.store.get(change.key)
        except StoreUnavailable:  # the store went away since: this observation is lost
            return
        if stored is None:
            return
        queued, running, total = phases(stored.since, stored.running_at, stored.finished_at)
        labels = (str(a.vendor), a.source, a.kind)
        left_queue = stored.running_at is not None and stored.running_at == change.observed_at
        if left_queue and queued is not None:
            self.phases.labels(*labels, "queued").observe(queued)
        if stored.finished_at is not None and stored.finished_at == change.observed_at:
            if running is not None:
                self.phases.labels(*labels, "running").observe(running)
            if total is not None:
                self.phases.labels(*labels, "total").observe(total)

    async def follow(self) -> None:
        """Count every transition committed from now on (every replica's, on a shared store:
        the log is the same for all), and observe the phases items leave. The service runs it
        supervised: after a failure it resumes where it stopped."""
        hub = self.service.hub
        if self.position is None:  # from now on; after a failure, from where it stopped
            self.position = hub.broadcaster.position
        sub = hub.subscribe(self.position)
        try:
            async for change in sub:
                # Counted once: restarted after a failure, it resumes after this change.
                self.position = change.id
                self.change(change)
                await self.left_phase(change)
        finally:
            sub.close()

    async def refresh(self) -> None:
        """Read the gauges' figures from the store (its kept counts; the oldest active item
        of each source; the stuck items per source and kind), just before a scrape. While the
        store is away the last figures stand, and `scanhub_store_up` says so: a scrape is
        answered all the same."""
        from .._stats import stuck_counts

        store = self.service.store
        try:
            self.counts = await store.counts()
            self.oldest = await store.oldest_active()
            self.sinks = await self.service.hub.sinks.report()
            rule = await self.service.stuck_rule()
            self.stuck = await stuck_counts(store, rule, self.service.now(), self.counts)
        except StoreUnavailable:
            self.store_reachable = False
        else:
            self.store_reachable = True
