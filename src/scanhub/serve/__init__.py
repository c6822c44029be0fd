"""`scanhub serve`: the dashboard service (JSON API, live stream, Prometheus, webhooks, page).

    scanhub serve -c scanhub.toml            # http://127.0.0.1:8470
    scanhub serve --demo                     # the simulators, a scenario that keeps moving

`Service` runs a `ScanHub` for good and serves, on one aiohttp server: `/` (the page),
`/api/v1/...` (JSON; OpenAPI at `/api/v1/openapi.json`), `/api/v1/events/stream` (Server-Sent
Events), `/metrics` (Prometheus), `/webhooks/{vendor}/{source}`, `/healthz` and `/readyz`. The
views live in `views/`, one module per resource. Needs the `serve` extra (prometheus-client).
"""

from ._app import SERVICE, Service, make_app, running
from ._http import CSP, Problem
from ._run import serve

__all__ = ["CSP", "SERVICE", "Problem", "Service", "make_app", "running", "serve"]
