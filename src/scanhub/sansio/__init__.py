"""The vendor logic of scanhub without I/O, for use with any HTTP stack.

Each vendor module has `build_*` functions that return a `Request` and `parse_*` functions that
turn a `Response` into canonical objects or raise a typed `ScanhubError`; its `STATUS_MAP` (and
`DECISION_MAP` / `POLICY_ACTION_MAP`) is the vendor's mapping table. Nothing here imports
aiohttp or asyncio.
"""

from . import appsecplus, apptrust, iq, threadfix
from ._common import FilePart, Request, Response

__all__ = ["FilePart", "Request", "Response", "appsecplus", "apptrust", "iq", "threadfix"]
