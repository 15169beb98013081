"""The reader's sync plan: which blocks to fetch, in what order, and what to deliver (sans-I/O).

A :class:`SyncPlan` holds no socket and no clock. The caller asks it what to fetch, fetches however
it likes (in parallel, pipelined, from a local cache, from any replica), hands the bytes back, and
takes the messages that became deliverable::

    plan = SyncPlan(head=head_address, delivered_seq=s)
    while not plan.done:
        for address in plan.wants():              # may be several: fetch them in parallel
            plan.receive(address, fetch(address))  # on a failed fetch: plan.retry(address)
        for delivery in plan.ready():              # s+1, s+2, ... each exactly once
            deliver(delivery)

The algorithm, with ``s`` the last seq the reader delivered and ``N`` the head page's newest seq:

1. Fetch the head page (always: it is how the reader learns ``N``). ``N < s`` means the log was
   rewritten (:class:`LogRewritten`); ``N == s`` means nothing is new.
2. Walk: while the oldest pair of the newest-fetched page has ``seq > s + 1``, fetch its tail. Pages
   are inherently sequential, so at most one page is wanted at a time, and it always comes first in
   :meth:`SyncPlan.wants`. The walk stops at the page that holds ``s + 1``: no page but the head
   whose pairs are all ``<= s`` is fetched. Each tail page must end exactly where the page before it
   starts (its newest seq is the previous oldest minus one); :meth:`Page.decode` already guarantees
   that a page without a tail ends at seq 1, so a walk always ends at ``s + 1`` or fails.
3. Meanwhile, every pair with ``seq > s`` that is not embedded makes its message block wanted, oldest
   first, so the caller can fetch blocks in parallel with the walk. A message that occurs at several
   seqs (the same bytes, so the same address) is fetched once; an embedded copy satisfies a fetch;
   the empty message (whose block is ``b""``) is never fetched, its address says it all.
4. Delivery is in order: ``s + 1`` as soon as it is in, then each next one as soon as it and all
   earlier ones are in. Nothing can be delivered before the walk reaches ``s + 1``, which is why the
   plan can keep every payload it learned during the walk for duplicates without extra memory.

Every block is checked against the address it was asked for (:class:`HashMismatch`), every message
against its pair's MVDS id (:class:`MessageIdMismatch`), every page by :meth:`Page.decode`. A failed
:meth:`SyncPlan.receive` changes nothing, so the caller can try the same address on another replica.
An answer that comes after its address stopped being needed (a duplicate, or a block an embedded
copy already supplied) is ignored: :meth:`SyncPlan.receive` returns False.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from rlp2p.core.address import address_to_text, parse_address
from rlp2p.core.message import Message
from rlp2p.core.address import verify_checked_block
from rlp2p.core.page import EMPTY_ADDRESS, Page, Pair
from rlp2p.errors import AddressError, LimitExceeded, LogRewritten, MessageIdMismatch, PageError
from rlp2p.limits import DEFAULT_LIMITS, Limits


_EMPTY_MESSAGE = Message(b"", 0, b"")
#: characters of a body that Delivery's str shows
_PREVIEW = 60


def _text(address: bytes) -> str:
    try:
        return address_to_text(address)
    except AddressError:
        return address.hex() if isinstance(address, (bytes, bytearray)) else repr(address)[:80]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message the reader may hand to the application: verified, in log order."""

    seq: int
    message: Message
    #: the MVDS message id (H1)
    id: bytes
    #: the serialized vac.mvds.Message, as stored
    data: bytes

    def __str__(self) -> str:
        """``#seq id8 body``: the body as text (escaped, cut at 60 characters), or its size."""
        body = self.message.body
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            preview = f"<{len(body)} bytes>"
        else:
            # newlines and other control characters escaped: one delivery, one line
            preview = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: _PREVIEW + 1])
            if len(text) > _PREVIEW or len(preview) > _PREVIEW:
                preview = preview[: _PREVIEW - 1] + "\u2026"
        return f"#{self.seq} {self.id.hex()[:8]} {preview}"


@dataclass(slots=True)
class _Waiting:
    """A message block wanted for one or more seqs (the same bytes may occur more than once)."""

    local_hash: bytes
    seqs: list[int]


