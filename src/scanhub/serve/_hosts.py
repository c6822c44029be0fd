"""Which `Host` a request may name: the service answers only for its own names.

A web page can read a service on loopback through DNS rebinding: its own name, resolved again,
now points at 127.0.0.1, and the browser, taking the page and the service for one origin, lets
the page read the answers. The browser still sends the page's name as `Host`, so a service that
answers only for the names it is reached by (`HostRule`) is out of the page's reach; it answers
any other with a 421 (`serve/_app.py`).

Allowed by default: `localhost`, `127.0.0.1` and `::1` (any port), and the address the service
is bound to when it is not a wildcard. Bound to a wildcard (`0.0.0.0`, `::`) with no names
given, any name is (it is reached by names only its operator knows); names given
(`--allowed-host`) are added to the defaults, and `*` allows any, `*.example.com` any name under
example.com. A request without `Host` (HTTP/1.0) is no browser's, and is answered.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from attrs import frozen

#: Names a service answers for wherever it is bound: the loopback names (a browser on the
#: service's machine).
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})

_PORT = re.compile(r":[0-9]{0,5}")
_LABELS = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


def check_name(text: str) -> str:
    """An `--allowed-host` value as it is compared: a host name or an IP address (IPv6 with
    or without brackets), `*.` and a name, or `*`; without a port or a scheme. Lower case,
    without a final dot. Raises `ValueError` saying what is wrong."""
    name = text.strip().lower()
    if name == "*":
        return name
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    name = name.removesuffix(".")
    rest = name.removeprefix("*.")
    if len(name) > 253 or not _LABELS.fullmatch(rest):
        raise ValueError(
            f"expected a host name or an IP address (no scheme, no port; '*.' and a name for "
            f"every name under it, '*' for any), got {text!r}"
        )
    return name


def is_wildcard(host: str) -> bool:
    """True for an address that binds every interface (`0.0.0.0`, `::`, or none)."""
    try:
        return not host or ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The name a `Host` header gives (lower case, without its port, brackets or final dot),
    or None when it is not one (a bare IPv6 address, a port that is not digits)."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not _PORT.fullmatch(rest):
            return None
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
    name, colon, port = value.partition(":")
    if colon and not _PORT.fullmatch(colon + port):
        return None
    return name.removesuffix(".")


def _bound_name(host: str) -> str:
    """The name of the address a service is bound to, as a `Host` gives it."""
    name = host.strip().lower().strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.removesuffix(".")


@frozen
class HostRule:
    """The names a service answers for; `names` None: any."""

    names: frozenset[str] | None

    @classmethod
    def of(cls, bound: str, allowed: Iterable[str] = ()) -> HostRule:
        """The rule for a service bound to `bound`, with the `--allowed-host` names `allowed`
        (see the module docstring)."""
        names = {check_name(n) for n in allowed}
        if "*" in names or (is_wildcard(bound) and not names):
            return cls(None)
        names |= LOOPBACK
        if not is_wildcard(bound):
            names.add(_bound_name(bound))
        return cls(frozenset(names))

    @property
    def any(self) -> bool:
        """True when every name is answered."""
        return self.names is None

    def allows(self, header: str | None) -> bool:
        """Whether a request with this `Host` header (None: without one) is answered."""
        if self.names is None or not header:
            return True
        name = host_name(header)
        if name is None:
            return False
        if name in self.names:
            return True
        return any(n.startswith("*.") and name.endswith(n[1:]) for n in self.names)


__all__ = ["LOOPBACK", "HostRule", "check_name", "host_name", "is_wildcard"]
