"""The upload-once request on /vac/ns/1.0.0 (NsRequest.forward = 20): codec and client call.

The policy (what to list, limits, trust) is :mod:`rlp2p.core.forward`; the forwarder's work is
:mod:`rlp2p.node.forward`. Every count read from the wire is checked before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rlp2p.core.ack import MAX_ACK_SIGNATURE
from rlp2p.core.forward import Lacks, TargetPlan, check_forward
from rlp2p.errors import DecodeError, ProtocolError, RemoteError
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.ns import Code, Status, decode_response
from rlp2p.wire.rpc import RpcStream, enum_name

__all__ = ["ForwardOutcome", "ForwardRequest", "ForwardTarget", "decode_forward", "encode_forward", "encode_forwarded", "forward"]


@dataclass
class ForwardTarget:
    peer: bytes
    addrs: list[bytes]
    plan: TargetPlan
    #: compact form: the target's position (from 1) in the head page's CAS hint; ``peer`` and
    #: ``addrs`` are then empty until the forwarder reads them from the page
    hint: int = 0


@dataclass
class ForwardRequest:
    name: str
    sequence: int
    targets: list[ForwardTarget]
    blocks: list[bytes]

    def lacking(self, target: ForwardTarget) -> list[bytes] | None:
        """The blocks ``target`` lacks; None for the whole log."""
        if target.plan.lacks is Lacks.WHOLE:
            return None
        return self.blocks if target.plan.lacks is Lacks.SHARED else target.plan.blocks


@dataclass
class ForwardOutcome:
    """What the forwarder says of one target (Alice confirms it herself: see core.forward)."""

    peer: bytes
    status: str  # a Response.Status name: OK, or why not
    error: str = ""
    held_seq: int = 0
    blocks_sent: int = 0
    #: the target's signed acknowledgement, relayed (rlp2p.core.ack): the sequence it holds and
    #: its signature; empty from a target that does not sign them
    ack_seq: int = 0
    ack: bytes = b""


def encode_forward(request: ForwardRequest) -> bytes:
    message = ns_pb2.ForwardRequest(name=request.name, sequence=request.sequence, blocks=request.blocks)
    for t in request.targets:
        message.targets.append(
            ns_pb2.ForwardTarget(peer=t.peer, addrs=t.addrs, lacks=t.plan.lacks.value, blocks=t.plan.blocks, hint=t.hint)  # type: ignore[arg-type]
        )
    return ns_pb2.NsRequest(forward=message).SerializeToString()


def decode_forward(message: ns_pb2.ForwardRequest) -> ForwardRequest:
    """A parsed request's forward, checked against the limits (LimitExceeded, DecodeError)."""
    check_forward(
        len(message.targets),
        len(message.blocks) + sum(len(t.blocks) for t in message.targets),
        [len(a) for t in message.targets for a in t.addrs],
        [t.hint for t in message.targets],
    )
    targets = []
    for t in message.targets:
        try:
            lacks = Lacks(t.lacks)
        except ValueError:
            raise DecodeError(f"unknown forward lacks value {t.lacks}") from None
        if lacks is not Lacks.OWN and t.blocks:
            raise DecodeError("a forward target lists blocks without lacks = OWN")
        if t.hint and (t.peer or t.addrs):
            raise DecodeError("a forward target named both by a hint position and by peer id")
        targets.append(
            ForwardTarget(bytes(t.peer), [bytes(a) for a in t.addrs], TargetPlan(lacks, [bytes(b) for b in t.blocks]), t.hint)
        )
    return ForwardRequest(message.name, message.sequence, targets, [bytes(b) for b in message.blocks])


def encode_forwarded(outcomes: Sequence[ForwardOutcome]) -> bytes:
    response = ns_pb2.ForwardResponse()
    for o in outcomes:
        response.results.append(
            ns_pb2.ForwardResult(
                peer=o.peer, status=Status.Value(o.status), error=o.error[:500], held_seq=o.held_seq, blocks_sent=o.blocks_sent,  # type: ignore[arg-type]
                ack_seq=o.ack_seq, ack=o.ack,
            )
        )
    return ns_pb2.NsResponse(forwarded=response).SerializeToString()


async def forward(rpc: RpcStream, request: ForwardRequest) -> list[ForwardOutcome]:
    """Ask the peer on ``rpc`` to forward; one outcome per target, in order (RemoteError when it
    refuses the whole request, ProtocolError for an answer that does not match it)."""
    response = decode_response(await rpc.call(encode_forward(request)))
    kind = response.WhichOneof("result")
    if kind == "error":
        raise RemoteError(enum_name(Code, response.error.code), response.error.message)
    if kind == "response":
        raise RemoteError(enum_name(Status, response.response.status), response.response.error)
    if kind != "forwarded":
        raise ProtocolError(f"unexpected answer to forward: {kind}")
    results = response.forwarded.results
    if len(results) != len(request.targets):
        raise ProtocolError(f"{len(results)} forward results for {len(request.targets)} targets")
    return [
        ForwardOutcome(
            bytes(r.peer), enum_name(Status, r.status), r.error, r.held_seq, r.blocks_sent,
            r.ack_seq, bytes(r.ack) if len(r.ack) <= MAX_ACK_SIGNATURE else b"",  # an oversized one is no ack
        )
        for r in results
    ]