class SyncPlan:
    """What a reader that delivered seq 1..``delivered_seq`` must fetch to catch up to ``head``.

    ``head`` is the address of the newest page (None for an empty log). See the module docstring for
    the algorithm. The counters (:attr:`pages_fetched`, :attr:`blocks_fetched`,
    :attr:`bytes_received`) count what :meth:`receive` accepted.
    """

    def __init__(self, head: bytes | None, delivered_seq: int = 0, limits: Limits = DEFAULT_LIMITS) -> None:
        if isinstance(delivered_seq, bool) or not isinstance(delivered_seq, int) or delivered_seq < 0:
            raise ValueError(f"delivered_seq must be an int >= 0, got {delivered_seq!r}")
        if head is not None:
            parse_address(head)
        self._limits = limits
        self._head = head
        self._start = delivered_seq  # s: the walk stops at the page holding s + 1
        self._next = delivered_seq + 1  # next seq ready() hands out
        self._head_seq: int | None = None
        self._cas: tuple[bytes, ...] = ()
        # the walk: the one page wanted now, and the newest seq it must start with (None: the head)
        self._page_want: bytes | None = head
        self._page_expect: int | None = None
        # message blocks: wanted (by address), queued for wants() oldest first, handed out
        self._waiting: dict[bytes, _Waiting] = {}
        self._queue: list[tuple[int, bytes]] = []  # heap; stale entries are skipped
        self._queued: set[bytes] = set()
        self._in_flight: set[bytes] = set()
        # payloads learned while walking, for a later pair with the same bytes (nothing is
        # delivered before the walk ends, so these are held in _ready anyway)
        self._known: dict[bytes, tuple[Message, bytes, bytes]] = {}  # address -> message, id, data
        self._satisfied: set[bytes] = set()  # addresses no longer needed: late answers are ignored
        self._ready: dict[int, Delivery] = {}
        self.pages_fetched = 0
        self.blocks_fetched = 0
        self.bytes_received = 0
        if head is None:
            self._head_seq = 0
            if delivered_seq > 0:
                raise LogRewritten(
                    f"the log is empty but {delivered_seq} messages were delivered: the log was rewritten",
                    head_seq=0,
                    delivered_seq=delivered_seq,
                )

    # --- state ---------------------------------------------------------------------------------

    @property
    def head(self) -> bytes | None:
        return self._head

    @property
    def head_seq(self) -> int | None:
        """N, the newest seq of the log; None until the head page is in."""
        return self._head_seq

    @property
    def cas(self) -> tuple[bytes, ...]:
        """The head page's CAS hint (binary multiaddrs); empty until the head page is in."""
        return self._cas

    @property
    def delivered_seq(self) -> int:
        """The last seq :meth:`ready` handed out (what a reader records as its progress)."""
        return self._next - 1

    @property
    def walking(self) -> bool:
        """True until the pages back to the one holding ``delivered_seq + 1`` are all in."""
        return self._page_want is not None

    @property
    def done(self) -> bool:
        """True when every message up to :attr:`head_seq` has been handed out by :meth:`ready`."""
        return self._head_seq is not None and self._next > self._head_seq

    @property
    def in_flight(self) -> frozenset[bytes]:
        """Addresses handed out by :meth:`wants` and neither received nor given back yet."""
        return frozenset(self._in_flight)

    def needs(self, address: bytes) -> bool:
        """Whether :meth:`receive` would use ``address`` now (in flight or not)."""
        return address == self._page_want or address in self._waiting

    # --- driving -------------------------------------------------------------------------------

    def wants(self, limit: int | None = None) -> list[bytes]:
        """Addresses to fetch now, each handed out once: the next page first, then message blocks,
        oldest first. ``limit`` caps how many are handed out (the rest stay for the next call)."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        out: list[bytes] = []

        def room() -> bool:
            return limit is None or len(out) < limit

        page = self._page_want
        if page is not None and page not in self._in_flight and room():
            self._in_flight.add(page)
            out.append(page)
        while self._queue and room():
            _, address = heapq.heappop(self._queue)
            if address in self._queued:
                self._queued.remove(address)
                self._in_flight.add(address)
                out.append(address)
        return out

    def retry(self, address: bytes) -> None:
        """Give back an address whose fetch failed: :meth:`wants` hands it out again."""
        if address not in self._in_flight:
            raise ValueError(f"{_text(address)} is not in flight")
        self._in_flight.remove(address)
        waiting = self._waiting.get(address)
        if waiting is not None:
            self._enqueue(min(waiting.seqs), address)

    def receive(self, address: bytes, data: bytes) -> bool:
        """Take the bytes fetched for ``address``; True if used, False if no longer needed (a late
        or duplicate answer). Raises ValueError for an address this sync never needed, and the
        typed errors of a bad block; after any error the plan is unchanged."""
        if address == self._page_want:
            self._receive_page(address, data)
            return True
        if address in self._waiting:
            self._receive_block(address, data)
            return True
        if address in self._satisfied:
            return False
        raise ValueError(f"{_text(address)} is not part of this sync")

    def ready(self) -> list[Delivery]:
        """The messages that became deliverable, in order, each exactly once across calls."""
        out: list[Delivery] = []
        while (delivery := self._ready.pop(self._next, None)) is not None:
            out.append(delivery)
            self._next += 1
        return out

    # --- internals -----------------------------------------------------------------------------

    def _enqueue(self, seq: int, address: bytes) -> None:
        heapq.heappush(self._queue, (seq, address))
        self._queued.add(address)

    def _receive_page(self, address: bytes, data: bytes) -> None:
        # every check first: the state changes only once the page is known good
        limits, s = self._limits, self._start
        if len(data) > limits.max_block:
            raise LimitExceeded("page size", len(data), limits.max_block)
        verify_checked_block(address, data)  # addresses here are checked already
        page = Page.decode(data, limits)
        newest, oldest = page.newest_seq, page.oldest_seq
        if self._page_expect is None:
            if (newest or 0) < s:
                raise LogRewritten(
                    f"the log ends at seq {newest or 0} but {s} messages were delivered: "
                    "the log was rewritten",
                    head_seq=newest or 0,
                    delivered_seq=s,
                )
        elif newest != self._page_expect:
            raise PageError(
                f"broken chain: page {_text(address)} starts at seq {newest}, expected {self._page_expect}"
            )
        more = oldest is not None and oldest > s + 1  # Page.decode: then it has a tail
        if more and self.pages_fetched + 1 >= limits.max_pages_walk:
            raise LimitExceeded("pages walked", self.pages_fetched + 2, limits.max_pages_walk)
        self._check_local_hashes(page.pairs)

        if self._page_expect is None:
            self._head_seq = newest or 0
            self._cas = page.cas
        self.pages_fetched += 1
        self.bytes_received += len(data)
        self._in_flight.discard(address)
        self._satisfied.add(address)
        for pair in page.pairs:
            if pair.seq <= s:
                break  # pairs are newest first: the rest are delivered already
            self._add_pair(pair)
        if more:
            assert oldest is not None and page.tail is not None
            self._page_want, self._page_expect = page.tail, oldest - 1
        else:
            self._page_want = self._page_expect = None
            self._known.clear()  # the walk is over: no later pair can need these

    def _check_local_hashes(self, pairs: tuple[Pair, ...]) -> None:
        # the same remoteHash (the same bytes) must always come with the same localHash
        seen: dict[bytes, bytes] = {}
        for pair in pairs:
            if pair.seq <= self._start:
                break
            address = pair.remote_hash
            waiting, known = self._waiting.get(address), self._known.get(address)
            expected = seen.get(address) or (
                waiting.local_hash if waiting else known[1] if known else None
            )
            if expected is not None and expected != pair.local_hash:
                raise MessageIdMismatch(f"seq {pair.seq}: the same block under two different localHashes")
            seen[address] = pair.local_hash

    def _add_pair(self, pair: Pair) -> None:
        address, seq = pair.remote_hash, pair.seq
        if pair.data is not None:
            assert pair.message is not None  # Page.decode checked its id is local_hash
            self._learn(address, pair.message, pair.local_hash, pair.data, [seq])
        elif address == EMPTY_ADDRESS:
            self._learn(address, _EMPTY_MESSAGE, pair.local_hash, b"", [seq])  # the address says it all
        elif (known := self._known.get(address)) is not None:
            self._learn(address, *known, [seq])
        else:
            waiting = self._waiting.get(address)
            if waiting is None:
                self._waiting[address] = _Waiting(pair.local_hash, [seq])
            else:
                waiting.seqs.append(seq)
            if address not in self._in_flight:
                self._enqueue(seq, address)  # seq only gets older: this entry comes out first

    def _receive_block(self, address: bytes, data: bytes) -> None:
        limits = self._limits
        if len(data) > limits.max_message:
            raise LimitExceeded("message size", len(data), limits.max_message)
        verify_checked_block(address, data)  # addresses here are checked already
        message = Message.decode(data, limits)
        message_id = self._waiting[address].local_hash
        if message.id != message_id:
            raise MessageIdMismatch(f"block {_text(address)}: the message's id is not its pair's localHash")
        self.blocks_fetched += 1
        self.bytes_received += len(data)
        self._learn(address, message, message_id, data, [])

    def _learn(
        self, address: bytes, message: Message, message_id: bytes, data: bytes, seqs: list[int]
    ) -> None:
        """The payload at ``address`` is known (and checked against ``message_id``): every seq
        waiting on it becomes ready."""
        waiting = self._waiting.pop(address, None)
        if waiting is not None:
            seqs = seqs + waiting.seqs
        for seq in seqs:
            self._ready[seq] = Delivery(seq=seq, message=message, id=message_id, data=data)
        if self._page_want is not None:
            self._known[address] = (message, message_id, data)
        self._queued.discard(address)
        self._in_flight.discard(address)
        self._satisfied.add(address)
