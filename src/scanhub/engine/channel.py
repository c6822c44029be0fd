"""`Channel`: the one way tasks hand things to each other in the engine.

A FIFO with an explicit capacity and close, in the spirit of anyio's memory object streams.
One rule when it is full: `send_nowait` refuses (returns False) and the sender decides what
that means (a subscriber that cannot keep up reads the store instead; a recorder makes its
producers wait, through `send`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ChannelClosed(Exception):
    """Raised by `receive` once the channel is closed and empty."""


class Channel(Generic[T]):
    """A bounded (or, with `capacity=None`, unbounded) FIFO between tasks."""

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError("a channel holds at least one item")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    @property
    def full(self) -> bool:
        """True when `send_nowait` would refuse."""
        return self.capacity is not None and len(self._items) >= self.capacity

    def send_nowait(self, item: T) -> bool:
        """Put `item` at the end if there is room; returns whether it did."""
        if self.closed:
            raise ChannelClosed("the channel is closed")
        if self.full:
            return False
        self._items.append(item)
        self._readable.set()
        if self.full:
            self._writable.clear()
        return True

    async def send(self, item: T) -> None:
        """Put `item` at the end, waiting for room."""
        while not self.send_nowait(item):
            await self._writable.wait()

    def receive_nowait(self) -> T:
        """The first item; `IndexError` when empty."""
        item = self._items.popleft()
        self._taken()
        return item

    async def receive(self) -> T:
        """The first item, waiting for one; `ChannelClosed` once closed and empty."""
        while not self._items:
            if self.closed:
                raise ChannelClosed("the channel is closed")
            self._readable.clear()
            await self._readable.wait()
        return self.receive_nowait()

    async def wait_readable(self) -> None:
        """Return once there is something to receive (or the channel is closed)."""
        while not self._items and not self.closed:
            self._readable.clear()
            await self._readable.wait()

    def peek(self) -> T:
        """The first item, left in place; `IndexError` when empty."""
        return self._items[0]

    def clear(self) -> list[T]:
        """Take everything out at once."""
        taken = list(self._items)
        self._items.clear()
        self._taken()
        return taken

    def _taken(self) -> None:
        if not self.full:
            self._writable.set()
        if not self._items:
            self._readable.clear()

    def close(self) -> None:
        """No more sends; receivers get what is left, then `ChannelClosed`."""
        self.closed = True
        self._readable.set()
        self._writable.set()


__all__ = ["Channel", "ChannelClosed"]
