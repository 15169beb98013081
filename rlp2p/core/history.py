"""History truncation: where a publisher's log starts after she drops its older messages (pure).

A log truncated "before F" holds seq F..N; seqs never move and page i keeps holding i*P+1..
(see :mod:`rlp2p.core.page`), so the only decisions are which F a request means and what a
truncation rewrites: every kept page (pages are hash-linked, and the page holding F loses its
tail), never a message block. What a publisher gains is what storage peers may collect: the
pages before F's page and the message blocks of seqs before F (unless a kept seq has the same
bytes), once no held head reaches them.
"""

from __future__ import annotations

from rlp2p.core.page import LogMode, base_page

__all__ = ["TruncationPlan", "plan_truncation"]


class TruncationPlan:
    """What truncating an ``n``-message log (now starting at ``old_first``) to ``first_seq`` does."""

    __slots__ = ("first_seq", "mode", "n", "old_first")

    def __init__(self, mode: LogMode, n: int, old_first: int, first_seq: int) -> None:
        self.mode, self.n, self.old_first, self.first_seq = mode, n, old_first, first_seq

    @property
    def changes(self) -> bool:
        """False when the log already starts at or after ``first_seq``: nothing to do."""
        return self.first_seq > self.old_first

    @property
    def dropped(self) -> tuple[int, int] | None:
        """``(first, last)`` seqs dropped by this truncation, None if none."""
        return (self.old_first, self.first_seq - 1) if self.changes else None

    @property
    def first_page(self) -> int:
        """Index of the truncated log's first page (the page holding ``first_seq``, no tail)."""
        return base_page(self.mode, self.first_seq)

    @property
    def pages_rewritten(self) -> int:
        """Pages whose bytes (so CIDs) change: every kept page, from the first to the head."""
        if not self.changes:
            return 0
        if self.mode.page_size is None:
            return 1
        return (self.n - 1) // self.mode.page_size - self.first_page + 1


def plan_truncation(
    mode: LogMode,
    n: int,
    old_first: int = 1,
    *,
    before: int | None = None,
    keep: int | None = None,
) -> TruncationPlan:
    """The truncation that drops the messages before seq ``before``, or keeps the newest ``keep``.

    A log keeps at least its newest message (an empty log has no head page to say where its
    history starts). Raises ValueError for a request that cannot be met.
    """
    if (before is None) == (keep is None):
        raise ValueError("say either before (a seq) or keep (a count), not both")
    if n < 1:
        raise ValueError("the log is empty: nothing to truncate")
    if keep is not None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an int >= 1 (a log keeps its newest message), got {keep!r}")
        first = max(n - keep + 1, 1)
    else:
        assert before is not None
        if isinstance(before, bool) or not isinstance(before, int) or before < 1:
            raise ValueError(f"before must be a seq >= 1, got {before!r}")
        if before > n:
            raise ValueError(f"before {before} is past the newest message {n}: a log keeps at least one")
        first = before
    return TruncationPlan(mode, n, old_first, max(first, old_first))
