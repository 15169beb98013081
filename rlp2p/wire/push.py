"""``/rlp2p/push/1.0.0``: a storage peer pushes the records it accepts to a reader that asked.

The phone-friendly way to follow (``Reader.follow(..., mesh=False)``): instead of joining the
gossipsub mesh of every log it follows (heartbeats, gossip and relaying for others), the reader
keeps one stream open to one of its storage peers and is told of each newer record there.

* reader -> storage peer, once: one frame, the log names (``\\n``-separated UTF-8, at most
  ``MAX_PUSH_NAMES``, each a valid log name);
* storage peer -> reader, any number: one frame per record accepted for one of those logs,
  ``name \\0 record`` (the serialized IPNS record, unchanged); first, the record it holds of each
  log asked for, so a record accepted between the reader's last sync and the stream's opening is
  not missed (a reader drops a record no newer than its own).

``/rlp2p/push/1.1.0`` is the same, and each record frame is followed by a messages frame: the
messages embedded in the record's head page that this stream has not carried yet (the newest
one only, the first time), as ``varint seq, varint length, message`` each, at most
``MAX_PUSH_MESSAGES`` and ``PUSH_MESSAGES_BYTES`` (fewer, or none, when they do not fit or the
peer lacks the page). A follower that holds the previous head page rebuilds the new one from
them (rlp2p/core/rebuild.py) and checks it against the record's CID: no fetch at all. Nothing in
it is trusted: a rebuilt page that does not hash to the record's head is dropped. A reader opens
1.1 and falls back to 1.0 (a peer that speaks only that).

``/rlp2p/push/1.2.0`` is 1.1 with records in compact form (rlp2p/core/compact.py): each record
frame is a ``CompactPush`` (proto/vac/compact.proto) naming the log by its index in the names
frame (after dropping repeated names) instead of its 52-byte name, and carrying the whole record
the first time a log's record goes down the stream, then a ``CompactRecord`` relative to the
record pushed before on the stream: without Value when the follower can rebuild the new head page
from the previous one and the messages beside it (the storage peer checks it with
:func:`rebuild_head` on the previous head page it holds), else with Value; the whole record
when it does not compact (V1 fields, a pubKey). 221 B become 77 B (144 with Value). The follower
expands it against the record it holds and verifies it like any record: without Value it tries
the head pages the previous page and the messages may make (at most 4) and keeps the one whose
CID the signature covers. It gets the previous page from ``pages`` (the follower's: the page it
rebuilt last for the log, kept in memory, else from its store); when it has none, it syncs the
log instead (the record is not trusted, only a reason to sync). A record that cannot be verified although the follower had
the page it was built on is forged: the stream ends. A reader opens 1.2, then 1.1, then 1.0.

The reader verifies each record exactly as it verifies a gossiped announcement or a fetched
record; a bad one ends the stream (the peer is hostile). A slow reader loses pushes (the queue
per stream is ``PUSH_QUEUE``), never memory: its safety-net poll catches up.
"""

from __future__ import annotations

from typing import Any

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import trio
from libp2p.custom_types import TProtocol

from google.protobuf.message import DecodeError as _PbDecodeError

from rlp2p.core.address import address_of
from rlp2p.core.announce import log_topic, topic_log
from rlp2p.core.compact import compact_record, expand_record
from rlp2p.core.page import Page
from rlp2p.core.rebuild import rebuild_candidates, rebuild_head
from rlp2p.core.record import RecordInfo, verify_record
from rlp2p.errors import DecodeError, InvalidRecord, LimitExceeded, ProtocolError, Rlp2pError
from rlp2p.pb.vac.compact_pb2 import CompactPush
from rlp2p.limits import Limits
from rlp2p.wire.framing import FramedStream, encode_frame, uvarint

log = logging.getLogger(__name__)

