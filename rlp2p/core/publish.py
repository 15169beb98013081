"""What a publish must send: pure decisions over a log's pages and what each replica holds.

A replica that acknowledged a record holds every block that record's head reaches (the blocks go
first, the record last). Pages before :func:`~rlp2p.core.page.first_open_page` never change as
the log grows, so what a replica holds is summed up by a :class:`Holding`: the log length and
layout it holds, its head, and the first page a longer log may change (with that page's tail).
From it alone we know what the replica lacks of a longer log, and the publisher rebuilds only the
pages from the lowest open page among the replicas it writes to: O(k + P + K) for k new messages,
pages of P and the newest K embedded, instead of O(N).

A truncated log (its history starts at ``first_seq`` > 1, see :mod:`rlp2p.core.page`) is another
log for this bookkeeping: the first seq is part of the holding's mode key, so a truncation makes
every holding unusable once and the next publish sends each replica the kept log's pages (all
rewritten) from its first page; the message blocks it held before the truncation are not sent
again (:func:`messages_held`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rlp2p.core.page import BuiltLog, LogEntry, LogMode, base_page, first_open_page

__all__ = [
    "Holding",
    "build_start",
    "holding_after",
    "lacking",
    "messages_held",
    "mode_key",
    "next_sequence",
    "partial_holding",
    "usable",
]


def mode_key(mode: LogMode, first_seq: int = 1) -> str:
    """A mode as stored beside a holding: ``"paged:64 none"`` (the CLI's layout and embed), and
    ``" from:F"`` for a log truncated to start at seq F."""
    layout, embed = mode.to_args()
    return f"{layout} {embed}" + (f" from:{first_seq}" if first_seq > 1 else "")


def _key_first(key: str) -> int:
    parts = key.split()
    if len(parts) == 3 and parts[2].startswith("from:") and parts[2][5:].isdigit():
        return int(parts[2][5:])
    return 1


def messages_held(raw: Holding | None, mode: LogMode, length: int, first_seq: int) -> int:
    """For a replica whose holding :func:`usable` refused because the log was truncated since
    (same layout and embedding, an older first seq, not longer than the log): the length whose
    message blocks it still holds, for :func:`lacking`'s ``held_length``. 0 otherwise."""
    if raw is None or raw.length > length or _key_first(raw.mode) >= first_seq:
        return 0
    if raw.mode.split()[:2] != mode_key(mode).split()[:2]:
        return 0
    return raw.length


def _key_base(key: str) -> int:
    """The first page of the log a mode key describes (0 unless truncated)."""
    parts = key.split()
    if len(parts) != 3 or not parts[2].startswith("from:"):
        return 0
    try:
        return base_page(LogMode.parse(parts[0], parts[1]), int(parts[2][5:]))
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class Holding:
    """Everything a log of ``length`` messages laid out in ``mode`` names, up to its ``head``.

    ``open_page`` is that log's first page a longer log may change; ``open_tail`` the address of
    the page before it (None when ``open_page`` is 0). Pages before ``open_page`` are the same in
    every longer log of the same mode.
    """

    mode: str
    length: int
    head: bytes
    open_page: int
    open_tail: bytes | None

    def __post_init__(self) -> None:
        if self.length < 1 or self.open_page < 0:
            raise ValueError(f"a holding covers at least one message and pages from 0: {self}")
        if (self.open_page == _key_base(self.mode)) != (self.open_tail is None):
            raise ValueError("open_tail is the address of the page before open_page (none for the first page)")


def holding_after(built: BuiltLog, mode: LogMode) -> Holding:
    """What a replica holds once it stored ``built`` (and every earlier page of that log)."""
    if built.head is None:
        raise ValueError("an empty log is never published")
    open_page = first_open_page(mode, built.n, built.first_seq)
    if open_page < built.first_page:
        raise ValueError(f"build starts at page {built.first_page}, after the open page {open_page}")
    tail = built.tail if open_page == built.first_page else built.pages[open_page - built.first_page - 1][0]
    return Holding(mode_key(mode, built.first_seq), built.n, built.head, open_page, tail)


def usable(have: Holding | None, mode: LogMode, length: int, first_seq: int = 1) -> Holding | None:
    """``have`` if a build of ``length`` messages in ``mode``, from ``first_seq``, can extend it,
    else None (a truncation since makes it unusable)."""
    if have is None or have.mode != mode_key(mode, first_seq) or have.length > length:
        return None
    return have


def build_start(holdings: Iterable[Holding | None], first_page: int = 0) -> tuple[int, bytes | None]:
    """The page to build from (and its tail) so every holding's missing pages are built.

    Pass the holdings :func:`usable` left (None: a replica that holds nothing usable, so the build
    starts at ``first_page``, the log's first: :func:`~rlp2p.core.page.base_page`).
    """
    start: tuple[int, bytes | None] | None = None
    for have in holdings:
        if have is None:
            return first_page, None
        if start is None or have.open_page < start[0]:
            start = (have.open_page, have.open_tail)
    return start if start is not None else (first_page, None)


def _block_needed(mode: LogMode, entry: LogEntry, n: int) -> bool:
    # a pair's message is a block of its own unless embedded; the empty message never embeds
    return entry.data == b"" or not mode.embeds(entry.seq, n, len(entry.data))


def _page_of(mode: LogMode, seq: int) -> int:
    return 0 if mode.page_size is None else (seq - 1) // mode.page_size


def lacking(
    have: Holding | None, built: BuiltLog, entries: Sequence[LogEntry], mode: LogMode, held_length: int = 0
) -> list[bytes]:
    """Addresses of the blocks of ``built`` that a replica holding ``have`` may lack.

    Oldest page first, each page after the message blocks its pairs name (so an upload cut short
    leaves whole pages behind, see :func:`partial_holding`); the record goes after all of them.
    ``have`` must be what :func:`usable` returned; ``built`` must start at or before its open
    page and ``entries`` be the messages ``built`` was made from. A superset at worst by a page or
    two (sending a block a replica holds is harmless); never a block it lacks. ``held_length``
    (with ``have`` None): the replica holds the message blocks of that log length in this mode,
    though none of its pages (:func:`messages_held`).
    """
    if have is not None and have.open_page < built.first_page:
        raise ValueError(f"build starts at page {built.first_page}, the replica needs {have.open_page}")
    if have is None and built.first_page != base_page(mode, built.first_seq):
        raise ValueError("a replica holding nothing needs the log from its first page")
    if have is not None and have.head == built.head:
        return []
    n = built.n
    m = held_length if have is None else have.length
    # the first page that differs: the old head page (it grew or its hint changed) or the oldest
    # page a message whose payload left the newest K sits in
    changed = 0
    if have is not None and mode.page_size is not None:
        changed = (m - 1) // mode.page_size
        if mode.embed and max(n - mode.embed, 0) > max(m - mode.embed, 0):
            changed = min(changed, max(m - mode.embed, 0) // mode.page_size)
    messages: dict[int, list[bytes]] = {}
    for entry in entries:
        if not _block_needed(mode, entry, n):
            continue
        if entry.seq <= m and _block_needed(mode, entry, m):
            continue  # the replica's log had this message as a block already
        messages.setdefault(_page_of(mode, entry.seq), []).append(entry.remote_hash)
    out: list[bytes] = []
    seen: set[bytes] = set()

    def emit(address: bytes) -> None:
        if address not in seen:
            seen.add(address)
            out.append(address)

    # (every lacking message sits in a page >= changed; this keeps them even if not)
    for page in sorted(p for p in messages if p < max(changed, built.first_page)):
        for address in messages[page]:
            emit(address)
    for index, (address, _) in enumerate(built.pages, start=built.first_page):
        if index >= changed:
            for message in messages.get(index, ()):
                emit(message)
            emit(address)
    return out


def partial_holding(built: BuiltLog, mode: LogMode, page: int) -> Holding | None:
    """What a replica holds once an upload in :func:`lacking`'s order got through page ``page``
    of ``built`` (and no further): the log of the messages up to the end of that page, with a head
    that is no real head (so the next publish sends that page again). None for the last page (the
    record's acknowledgement says more) or the fully replicated layout (one page)."""
    if mode.page_size is None or not built.first_page <= page < built.first_page + len(built.pages) - 1:
        return None
    length = (page + 1) * mode.page_size
    open_page = first_open_page(mode, length, built.first_seq)
    if open_page < built.first_page:
        return None  # the build does not know the tail it would need; nothing gained anyway
    addresses = [a for a, _ in built.pages]
    tail = built.tail if open_page == built.first_page else addresses[open_page - built.first_page - 1]
    return Holding(mode_key(mode, built.first_seq), length, addresses[page - built.first_page], open_page, tail)


def next_sequence(published: int, reserved: int) -> int:
    """The sequence of the next record: above every one that may have left the process."""
    return max(published, reserved) + 1


# --- the report ----------------------------------------------------------------------------


@dataclass
class ReplicaResult:
    peer: str
    ok: bool
    blocks_sent: int = 0
    bytes_sent: int = 0
    error: str = ""
    #: the sequence of a record of ours the replica holds that beats the one we sent (STALE)
    holds_seq: int = 0


@dataclass
class PublishReport:
    name: str
    messages: int
    sequence: int
    head: bytes | None
    replicas: list[ReplicaResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def stored_on(self) -> list[str]:
        return [r.peer for r in self.replicas if r.ok]

    @property
    def bytes_sent(self) -> int:
        return sum(r.bytes_sent for r in self.replicas)
