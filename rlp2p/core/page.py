"""RemoteLog pages: how a log of MVDS messages is laid out in a CAS (3/REMOTE-LOG "Remote log").

A log is the sequence of serialized ``vac.mvds.Message`` blocks ``m_1 .. m_N`` (``seq`` is the
1-based position). It is published as a chain of ``vac.remotelog.RemoteLog`` pages, linked from the
newest page back to the oldest through ``tail``; the NS record points at the newest page (the head).

Layout, a pure function of the log and the :class:`LogMode` (so a republish after an append
re-creates byte-identical pages, with the same CIDs, wherever nothing changed)::

    P = page_size (N for the fully replicated mode: one page holds the whole log)
    page i (0-based) holds seq i*P+1 .. min((i+1)*P, N), newest first
    page i's tail = address of page i-1; page 0 has no tail
    head = the last page, the only one that can hold fewer than P pairs

Each pair carries ``remoteHash`` (H2, the CID of the message block), ``localHash`` (H1, the MVDS id)
and ``seq`` (rlp2p's field 4). The message bytes ride in ``data`` when the pair is embedded:

* ``embed=None``: every message is embedded (no message blocks at all);
* ``embed=0``: none is; a reader fetches every message block from the CAS;
* ``embed=k``: the newest k messages *of the log* are (``seq > N - k``). When the log grows, a pair
  that slides out of the newest k loses its payload, so an older page may change too. Beside the
  new pages and the old head, a publish then re-uploads the pages holding the messages that left
  the newest k: at most ``ceil(k / P) + 1`` of them. Accepted, for a layout that stays pure.

Two byte savers. A message over ``LogMode.embed_max`` (default 4 KiB) is never embedded: it goes
by reference in every mode, so it is uploaded once and not re-sent with a page that changes. An
embedded pair leaves out ``remoteHash`` and ``localHash`` (unless ``LogMode.embedded_hashes``):
both are functions of ``data``, which the reader hashes and parses anyway to check them, and a
reader that follows the specification alone still has every message and can recompute both. A
pair with neither hashes nor data is refused, so an empty hash is never ambiguous.

A publisher need not lay out the whole log again: pages before :func:`first_open_page` never change
as the log grows, so :func:`build_pages` lays out only the pages from there on, given the address
of the page before, and produces exactly the bytes :func:`build_log` would.

The CAS hint (``cas``, rlp2p's field 3) goes in the head page only: the reader needs it there, and
keeping it out of older pages means a change of replica set does not change every page. The price
is that the previous head page changes once when a new page is started.

Page invariants that :meth:`Page.decode` enforces on everything it reads (a reader never trusts a
page): at most ``max_page_pairs`` pairs and ``max_block`` bytes (checked before parsing); every pair
has a 32-byte ``localHash``, a valid CAS address as ``remoteHash`` (either left out only beside
``data``; a private log's pair always carries its keyed ``localHash``) and ``seq >= 1``; seqs are
consecutive and descending; the page that holds the log's first seq (1, or the head's
``first_seq``) has no tail and every other page has one (see ``start`` of :meth:`Page.decode`);
an embedded payload is at most ``max_message`` bytes (checked before it is hashed or parsed),
hashes to ``remoteHash`` and is a message whose id is ``localHash``. A page with no pairs is only
legal as the whole of an empty log.

History truncation (rlp2p's field 4 of RemoteLog, ``first_seq``): a publisher may drop the
messages before seq ``F``. The log then holds seq F..N; seq numbers do not move and neither do
page boundaries, so page i still holds seq i*P+1.. (the page holding F, page ``(F-1)//P``, holds
F..its end and has no tail; the pages before it are gone). The head page says ``first_seq = F``
(absent when F = 1, so an untruncated log's pages are byte-identical to before). The trade-off:
pages are hash-linked newest to oldest, so dropping the tail of the oldest kept page changes the
CID of every kept page; a truncation re-uploads the kept pages once (message blocks keep their
CIDs). Keeping boundaries fixed instead of re-cutting pages from F keeps every later build, and
what each replica holds, the same function of (log, mode, F) as before truncation.

One wire quirk: proto3 cannot tell an embedded empty payload from no payload, and the empty
``vac.mvds.Message`` (no group, timestamp 0, no body) serializes to ``b""``. Such a pair is
therefore always "not embedded" on the wire; its block (``b""``) is fully determined by its address,
so readers need not fetch it (see :data:`EMPTY_ADDRESS`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from google.protobuf.message import DecodeError as _PbDecodeError

from rlp2p.core.address import address_of, check_address, verify_checked_block
from rlp2p.core.message import MESSAGE_ID_SIZE, Message
from rlp2p.errors import (
    AddressError,
    DecodeError,
    LimitExceeded,
    MessageIdMismatch,
    PageError,
)
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.pb.vac import remotelog_pb2

_PbRemoteLog = remotelog_pb2.RemoteLog
_PbPair = remotelog_pb2.RemoteLog.Pair

#: the address of the empty block, which is also the serialized empty message
EMPTY_ADDRESS = address_of(b"")
#: the MVDS id of the empty message (what a pair with remoteHash EMPTY_ADDRESS must carry)
EMPTY_MESSAGE_ID = Message(b"", 0, b"").id


# --- modes ------------------------------------------------------------------------------------

#: messages larger than this go by reference even in the embedding modes (``LogMode.embed_max``)
DEFAULT_EMBED_MAX = 4 * 1024

_PAGED = re.compile(r"paged:([0-9]+)")
_NEWEST = re.compile(r"newest:([0-9]+)")


def _check_int(name: str, value: object, minimum: int) -> None:
    # bool is an int subclass; LogMode(page_size=True) is a bug, not a page size of 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


@dataclass(frozen=True, slots=True)
class LogMode:
    """How a log is cut into pages and which payloads ride inside them.

    ``page_size``: None = fully replicated (one page with the whole log), 1 = linked list,
    P = paged with P pairs a page. ``embed``: 0 = no payload embedded, None = all,
    k = the newest k messages of the log.
    """

    page_size: int | None
    embed: int | None
    #: largest message embedded (None: no bound); a larger one goes by reference in every mode,
    #: so it is uploaded once and never re-sent with a page that changes
    embed_max: int | None = DEFAULT_EMBED_MAX
    #: keep ``remoteHash`` and ``localHash`` in embedded pairs; by default they are left out (the
    #: reader computes both from ``data``: see the module docstring)
    embedded_hashes: bool = False

    def __post_init__(self) -> None:
        if self.page_size is not None:
            _check_int("page_size", self.page_size, 1)
        if self.embed is not None:
            _check_int("embed", self.embed, 0)
        if self.embed_max is not None:
            _check_int("embed_max", self.embed_max, 0)

    @classmethod
    def fully_replicated(cls, embed: int | None = None) -> LogMode:
        """One page holding the whole log; by default with every payload (a backup)."""
        return cls(page_size=None, embed=embed)

    @classmethod
    def paged(cls, page_size: int, embed: int | None = 0) -> LogMode:
        """Pages of ``page_size`` pairs, payloads by CAS reference unless ``embed`` says otherwise."""
        if page_size is None:
            raise TypeError("page_size must be an int; use LogMode.fully_replicated() for one page")
        return cls(page_size=page_size, embed=embed)

    @classmethod
    def linked_list(cls, embed: int | None = 0) -> LogMode:
        """One pair a page: the smallest pages, the longest walk."""
        return cls(page_size=1, embed=embed)

    @classmethod
    def parse(cls, layout: str, embed: str) -> LogMode:
        """Parse the CLI's ``--layout`` (full, paged:P, linked) and ``--embed`` (none, all, newest:K)."""
        layout_text, embed_text = layout.strip().lower(), embed.strip().lower()
        page_size: int | None
        if layout_text == "full":
            page_size = None
        elif layout_text == "linked":
            page_size = 1
        elif m := _PAGED.fullmatch(layout_text):
            page_size = int(m.group(1))
            if page_size < 1:
                raise ValueError(f"layout {layout!r}: a page holds at least 1 message")
        else:
            raise ValueError(f"layout {layout!r}: expected 'full', 'paged:P' (P >= 1) or 'linked'")
        k: int | None
        if embed_text == "none":
            k = 0
        elif embed_text == "all":
            k = None
        elif m := _NEWEST.fullmatch(embed_text):
            k = int(m.group(1))
        else:
            raise ValueError(f"embed {embed!r}: expected 'none', 'all' or 'newest:K' (K >= 0)")
        return cls(page_size=page_size, embed=k)

    def to_args(self) -> tuple[str, str]:
        """The ``(layout, embed)`` strings that :meth:`parse` turns back into this mode."""
        if self.page_size is None:
            layout = "full"
        elif self.page_size == 1:
            layout = "linked"
        else:
            layout = f"paged:{self.page_size}"
        if self.embed is None:
            embed = "all"
        elif self.embed == 0:
            embed = "none"
        else:
            embed = f"newest:{self.embed}"
        return layout, embed

    def describe(self) -> str:
        if self.page_size is None:
            layout = "fully replicated (one page)"
        elif self.page_size == 1:
            layout = "linked list (one message a page)"
        else:
            layout = f"paged, {self.page_size} messages a page"
        if self.embed is None:
            embed = "every message embedded"
        elif self.embed == 0:
            embed = "no message embedded"
        else:
            embed = f"the newest {self.embed} message{'s' if self.embed != 1 else ''} embedded"
        return f"{layout}, {embed}"

    def embeds(self, seq: int, n: int, size: int = 0) -> bool:
        """Whether the ``size``-byte message at ``seq`` of an ``n``-message log rides inside its page."""
        if self.embed_max is not None and size > self.embed_max:
            return False
        return self.embed is None or seq > n - self.embed


