"""The throwaway PostgreSQL cluster of `scanhub.testing`, under the names the tests use."""

from scanhub.testing import POSTGRES_MISSING as SKIP_REASON
from scanhub.testing import fresh_database
from scanhub.testing import postgres_bindir as bindir
from scanhub.testing import postgres_cluster as cluster

__all__ = ["SKIP_REASON", "bindir", "cluster", "fresh_database"]