PUSH_PROTOCOL = TProtocol("/rlp2p/push/1.0.0")
#: 1.0.0 with each record's new embedded messages beside it
PUSH_MESSAGES_PROTOCOL = TProtocol("/rlp2p/push/1.1.0")
#: 1.1.0 with compact records
PUSH_COMPACT_PROTOCOL = TProtocol("/rlp2p/push/1.2.0")
#: head pages a storage peer keeps at hand for its push streams (the newest and the one before)
PUSH_PAGES = 4
#: answers of "can a follower rebuild this head" a storage peer keeps (one per record and
#: messages pushed, shared by its streams)
PUSH_REBUILDS = 16
#: logs whose last pushed record a storage peer keeps to prepare the next one against (past it,
#: the streams of a log quiet the longest compact its next record themselves)
PUSH_NEWEST = 1024
#: bytes a 1.2 record frame adds to a record at most (the log's index and protobuf tags)
COMPACT_PUSH_OVERHEAD = 16
#: messages one messages frame carries at most, and its bytes at most
MAX_PUSH_MESSAGES = 16
PUSH_MESSAGES_BYTES = 64 * 1024
#: logs one push stream may ask for
MAX_PUSH_NAMES = 1024
#: records waiting to be written to one push stream; past it they are dropped
PUSH_QUEUE = 16
#: push streams one storage peer serves at once
MAX_PUSH_STREAMS = 256
#: logs whose held record a new push stream is sent first (a bound on the store reads one
#: stream costs; a follower of more logs through one stream catches up by its syncs)
HELD_ON_OPEN = 64
#: seconds a storage peer waits for the names frame
HELLO_TIMEOUT = 10.0
#: blocks stored last that a storage peer keeps in memory while someone follows by push, and the
#: largest kept: a record's head page arrives just before the record, and is pushed from here
RECENT_BLOCKS, RECENT_BLOCK_BYTES = 8, PUSH_MESSAGES_BYTES
#: seconds other work of a storage peer (a forward to the other replicas) waits, at most, for
#: the records queued to push streams to be written first (see PushServer.written)
PUSH_FIRST = 0.05


def encode_names(names: list[str]) -> bytes:
    if not 0 < len(names) <= MAX_PUSH_NAMES:
        raise ValueError(f"ask for 1 to {MAX_PUSH_NAMES} logs")
    return "\n".join(names).encode()


def decode_names(frame: bytes, limits: Limits) -> list[str]:
    """The log names of a names frame; :class:`DecodeError` for anything else."""
    try:
        text = frame.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError("push names are not UTF-8") from exc
    names = text.split("\n")
    if len(names) > MAX_PUSH_NAMES:
        raise DecodeError(f"push asks for {len(names)} logs, over {MAX_PUSH_NAMES}")
    return list(dict.fromkeys(topic_log(log_topic(name), limits=limits) for name in names))


def names_frame_limit(limits: Limits) -> int:
    return MAX_PUSH_NAMES * (limits.max_name + 1)