# --- log entries ------------------------------------------------------------------------------


def _prime(obj: object, name: str, value: object) -> None:
    # fill a cached_property we already know (frozen dataclasses store it in __dict__)
    obj.__dict__[name] = value


@dataclass(frozen=True)
class LogEntry:
    """One message of a publisher's log: its position and its serialized ``vac.mvds.Message``."""

    seq: int
    data: bytes

    def __post_init__(self) -> None:
        _check_int("seq", self.seq, 1)
        if not isinstance(self.data, bytes):
            raise TypeError(f"data must be bytes, got {type(self.data).__name__}")

    @classmethod
    def from_message(cls, seq: int, message: Message) -> LogEntry:
        entry = cls(seq, message.encode())
        _prime(entry, "message", message)
        return entry

    @cached_property
    def message(self) -> Message:
        # no limit here: this is our own log; build_log checks sizes against the readers' limits
        return Message.decode(self.data, Limits(max_message=max(len(self.data), 1)))

    @cached_property
    def local_hash(self) -> bytes:
        """H1, the MVDS message id."""
        return self.message.id

    @cached_property
    def remote_hash(self) -> bytes:
        """H2, the CAS address of ``data``."""
        return address_of(self.data)


# --- pages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """``RemoteLog.Pair``: one message's hashes, its seq, and its payload when embedded."""

    remote_hash: bytes
    local_hash: bytes
    seq: int
    data: bytes | None = None  # None: by CAS reference

    def __post_init__(self) -> None:
        if self.data == b"":
            # proto3 cannot carry an empty embedded payload; keep encode/decode an exact round trip
            object.__setattr__(self, "data", None)

    @cached_property
    def message(self) -> Message | None:
        """The embedded message, decoded (filled in by :meth:`Page.decode`, so parsed once)."""
        return None if self.data is None else Message.decode(self.data, Limits(max_message=len(self.data)))

    @property
    def embedded(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class Page:
    """``vac.remotelog.RemoteLog``: pairs newest first, the tail, and the CAS hint."""

    pairs: tuple[Pair, ...]
    tail: bytes | None = None
    cas: tuple[bytes, ...] = ()
    #: the oldest seq the log holds, as this (head) page says; 1 when it says nothing
    first_seq: int = 1
    #: a private log's seal version (rlp2p.core.private), 0 for a plain log
    sealed: int = 0

    @property
    def newest_seq(self) -> int | None:
        return self.pairs[0].seq if self.pairs else None

    @property
    def oldest_seq(self) -> int | None:
        return self.pairs[-1].seq if self.pairs else None

    def encode(self, *, embedded_hashes: bool = False) -> bytes:
        """Deterministic bytes: the same page always has the same CID. An embedded pair's
        hashes are left out unless ``embedded_hashes`` (as :func:`build_log` does)."""
        pb = _PbRemoteLog(
            pair=[
                _PbPair(
                    remoteHash=b"" if p.data is not None and not embedded_hashes else p.remote_hash,
                    localHash=b"" if p.data is not None and not embedded_hashes and not self.sealed else p.local_hash,
                    data=p.data or b"",
                    seq=p.seq,
                )
                for p in self.pairs
            ],
            tail=self.tail or b"",
            cas=self.cas,
            first_seq=self.first_seq if self.first_seq > 1 else 0,
            sealed=self.sealed,
        )
        return pb.SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, data: bytes, limits: Limits = DEFAULT_LIMITS, *, start: int | None = 1) -> Page:
        """Parse and check a page from an untrusted peer (see the module docstring for the rules).

        ``start`` is the log's first seq as the head page said (1: untruncated): a page without a
        tail must end exactly there. A page that carries ``first_seq`` (a head) is held to its own
        word instead. None accepts a tailless page ending anywhere: for walks that only collect
        what pages name (a storage peer's retention), not for readers.

        A private log's page (``sealed`` set, rlp2p.core.private): an embedded payload is a sealed
        message, checked here against its address only (the reader opens it with its keys and
        checks its keyed id then), and no pair may point at the empty block (nothing seals to it).
        """
        if len(data) > limits.max_block:
            raise LimitExceeded("page size", len(data), limits.max_block)
        pb = _PbRemoteLog()
        try:
            pb.ParseFromString(data)
        except _PbDecodeError as exc:
            raise DecodeError(f"not a vac.remotelog.RemoteLog: {exc}") from exc
        if len(pb.pair) > limits.max_page_pairs:
            raise LimitExceeded("pairs in a page", len(pb.pair), limits.max_page_pairs)
        tail = pb.tail or None
        sealed = pb.sealed != 0
        if tail is not None:
            try:
                check_address(tail)
            except AddressError as exc:
                raise PageError(f"bad tail: {exc}") from exc
        first_seq = pb.first_seq or 1
        if not pb.pair:
            if tail is not None:
                raise PageError("a page with no pairs and a tail: only an empty log has an empty page")
            if first_seq > 1:
                raise PageError("an empty page with first_seq: a truncated log keeps a message")
            return cls(pairs=(), tail=None, cas=tuple(pb.cas), sealed=pb.sealed)
        if pb.first_seq:
            start = first_seq

        newest = pb.pair[0].seq
        pairs: list[Pair] = []
        for i, p in enumerate(pb.pair):
            where = f"pair {i} (seq {p.seq})"
            if p.seq < 1:
                raise PageError(f"{where}: no seq; rlp2p pages number every pair from 1")
            if p.seq != newest - i:
                raise PageError(f"{where}: seqs must be consecutive, newest first (expected {newest - i})")
            payload = p.data or None
            # an embedded pair may leave out both hashes: the reader computes them from data (a
            # private log's keyed localHash cannot be computed before opening: it always travels)
            local_omitted = not p.localHash and payload is not None and not sealed
            if not local_omitted and len(p.localHash) != MESSAGE_ID_SIZE:
                raise PageError(f"{where}: localHash is {len(p.localHash)} bytes, not {MESSAGE_ID_SIZE}")
            computed = not p.remoteHash and payload is not None
            if payload is not None and len(payload) > limits.max_message:  # before hashing or parsing it
                raise LimitExceeded(f"{where}: embedded message size", len(payload), limits.max_message)
            if computed:
                remote_hash = address_of(p.data)
            else:
                remote_hash = p.remoteHash
                try:
                    check_address(remote_hash)
                except AddressError as exc:
                    raise PageError(f"{where}: bad remoteHash: {exc}") from exc
            if sealed:
                if remote_hash == EMPTY_ADDRESS:
                    raise PageError(f"{where}: a private log's pair points at the empty block")
                if payload is not None and not computed:
                    verify_checked_block(remote_hash, payload)
                pair = Pair(remote_hash=remote_hash, local_hash=p.localHash, seq=p.seq, data=payload)
            elif payload is not None:
                message = _check_payload(where, payload, remote_hash, None if local_omitted else p.localHash, limits, hashed=computed)
                pair = Pair(remote_hash=remote_hash, local_hash=message.id, seq=p.seq, data=payload)
                _prime(pair, "message", message)
            else:
                pair = Pair(remote_hash=remote_hash, local_hash=p.localHash, seq=p.seq)
                if pair.remote_hash == EMPTY_ADDRESS and pair.local_hash != EMPTY_MESSAGE_ID:
                    # the empty block's content is known without fetching it: check it now
                    raise MessageIdMismatch(f"{where}: the empty message's id is not localHash")
            pairs.append(pair)

        oldest = pairs[-1].seq
        if start is not None:
            if oldest < start:
                raise PageError(f"the page holds seq {oldest}, before the log's first seq {start}")
            if oldest == start and tail is not None:
                raise PageError(f"the page holding seq {start} has a tail (the log's first seq)")
            if oldest > start and tail is None:
                raise PageError(f"the page ends at seq {oldest} but has no tail to the older messages")
        elif oldest == 1 and tail is not None:
            raise PageError("the page holding seq 1 has a tail")
        return cls(pairs=tuple(pairs), tail=tail, cas=tuple(pb.cas), first_seq=first_seq, sealed=pb.sealed)

    def address(self) -> bytes:
        return address_of(self.encode())


