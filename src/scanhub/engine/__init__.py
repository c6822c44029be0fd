"""The engine: `ScanHub` and its parts (see `scanhub.engine.hub` for how they fit).

- `WorkingSet` (tracked.py): the active items this process polls, a cache of the store's.
- `Scheduler` (scheduler.py): when each is polled next; pure, with an injected clock.
- `Discovery` (discovery.py): discovery queries, the rules that re-run them, each source's last
  failure.
- `Sources` (sources.py): the clients by source name, and the HTTP session they share.
- `SourcePoller` (poller.py): one source's polls under its own concurrency limit.
- `Recorder` (recorder.py): the one way into the store; retries, never drops.
- `Broadcaster` (broadcast.py): the store's committed log, fanned out to every reader.
- `Channel` (channel.py): how the parts hand things to each other.
- `supervised` (supervise.py): every background task owned, restarted, never dead unseen.
"""

from .._changes import Change, ItemError, Snapshot, merge
from .broadcast import Broadcaster, Subscription
from .channel import Channel, ChannelClosed
from .discovery import Discovery
from .hub import EngineHealth, ScanHub
from .poller import SourceHealth, SourcePoller
from .recorder import Recorder, RecorderHealth
from .scheduler import Scheduler
from .sources import Sources
from .supervise import PartHealth, supervised
from .tracked import Active, WorkingSet

__all__ = [
    "Active",
    "Broadcaster",
    "Change",
    "Channel",
    "ChannelClosed",
    "Discovery",
    "EngineHealth",
    "ItemError",
    "PartHealth",
    "Recorder",
    "RecorderHealth",
    "ScanHub",
    "Scheduler",
    "Snapshot",
    "SourceHealth",
    "SourcePoller",
    "Sources",
    "Subscription",
    "WorkingSet",
    "merge",
    "supervised",
]
