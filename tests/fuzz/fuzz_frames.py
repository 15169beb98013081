"""Frames: FrameDecoder fed in chunks, and FramedStream.read_frame over the same bytes.

Input: one byte choosing the chunk size (1..256), then the stream's bytes. Both readers must
hand out the same frames, never one over the limit, and buffer at most a frame and a chunk.
"""

from __future__ import annotations

from rlp2p.errors import ProtocolError
from rlp2p.wire.framing import MAX_VARINT_BYTES, FrameDecoder, FramedStream, encode_frame
from tests.fuzz import seeds
from tests.fuzz._common import Target, drive

#: small, so inputs reach both sides of the limit
MAX_FRAME = 40


class _ChunkedStream:
    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    async def read(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + min(n, self.step)]
        self.at += len(chunk)
        return chunk


def _decoder_frames(body: bytes, step: int) -> tuple[list[bytes], type | None]:
    decoder = FrameDecoder(MAX_FRAME)
    frames: list[bytes] = []
    try:
        for start in range(0, len(body), step):
            decoder.feed(body[start : start + step])
            assert decoder.buffered <= MAX_VARINT_BYTES + MAX_FRAME + step, decoder.buffered
            while (frame := decoder.next_frame()) is not None:
                frames.append(frame)
    except ProtocolError as exc:
        return frames, type(exc)
    return frames, None


def _stream_frames(body: bytes, step: int) -> tuple[list[bytes], type | None]:
    framed = FramedStream(_ChunkedStream(body, step), MAX_FRAME)
    frames: list[bytes] = []
    try:
        while (frame := drive(framed.read_frame())) is not None:
            frames.append(frame)
    except ProtocolError as exc:
        return frames, type(exc)
    return frames, None


def one_input(data: bytes) -> None:
    if not data:
        return
    step, body = data[0] + 1, data[1:]
    frames, error = _decoder_frames(body, step)
    assert all(len(f) <= MAX_FRAME for f in frames)
    streamed, stream_error = _stream_frames(body, step)
    # the stream reader also reports a cut mid-frame (StreamClosed), which the decoder cannot know
    assert streamed == frames, "FramedStream and FrameDecoder disagree"
    if error is not None:
        assert stream_error is error, (error, stream_error)


def _seeds() -> list[bytes]:
    payloads = [p for p in seeds.cas_requests() + seeds.ns_requests() if len(p) <= MAX_FRAME]
    payloads += [b"", b"x", b"y" * MAX_FRAME]
    out = [bytes([0]) + seeds.frames_of(payloads[:3]), bytes([255]) + seeds.frames_of(payloads)]
    out += [bytes([7]) + encode_frame(p) for p in payloads]
    out += [bytes([3]) + encode_frame(b"z" * (MAX_FRAME + 1)), bytes([1]) + b"\x80" * 11]
    return out


TARGET = Target("frames", one_input, allowed=(), seeds=_seeds, max_len=128)
