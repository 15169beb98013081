"""The NS forward extension's codec: round trip, and hostile requests refused with typed errors."""

from __future__ import annotations

import pytest

from rlp2p.core.forward import MAX_FORWARD_TARGETS, Lacks, TargetPlan
from rlp2p.errors import DecodeError, LimitExceeded
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.forward import ForwardOutcome, ForwardRequest, ForwardTarget, decode_forward, encode_forward, encode_forwarded
from rlp2p.wire.ns import NsServer, decode_response


def request(targets: int = 2) -> ForwardRequest:
    plans = [TargetPlan(Lacks.SHARED), TargetPlan(Lacks.OWN, [b"x" * 36]), TargetPlan(Lacks.WHOLE)]
    return ForwardRequest(
        "name", 7, [ForwardTarget(bytes([i]) * 38, [b"\x04\x7f\x00\x00\x01"], plans[i % 3]) for i in range(targets)], [b"a" * 36]
    )


def test_round_trip():
    sent = request(3)
    got = decode_forward(ns_pb2.NsRequest.FromString(encode_forward(sent)).forward)
    assert got == sent
    assert got.lacking(got.targets[0]) == [b"a" * 36]
    assert got.lacking(got.targets[1]) == [b"x" * 36]
    assert got.lacking(got.targets[2]) is None


def test_too_many_targets_or_a_list_without_own_are_refused():
    with pytest.raises(LimitExceeded):
        decode_forward(ns_pb2.NsRequest.FromString(encode_forward(request(MAX_FORWARD_TARGETS + 1))).forward)
    message = ns_pb2.NsRequest.FromString(encode_forward(request(1))).forward
    message.targets[0].blocks.append(b"y" * 36)  # SHARED with a list of its own
    with pytest.raises(DecodeError):
        decode_forward(message)
    message.targets[0].lacks = 9  # type: ignore[assignment]
    with pytest.raises(DecodeError):
        decode_forward(message)


async def test_a_server_without_a_forwarder_refuses_the_request():
    reply = await NsServer(backend=None).handle_frame(encode_forward(request(1)))  # type: ignore[arg-type]
    answer = decode_response(reply.frame)
    assert answer.WhichOneof("result") == "error" and answer.error.code == ns_pb2.Error.BAD_REQUEST


def test_results_encode_per_target():
    frame = encode_forwarded([ForwardOutcome(b"p", "OK", blocks_sent=3), ForwardOutcome(b"q", "STALE", "old", held_seq=9)])
    results = decode_response(frame).forwarded.results
    assert [(r.status, r.held_seq, r.blocks_sent) for r in results] == [(0, 0, 3), (2, 9, 0)]


def test_compact_targets_round_trip_and_are_named_one_way_only():
    from rlp2p.core.forward import MAX_HINT_INDEX

    compact = ForwardRequest("name", 7, [ForwardTarget(b"", [], TargetPlan(Lacks.SHARED), hint=2)], [b"a" * 36])
    encoded = encode_forward(compact)
    assert decode_forward(ns_pb2.NsRequest.FromString(encoded).forward) == compact
    # a target by hint position costs a few bytes, by peer id and address about 50
    assert len(encoded) + 40 < len(encode_forward(request(1)))
    message = ns_pb2.NsRequest.FromString(encoded).forward
    message.targets[0].peer = b"p" * 38  # both a position and a peer id
    with pytest.raises(DecodeError):
        decode_forward(message)
    message = ns_pb2.NsRequest.FromString(encoded).forward
    message.targets[0].hint = MAX_HINT_INDEX + 1
    with pytest.raises(LimitExceeded):
        decode_forward(message)


def test_relayed_acks_round_trip_and_oversized_ones_are_dropped():
    from rlp2p.core.ack import MAX_ACK_SIGNATURE
    from rlp2p.wire.forward import forward

    outcomes = [ForwardOutcome(b"p", "OK", ack_seq=7, ack=b"s" * 64), ForwardOutcome(b"q", "OK", ack_seq=7, ack=b"s" * (MAX_ACK_SIGNATURE + 1))]

    class Rpc:
        async def call(self, frame: bytes) -> bytes:
            return encode_forwarded(outcomes)

    import trio

    got = trio.run(forward, Rpc(), request(2))
    assert [(o.ack_seq, o.ack) for o in got] == [(7, b"s" * 64), (7, b"")]