def _check_payload(
    where: str, data: bytes, remote_hash: bytes, local_hash: bytes | None, limits: Limits, *, hashed: bool = False
) -> Message:
    """The embedded message, checked against the pair's hashes (``hashed``: ``remote_hash`` was
    computed from ``data``; ``local_hash`` None: it was left out, the message's id stands)."""
    if len(data) > limits.max_message:
        raise LimitExceeded(f"{where}: embedded message size", len(data), limits.max_message)
    if not hashed:
        verify_checked_block(remote_hash, data)
    try:
        message = Message.decode(data, limits)
    except DecodeError as exc:
        raise PageError(f"{where}: embedded data is not a vac.mvds.Message: {exc}") from exc
    if local_hash is not None and message.id != local_hash:
        raise MessageIdMismatch(f"{where}: the embedded message's id is not localHash")
    return message


# --- building a log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltLog:
    """A log laid out in pages: what a publisher uploads, then points the NS record at.

    A build from page ``first_page`` on (see :func:`build_pages`) holds only those pages and the
    message blocks of their pairs; the pages before it are the same in every longer log.
    """

    #: address of the newest page; None for an empty log (nothing to publish)
    head: bytes | None
    #: (address, encoded page), oldest first, from page ``first_page`` on
    pages: list[tuple[bytes, bytes]]
    #: every block a CAS must hold for a reader to sync the log from ``first_page`` on: those
    #: pages and the message blocks of their pairs that are not embedded
    blocks: dict[bytes, bytes] = field(repr=False)
    #: number of messages in the whole log
    n: int
    #: index of the first page built (0 for a whole build)
    first_page: int = 0
    #: the tail of page ``first_page`` (address of the page before it); None when it is the
    #: log's first page (page 0, or the page holding ``first_seq``)
    tail: bytes | None = None
    #: the oldest seq the log holds (1 unless its history was truncated)
    first_seq: int = 1


