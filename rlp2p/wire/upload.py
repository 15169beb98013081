"""The record of a publish on the CAS stream (CasRequest.update = 20): one round trip per replica.

The Adds and the record's Update go on one kept stream, pipelined: the server answers in order,
so the Update is judged after every block before it was stored (a new log's completeness check
finds them), exactly as the NS server would judge it. A server that does not know the request
answers BAD_REQUEST and keeps the stream: :func:`add_then_update` raises UnsupportedRequest and
the caller sends the record over /vac/ns/1.0.0 (the blocks are stored already).

With ``compact``, the Update carries the record as a ``CompactRecord`` with Value and TTL
(UploadNameUpdate field 11, rlp2p/core/compact.py: 151 B for a 221 B record) which the server
rebuilds and judges as the record itself. A server from before sees an empty record and answers
INVALID_RECORD: the publisher then sends the whole record (rlp2p/node/publisher.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from rlp2p.core.ack import MAX_ACK_SIGNATURE
from rlp2p.core.address import address_of
from rlp2p.core.compact import standalone_compact
from rlp2p.errors import ProtocolError, RemoteError, UnsupportedRequest
from rlp2p.pb.vac import cas_pb2, ns_pb2
from rlp2p.wire.cas import CasClient, encode_adds
from rlp2p.wire.cas import Code as CasCode
from rlp2p.wire.cas import decode_response as decode_cas
from rlp2p.wire.ns import Status, encode_update
from rlp2p.wire.ns import decode_response as decode_ns
from rlp2p.wire.rpc import enum_name

__all__ = ["Acker", "NameUpdater", "add_then_update", "encode_ack_request", "encode_cas_update", "serve_ack", "serve_name_update"]

#: what the CAS server calls for an update: (name, record, writer) -> the CasResponse frame
NameUpdater = Callable[[str, bytes, "str | None"], Awaitable[bytes]]


#: what the CAS server calls for an ack: (name) -> the CasResponse frame
Acker = Callable[[str], Awaitable[bytes]]


def encode_ack_request(name: str) -> bytes:
    return cas_pb2.CasRequest(ack=cas_pb2.AckRequest(name=name)).SerializeToString()


def serve_ack(held: Callable[[str], Awaitable[int]], sign: Callable[[str, int], bytes]) -> Acker:
    """An acker signing the sequence of the record held for a name (``held``: 0 for none) with
    ``sign`` (the peer key's :func:`rlp2p.core.ack.sign_ack`)."""

    async def ack(name: str) -> bytes:
        sequence = await held(name)
        signature = sign(name, sequence) if sequence else b""
        return cas_pb2.CasResponse(acked=cas_pb2.AckResult(sequence=sequence, signature=signature)).SerializeToString()

    return ack


def encode_cas_update(name: str, record: bytes, *, compact: bool = False) -> bytes:
    """An Update of ``record``; with ``compact``, in compact form when it has one."""
    short = standalone_compact(record) if compact else None
    if short is not None:
        return cas_pb2.CasRequest(update=cas_pb2.UploadNameUpdate(name=name, compact=short)).SerializeToString()
    return cas_pb2.CasRequest(update=cas_pb2.UploadNameUpdate(name=name, content=record)).SerializeToString()


def serve_name_update(handle_ns_frame: Callable[..., Awaitable[object]]) -> NameUpdater:
    """An updater that judges the record exactly as the NS server does (``NsServer.handle_frame``)."""

    async def update(name: str, record: bytes, writer: str | None) -> bytes:
        reply = await handle_ns_frame(encode_update(name, record), writer=writer)
        answer = decode_ns(reply.frame)  # type: ignore[attr-defined]
        if answer.WhichOneof("result") == "response":
            status, error = answer.response.status, answer.response.error
        else:
            status, error = ns_pb2.Response.BAD_REQUEST, answer.error.message
        return cas_pb2.CasResponse(updated=cas_pb2.UploadNameResult(status=status, error=error)).SerializeToString()

    return update


async def add_then_update(
    cas: CasClient,
    blocks: Sequence[bytes],
    name: str,
    record: bytes,
    *,
    ack: bool = False,
    deltas: dict[bytes, bytes] | None = None,
    compact: bool = False,
) -> tuple[int, bytes] | None:
    """Store ``blocks`` then the record, in one pipelined call. Raises RemoteError on the first
    refusal (an update's carries the NS status name), UnsupportedRequest if the server does not
    know the update (the blocks before it are stored).

    With ``ack``, the server's signed acknowledgement rides the same call: (the sequence it holds,
    its signature), None from a server that does not sign them. Checked by the caller
    (:func:`rlp2p.core.ack.check_ack`). ``deltas``: pages sent as page deltas (address -> delta,
    :func:`rlp2p.wire.cas.encode_adds`), only to a server known to take them; ``compact``: the
    record as a CompactRecord (UploadNameUpdate.compact), only to a server known to take it."""
    requests = [*encode_adds(blocks, deltas), encode_cas_update(name, record, compact=compact)]
    if ack:
        requests.append(encode_ack_request(name))
    frames = await cas.rpc.call_many(requests)
    acked = _acked(frames[-1]) if ack else None
    if ack:
        frames = frames[:-1]
    for data, frame in zip(blocks, frames, strict=False):
        response = decode_cas(frame)
        kind = response.WhichOneof("result")
        if kind == "error":
            raise RemoteError(enum_name(CasCode, response.error.code), response.error.message)
        if kind != "address" or response.address.id != address_of(data):
            raise ProtocolError(f"unexpected answer to add: {kind}")
    response = decode_cas(frames[-1])
    kind = response.WhichOneof("result")
    if kind == "error" and response.error.code == CasCode.BAD_REQUEST:
        raise UnsupportedRequest("BAD_REQUEST", response.error.message)
    if kind == "error":
        raise RemoteError(enum_name(CasCode, response.error.code), response.error.message)
    if kind != "updated":
        raise ProtocolError(f"unexpected answer to update: {kind}")
    if response.updated.status != Status.OK:
        raise RemoteError(enum_name(Status, response.updated.status), response.updated.error)
    return acked


def _acked(frame: bytes) -> tuple[int, bytes] | None:
    """An ack answer's (sequence, signature); None for a refusal (a server without acks) or a
    signature over the size limit."""
    response = decode_cas(frame)
    if response.WhichOneof("result") != "acked" or len(response.acked.signature) > MAX_ACK_SIGNATURE:
        return None
    return response.acked.sequence, bytes(response.acked.signature)
