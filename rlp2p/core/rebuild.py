"""Rebuild a log's new head page from the previous one and the new messages, instead of fetching it.

A follower that holds the head page it synced last and is handed the new messages (pushed beside
the record, rlp2p/wire/push.py) can lay out the new head page itself: the layout is a pure
function of the log and its mode (rlp2p/core/page.py), and the record names the page by its CID,
so a rebuilt page is accepted only when its CID is the record's head: bytes identical to what the
publisher signed for. The mode is not known to the reader, so a few candidates are tried (the
newest-k window of embedded messages kept or grown; the new messages on the same page or on a new
one); when none matches (a changed CAS hint, an unusual mode, a private log) the caller fetches
the page as before. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence

from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.core.page import Page, Pair
from rlp2p.errors import Rlp2pError
from rlp2p.limits import DEFAULT_LIMITS, Limits


def rebuild_head(
    previous: bytes, new: Sequence[tuple[int, bytes]], head: bytes, limits: Limits = DEFAULT_LIMITS
) -> bytes | None:
    """The new head page (its bytes, whose CID is ``head``), from the ``previous`` head page and
    the ``new`` messages ``(seq, serialized message)`` that follow it, or None."""
    return next((data for data in rebuild_candidates(previous, new, limits) if address_of(data) == head), None)


def rebuild_candidates(
    previous: bytes, new: Sequence[tuple[int, bytes]], limits: Limits = DEFAULT_LIMITS
) -> Iterator[bytes]:
    """The pages the new head may be (at most 4, the likeliest first), when its CID is not known
    yet (a compact pushed record without Value: the signature tells which one it is)."""
    layout = _LAYOUTS.get(previous, limits)
    if layout is None or not new:
        return
    page, hashes = layout
    newest = page.pairs[0].seq
    if [seq for seq, _ in new] != list(range(newest + 1, newest + 1 + len(new))):
        return
    try:
        added = tuple(
            Pair(address_of(data), Message.decode(data, limits).id, seq, data) for seq, data in reversed(new)
        )
    except Rlp2pError:
        return
    embedded = sum(p.embedded for p in page.pairs)
    pairs = added + page.pairs
    for keep in dict.fromkeys((embedded, embedded + len(new))):  # the window slides, or grows
        kept = tuple(p if i < keep or not p.embedded else Pair(p.remote_hash, p.local_hash, p.seq) for i, p in enumerate(pairs))
        same = Page(kept, page.tail, page.cas, page.first_seq)
        # or the previous head was full: it becomes an older page (no CAS hint, no first_seq)
        older = Page(kept[len(added):], page.tail, (), 1)
        fresh = Page(kept[: len(added)], address_of(older.encode(embedded_hashes=hashes)), page.cas, page.first_seq)
        for candidate in (same, fresh):
            data = candidate.encode(embedded_hashes=hashes)
            if len(data) <= limits.max_block:
                _LAYOUTS.put(data, limits, (candidate, hashes))  # the next rebuild starts from it
                yield data


#: head pages decoded or built lately, and the largest kept: a follower rebuilds from the page it
#: rebuilt last, a storage peer checks the same pages for each of its push streams
LAYOUTS, LAYOUT_BYTES = 8, 64 * 1024


def _read_layout(previous: bytes, limits: Limits) -> tuple[Page, bool] | None:
    """``previous`` decoded as an open head page with messages, and whether its publisher encodes
    embedded pairs with their hashes (the page's own bytes tell); None when it is not one."""
    try:
        page = Page.decode(previous, limits, start=None)
    except Rlp2pError:
        return None
    if page.sealed or not page.pairs:
        return None
    flags = [f for f in (False, True) if page.encode(embedded_hashes=f) == previous]
    return (page, flags[0]) if flags else None


class _Layouts:
    """The newest ``LAYOUTS`` head pages' layouts by their bytes (Page is frozen: shared safely;
    locked: rebuilds may run in worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: OrderedDict[tuple[bytes, Limits], tuple[Page, bool] | None] = OrderedDict()

    def get(self, data: bytes, limits: Limits) -> tuple[Page, bool] | None:
        if len(data) > LAYOUT_BYTES:
            return _read_layout(data, limits)
        key = (data, limits)
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        layout = _read_layout(data, limits)
        self.put(data, limits, layout)
        return layout

    def put(self, data: bytes, limits: Limits, layout: tuple[Page, bool] | None) -> None:
        if len(data) > LAYOUT_BYTES:
            return
        with self._lock:
            self._known[(data, limits)] = layout
            self._known.move_to_end((data, limits))
            while len(self._known) > LAYOUTS:
                self._known.popitem(last=False)


_LAYOUTS = _Layouts()


__all__ = ["rebuild_candidates", "rebuild_head"]
