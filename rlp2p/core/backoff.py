"""Bounded exponential back-off: how long to wait before each retry, and when to give up.

Pure: the caller sleeps (an injectable ``sleep``), so a test runs the schedule without waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``tries`` attempts at most; before attempt ``i`` (1-based, i >= 2) wait
    ``min(first * factor ** (i - 2), cap)`` seconds."""

    first: float
    cap: float
    tries: int
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.cap and self.tries >= 1 and self.factor >= 1):
            raise ValueError(f"not a back-off: {self}")

    def delays(self) -> Iterator[float]:
        """The waits between attempts: ``tries - 1`` of them."""
        delay = self.first
        for _ in range(self.tries - 1):
            yield delay
            delay = min(delay * self.factor, self.cap)

    @property
    def total(self) -> float:
        """The longest the whole schedule waits."""
        return sum(self.delays())


__all__ = ["Backoff"]
