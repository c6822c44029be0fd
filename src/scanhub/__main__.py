"""`python -m scanhub` runs the `scanhub` command."""

from .cli import run

run()
