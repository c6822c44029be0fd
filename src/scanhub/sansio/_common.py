"""Historical name of `scanhub._sansio` (what every vendor module shares); the same module."""

import sys

from .. import _sansio

sys.modules[__name__] = _sansio
