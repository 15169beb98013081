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
3. Message blocks. Nothing can be delivered before the walk reaches ``s + 1``, so what the plan
   holds meanwhile decides its memory. The head page says how many messages are missing
   (``N - s``), and the plan picks one of two ways, both holding at most ``window`` messages (plus
   one page):

   - **direct** (``N - s <= window``): every pair with ``seq > s`` that is not embedded makes its
     message block wanted as soon as its page is in, oldest first, so blocks are fetched in
     parallel with the walk.
   - **replay** (``N - s > window``): the walk keeps only each page's address and newest seq
     (:data:`TRAIL_RECORD` bytes a page) and the last page decoded. Then the pages are wanted
     again, oldest first (the caller serves them from the cache it filled while walking: no second
     network fetch), each opened only while fewer than ``window`` messages are held, and their
     blocks are wanted as they open. A payload that occurs again more than a window later is
     fetched again.

   A message that occurs at several seqs among the messages held (the same bytes, so the same
   address) is fetched once; an embedded copy satisfies a fetch; the empty message (whose block
   is ``b""``) is never fetched, its address says it all.
4. Delivery is in order: ``s + 1`` as soon as it is in, then each next one as soon as it and all
   earlier ones are in.

Every block is checked against the address it was asked for (:class:`HashMismatch`), every message
against its pair's MVDS id (:class:`MessageIdMismatch`), every page by :meth:`Page.decode`, and a
page taken again must be the page walked (it is: its address is its hash). A failed
:meth:`SyncPlan.receive` changes nothing, so the caller can try the same address on another
replica. An answer that comes after its address stopped being needed (a duplicate, or a block an
embedded copy already supplied) is ignored: :meth:`SyncPlan.receive` returns False.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from rlp2p.core.address import ADDRESS_SIZE, address_to_text, parse_address, verify_checked_block
from rlp2p.core.message import Message
from rlp2p.core.page import EMPTY_ADDRESS, Page, Pair
from rlp2p.core.private import SEAL_VERSION, Keyring, Opened
from rlp2p.errors import (
    AddressError,
    CapabilityOutdated,
    CapabilityRequired,
    LimitExceeded,
    LogRewritten,
    MessageIdMismatch,
    PageError,
    WrongCapability,
)
from rlp2p.limits import DEFAULT_LIMITS, Limits


