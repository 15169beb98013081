"""Retention on a storage peer: which logs to drop and which blocks nothing reaches any more.

Pure policy and a sans-I/O walk; ``rlp2p.node.storage`` feeds it blocks from the store.

* A log whose record has not been updated here for ``drop_after`` seconds (by the storage peer's
  clock, at the time it accepted the record) is dropped: a publisher who still wants it
  publishes again.
* Blocks are collected by mark and sweep: the walk marks every page from each held head back
  through ``tail`` and every message block a page names; the sweep deletes blocks that are not
  marked and were stored more than ``grace`` seconds ago, so the blocks of a publish in
  progress (uploaded before its record) are never taken. A block stored at an unknown time
  (before schema version 2) counts as old.
* Work is bounded: the walk marks at most ``mark_budget`` addresses (memory) and a pass sweeps at
  most ``sweep_per_pass`` candidates, resuming where it stopped on the next pass. A walk that runs
  out of budget sweeps nothing: collecting on a partial mark would delete live blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlp2p.core.page import EMPTY_ADDRESS, Page
from rlp2p.errors import DecodeError
from rlp2p.limits import DEFAULT_LIMITS, Limits

DAY = 86400.0

#: addresses one mark may hold in memory (about 100 bytes each)
MARK_BUDGET = 1_000_000
#: candidate blocks one pass examines for collection
SWEEP_PER_PASS = 100_000


@dataclass(frozen=True)
class RetentionConfig:
    #: seconds after its last update here that a log is dropped; None keeps logs forever
    drop_after: float | None = 30 * DAY
    #: seconds a block is kept after it was stored even if no head reaches it
    grace: float = 1 * DAY
    #: seconds between retention passes
    interval: float = 3600.0
    #: collect unreachable blocks (False: only drop stale logs)
    collect: bool = True
    mark_budget: int = MARK_BUDGET
    sweep_per_pass: int = SWEEP_PER_PASS

    def __post_init__(self) -> None:
        if self.drop_after is not None and self.drop_after <= 0:
            raise ValueError(f"drop_after must be > 0 or None, not {self.drop_after}")
        if self.grace < 0 or self.interval <= 0:
            raise ValueError("grace must be >= 0 and interval > 0")
        if self.mark_budget < 1 or self.sweep_per_pass < 1:
            raise ValueError("mark_budget and sweep_per_pass must be >= 1")


def drop_cutoff(config: RetentionConfig, now: float) -> float | None:
    """Records last updated before this (Unix seconds) are dropped; None: none are."""
    return None if config.drop_after is None else now - config.drop_after


def sweep_cutoff(config: RetentionConfig, now: float) -> float:
    """Only blocks stored before this (Unix seconds) may be collected."""
    return now - config.grace


def page_references(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes | None, list[bytes]]:
    """``(tail, message blocks)`` a page names; ``(None, [])`` for bytes that are not a page
    (a head that does not decode keeps only itself)."""
    try:
        page = Page.decode(data, limits, start=None)  # a truncated log's first page has no tail
    except DecodeError:
        return None, []
    return page.tail, [pair.remote_hash for pair in page.pairs]


def page_needs(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes | None, list[bytes]]:
    """``(tail, message blocks)`` a reader must fetch to read this page: the message blocks of
    pairs not embedded, but for the empty message (readers know its bytes)."""
    try:
        page = Page.decode(data, limits, start=None)  # a truncated log's first page has no tail
    except DecodeError:
        return None, []
    return page.tail, [p.remote_hash for p in page.pairs if not p.embedded and p.remote_hash != EMPTY_ADDRESS]


class MarkOverflow(Exception):
    """The mark reached its budget: this pass must not sweep."""


class Mark:
    """The set of addresses reachable from the heads held, built one page at a time.

    Use: for each log, :meth:`start` its head, then while :meth:`next_page` names a page, hand
    its bytes (or None if not held) to :meth:`page`, which returns the message blocks the page
    names whose sizes the log's total still lacks; give them with :meth:`sizes`.
    """

    def __init__(self, budget: int = MARK_BUDGET, limits: Limits = DEFAULT_LIMITS) -> None:
        self.budget = budget
        self.limits = limits
        self.reached: set[bytes] = set()
        self.log_bytes: dict[str, int] = {}
        self._log: str | None = None
        self._seen: set[bytes] = set()  # this log's addresses, so a shared block is counted per log
        self._next: bytes | None = None

    def _add(self, address: bytes) -> bool:
        """Mark; True if new to this log."""
        if address in self._seen:
            return False
        self._seen.add(address)
        if address not in self.reached:
            if len(self.reached) >= self.budget:
                raise MarkOverflow(f"more than {self.budget} blocks reachable")
            self.reached.add(address)
        return True

    def start(self, name: str, head: bytes) -> None:
        self._log = name
        self._seen = set()
        self.log_bytes[name] = 0
        self._next = head

    def next_page(self) -> bytes | None:
        return self._next

    def page(self, address: bytes, data: bytes | None) -> list[bytes]:
        assert self._log is not None and address == self._next
        self._next = None
        if not self._add(address) or data is None:
            return []  # a loop, or a page this peer does not hold: the walk of this log ends
        self.log_bytes[self._log] += len(data)
        tail, messages = page_references(data, self.limits)
        fresh = [a for a in messages if self._add(a)]
        if tail is not None and tail not in self._seen:
            self._next = tail
        return fresh

    def sizes(self, sizes: dict[bytes, int]) -> None:
        assert self._log is not None
        self.log_bytes[self._log] += sum(sizes.values())


__all__ = [
    "MARK_BUDGET",
    "SWEEP_PER_PASS",
    "Mark",
    "MarkOverflow",
    "RetentionConfig",
    "drop_cutoff",
    "page_needs",
    "page_references",
    "sweep_cutoff",
]
