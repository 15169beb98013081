"""Length-prefixed frames, as kad-dht and identify frame their protobufs.

Each frame is an unsigned-varint length followed by that many bytes. :class:`FrameDecoder` is
sans-I/O: feed it bytes, take whole frames out; it refuses an oversize length as soon as the
prefix is complete, before buffering the body. :class:`FramedStream` runs it over a libp2p stream
with our own read loop, because py-libp2p's ``read_varint_prefixed_bytes`` gives up on large
messages (see docs/upstream.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from libp2p.io.exceptions import IOException
from libp2p.utils.varint import decode_uvarint, encode_uvarint

from rlp2p.errors import FrameTooLarge, ProtocolError, StreamClosed

#: a uint64 varint is at most 10 bytes
MAX_VARINT_BYTES = 10
#: least and most we ask the stream for at once; reads return what is there, up to that, and
#: bytes past the current frame stay buffered for the next one (pipelined answers)
READ_CHUNK = 64 * 1024
MAX_READ = 1024 * 1024


#: the varints of 0..16383 (one or two bytes), precomputed: a bulk Get of 4 KiB blocks prefixes
#: every answer, and libp2p's encode_uvarint costs a few microseconds a call
_SMALL_VARINTS = [encode_uvarint(n) for n in range(1 << 14)]


def uvarint(value: int) -> bytes:
    """``value`` as an unsigned varint (libp2p's ``encode_uvarint``, from a table when small)."""
    return _SMALL_VARINTS[value] if 0 <= value < 16384 else encode_uvarint(value)


def encode_frame(payload: bytes) -> bytes:
    return uvarint(len(payload)) + payload


#: frames up to this size are joined into one write (a yamux write costs more than a copy); a
#: larger one is written after its prefix, without copying it again
COALESCE = 1024 * 1024


class FrameDecoder:
    """Splits a byte stream into frames of at most ``max_frame`` bytes."""

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        # where the frame being read starts in _buffer: frames taken out only move it, and the
        # bytes before it are dropped at the next feed (one move per read, not one per frame)
        self._pos = 0
        self._expected: int | None = None  # body length of the frame being read
        self._prefix_len = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._pos

    def declared(self) -> int | None:
        """The body length the frame being read declares, once its prefix is parsed."""
        self._parse_prefix()
        return self._expected

    def wanted(self) -> int:
        """How many more bytes the current frame needs (at least 1 while incomplete)."""
        if self._expected is None:
            return 1
        return max(1, self._prefix_len + self._expected - self.buffered)

    def feed(self, data: bytes) -> None:
        if self._pos == len(self._buffer):  # a fresh frame: refuse an oversize prefix before buffering more
            self._buffer = bytearray(data)
            self._pos = 0
            if self._expected is None:
                self._parse_prefix()
            return
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def _parse_prefix(self) -> None:
        if self._expected is not None:
            return
        buffer, pos = self._buffer, self._pos
        left = len(buffer) - pos
        # one- and two-byte prefixes (frames under 16 KiB) decoded inline: once per frame
        if left and buffer[pos] < 0x80:
            length, end = buffer[pos], 0
        elif left > 1 and buffer[pos + 1] < 0x80:
            length, end = (buffer[pos] & 0x7F) | (buffer[pos + 1] << 7), 1
        else:
            self._parse_long_prefix()
            return
        if length > self.max_frame:
            raise FrameTooLarge("frame length", length, self.max_frame)
        self._expected = length
        self._prefix_len = end + 1

    def _parse_long_prefix(self) -> None:
        head = self._buffer[self._pos : self._pos + MAX_VARINT_BYTES]
        end = next((i for i, b in enumerate(head) if b < 0x80), None)
        if end is None:
            if len(head) >= MAX_VARINT_BYTES:
                raise ProtocolError("frame length prefix is not a valid varint")
            return
        try:
            length = decode_uvarint(bytes(head[: end + 1]))
        except Exception as exc:  # libp2p's ParseError on overflow
            raise ProtocolError(f"frame length prefix is not a valid varint: {exc}") from exc
        if length > self.max_frame:
            raise FrameTooLarge("frame length", length, self.max_frame)
        self._expected = length
        self._prefix_len = end + 1

    def next_frame(self) -> bytes | None:
        """The next whole frame, or None if more bytes are needed.

        The prefix of a frame is parsed only when that frame is asked for, so the frames before
        a bad prefix are all handed out before its error is raised.
        """
        self._parse_prefix()
        if self._expected is None:
            return None
        start = self._pos + self._prefix_len
        end = start + self._expected
        if len(self._buffer) < end:
            return None
        with memoryview(self._buffer) as view:
            frame = bytes(view[start:end])  # one copy, not a slice and a copy
        if len(self._buffer) == end:
            self._buffer = bytearray()  # do not keep a large frame's allocation
            self._pos = 0
        else:
            self._pos = end
        self._expected = None
        self._prefix_len = 0
        return frame

    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (a clean place for the stream to end)."""
        return self._pos == len(self._buffer)


class FramedStream:
    """Frames over a libp2p stream (anything with async ``read(n)`` and ``write(data)``)."""

    def __init__(
        self,
        stream: Any,
        max_frame: int,
        *,
        large_frame: int | None = None,
        reserve: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(max_frame)
        self.bytes_in = 0
        self.bytes_out = 0
        # a frame declared over ``large_frame`` bytes is read only after ``reserve(size)``
        # returned: a peer cannot make us buffer what it merely announces
        self.large_frame = large_frame
        self.reserve = reserve
        self.reserved = 0  # bytes reserved so far; the owner gives them back
        self._reserved_for: int | None = None  # bytes_in at the frame the last reservation is for

    async def read_frame(self) -> bytes | None:
        """The next frame; None on a clean end of stream between frames.

        Raises StreamClosed if the stream ends or fails mid-frame, FrameTooLarge or ProtocolError
        on a bad prefix. The loop ends because every read returns at least one byte or raises.
        """
        while (frame := self.decoder.next_frame()) is None:
            await self._reserve_large()
            try:
                chunk = await self.stream.read(min(max(READ_CHUNK, self.decoder.wanted()), MAX_READ))
            except EOFError:  # py-libp2p's StreamEOF
                chunk = b""
            except IOException as exc:
                raise StreamClosed(f"stream failed mid-frame: {exc!r}") from exc
            if not chunk:
                if self.decoder.at_boundary():
                    return None
                raise StreamClosed(f"stream ended mid-frame ({self.decoder.buffered} bytes buffered)")
            self.bytes_in += len(chunk)
            self.decoder.feed(chunk)
        return frame

    async def _reserve_large(self) -> None:
        if self.reserve is None or self.large_frame is None:
            return
        size = self.decoder.declared()
        if size is None or size <= self.large_frame:
            return
        start = self.bytes_in - self.decoder.buffered  # where this frame began on the stream
        if self._reserved_for == start:
            return
        await self.reserve(size)
        self.reserved += size
        self._reserved_for = start

    async def write_frame(self, payload: bytes) -> None:
        await self.write_frames([payload])

    async def write_frames(self, payloads: list[bytes]) -> None:
        """Several frames in as few writes as can be without copying a large one again: small
        frames go out joined (one yamux data frame instead of one each)."""
        parts: list[bytes] = []
        size = 0
        for payload in payloads:
            parts.append(uvarint(len(payload)))
            if len(payload) > COALESCE:
                await self._write(b"".join(parts))
                await self._write(payload)
                parts, size = [], 0
                continue
            parts.append(payload)
            size += len(payload)
            if size > COALESCE:
                await self._write(b"".join(parts))
                parts, size = [], 0
        if parts:
            await self._write(b"".join(parts))

    async def _write(self, data: bytes) -> None:
        try:
            await self.stream.write(data)
        except IOException as exc:
            raise StreamClosed(f"stream failed while writing: {exc!r}") from exc
        self.bytes_out += len(data)
