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

A publisher need not lay out the whole log again: pages before :func:`first_open_page` never change
as the log grows, so :func:`build_pages` lays out only the pages from there on, given the address
of the page before, and produces exactly the bytes :func:`build_log` would.

The CAS hint (``cas``, rlp2p's field 3) goes in the head page only: the reader needs it there, and
keeping it out of older pages means a change of replica set does not change every page. The price
is that the previous head page changes once when a new page is started.

Page invariants that :meth:`Page.decode` enforces on everything it reads (a reader never trusts a
page): at most ``max_page_pairs`` pairs and ``max_block`` bytes (checked before parsing); every pair
has a 32-byte ``localHash``, a valid CAS address as ``remoteHash`` and ``seq >= 1``; seqs are
consecutive and descending; the page that holds seq 1 has no tail and every other page has one;
an embedded payload is at most ``max_message`` bytes, hashes to ``remoteHash`` and is a message whose
id is ``localHash``. A page with no pairs is only legal as the whole of an empty log.

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

    def __post_init__(self) -> None:
        if self.page_size is not None:
            _check_int("page_size", self.page_size, 1)
        if self.embed is not None:
            _check_int("embed", self.embed, 0)

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

    def embeds(self, seq: int, n: int) -> bool:
        """Whether the message at ``seq`` of an ``n``-message log rides inside its page."""
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
    #: a private log's seal version (rlp2p.core.private), 0 for a plain log
    sealed: int = 0

    @property
    def newest_seq(self) -> int | None:
        return self.pairs[0].seq if self.pairs else None

    @property
    def oldest_seq(self) -> int | None:
        return self.pairs[-1].seq if self.pairs else None

    def encode(self) -> bytes:
        """Deterministic bytes: the same page always has the same CID."""
        pb = _PbRemoteLog(
            pair=[
                _PbPair(remoteHash=p.remote_hash, localHash=p.local_hash, data=p.data or b"", seq=p.seq)
                for p in self.pairs
            ],
            tail=self.tail or b"",
            cas=self.cas,
            sealed=self.sealed,
        )
        return pb.SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, data: bytes, limits: Limits = DEFAULT_LIMITS) -> Page:
        """Parse and check a page from an untrusted peer (see the module docstring for the rules).

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
        if not pb.pair:
            if tail is not None:
                raise PageError("a page with no pairs and a tail: only an empty log has an empty page")
            return cls(pairs=(), tail=None, cas=tuple(pb.cas), sealed=pb.sealed)

        newest = pb.pair[0].seq
        pairs: list[Pair] = []
        for i, p in enumerate(pb.pair):
            where = f"pair {i} (seq {p.seq})"
            if p.seq < 1:
                raise PageError(f"{where}: no seq; rlp2p pages number every pair from 1")
            if p.seq != newest - i:
                raise PageError(f"{where}: seqs must be consecutive, newest first (expected {newest - i})")
            if len(p.localHash) != MESSAGE_ID_SIZE:
                raise PageError(f"{where}: localHash is {len(p.localHash)} bytes, not {MESSAGE_ID_SIZE}")
            try:
                check_address(p.remoteHash)
            except AddressError as exc:
                raise PageError(f"{where}: bad remoteHash: {exc}") from exc
            pair = Pair(remote_hash=p.remoteHash, local_hash=p.localHash, seq=p.seq, data=p.data or None)
            if sealed:
                if pair.remote_hash == EMPTY_ADDRESS:
                    raise PageError(f"{where}: a private log's pair points at the empty block")
                if pair.data is not None:
                    if len(pair.data) > limits.max_message:
                        raise LimitExceeded(f"{where}: embedded message size", len(pair.data), limits.max_message)
                    verify_checked_block(pair.remote_hash, pair.data)
            elif pair.data is not None:
                _prime(pair, "message", _check_payload(where, pair, limits))
            elif pair.remote_hash == EMPTY_ADDRESS and pair.local_hash != EMPTY_MESSAGE_ID:
                # the empty block's content is known without fetching it: check it now
                raise MessageIdMismatch(f"{where}: the empty message's id is not localHash")
            pairs.append(pair)

        oldest = pairs[-1].seq
        if oldest == 1 and tail is not None:
            raise PageError("the page holding seq 1 has a tail")
        if oldest > 1 and tail is None:
            raise PageError(f"the page ends at seq {oldest} but has no tail to the older messages")
        return cls(pairs=tuple(pairs), tail=tail, cas=tuple(pb.cas), sealed=pb.sealed)

    def address(self) -> bytes:
        return address_of(self.encode())


def _check_payload(where: str, pair: Pair, limits: Limits) -> Message:
    data = pair.data
    assert data is not None
    if len(data) > limits.max_message:
        raise LimitExceeded(f"{where}: embedded message size", len(data), limits.max_message)
    verify_checked_block(pair.remote_hash, data)
    try:
        message = Message.decode(data, limits)
    except DecodeError as exc:
        raise PageError(f"{where}: embedded data is not a vac.mvds.Message: {exc}") from exc
    if message.id != pair.local_hash:
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
    #: the tail of page ``first_page`` (address of the page before it); None when it is page 0
    tail: bytes | None = None


def build_log(
    entries: Sequence[LogEntry],
    mode: LogMode,
    cas: Sequence[bytes] = (),
    *,
    limits: Limits = DEFAULT_LIMITS,
    sealed: int = 0,
) -> BuiltLog:
    """Lay ``entries`` (seq 1..N, in order) out in pages. Pure and O(N); every page encoded once.

    ``cas`` (binary multiaddrs) goes into the head page. Raises :class:`LimitExceeded` when a
    message or a page would be over ``limits`` (readers would refuse it), ValueError when the
    entries are not numbered 1..N.
    """
    return build_pages(entries, mode, cas, limits=limits, sealed=sealed)


def first_open_page(mode: LogMode, n: int) -> int:
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
    return first


def build_pages(
    entries: Sequence[LogEntry],
    mode: LogMode,
    cas: Sequence[bytes] = (),
    *,
    first_page: int = 0,
    tail: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
    sealed: int = 0,
) -> BuiltLog:
    """Lay out the pages of a log from page ``first_page`` on; O(len(entries)).

    ``sealed``: a private log's seal version, set on every page (the entries are sealed already,
    see rlp2p.core.private.seal_entries).

    ``entries`` are the log's messages from the first seq of that page to the newest (seq N),
    in order; ``tail`` is the address of page ``first_page - 1`` (None for page 0). The pages
    and blocks are exactly those :func:`build_log` makes for the whole log from that page on,
    so a publisher that keeps the final pages' last address rebuilds only what an append changed.
    """
    if first_page < 0:
        raise ValueError(f"first_page must be at least 0, got {first_page}")
    if mode.page_size is None and first_page:
        raise ValueError("the fully replicated layout has one page: build it from page 0")
    if (first_page == 0) != (tail is None):
        raise ValueError("page 0 has no tail and every other page has one")
    first_seq = first_page * (mode.page_size or 1) + 1
    for i, entry in enumerate(entries):
        if entry.seq != first_seq + i:
            raise ValueError(
                f"entries must be seq {first_seq}..N in order: entry {i} has seq {entry.seq}"
            )
        if len(entry.data) > limits.max_message:
            raise LimitExceeded(f"message seq {entry.seq} size", len(entry.data), limits.max_message)
    if not entries:
        if first_page:
            raise ValueError(f"no entries for page {first_page}: it would be empty")
        return BuiltLog(head=None, pages=[], blocks={}, n=0)
    n = entries[-1].seq

    full = mode.page_size is None
    page_size = mode.page_size or n
    if min(page_size, n) > limits.max_page_pairs:
        what = "pairs in a page"
        if full:
            what += " (the fully replicated layout puts the whole log in one page: use --layout paged:P)"
        raise LimitExceeded(what, min(page_size, n), limits.max_page_pairs)
    cas = tuple(cas)
    blocks: dict[bytes, bytes] = {}
    pb_pairs: list[_PbPair] = []
    for entry in entries:
        embedded = mode.embeds(entry.seq, n) and entry.data != b""
        if not embedded:
            blocks[entry.remote_hash] = entry.data
        pb_pairs.append(
            _PbPair(
                remoteHash=entry.remote_hash,
                localHash=entry.local_hash,
                data=entry.data if embedded else b"",
                seq=entry.seq,
            )
        )

    pages: list[tuple[bytes, bytes]] = []
    link = tail or b""
    count = len(pb_pairs)
    for start in range(0, count, page_size):
        chunk = pb_pairs[start : start + page_size]
        chunk.reverse()  # newest first
        last = start + page_size >= count
        pb = _PbRemoteLog(pair=chunk, tail=link, cas=cas if last else (), sealed=sealed)
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
                f"page holding seq {first_seq + start}.. size", len(data), limits.max_block
            )
        link = address_of(data)
        pages.append((link, data))
        blocks[link] = data
    return BuiltLog(
        head=pages[-1][0], pages=pages, blocks=blocks, n=n, first_page=first_page, tail=tail
    )
