"""The short fuzz run of the default suite: every harness of tests/fuzz on its seed corpus mutated
by hypothesis (a few hundred inputs each, derandomized), and the server's whole read loop
(rpc.serve_stream) on mutated streams. The long, coverage-guided run is scripts/fuzz.sh."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python -m tests.fuzz` runs from the root; pytest may not
    sys.path.insert(0, str(ROOT))

from rlp2p.core.message import Message  # noqa: E402
from rlp2p.core.page import Page  # noqa: E402
from rlp2p.core.record import verify_record  # noqa: E402
from rlp2p.limits import Limits  # noqa: E402
from rlp2p.pb.vac import cas_pb2, ns_pb2  # noqa: E402
from rlp2p.wire.cas import CasServer  # noqa: E402
from rlp2p.wire.cas import error_for as cas_error_for  # noqa: E402
from rlp2p.wire.framing import FrameDecoder  # noqa: E402
from rlp2p.wire.ns import NsServer  # noqa: E402
from rlp2p.wire.ns import error_for as ns_error_for  # noqa: E402
from rlp2p.wire.rpc import one_at_a_time, serve_stream  # noqa: E402
from tests.fuzz import seeds  # noqa: E402
from tests.fuzz._common import Target, check  # noqa: E402
from tests.fuzz.fuzz_cas import MemoryBlocks  # noqa: E402
from tests.fuzz.fuzz_ns import MemoryRecords  # noqa: E402

NAMES = ["frames", "message", "page", "address", "record", "cas", "ns"]
TARGETS = {name: importlib.import_module(f"tests.fuzz.fuzz_{name}").TARGET for name in NAMES}
SHORT = settings(
    max_examples=120,
    derandomize=True,  # the same inputs every run: a failure here is a finding, never a flake
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated(draw: st.DrawFn, corpus: list[bytes], max_len: int) -> bytes:
    """A seed with a few byte-level edits (flip, insert, delete, splice, cut), or plain bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=min(max_len, 512)))
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "splice", "cut"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(data):
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "splice":
            other = draw(st.sampled_from(corpus))
            data[at:] = other[draw(st.integers(0, len(other))) :]
        elif op == "cut":
            del data[at:]
    return bytes(data[:max_len])


@pytest.mark.parametrize("name", NAMES)
def test_decoder_takes_hostile_bytes(name: str) -> None:
    target: Target = TARGETS[name]

    @SHORT
    @given(data=mutated(target.seeds(), target.max_len))
    def run(data: bytes) -> None:
        check(target, data)  # anything but the decoder's typed errors fails the test

    run()


def test_seeds_are_what_the_code_produces() -> None:
    """The corpora start from valid values, so mutations start deep in the decoders."""
    for page in seeds.pages():
        Page.decode(page)
    for message in seeds.messages():
        assert Message.decode(message.encode()) == message
    for record in seeds.records()[:3]:
        verify_record(seeds.NAME, record, now=seeds.NOW)


# --- the server's whole read loop ----------------------------------------------------------


class _PeerStream:
    """A stream whose peer sends ``data`` in chunks, then ends; what the server writes is kept."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0
        self.written = bytearray()
        self.closed = self.was_reset = False

    async def read(self, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        chunk = self.data[self.at : self.at + min(n, self.step)]
        self.at += len(chunk)
        return chunk

    async def write(self, data: bytes) -> None:
        self.written += data

    async def close(self) -> None:
        self.closed = True

    async def reset(self) -> None:
        self.was_reset = True


LIMITS = Limits(max_block=2048, max_frame=4096, max_pipeline=8)


@pytest.mark.parametrize("protocol", ["cas", "ns"])
def test_serve_stream_takes_hostile_streams(protocol: str) -> None:
    if protocol == "cas":
        corpus = [seeds.frames_of(seeds.cas_requests()), seeds.frames_of(seeds.cas_requests()[3:5] * 4)]
        response = cas_pb2.CasResponse
    else:
        corpus = [seeds.frames_of(seeds.ns_requests()), seeds.frames_of(seeds.ns_requests()[-3:])]
        response = ns_pb2.NsResponse

    @settings(SHORT, max_examples=60)
    @given(data=mutated(corpus, 4096), step=st.integers(1, 600))
    def run(data: bytes, step: int) -> None:
        stream = _PeerStream(data, step)

        async def serve() -> int:
            if protocol == "cas":
                handle, error_for = CasServer(MemoryBlocks(), LIMITS).handle_frames, cas_error_for
            else:
                handle, error_for = one_at_a_time(NsServer(MemoryRecords(), LIMITS).handle_frame), ns_error_for
            return await serve_stream(stream, handle, error_for, LIMITS, idle_timeout=5, name=protocol)

        served = trio.run(serve)  # nothing a peer sends escapes serve_stream
        assert stream.closed or stream.was_reset
        decoder = FrameDecoder(LIMITS.max_frame)
        decoder.feed(bytes(stream.written))
        answers = []
        while (frame := decoder.next_frame()) is not None:
            answers.append(response.FromString(frame))
        assert decoder.at_boundary()
        assert all(a.WhichOneof("result") for a in answers)
        assert served <= len(answers) <= served + 1  # every request answered, maybe a refusal

    run()
