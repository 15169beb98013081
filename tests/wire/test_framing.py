import pytest
from hypothesis import given, strategies as st

from rlp2p.errors import FrameTooLarge, ProtocolError, StreamClosed
from rlp2p.wire.framing import FrameDecoder, FramedStream, encode_frame


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 50))
def test_frames_survive_any_chunking(frames, chunk):
    wire = b"".join(encode_frame(f) for f in frames)
    decoder = FrameDecoder(max_frame=1000)
    out = []
    for i in range(0, len(wire), chunk):
        decoder.feed(wire[i : i + chunk])
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
    assert out == frames
    assert decoder.at_boundary()


def test_oversize_prefix_is_refused_before_the_body_arrives():
    decoder = FrameDecoder(max_frame=100)
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(encode_frame(b"x" * 101)[:2])  # the prefix alone
    assert info.value.size == 101 and info.value.limit == 100


def test_a_prefix_of_ten_continuation_bytes_is_malformed():
    decoder = FrameDecoder(max_frame=100)
    with pytest.raises(ProtocolError):
        decoder.feed(b"\xff" * 10)


def test_a_huge_varint_is_refused():
    decoder = FrameDecoder(max_frame=100)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\xff" * 9 + b"\x01")  # 2**64 - 1


def test_wanted_tracks_the_frame():
    decoder = FrameDecoder(max_frame=100)
    assert decoder.wanted() == 1
    decoder.feed(bytes([10]) + b"abc")
    assert decoder.wanted() == 7
    assert decoder.next_frame() is None


class FakeStream:
    """A byte pipe with py-libp2p's read/write shape; reads return at most `chunk` bytes."""

    def __init__(self, data: bytes, chunk: int = 3, eof_error: bool = True):
        self.data = bytearray(data)
        self.chunk = chunk
        self.eof_error = eof_error
        self.written = bytearray()

    async def read(self, n):
        if not self.data:
            if self.eof_error:
                raise EOFError()
            return b""
        take = min(n, self.chunk)
        out, self.data[:take] = bytes(self.data[:take]), b""
        return out

    async def write(self, data):
        self.written += data


async def test_framed_stream_reads_frames_then_a_clean_end():
    stream = FakeStream(encode_frame(b"one") + encode_frame(b"") + encode_frame(b"three"))
    framed = FramedStream(stream, max_frame=100)
    assert [await framed.read_frame() for _ in range(3)] == [b"one", b"", b"three"]
    assert await framed.read_frame() is None
    assert framed.bytes_in == len(b"one") + len(b"three") + 3


@pytest.mark.parametrize("eof_error", [True, False])
async def test_framed_stream_cut_mid_frame(eof_error):
    framed = FramedStream(FakeStream(encode_frame(b"abcdef")[:4], eof_error=eof_error), max_frame=100)
    with pytest.raises(StreamClosed):
        await framed.read_frame()


async def test_framed_stream_writes_prefixed():
    stream = FakeStream(b"")
    framed = FramedStream(stream, max_frame=100)
    await framed.write_frame(b"hi")
    assert bytes(stream.written) == b"\x02hi" and framed.bytes_out == 3
