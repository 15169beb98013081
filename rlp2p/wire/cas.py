"""/vac/cas/1.0.0: Add(Content) -> Address, Get(Address) -> Content over a libp2p stream.

Frames carry ``vac.cas.CasRequest`` / ``vac.cas.CasResponse`` envelopes (proto/vac/cas.proto).
The server recomputes every address it is given data for and never trusts the client's; the
client checks every block it gets against the address it asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from libp2p.custom_types import TProtocol

from rlp2p.core.address import address_of, address_to_text, check_address, verify_block
from rlp2p.errors import (
    AddressError,
    DecodeError,
    HashMismatch,
    ProtocolError,
    RemoteError,
    Rlp2pError,
    WriteRefused,
)
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.pb.vac import cas_pb2
from rlp2p.wire.admit import WriteGate, peer_of
from rlp2p.wire.rpc import Reply, RpcStream, enum_name, parse_frame, refusal, serve_stream

log = logging.getLogger(__name__)

CAS_PROTOCOL = TProtocol("/vac/cas/1.0.0")
Code = cas_pb2.Error.Code


# --- codec ---------------------------------------------------------------------------------


def encode_add(data: bytes) -> bytes:
    return cas_pb2.CasRequest(add=cas_pb2.Content(data=data)).SerializeToString()


def encode_get(address: bytes) -> bytes:
    return cas_pb2.CasRequest(get=cas_pb2.Address(id=address)).SerializeToString()


def encode_error(code: int, message: str) -> bytes:
    return cas_pb2.CasResponse(error=cas_pb2.Error(code=code, message=message[:500])).SerializeToString()


error_for = refusal(encode_error, Code.TOO_LARGE, Code.BAD_REQUEST)


def decode_request(frame: bytes) -> cas_pb2.CasRequest:
    return parse_frame(cas_pb2.CasRequest, frame, DecodeError)


def decode_response(frame: bytes) -> cas_pb2.CasResponse:
    return parse_frame(cas_pb2.CasResponse, frame, ProtocolError)


def _remote_error(error: cas_pb2.Error) -> RemoteError:
    return RemoteError(enum_name(Code, error.code), error.message)


# --- server --------------------------------------------------------------------------------


class BlockBackend(Protocol):
    async def get_blocks(self, addresses: list[bytes]) -> dict[bytes, bytes]:
        """The blocks held among ``addresses`` (absent ones are left out)."""

    async def put_blocks(self, items: list[tuple[bytes, bytes]]) -> None:
        """Store (address, data) pairs, all or none."""


class CasServer:
    """The stream handler of a storage peer's CAS.

    Pipelined requests are served as a batch: every Add of the batch is stored in one
    transaction, every Get read in one query.
    """

    def __init__(self, backend: BlockBackend, limits: Limits = DEFAULT_LIMITS, *, idle_timeout: float = 30.0) -> None:
        self.backend = backend
        self.limits = limits
        self.idle_timeout = idle_timeout
        self.requests_served = 0
        #: the storage peer's admission policy, which then stores the Adds (None: the backend
        #: stores everything)
        self.gate: WriteGate | None = None

    async def handle_stream(self, stream: Any) -> None:
        writer = peer_of(stream)

        async def handle(frames: list[bytes]) -> list[Reply]:
            return await self.handle_frames(frames, writer=writer)

        self.requests_served += await serve_stream(
            stream, handle, error_for, self.limits, idle_timeout=self.idle_timeout, name="cas"
        )

    async def handle_frames(self, frames: list[bytes], *, writer: str | None = None) -> list[Reply]:
        replies: list[Reply | None] = []
        adds: dict[int, tuple[bytes, bytes]] = {}
        gets: dict[int, bytes] = {}
        for frame in frames:
            i = len(replies)
            replies.append(None)
            try:
                request = decode_request(frame)
            except DecodeError as exc:
                replies[i] = Reply(encode_error(Code.BAD_REQUEST, str(exc)), keep_open=False)
                break  # what follows a malformed request is not answered
            method = request.WhichOneof("method")
            if method == "add":
                data = request.add.data
                if len(data) > self.limits.max_block:
                    message = f"block of {len(data)} bytes is over {self.limits.max_block}"
                    replies[i] = Reply(encode_error(Code.TOO_LARGE, message))
                else:
                    adds[i] = (address_of(data), data)  # recomputed: never the client's word
            elif method == "get":
                try:
                    check_address(request.get.id)
                except AddressError as exc:
                    replies[i] = Reply(encode_error(Code.BAD_ADDRESS, str(exc)))
                else:
                    gets[i] = request.get.id
            else:
                # an unknown method leaves the framing intact: answer and keep serving, so a
                # newer client can fall back
                replies[i] = Reply(encode_error(Code.BAD_REQUEST, "unknown or missing method"))
        await self._store(adds, replies, writer)
        await self._load(gets, replies)
        return [r for r in replies if r is not None]

    async def _store(self, adds: dict[int, tuple[bytes, bytes]], replies: list[Reply | None], writer: str | None) -> None:
        if not adds:
            return
        items = list(adds.values())
        try:
            if self.gate is None:
                await self.backend.put_blocks(items)
            else:
                await self.gate.put_blocks(writer, items)
        except WriteRefused as exc:  # the whole batch: the client stops at its first refusal anyway
            for i in adds:
                replies[i] = Reply(encode_error(Code.Value(exc.code), str(exc)))
            return
        except Rlp2pError as exc:
            log.warning("cas: storing blocks failed: %s", exc)
            for i in adds:
                replies[i] = Reply(encode_error(Code.UNAVAILABLE, "storage failed"))
            return
        for i, (address, _) in adds.items():
            replies[i] = Reply(cas_pb2.CasResponse(address=cas_pb2.Address(id=address)).SerializeToString())

    async def _load(self, gets: dict[int, bytes], replies: list[Reply | None]) -> None:
        if not gets:
            return
        try:
            found = await self.backend.get_blocks(list(gets.values()))
        except Rlp2pError as exc:
            log.warning("cas: reading blocks failed: %s", exc)
            for i in gets:
                replies[i] = Reply(encode_error(Code.UNAVAILABLE, "storage failed"))
            return
        for i, address in gets.items():
            data = found.get(address)
            if data is None:
                replies[i] = Reply(encode_error(Code.NOT_FOUND, f"no block {address_to_text(address)}"))
            else:
                replies[i] = Reply(cas_pb2.CasResponse(content=cas_pb2.Content(data=data)).SerializeToString())


# --- client --------------------------------------------------------------------------------


class CasClient:
    """CAS calls on one open stream to one peer; every answer is checked before it is returned."""

    def __init__(self, rpc: RpcStream) -> None:
        self.rpc = rpc

    async def get_many(self, addresses: Sequence[bytes]) -> dict[bytes, bytes | Rlp2pError]:
        """Fetch blocks, pipelined. Per address: the verified bytes, or the error for that one.

        A block that does not hash to its address is reported as HashMismatch, never returned.
        """
        frames = await self.rpc.call_many([encode_get(a) for a in addresses])
        results: dict[bytes, bytes | Rlp2pError] = {}
        for address, frame in zip(addresses, frames, strict=True):
            response = decode_response(frame)
            kind = response.WhichOneof("result")
            if kind == "content":
                try:
                    verify_block(address, response.content.data)
                except HashMismatch as exc:
                    results[address] = exc
                else:
                    results[address] = response.content.data
            elif kind == "error":
                results[address] = _remote_error(response.error)
            else:
                results[address] = ProtocolError(f"unexpected answer to get: {kind}")
        return results

    async def get(self, address: bytes) -> bytes:
        result = (await self.get_many([address]))[address]
        if isinstance(result, Exception):
            raise result
        return result

    async def add_many(self, blocks: Sequence[bytes]) -> list[bytes]:
        """Store blocks, pipelined; returns their addresses. Raises on the first refusal, and if
        the server names an address other than the one we compute."""
        frames = await self.rpc.call_many([encode_add(b) for b in blocks])
        addresses = []
        for data, frame in zip(blocks, frames, strict=True):
            response = decode_response(frame)
            kind = response.WhichOneof("result")
            if kind == "error":
                raise _remote_error(response.error)
            if kind != "address":
                raise ProtocolError(f"unexpected answer to add: {kind}")
            expected = address_of(data)
            if response.address.id != expected:
                raise ProtocolError("server named a different address for the block it stored")
            addresses.append(expected)
        return addresses


__all__ = ["CAS_PROTOCOL", "BlockBackend", "CasClient", "CasServer"]
