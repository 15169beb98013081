"""/vac/cas/1.0.0 envelopes: the server's request handling and the client's answer handling.

Input: one byte choosing the side, then the bytes of a stream (length-prefixed frames):

0. requests to a CasServer (in-memory backend): every frame must get a well-formed answer, in
   order, and nothing may escape but the answers;
1. answers to CasClient.get_many: each result is verified bytes or a typed error;
2. answers to CasClient.add_many: the addresses, or a typed error raised.
"""

from __future__ import annotations

from rlp2p.core.address import address_of
from rlp2p.errors import ProtocolError, Rlp2pError, StreamClosed
from rlp2p.limits import Limits
from rlp2p.pb.vac import cas_pb2
from rlp2p.wire.cas import CasClient, CasServer
from rlp2p.wire.framing import FrameDecoder
from tests.fuzz import seeds
from tests.fuzz._common import Target, drive

LIMITS = Limits(max_block=2048, max_frame=4096, max_pipeline=64)
BLOCKS = [b"", b"block", b"x" * 100]
ADDRESSES = [address_of(b) for b in BLOCKS] + [address_of(b"absent")]


def split_frames(stream: bytes, max_frame: int, most: int) -> list[bytes]:
    """The whole frames at the start of ``stream`` (what a server would hand its handler)."""
    decoder = FrameDecoder(max_frame)
    frames: list[bytes] = []
    try:
        decoder.feed(stream)
        while len(frames) < most and (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    except ProtocolError:
        pass  # serve_stream answers the frames before a bad prefix, then refuses it
    return frames


class MemoryBlocks:
    def __init__(self) -> None:
        self.blocks = {address_of(b): b for b in BLOCKS[:2]}

    async def get_blocks(self, addresses: list[bytes]) -> dict[bytes, bytes]:
        return {a: self.blocks[a] for a in addresses if a in self.blocks}

    async def put_blocks(self, items: list[tuple[bytes, bytes]]) -> None:
        self.blocks.update(items)


class CannedRpc:
    """The client's stream, answering with the frames the fuzzer wrote (as RpcStream does:
    exactly one answer per request, or StreamClosed when the peer ran out)."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers

    async def call_many(self, requests: list[bytes]) -> list[bytes]:
        if len(self.answers) < len(requests):
            raise StreamClosed(f"peer closed the stream after {len(self.answers)} answers")
        return self.answers[: len(requests)]

    async def call(self, request: bytes) -> bytes:
        return (await self.call_many([request]))[0]


def one_input(data: bytes) -> None:
    if not data:
        return
    side, stream = data[0] % 3, data[1:]
    frames = split_frames(stream, LIMITS.max_frame, LIMITS.max_pipeline)
    if side == 0:
        server = CasServer(MemoryBlocks(), LIMITS)
        replies = drive(server.handle_frames(frames))
        assert len(replies) <= len(frames)
        assert len(replies) == len(frames) or not replies[-1].keep_open
        for reply in replies:
            assert cas_pb2.CasResponse.FromString(reply.frame).WhichOneof("result") is not None
        return
    client = CasClient(CannedRpc(frames))  # type: ignore[arg-type]
    n = max(1, len(frames))
    try:
        if side == 1:
            wanted = [ADDRESSES[i % len(ADDRESSES)] for i in range(n)]
            results = drive(client.get_many(wanted))
            for address, result in results.items():
                assert isinstance(result, Rlp2pError) or address_of(result) == address
        else:
            blocks = [BLOCKS[i % len(BLOCKS)] for i in range(n)]
            assert drive(client.add_many(blocks)) == [address_of(b) for b in blocks]
    except ProtocolError:
        pass


def _seeds() -> list[bytes]:
    requests, responses = seeds.cas_requests(), seeds.cas_responses()
    out = [b"\x00" + seeds.frames_of(requests), b"\x00" + seeds.frames_of(requests[3:5])]
    out += [b"\x01" + seeds.frames_of(responses), b"\x02" + seeds.frames_of(responses[1:2] * 2)]
    out.append(b"\x01" + seeds.frames_of([cas_pb2.CasResponse(content=cas_pb2.Content(data=b)).SerializeToString() for b in BLOCKS]))
    return out


TARGET = Target("cas", one_input, allowed=(), seeds=_seeds, max_len=2048)