_EMPTY_MESSAGE = Message(b"", 0, b"")
#: characters of a body that Delivery's str shows
_PREVIEW = 60
#: messages a plan holds at most (plus one page) before it delivers them: see the module doc
DEFAULT_WINDOW = 2048
#: bytes a replaying walk keeps per page: its address and its newest seq
TRAIL_RECORD = ADDRESS_SIZE + 8


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

    ``head`` is the address of the newest page (None for an empty log); ``window`` bounds the
    messages held before delivery (see the module docstring). The counters count what
    :meth:`receive` accepted: :attr:`pages_fetched` the pages walked, :attr:`pages_reread` the
    pages taken again by a replay, :attr:`blocks_fetched` the message blocks, and
    :attr:`bytes_received` all of their bytes.
    """

    def __init__(
        self,
        head: bytes | None,
        delivered_seq: int = 0,
        limits: Limits = DEFAULT_LIMITS,
        *,
        window: int = DEFAULT_WINDOW,
        keyring: Keyring | None = None,
    ) -> None:
        if isinstance(delivered_seq, bool) or not isinstance(delivered_seq, int) or delivered_seq < 0:
            raise ValueError(f"delivered_seq must be an int >= 0, got {delivered_seq!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        if head is not None:
            parse_address(head)
        self._limits = limits
        self._window = window
        # a private log (rlp2p.core.private): blocks are sealed, localHash is the keyed id; the
        # first seq sealed under an epoch the keyring does not reach ends the sync there
        self._keyring = keyring
        self._sealed_from: int | None = None
        self._sealed_epoch = 0
        self._head = head
        self._start = delivered_seq  # s: the walk stops at the page holding s + 1
        self._next = delivered_seq + 1  # next seq ready() hands out
        self._head_seq: int | None = None
        self._cas: tuple[bytes, ...] = ()
        # the walk: the one page wanted now, and the newest seq it must start with (None: the head)
        self._page_want: bytes | None = head
        self._page_expect: int | None = None
        # replay (decided at the head page): the walked pages not opened yet, newest first, packed
        # as TRAIL_RECORD bytes each; the pages wanted again (address -> newest, oldest seq), a
        # heap of those not handed out, oldest first; the newest seq of the pages opened or wanted
        self._replay = False
        self._trail = bytearray()
        self._reopen: dict[bytes, tuple[int, int]] = {}
        self._reopen_queue: list[tuple[int, bytes]] = []
        self._opened_upto = delivered_seq
        # message blocks: wanted (by address), queued for wants() oldest first, handed out
        self._waiting: dict[bytes, _Waiting] = {}
        self._queue: list[tuple[int, bytes]] = []  # heap; stale entries are skipped
        self._queued: set[bytes] = set()
        self._in_flight: set[bytes] = set()
        # payloads of the messages held in _ready, for a later pair with the same bytes (no
        # memory of their own: the deliveries hold them); seq -> address, address -> how many
        self._known: dict[bytes, tuple[Message, bytes, bytes]] = {}  # address -> message, id, data
        self._ready_addr: dict[int, bytes] = {}
        self._refs: dict[bytes, int] = {}
        # addresses no longer needed, so a late answer is ignored; the newest few only (an
        # ordered set): late answers come within a batch of the fetch they answer
        self._satisfied: dict[bytes, None] = {}
        self._satisfied_cap = 2 * window + 64
        self._ready: dict[int, Delivery] = {}
        self.pages_fetched = 0
        self.pages_reread = 0
        # the oldest seq the walk has reached (None before the head page): for progress
        self._walked_to: int | None = None
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
    def replaying(self) -> bool:
        """True once the head page showed more missing messages than the window holds: walked
        pages are wanted again, oldest first (see the module docstring)."""
        return self._replay

    @property
    def progress(self) -> tuple[int, int]:
        """``(done, total)`` of this sync in steps a person can watch: each missing message counts
        once when the walk reaches its page and once when it is handed out, so the figure moves
        while the walk goes back from the head (before anything can be delivered) and after.
        ``(0, 0)`` until the head page is in."""
        if self._head_seq is None or self._walked_to is None:
            return (0, 0)
        missing = self._head_seq - self._start
        located = min(missing, self._head_seq - self._walked_to + 1)
        return (located + self.delivered_seq - self._start, 2 * missing)

    @property
    def held(self) -> int:
        """Messages the plan holds or has asked pages for, not handed out by :meth:`ready` yet
        (at most ``window`` plus one page once the walk is over)."""
        return max(0, self._opened_upto - self.delivered_seq)

    @property
    def done(self) -> bool:
        """True when every message up to :attr:`head_seq` has been handed out by :meth:`ready`
        (in a private log: up to the first one sealed beyond the keyring, see :meth:`outdated`)."""
        if self._head_seq is None:
            return False
        return self._next > self._head_seq or (self._sealed_from is not None and self._next >= self._sealed_from)

    def outdated(self) -> CapabilityOutdated | None:
        """In a private log, the typed signal for the messages sealed under a later epoch than
        the keyring reaches (the publisher rotated the key): None if there are none so far."""
        if self._sealed_from is None or self._keyring is None:
            return None
        return CapabilityOutdated(
            f"messages from seq {self._sealed_from} on are sealed under epoch {self._sealed_epoch}; "
            f"the capability reads epochs up to {self._keyring.epoch}",
            sealed_from=self._sealed_from,
            epoch=self._sealed_epoch,
            capability_epoch=self._keyring.epoch,
        )

    @property
    def in_flight(self) -> frozenset[bytes]:
        """Addresses handed out by :meth:`wants` and neither received nor given back yet."""
        return frozenset(self._in_flight)

    def needs(self, address: bytes) -> bool:
        """Whether :meth:`receive` would use ``address`` now (in flight or not)."""
        return self.is_page(address) or address in self._waiting

    def holds(self, address: bytes) -> bool:
        """Whether the payload at ``address`` waits in the plan for an older message: a fetched
        block a reader caches so that a sync cut off now does not fetch it again (the others
        are delivered)."""
        return address in self._refs

    def is_page(self, address: bytes) -> bool:
        """Whether ``address`` is wanted as a page (walked, or taken again): what a reader
        caches so that a replay or a resumed sync does not fetch it again."""
        return address == self._page_want or address in self._reopen

    # --- driving -------------------------------------------------------------------------------

    def wants(self, limit: int | None = None) -> list[bytes]:
        """Addresses to fetch now, each handed out once: the next page of the walk first, then
        pages taken again, then message blocks, oldest first. ``limit`` caps how many are handed
        out (the rest stay for the next call)."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        out: list[bytes] = []

        def room() -> bool:
            return limit is None or len(out) < limit

        page = self._page_want
        if page is not None and page not in self._in_flight and room():
            self._in_flight.add(page)
            out.append(page)
        self._open_more()
        while self._reopen_queue and room():
            _, address = heapq.heappop(self._reopen_queue)
            self._in_flight.add(address)
            out.append(address)
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
        reopen = self._reopen.get(address)
        if reopen is not None:
            heapq.heappush(self._reopen_queue, (reopen[0], address))
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
        if address in self._reopen:
            self._receive_reopened(address, data)
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
            address = self._ready_addr.pop(self._next)
            left = self._refs.pop(address) - 1
            if left:
                self._refs[address] = left
            else:
                del self._known[address]
            self._next += 1
        return out

    # --- internals -----------------------------------------------------------------------------

    def _enqueue(self, seq: int, address: bytes) -> None:
        heapq.heappush(self._queue, (seq, address))
        self._queued.add(address)

    def _satisfy(self, address: bytes) -> None:
        self._in_flight.discard(address)
        self._satisfied[address] = None
        if len(self._satisfied) > self._satisfied_cap:
            del self._satisfied[next(iter(self._satisfied))]

    def _decode_page(self, address: bytes, data: bytes) -> Page:
        limits = self._limits
        if len(data) > limits.max_block:
            raise LimitExceeded("page size", len(data), limits.max_block)
        verify_checked_block(address, data)  # addresses here are checked already
        page = Page.decode(data, limits)
        if page.sealed and self._keyring is None:
            raise CapabilityRequired("a private log: its messages are sealed, reading them takes its capability")
        if self._keyring is not None and page.sealed != SEAL_VERSION:
            if not page.sealed:
                raise WrongCapability("a capability for a log that is not private")
            raise PageError(f"seal version {page.sealed}; this reader knows {SEAL_VERSION}")
        return page

    def _receive_page(self, address: bytes, data: bytes) -> None:
        # every check first: the state changes only once the page is known good
        limits, s = self._limits, self._start
        page = self._decode_page(address, data)
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
            self._replay = self._head_seq - s > self._window
        self.pages_fetched += 1
        self.bytes_received += len(data)
        self._satisfy(address)
        if self._replay and more:
            assert newest is not None
            self._trail += address + newest.to_bytes(8, "big")  # opened later, oldest first
        else:
            self._open(page)
        if more:
            assert oldest is not None and page.tail is not None
            self._page_want, self._page_expect = page.tail, oldest - 1
        else:
            self._page_want = self._page_expect = None
        self._walked_to = s + 1 if not more or oldest is None else oldest

    def _open_more(self) -> None:
        """Replay: want the walked pages again, oldest first, while fewer than ``window``
        messages are held."""
        trail = self._trail
        while trail and self._page_want is None and self._opened_upto - self.delivered_seq < self._window:
            record = trail[-TRAIL_RECORD:]
            del trail[-TRAIL_RECORD:]
            address = bytes(record[:ADDRESS_SIZE])
            newest = int.from_bytes(record[ADDRESS_SIZE:], "big")
            self._reopen[address] = (newest, self._opened_upto + 1)
            heapq.heappush(self._reopen_queue, (newest, address))
            self._opened_upto = newest

    def _receive_reopened(self, address: bytes, data: bytes) -> None:
        newest, oldest = self._reopen[address]
        page = self._decode_page(address, data)
        if (page.newest_seq, page.oldest_seq) != (newest, oldest):  # its hash was checked: never
            raise PageError(f"page {_text(address)} holds seq {page.oldest_seq}..{page.newest_seq}, not {oldest}..{newest}")
        self._check_local_hashes(page.pairs)
        del self._reopen[address]
        self.pages_reread += 1
        self.bytes_received += len(data)
        self._satisfy(address)
        self._open(page)

    def _open(self, page: Page) -> None:
        """Hold the page's pairs newer than ``s``: their messages become wanted or ready."""
        if page.newest_seq is not None:
            self._opened_upto = max(self._opened_upto, page.newest_seq)
        for pair in page.pairs:
            if pair.seq <= self._start:
                break  # pairs are newest first: the rest are delivered already
            self._add_pair(pair)

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

    def _open_sealed(self, address: bytes, data: bytes, local_hash: bytes, seqs: list[int]) -> Opened | None:
        """Open a private log's block and check its keyed id; None (and the seqs noted) when it
        is sealed under a later epoch than the keyring reaches."""
        assert self._keyring is not None
        try:
            opened = self._keyring.open(data, self._limits)
        except CapabilityOutdated as exc:
            first = min(seqs)
            if self._sealed_from is None or first < self._sealed_from:
                self._sealed_from, self._sealed_epoch = first, exc.epoch
            return None
        if opened.keyed_id != local_hash:
            raise MessageIdMismatch(f"block {_text(address)}: the message's keyed id is not its pair's localHash")
        return opened

    def _add_pair(self, pair: Pair) -> None:
        address, seq = pair.remote_hash, pair.seq
        if pair.data is not None and self._keyring is not None:
            opened = self._open_sealed(address, pair.data, pair.local_hash, [seq])
            if opened is not None:
                self._learn(address, opened.message, pair.local_hash, opened.data, [seq])
        elif pair.data is not None:
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
                self._enqueue(seq, address)  # the oldest entry of an address comes out first

    def _receive_block(self, address: bytes, data: bytes) -> None:
        limits = self._limits
        if len(data) > limits.max_message:
            raise LimitExceeded("message size", len(data), limits.max_message)
        verify_checked_block(address, data)  # addresses here are checked already
        message_id = self._waiting[address].local_hash
        if self._keyring is not None:
            opened = self._open_sealed(address, data, message_id, self._waiting[address].seqs)
            if opened is None:  # the seqs were noted: nothing more is wanted of it
                del self._waiting[address]
                self._queued.discard(address)
                self._satisfy(address)
                return
            self.blocks_fetched += 1
            self.bytes_received += len(data)
            self._learn(address, opened.message, message_id, opened.data, [])
            return
        message = Message.decode(data, limits)
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
        # a private log's pairs carry the keyed id; the application gets the MVDS id, H1
        delivery_id = message.id if self._keyring is not None else message_id
        for seq in seqs:
            self._ready[seq] = Delivery(seq=seq, message=message, id=delivery_id, data=data)
            self._ready_addr[seq] = address
        self._refs[address] = self._refs.get(address, 0) + len(seqs)
        self._known[address] = (message, message_id, data)
        self._queued.discard(address)
        self._satisfy(address)
