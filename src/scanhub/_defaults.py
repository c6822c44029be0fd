"""Every default that more than one part needs, in one place (each part reads it from here)."""

#: Seconds between polls of an item (it grows for stable items).
INTERVAL = 5.0
#: The longest interval a quiet item backs off to.
MAX_INTERVAL = 60.0
#: How much a quiet item's interval grows per quiet poll.
BACKOFF = 1.5
#: Seconds to connect to a vendor, and for a whole request.
CONNECT_TIMEOUT = 10.0
TOTAL_TIMEOUT = 30.0
#: The largest vendor answer read, in bytes (a page of a thousand promotions is about 1 MiB).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: The largest request body `scanhub serve` takes, in bytes.
MAX_REQUEST_BYTES = 1024 * 1024
#: `scanhub serve`: port, state file, lease period, discovery re-runs, "stuck" threshold.
PORT = 8470
STATE_FILE = "scanhub-state.db"
LEASE_SECONDS = 15.0
REDISCOVER_EVERY = 60.0
STUCK_AFTER = 1800.0
#: `scanhub serve`: how long, in seconds, a database that does not answer at start is waited for
#: (replicas deployed beside their database start before it takes connections).
STORE_WAIT = 60.0
