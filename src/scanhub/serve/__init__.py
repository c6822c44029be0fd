"""`scanhub serve`: the dashboard service (JSON API, live stream, Prometheus, webhooks, page).

    scanhub serve -c scanhub.toml            # http://127.0.0.1:8470
    scanhub serve --demo                     # the simulators, a scenario that keeps moving

`Service` wraps a `ScanHub` (its engine runs for good) and serves, on one aiohttp server:
`/` (the page), `/api/v1/...` (JSON; OpenAPI at `/api/v1/openapi.json`), `/api/v1/events/stream`
(Server-Sent Events), `/metrics` (Prometheus), `/webhooks/{vendor}/{source}`, `/healthz` and
`/readyz`. Needs the `serve` extra (prometheus-client).
"""

from ._run import serve
from ._service import CSP, Problem, Service, running

__all__ = ["CSP", "Problem", "Service", "running", "serve"]
