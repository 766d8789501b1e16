"""When a batch is written: at ``size`` items, or ``max_wait_s`` after its first item arrived,
whichever comes first. Pure (the caller passes the clock), so it is tested without threads."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, size: int, max_wait_s: float) -> None:
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        if max_wait_s <= 0:
            raise ValueError(f"max wait must be > 0, got {max_wait_s}")
        self.size = size
        self.max_wait_s = max_wait_s
        self._items: list[T] = []
        self._first_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.size

    def add(self, item: T, now: float) -> None:
        """Add one item that arrived at ``now`` (the first one starts the batch's clock)."""
        if self._first_at is None:
            self._first_at = now
        self._items.append(item)

    def due(self, now: float) -> bool:
        """True when the batch should be written now."""
        if not self._items:
            return False
        assert self._first_at is not None
        return self.full or now - self._first_at >= self.max_wait_s

    def time_left(self, now: float) -> float | None:
        """Seconds until the batch is due by time (0 when due; None when empty)."""
        if self._first_at is None:
            return None
        return max(0.0, self.max_wait_s - (now - self._first_at))

    def take(self) -> list[T]:
        """The items, in arrival order; the batcher starts empty again."""
        items, self._items, self._first_at = self._items, [], None
        return items
