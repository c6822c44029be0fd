"""Acme Scan, a third-party scanhub vendor (example)."""

from .client import Acme
from .spec import SPEC, AcmeSpec

__all__ = ["SPEC", "Acme", "AcmeSpec"]