def build_log(
    entries: Sequence[LogEntry],
    mode: LogMode,
    cas: Sequence[bytes] = (),
    *,
    limits: Limits = DEFAULT_LIMITS,
    first_seq: int = 1,
    sealed: int = 0,
) -> BuiltLog:
    """Lay ``entries`` (seq ``first_seq``..N, in order) out in pages. Pure and O(N); every page
    encoded once.

    ``cas`` (binary multiaddrs) goes into the head page. Raises :class:`LimitExceeded` when a
    message or a page would be over ``limits`` (readers would refuse it), ValueError when the
    entries are not numbered first_seq..N.
    """
    return build_pages(
        entries, mode, cas, first_page=base_page(mode, first_seq), limits=limits, first_seq=first_seq, sealed=sealed
    )


def base_page(mode: LogMode, first_seq: int) -> int:
    """Index of the page holding ``first_seq``, the log's oldest kept message: its first page."""
    _check_int("first_seq", first_seq, 1)
    return 0 if mode.page_size is None else (first_seq - 1) // mode.page_size


def first_open_page(mode: LogMode, n: int, first_seq: int = 1) -> int:
    """The first page of an ``n``-message log that an append may change; pages before it are final.

    That is the head page (it grows, or loses the CAS hint) and, with ``embed=k``, the page that
    holds the oldest of the newest k (its payload leaves the page when the log grows). The fully
    replicated layout has one page, which every append changes.
    """
    if n <= 0 or mode.page_size is None:
        return 0
    first = (n - 1) // mode.page_size
    if mode.embed:  # k > 0: seq n-k+1 is the oldest pair that may lose its payload
        first = min(first, max(n - mode.embed, 0) // mode.page_size)
    return max(first, base_page(mode, first_seq))


def build_pages(
    entries: Sequence[LogEntry],
    mode: LogMode,
    cas: Sequence[bytes] = (),
    *,
    first_page: int = 0,
    tail: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
    first_seq: int = 1,
    sealed: int = 0,
) -> BuiltLog:
    """Lay out the pages of a log from page ``first_page`` on; O(len(entries)).

    ``sealed``: a private log's seal version, set on every page (the entries are sealed already,
    see rlp2p.core.private.seal_entries).

    ``entries`` are the log's messages from the first seq of that page to the newest (seq N),
    in order; ``tail`` is the address of page ``first_page - 1`` (None for the log's first page,
    page 0 or, after a truncation, the page holding ``first_seq``: see :func:`base_page`). The pages
    and blocks are exactly those :func:`build_log` makes for the whole log from that page on,
    so a publisher that keeps the final pages' last address rebuilds only what an append changed.
    """
    if first_page < 0:
        raise ValueError(f"first_page must be at least 0, got {first_page}")
    if mode.page_size is None and first_page:
        raise ValueError("the fully replicated layout has one page: build it from page 0")
    base = base_page(mode, first_seq)
    if first_page < base:
        raise ValueError(f"page {first_page} is before the log's first page {base} (first_seq {first_seq})")
    if (first_page == base) != (tail is None):
        raise ValueError("the log's first page has no tail and every other page has one")
    from_seq = first_seq if first_page == base else first_page * (mode.page_size or 1) + 1
    for i, entry in enumerate(entries):
        if entry.seq != from_seq + i:
            raise ValueError(
                f"entries must be seq {from_seq}..N in order: entry {i} has seq {entry.seq}"
            )
        if len(entry.data) > limits.max_message:
            raise LimitExceeded(f"message seq {entry.seq} size", len(entry.data), limits.max_message)
    if not entries:
        if first_page != base:
            raise ValueError(f"no entries for page {first_page}: it would be empty")
        return BuiltLog(head=None, pages=[], blocks={}, n=0)
    n = entries[-1].seq

    full = mode.page_size is None
    page_size = mode.page_size or n
    if min(page_size, len(entries)) > limits.max_page_pairs:
        what = "pairs in a page"
        if full:
            what += " (the fully replicated layout puts the whole log in one page: use --layout paged:P)"
        raise LimitExceeded(what, min(page_size, len(entries)), limits.max_page_pairs)
    cas = tuple(cas)
    blocks: dict[bytes, bytes] = {}
    pb_pairs: list[_PbPair] = []
    for entry in entries:
        embedded = mode.embeds(entry.seq, n, len(entry.data)) and entry.data != b""
        if not embedded:
            blocks[entry.remote_hash] = entry.data
        pb_pairs.append(
            _PbPair(
                remoteHash=b"" if embedded and not mode.embedded_hashes else entry.remote_hash,
                localHash=b"" if embedded and not mode.embedded_hashes and not sealed else entry.local_hash,
                data=entry.data if embedded else b"",
                seq=entry.seq,
            )
        )

    pages: list[tuple[bytes, bytes]] = []
    link = tail or b""
    count = len(pb_pairs)
    # page boundaries are fixed by seq (page i holds i*P+1..), also for a truncated first page
    first_len = count if full else page_size - (from_seq - 1) % page_size
    bounds = [0, *range(first_len, count, page_size)]
    for start in bounds:
        end = first_len if start == 0 else start + page_size
        chunk = pb_pairs[start:end]
        chunk.reverse()  # newest first
        last = end >= count
        pb = _PbRemoteLog(
            pair=chunk,
            tail=link,
            cas=cas if last else (),
            first_seq=first_seq if last and first_seq > 1 else 0,
            sealed=sealed,
        )
        data = pb.SerializeToString(deterministic=True)
        if len(data) > limits.max_block:
            if full:
                raise LimitExceeded(
                    f"the fully replicated log's one page ({n} messages) would be {len(data)} bytes; "
                    "a storage peer takes blocks up to max_block, so use the paged layout "
                    "(--layout paged:P, LogMode.paged(P)) for a log this size. Page size",
                    len(data),
                    limits.max_block,
                )
            raise LimitExceeded(
                f"page holding seq {from_seq + start}.. size", len(data), limits.max_block
            )
        link = address_of(data)
        pages.append((link, data))
        blocks[link] = data
    return BuiltLog(
        head=pages[-1][0],
        pages=pages,
        blocks=blocks,
        n=n,
        first_page=first_page,
        tail=tail,
        first_seq=first_seq,
    )
