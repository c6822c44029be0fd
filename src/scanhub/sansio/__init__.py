"""The vendor logic of scanhub without I/O, for use with any HTTP stack.

Each vendor's pure functions live in its package (`scanhub.vendors.<name>.sansio`); the
built-in ones are also reachable here under their historical names (`scanhub.sansio.iq`, ...),
as the very same module objects. Each has `build_*` functions that return a `Request` and
`parse_*` functions that turn a `Response` into canonical objects or raise a typed
`ScanhubError`; its `STATUS_MAP` (and `DECISION_MAP` / `POLICY_ACTION_MAP`) is the vendor's
mapping table. Nothing here imports aiohttp or asyncio.
"""

import sys

from .._sansio import FilePart, Request, Response
from ..vendors.appsecplus import sansio as appsecplus
from ..vendors.apptrust import sansio as apptrust
from ..vendors.iq import sansio as iq
from ..vendors.threadfix import sansio as threadfix

# `import scanhub.sansio.iq` keeps working: the name points at the vendor package's module.
for _name, _module in (
    ("appsecplus", appsecplus),
    ("apptrust", apptrust),
    ("iq", iq),
    ("threadfix", threadfix),
):
    sys.modules.setdefault(f"{__name__}.{_name}", _module)

__all__ = ["FilePart", "Request", "Response", "appsecplus", "apptrust", "iq", "threadfix"]