def encode_push(info: RecordInfo) -> bytes:
    return info.name.encode() + b"\0" + info.raw


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(at, min(at + 10, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    raise DecodeError("a push messages frame has a bad varint")


def encode_messages(messages: list[tuple[int, bytes]]) -> bytes:
    return b"".join(uvarint(seq) + uvarint(len(data)) + data for seq, data in messages)


def decode_messages(frame: bytes, limits: Limits) -> list[tuple[int, bytes]]:
    """``(seq, message)`` of a messages frame, checked against the limits (not the messages:
    they count only inside a page that hashes to a signed head)."""
    if len(frame) > PUSH_MESSAGES_BYTES:
        raise LimitExceeded("push messages frame", len(frame), PUSH_MESSAGES_BYTES)
    out: list[tuple[int, bytes]] = []
    at = 0
    while at < len(frame):
        if len(out) >= MAX_PUSH_MESSAGES:
            raise LimitExceeded("pushed messages", len(out) + 1, MAX_PUSH_MESSAGES)
        seq, at = _read_varint(frame, at)
        size, at = _read_varint(frame, at)
        if seq < 1 or size > limits.max_message or at + size > len(frame):
            raise DecodeError("a push messages frame has a bad entry")
        out.append((seq, frame[at : at + size]))
        at += size
    return out


def embedded_messages(page: bytes, limits: Limits) -> tuple[list[tuple[int, bytes]], int]:
    """A head ``page``'s newest embedded messages ``(seq, message)``, newest first (at most
    ``MAX_PUSH_MESSAGES``, up to the first pair without its message), and its newest seq (0:
    none, or not a head page)."""
    try:
        decoded = Page.decode(page, limits, start=None)
    except Rlp2pError:
        return [], 0
    if not decoded.pairs or decoded.sealed:
        return [], 0
    embedded = []
    for pair in decoded.pairs[:MAX_PUSH_MESSAGES]:
        if pair.data is None:
            break
        embedded.append((pair.seq, pair.data))
    return embedded, decoded.pairs[0].seq


def pick_messages(embedded: list[tuple[int, bytes]], newest: int, after: int | None) -> list[tuple[int, bytes]]:
    """Of ``embedded`` (newest first, see :func:`embedded_messages`), those newer than seq
    ``after`` (None: the newest only) that fit a messages frame, oldest first."""
    floor = newest - 1 if after is None else after
    picked: list[tuple[int, bytes]] = []
    size = 0
    for seq, data in embedded:
        if seq <= floor:
            break
        size += len(data) + 20
        if size > PUSH_MESSAGES_BYTES:
            break
        picked.append((seq, data))
    return picked[::-1]


def decode_push(frame: bytes, names: set[str], *, now: Any, limits: Limits) -> RecordInfo:
    """A verified record from a push frame, for one of ``names``; :class:`DecodeError` or
    :class:`RecordError` otherwise."""
    name_bytes, sep, raw = frame.partition(b"\0")
    if not sep:
        raise DecodeError("push frame without a name")
    name = name_bytes.decode(errors="replace")
    if name not in names:
        raise DecodeError(f"pushed a record of a log not asked for: {name[:80]!r}")
    return verify_record(name, raw, now=now, limits=limits)


#: the serialized record a storage peer holds for a log, or None
Held = Callable[[str], Awaitable[bytes | None]]
#: a block a storage peer holds, or None
Block = Callable[[bytes], Awaitable[bytes | None]]


def _trim(cache: dict[Any, Any], most: int) -> None:
    """Drop the oldest entries (insertion order) of ``cache`` past ``most``."""
    while len(cache) > most:
        del cache[next(iter(cache))]


class PushServer:
    """A storage peer's side: who asked for which log, and a queue per stream."""

    def __init__(self, limits: Limits, held: Held | None = None, block: Block | None = None) -> None:
        self.limits = limits
        self.held = held
        self.block = block
        # the newest head pages pushed: every stream of a log reads them, once
        self._pages: dict[bytes, bytes] = {}
        # their embedded messages (embedded_messages), decoded once for every stream
        self._embedded: dict[bytes, tuple[list[tuple[int, bytes]], int]] = {}
        self._rebuilds: dict[tuple[bytes, bytes, tuple[int, ...]], bool] = {}
        # compact records made (compact_record): (previous, record, without Value) -> bytes
        self._compacts: dict[tuple[bytes, bytes, bool], bytes | None] = {}
        # the record pushed last per log watched: what the next one is compacted against
        self._newest: dict[str, RecordInfo] = {}
        self._watchers: dict[str, set[trio.MemorySendChannel[RecordInfo]]] = {}
        # the newest blocks stored (insertion order: oldest first), while anyone watches
        self._recent: dict[bytes, bytes] = {}
        # per stream (its send channel's id): records queued and not written yet
        self._backlog: dict[int, int] = {}
        self._drained = trio.Event()
        self._drained.set()
        self.streams = 0
        self.dropped = 0

    def push(self, info: RecordInfo) -> None:
        """Hand ``info`` to every stream that asked for its log (never blocks)."""
        if info.name in self._watchers:
            self._newest.pop(info.name, None)
            self._newest[info.name] = info
            _trim(self._newest, PUSH_NEWEST)  # (the oldest first: a log quiet since)
        for send in list(self._watchers.get(info.name, ())):
            try:
                send.send_nowait(info)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self.dropped += 1
            else:
                self._backlog[id(send)] = self._backlog.get(id(send), 0) + 1
        self._update_drained()

    def _wrote(self, key: int, ended: bool = False) -> None:
        if ended:
            self._backlog.pop(key, None)
        elif self._backlog.get(key, 0) > 0:
            self._backlog[key] -= 1
        self._update_drained()

    def _update_drained(self) -> None:
        # a stream still writing an older record is slow (or a reader that does not read):
        # nothing waits for it, so it costs the storage peer's other work at most one
        # PUSH_FIRST, not one per record (O(streams), at most MAX_PUSH_STREAMS)
        if all(queued != 1 for queued in self._backlog.values()):
            self._drained.set()
        elif self._drained.is_set():
            self._drained = trio.Event()

    async def written(self) -> None:
        """Until the streams that were keeping up have written the record just queued (at most
        ``PUSH_FIRST`` seconds): a storage peer's other work on a new record (the forward to the
        other replicas) waits for it, so a follower's push is not queued behind that work's CPU."""
        with trio.move_on_after(PUSH_FIRST):
            await self._drained.wait()

    def saw_blocks(self, items: list[tuple[bytes, bytes]]) -> None:
        """Blocks just stored: keep the newest small ones (a head page whose record comes next)."""
        if not self._watchers:
            self._recent.clear()
            return
        for address, data in items:
            if len(data) <= RECENT_BLOCK_BYTES:
                self._recent.pop(address, None)
                self._recent[address] = data
        _trim(self._recent, RECENT_BLOCKS)

    def watching(self, name: str) -> int:
        return len(self._watchers.get(name, ()))

    async def handle_messages(self, stream: Any) -> None:
        """``/rlp2p/push/1.1.0``: records with their new embedded messages."""
        await self.handle(stream, messages=True)

    async def handle_compact(self, stream: Any) -> None:
        """``/rlp2p/push/1.2.0``: 1.1 with compact records."""
        await self.handle(stream, messages=True, compact=True)

    async def _page(self, head: bytes) -> bytes | None:
        page = self._pages.get(head)
        if page is None:
            # the blocks just stored first (a record's head page arrives just before it)
            page = self._recent.get(head)
            if page is None and self.block is not None:
                page = await self.block(head)
            if page is not None:
                self._pages[head] = page
                _trim(self._pages, PUSH_PAGES)
        return page

    async def prepare(self, info: RecordInfo) -> None:
        """Work out what the push streams will write for ``info``, a record about to be stored
        (the storage peer runs this while the store commits it): its head page's messages, and
        whether and how it is compacted against the record pushed last. The streams take these
        from memory once the record is pushed, so a follower's push waits for no CPU but the
        write's. Only for a log someone watches; nothing here is a decision (each stream checks
        its own state against these, and works out anything else itself)."""
        previous = self._newest.get(info.name)
        if not self.watching(info.name) or previous is None or previous.sequence >= info.sequence:
            return
        embedded = await self._embedded_of(info.head)
        if embedded is None:
            return
        before = await self._embedded_of(previous.head)
        # a stream that pushed the previous record carried its page's messages up to its newest
        picked = pick_messages(*embedded, before[1] if before is not None and before[1] else None)
        bare = await self._rebuildable(previous, info, picked)
        self._compact(previous, info, bare)

    async def _embedded_of(self, head: bytes) -> tuple[list[tuple[int, bytes]], int] | None:
        known = self._embedded.get(head)
        if known is None:
            page = await self._page(head)
            if page is None:
                return None
            known = self._embedded[head] = embedded_messages(page, self.limits)
            _trim(self._embedded, PUSH_PAGES)
        return known

    async def _messages(self, info: RecordInfo, sent: dict[str, int]) -> tuple[bytes, list[tuple[int, bytes]]]:
        embedded = await self._embedded_of(info.head)
        if embedded is None:
            return encode_frame(b""), []
        picked, newest = pick_messages(*embedded, sent.get(info.name)), embedded[1]
        if newest:
            sent[info.name] = max(newest, sent.get(info.name, 0))
        return encode_frame(encode_messages(picked)), picked

    def _compact(self, previous: RecordInfo, info: RecordInfo, bare: bool) -> bytes | None:
        key = (previous.raw, info.raw, bare)
        if key not in self._compacts:
            self._compacts[key] = compact_record(previous.raw, info.raw, with_value=not bare)
            _trim(self._compacts, PUSH_REBUILDS)
        return self._compacts[key]

    async def _rebuildable(self, previous: RecordInfo, info: RecordInfo, picked: list[tuple[int, bytes]]) -> bool:
        """Whether a follower holding ``previous``'s head page rebuilds ``info``'s from ``picked``."""
        key = (previous.head, info.head, tuple(seq for seq, _ in picked))
        known = self._rebuilds.get(key)
        if known is None:
            page = await self._page(previous.head) if picked else None
            known = page is not None and rebuild_head(page, picked, info.head, self.limits) is not None
            self._rebuilds[key] = known
            _trim(self._rebuilds, PUSH_REBUILDS)
        return known

    async def _record_frame(
        self, index: int, info: RecordInfo, previous: RecordInfo | None, picked: list[tuple[int, bytes]]
    ) -> bytes:
        """A 1.2 record frame: compact relative to ``previous`` (pushed before on this stream) when
        it expands back exactly, else the whole record."""
        push = CompactPush(log=index)
        compact = None
        if previous is not None and previous.sequence < info.sequence:
            bare = await self._rebuildable(previous, info, picked)
            compact = self._compact(previous, info, bare)
        if compact is not None:
            push.compact.MergeFromString(compact)
        else:
            push.whole = info.raw
        return encode_frame(push.SerializeToString())

    async def handle(self, stream: Any, *, messages: bool = False, compact: bool = False) -> None:
        if self.streams >= MAX_PUSH_STREAMS:
            await _reset(stream)
            return
        self.streams += 1
        send, receive = trio.open_memory_channel[RecordInfo](PUSH_QUEUE)
        names: list[str] = []
        try:
            framed = FramedStream(stream, names_frame_limit(self.limits))
            with trio.move_on_after(HELLO_TIMEOUT):
                frame = await framed.read_frame()
                names = decode_names(frame, self.limits) if frame is not None else []
            if not names:
                return
            for name in names:
                self._watchers.setdefault(name, set()).add(send)
            async with trio.open_nursery() as nursery:

                async def until_closed() -> None:
                    await framed.read_frame()  # the reader sends nothing more: an end or an error
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_closed)
                empty = encode_frame(b"") if messages else b""
                index = {name: i for i, name in enumerate(names)}
                # 1.2: the record pushed last on this stream, per log (at most the names asked)
                last: dict[str, RecordInfo] = {}
                if self.held is not None:
                    for name in names[:HELD_ON_OPEN]:
                        raw = await self.held(name)
                        if raw is None:
                            continue
                        if compact:
                            try:  # verified already; kept to compact the next record against
                                last[name] = verify_record(name, raw, limits=self.limits, allow_expired=True)
                            except Rlp2pError:
                                continue
                            frame = encode_frame(CompactPush(log=index[name], whole=raw).SerializeToString())
                        else:
                            frame = encode_frame(name.encode() + b"\0" + raw)
                        await stream.write(frame + empty)
                # newest seq whose message this stream carried, per log (at most the names asked)
                sent: dict[str, int] = {}
                async for info in receive:
                    extra, picked = await self._messages(info, sent) if messages else (b"", [])
                    if compact:
                        record = await self._record_frame(index[info.name], info, last.get(info.name), picked)
                        last[info.name] = info
                    else:
                        record = encode_frame(encode_push(info))
                    await stream.write(record + extra)
                    self._wrote(id(send))
        except (DecodeError, ProtocolError) as exc:
            log.info("refused a push stream: %s", exc)
        except Exception as exc:  # the reader went away mid-write: nothing to keep
            log.debug("push stream ended: %r", exc)
        finally:
            self.streams -= 1
            for name in names:
                watchers = self._watchers.get(name)
                if watchers is not None:
                    watchers.discard(send)
                    if not watchers:
                        del self._watchers[name]
                        self._newest.pop(name, None)
            send.close()
            self._wrote(id(send), ended=True)
            await _reset(stream)


@dataclass(frozen=True)
class Pushed:
    """A verified record, the messages pushed beside it (not verified: see rebuild), and the
    bytes its frames took. Over 1.2, ``page`` is the new head page when the record came without
    Value and was verified against it; ``info`` is None when it could not be expanded (the
    follower lacks the previous head page): a reason to sync ``name``, nothing more."""

    info: RecordInfo | None
    messages: list[tuple[int, bytes]]
    size: int
    name: str = ""
    page: bytes | None = None


#: a follower's previous head pages for a log: ``(name, head CID)`` -> the page with that CID if
#: held, then any other it holds as the log's head
Pages = Callable[[str, bytes], Awaitable[list[bytes]]]


class _Expander:
    """A follower's side of 1.2: the record of each log pushed last on the stream (the previous
    head pages come from ``pages``: the follower keeps those it rebuilt in memory)."""

    def __init__(self, names: list[str], pages: Pages | None, clock: Callable[[], Any], limits: Limits) -> None:
        self.names = names
        self.pages = pages
        self.clock = clock
        self.limits = limits
        self.last: dict[str, RecordInfo] = {}
        # logs whose last record could not be expanded: the storage peer's previous record is
        # not ours, so a failure to expand the next one proves nothing against it
        self.lost: set[str] = set()

    async def record(
        self, frame: bytes, messages: list[tuple[int, bytes]]
    ) -> tuple[str, RecordInfo | None, bytes | None]:
        try:
            push = CompactPush.FromString(frame)
        except _PbDecodeError as exc:
            raise DecodeError(f"not a push record frame: {exc}") from exc
        if push.log >= len(self.names):
            raise DecodeError(f"pushed a record of log {push.log}, of {len(self.names)} asked for")
        name = self.names[push.log]
        kind = push.WhichOneof("record")
        page = None
        if kind == "whole":
            info: RecordInfo | None = verify_record(name, push.whole, now=self.clock(), limits=self.limits)
        elif kind == "compact":
            previous = self.last.get(name)
            if previous is None:
                raise DecodeError("a compact record before any whole one of its log")
            compact = push.compact.SerializeToString()
            if push.compact.value:
                info = verify_record(name, expand_record(previous.raw, compact, limits=self.limits), now=self.clock(), limits=self.limits)
            else:
                info, page = await self._by_page(name, previous, compact, messages)
        else:
            raise DecodeError("a push record frame without a record")
        if info is None:
            self.lost.add(name)
        else:
            self.lost.discard(name)
            self.last[name] = info
        return name, info, page

    async def _by_page(
        self, name: str, previous: RecordInfo, compact: bytes, messages: list[tuple[int, bytes]]
    ) -> tuple[RecordInfo | None, bytes | None]:
        """The record whose head is one of the pages rebuilt from the previous head page, and it."""
        pages = await self.pages(name, previous.head) if self.pages is not None else []
        exact = bool(pages) and address_of(pages[0]) == previous.head and name not in self.lost
        now = self.clock()
        for base in pages:
            for page in rebuild_candidates(base, messages, self.limits):
                raw = expand_record(previous.raw, compact, address_of(page), limits=self.limits)
                try:
                    return verify_record(name, raw, now=now, limits=self.limits), page
                except InvalidRecord:
                    continue
        if exact:  # the storage peer rebuilt it from this very page, it says: it lies
            raise InvalidRecord(f"a compact record of {name} pushed without Value matches no head page")
        return None, None


async def pushed_records(
    open_stream: Callable[[str], Any],
    names: list[str],
    *,
    clock: Callable[[], Any],
    limits: Limits,
    pages: Pages | None = None,
) -> AsyncIterator[Pushed]:
    """A reader's side: ask for ``names`` (over 1.2, else 1.1, else 1.0:
    ``open_stream(protocol)``), then yield each verified record pushed with the messages beside
    it (none over 1.0), until the stream ends. A bad frame raises (:class:`DecodeError`,
    :class:`RecordError`, ProtocolError). ``pages`` gives 1.2 the previous head pages the
    follower holds (without it, a record pushed without Value is a reason to sync, no more)."""
    names = list(dict.fromkeys(names))  # the storage peer numbers them so
    stream = None
    older = 0  # 0: 1.2, 1: 1.1, 2: 1.0
    for protocol in (PUSH_COMPACT_PROTOCOL, PUSH_MESSAGES_PROTOCOL, PUSH_PROTOCOL):
        try:
            stream = await open_stream(protocol)
            break
        except Exception:  # an older peer (or none: then the last one raises)
            if protocol is PUSH_PROTOCOL:
                raise
            older += 1
    compact, messages = older == 0, older < 2
    try:
        record_limit = limits.max_record + (COMPACT_PUSH_OVERHEAD if compact else limits.max_name + 1)
        framed = FramedStream(stream, max(record_limit, PUSH_MESSAGES_BYTES) if messages else record_limit)
        await framed.write_frame(encode_names(names))
        wanted = set(names)
        expander = _Expander(names, pages, clock, limits)
        while (frame := await framed.read_frame()) is not None:
            if len(frame) > record_limit:
                raise LimitExceeded("push record frame", len(frame), record_limit)
            pushed: list[tuple[int, bytes]] = []
            size = len(encode_frame(frame))
            if messages:
                extra = await framed.read_frame()
                if extra is None:
                    break
                pushed = decode_messages(extra, limits)
                size += len(encode_frame(extra))
            if compact:
                name, info, page = await expander.record(frame, pushed)
                yield Pushed(info, pushed, size, name, page)
            else:
                info = decode_push(frame, wanted, now=clock(), limits=limits)
                yield Pushed(info, pushed, size, info.name)
    finally:
        with trio.CancelScope(shield=True):
            await _reset(stream)


async def _reset(stream: Any) -> None:
    try:
        await stream.reset()
    except Exception:
        log.debug("resetting a push stream failed", exc_info=True)


__all__ = [
    "MAX_PUSH_MESSAGES",
    "MAX_PUSH_NAMES",
    "PUSH_COMPACT_PROTOCOL",
    "PUSH_MESSAGES_PROTOCOL",
    "PUSH_PROTOCOL",
    "Pushed",
    "decode_messages",
    "encode_messages",
    "embedded_messages",
    "pick_messages",
    "PushServer",
    "decode_names",
    "decode_push",
    "encode_names",
    "encode_push",
    "pushed_records",
]
