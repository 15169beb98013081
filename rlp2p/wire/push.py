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

The reader verifies each record exactly as it verifies a gossiped announcement or a fetched
record; a bad one ends the stream (the peer is hostile). A slow reader loses pushes (the queue
per stream is ``PUSH_QUEUE``), never memory: its safety-net poll catches up.
"""

from __future__ import annotations

from typing import Any

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import trio
from libp2p.custom_types import TProtocol

from rlp2p.core.announce import log_topic, topic_log
from rlp2p.core.record import RecordInfo, verify_record
from rlp2p.errors import DecodeError, ProtocolError
from rlp2p.limits import Limits
from rlp2p.wire.framing import FramedStream, encode_frame

log = logging.getLogger(__name__)

PUSH_PROTOCOL = TProtocol("/rlp2p/push/1.0.0")
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


class PushServer:
    """A storage peer's side: who asked for which log, and a queue per stream."""

    def __init__(self, limits: Limits, held: Held | None = None) -> None:
        self.limits = limits
        self.held = held
        self._watchers: dict[str, set[trio.MemorySendChannel[RecordInfo]]] = {}
        self.streams = 0
        self.dropped = 0

    def push(self, info: RecordInfo) -> None:
        """Hand ``info`` to every stream that asked for its log (never blocks)."""
        for send in list(self._watchers.get(info.name, ())):
            try:
                send.send_nowait(info)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self.dropped += 1

    def watching(self, name: str) -> int:
        return len(self._watchers.get(name, ()))

    async def handle(self, stream: Any) -> None:
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
                if self.held is not None:
                    for name in names[:HELD_ON_OPEN]:
                        raw = await self.held(name)
                        if raw is not None:
                            await stream.write(encode_frame(name.encode() + b"\0" + raw))
                async for info in receive:
                    await stream.write(encode_frame(encode_push(info)))
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
            send.close()
            await _reset(stream)


async def pushed_records(
    open_stream: Callable[[], Any], names: list[str], *, clock: Callable[[], Any], limits: Limits
) -> AsyncIterator[RecordInfo]:
    """A reader's side: ask for ``names``, then yield each verified record pushed, until the
    stream ends. A bad frame raises (:class:`DecodeError`, :class:`RecordError`, ProtocolError)."""
    stream = await open_stream()
    try:
        framed = FramedStream(stream, limits.max_record + limits.max_name + 1)
        await framed.write_frame(encode_names(names))
        wanted = set(names)
        while (frame := await framed.read_frame()) is not None:
            yield decode_push(frame, wanted, now=clock(), limits=limits)
    finally:
        with trio.CancelScope(shield=True):
            await _reset(stream)


async def _reset(stream: Any) -> None:
    try:
        await stream.reset()
    except Exception:
        log.debug("resetting a push stream failed", exc_info=True)


__all__ = [
    "MAX_PUSH_NAMES",
    "PUSH_PROTOCOL",
    "PushServer",
    "decode_names",
    "decode_push",
    "encode_names",
    "encode_push",
    "pushed_records",
]
