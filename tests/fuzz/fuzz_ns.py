"""/vac/ns/1.0.0 envelopes: the server's request handling and the client's answer handling.

Input: one byte choosing the side, then the bytes of a stream (length-prefixed frames):

0. requests to an NsServer (in-memory backend that keeps the best record per name): every frame
   gets a well-formed answer until one closes the stream;
1. the answer to NsClient.update;
2. the answer to NsClient.fetch: a verified record or a typed error;
3. the answer to NsClient.poll (rlp2p.wire.ns_poll) of the seed log: an answer per log or a
   typed error.
"""

from __future__ import annotations

from rlp2p.core.record import RecordInfo, record_order
from rlp2p.errors import ProtocolError, RecordError, StaleRecord
from rlp2p.limits import Limits
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.ns import NsClient, NsServer
from tests.fuzz import seeds
from tests.fuzz.validator import VALIDATOR_STEPS
from tests.fuzz._common import Target, drive
from tests.fuzz.fuzz_cas import CannedRpc, split_frames

LIMITS = Limits(max_frame=16 * 1024, max_pipeline=16)


class MemoryRecords:
    def __init__(self) -> None:
        self.held: dict[str, RecordInfo] = {}

    async def get_record(self, name: str) -> bytes | None:
        info = self.held.get(name)
        return None if info is None else info.raw

    async def put_record(self, info: RecordInfo) -> None:
        held = self.held.get(info.name)
        if held is not None and record_order(info) <= record_order(held):
            raise StaleRecord("not newer than the record held", have=held.sequence, got=info.sequence)
        self.held[info.name] = info


def one_input(data: bytes) -> None:
    if not data:
        return
    side, stream = data[0] % 4, data[1:]
    frames = split_frames(stream, LIMITS.max_frame, LIMITS.max_pipeline)
    if side == 0:
        server = NsServer(MemoryRecords(), LIMITS)
        for frame in frames:
            reply = drive(server.handle_frame(frame))
            assert ns_pb2.NsResponse.FromString(reply.frame).WhichOneof("result") is not None
            if not reply.keep_open:
                break
        return
    client = NsClient(CannedRpc(frames), LIMITS)  # type: ignore[arg-type]
    try:
        if side == 1:
            drive(client.update(seeds.NAME, seeds.records()[0]))
        elif side == 2:
            info = drive(client.fetch(seeds.NAME))
            assert info.name == seeds.NAME
        else:
            answers = drive(client.poll([(seeds.NAME, 0), (seeds.NAME, None)], now=seeds.NOW))
            assert len(answers) == 2
    except (ProtocolError, RecordError):
        pass


def _seeds() -> list[bytes]:
    requests, responses = seeds.ns_requests(), seeds.ns_responses()
    out = [b"\x00" + seeds.frames_of(requests), b"\x00" + seeds.frames_of(requests[:2])]
    out += [bytes([side]) + seeds.frames_of([r]) for side in (1, 2, 3) for r in responses]
    return out


TARGET = Target("ns", one_input, allowed=(), seeds=_seeds, instrument=VALIDATOR_STEPS, max_len=4096)
