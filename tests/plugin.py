"""The example third-party vendor in tests/example_plugin, loaded the way pip would leave it."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from scanhub.vendors import Registry, load_registry

PLUGIN_DIR = Path(__file__).resolve().parent / "example_plugin"


@contextlib.contextmanager
def plugin_on_path() -> Iterator[None]:
    """`tests/example_plugin` on sys.path, as an installed distribution would be."""
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(PLUGIN_DIR))


def registry_with_plugin() -> Registry:
    """Built-ins plus every entry point found with the example plugin installed."""
    with plugin_on_path():
        return load_registry()


def env_with_plugin() -> dict[str, str]:
    """The environment of a subprocess that has the example plugin installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PLUGIN_DIR), env.get("PYTHONPATH", "")) if p
    )
    env.pop("SCANHUB_NO_PLUGINS", None)
    return env
