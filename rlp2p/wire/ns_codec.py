"""The /vac/ns/1.0.0 envelopes (NsRequest / NsResponse), shared by the NS client and server
(rlp2p.wire.ns) and the Poll extension (rlp2p.wire.ns_poll)."""

from __future__ import annotations

from rlp2p.errors import DecodeError, ProtocolError
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.rpc import parse_frame

Code = ns_pb2.Error.Code
Status = ns_pb2.Response.Status


def encode_update(name: str, record: bytes) -> bytes:
    return ns_pb2.NsRequest(update=ns_pb2.NameUpdate(name=name, content=record)).SerializeToString()


def encode_fetch(name: str) -> bytes:
    return ns_pb2.NsRequest(fetch=ns_pb2.Query(name=name)).SerializeToString()


def encode_error(code: int, message: str) -> bytes:
    return ns_pb2.NsResponse(error=ns_pb2.Error(code=code, message=message[:500])).SerializeToString()  # type: ignore[arg-type]


def encode_status(status: int, message: str = "") -> bytes:
    response = ns_pb2.Response(status=status, error=message[:500])  # type: ignore[arg-type]
    return ns_pb2.NsResponse(response=response).SerializeToString()


def decode_request(frame: bytes) -> ns_pb2.NsRequest:
    return parse_frame(ns_pb2.NsRequest, frame, DecodeError)


def decode_response(frame: bytes) -> ns_pb2.NsResponse:
    return parse_frame(ns_pb2.NsResponse, frame, ProtocolError)
