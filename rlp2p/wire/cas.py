"""/vac/cas/1.0.0: Add(Content) -> Address, Get(Address) -> Content over a libp2p stream.

Frames carry ``vac.cas.CasRequest`` / ``vac.cas.CasResponse`` envelopes (proto/vac/cas.proto).
The server recomputes every address it is given data for and never trusts the client's; the
client checks every block it gets against the address it asked for.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Protocol

from libp2p.custom_types import TProtocol
from libp2p.utils.varint import encode_uvarint

from rlp2p.core.address import address_of, address_to_text, check_address, verify_block
from rlp2p.core.compact import expand_record
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
from rlp2p.wire.rpc import (
    MemoryBudget,
    Reply,
    RpcStream,
    budget_for,
    enum_name,
    parse_frame,
    refusal,
    serve_stream,
    stream_peer,
)
from rlp2p.wire.admit import WriteGate, peer_of

log = logging.getLogger(__name__)

CAS_PROTOCOL = TProtocol("/vac/cas/1.0.0")
Code = cas_pb2.Error.Code


# --- codec ---------------------------------------------------------------------------------


def encode_add(data: bytes) -> bytes:
    return cas_pb2.CasRequest(add=cas_pb2.Content(data=data)).SerializeToString()


def encode_get(address: bytes) -> bytes:
    return cas_pb2.CasRequest(get=cas_pb2.Address(id=address)).SerializeToString()


def encode_error(code: int, message: str) -> bytes:
    return cas_pb2.CasResponse(error=cas_pb2.Error(code=code, message=message[:500])).SerializeToString()  # type: ignore[arg-type]


def encode_content(data: bytes) -> bytes:
    """``CasResponse(content=Content(data=data))`` serialized, with one copy of ``data`` rather
    than protobuf's two (the bytes are the same: a test compares them)."""
    if not data:
        return b"\x12\x00"
    data_len = encode_uvarint(len(data))
    inner = 1 + len(data_len) + len(data)
    return b"".join((b"\x12", encode_uvarint(inner), b"\x0a", data_len, data))


error_for = refusal(encode_error, Code.TOO_LARGE, Code.BAD_REQUEST, Code.UNAVAILABLE)


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

    # optional: ``async def get_blocks_within(addresses, max_bytes)`` (see AsyncStore), so a
    # server loads a batch of Gets a few MiB at a time in one call; without it, one block a call


class CasServer:
    """The stream handler of a storage peer's CAS.

    Pipelined requests are served as a batch: each run of Adds is stored in one transaction, each
    run of Gets read a few MiB at a time (``limits.max_answer_bytes_per_stream``; sizes and data in
    one trip to the store), every answer built only when the stream has taken the ones before. Answer bytes not yet taken
    are charged to ``budget`` (per peer and in all), as are large Adds being received.
    """

    def __init__(
        self,
        backend: BlockBackend,
        limits: Limits = DEFAULT_LIMITS,
        *,
        idle_timeout: float = 30.0,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.backend = backend
        self.limits = limits
        self.idle_timeout = idle_timeout
        self.budget = budget or budget_for(limits)
        #: the storage peer's admission policy, which then stores the Adds (None: the backend
        #: stores everything)
        self.gate: WriteGate | None = None
        #: judges a record sent on this stream (upload extension, rlp2p/wire/upload.py): (name,
        #: record, writer) -> the answer frame; None: refused as an unknown method
        self.name_update: Callable[[str, bytes, str | None], Awaitable[bytes]] | None = None
        #: the upload-once acknowledgement (CasRequest.ack = 25, rlp2p/wire/upload.py): name -> frame
        self.acker: Callable[[str], Awaitable[bytes]] | None = None

    async def handle_stream(self, stream: Any) -> None:
        await serve_stream(
            stream,
            partial(self.handle_frames, peer=stream_peer(stream), writer=peer_of(stream)),
            error_for,
            self.limits,
            idle_timeout=self.idle_timeout,
            name="cas",
            budget=self.budget,
        )

    async def handle_frames(
        self, frames: list[bytes], peer: Any = None, *, writer: str | None = None
    ) -> AsyncIterator[Reply]:
        """The replies to ``frames``, in order, each produced when the previous one was taken.

        ``peer`` keys the memory budget; ``writer`` (its base58 id) is who the gate charges."""
        # runs of one kind: ("add", [(address, data)]), ("get", [address]), ("reply", [Reply])
        runs: list[tuple[str, list[Any]]] = []

        def push(kind: str, item: Any) -> None:
            if runs and runs[-1][0] == kind:
                runs[-1][1].append(item)
            else:
                runs.append((kind, [item]))

        for frame in frames:
            try:
                request = decode_request(frame)
            except DecodeError as exc:
                push("reply", Reply(encode_error(Code.BAD_REQUEST, str(exc)), keep_open=False))
                break  # what follows a malformed request is not answered
            method = request.WhichOneof("method")
            if method == "add":
                data = request.add.data
                if len(data) > self.limits.max_block:
                    message = f"block of {len(data)} bytes is over {self.limits.max_block}"
                    push("reply", Reply(encode_error(Code.TOO_LARGE, message)))
                else:
                    push("add", (address_of(data), data))  # recomputed: never the client's word
            elif method == "get":
                try:
                    check_address(request.get.id)
                except AddressError as exc:
                    push("reply", Reply(encode_error(Code.BAD_ADDRESS, str(exc))))
                else:
                    push("get", request.get.id)
            elif method == "update" and self.name_update is not None:
                push("update", (request.update.name, _update_record(request.update, self.limits)))  # after the adds before it
            elif method == "ack" and self.acker is not None:
                push("ack", request.ack.name)  # after the update before it
            else:
                # an unknown method leaves the framing intact: answer and keep serving, so a
                # newer client can fall back
                push("reply", Reply(encode_error(Code.BAD_REQUEST, "unknown or missing method")))
        del frames
        for kind, items in runs:
            if kind == "add":
                for reply in await self._store(items, writer):
                    yield reply
            elif kind == "get":
                async for reply in self._load(items, peer):
                    yield reply
            elif kind == "update" and self.name_update is not None:
                for name, record in items:
                    yield Reply(await self.name_update(name, record, writer))
            elif kind == "ack" and self.acker is not None:
                for name in items:
                    yield Reply(await self.acker(name))
            else:
                for reply in items:
                    yield reply

    async def _store(self, adds: list[tuple[bytes, bytes]], writer: str | None = None) -> list[Reply]:
        try:
            if self.gate is None:
                await self.backend.put_blocks(adds)
            else:
                await self.gate.put_blocks(writer, adds)
        except WriteRefused as exc:  # the whole run: the client stops at its first refusal anyway
            return [Reply(encode_error(Code.Value(exc.code), str(exc))) for _ in adds]
        except Rlp2pError as exc:
            log.warning("cas: storing blocks failed: %s", exc)
            return [Reply(encode_error(Code.UNAVAILABLE, "storage failed")) for _ in adds]
        return [Reply(cas_pb2.CasResponse(address=cas_pb2.Address(id=a)).SerializeToString()) for a, _ in adds]

    async def _load(self, gets: list[bytes], peer: Any) -> AsyncIterator[Reply]:
        """Answers to Gets, loaded in chunks of at most ``max_answer_bytes_per_stream`` (a larger
        block alone), each chunk's bytes held in the budget until its answers are taken: a
        chunk's worth is reserved before the store is asked, what the chunk did not use given
        back at once."""
        cap = self.limits.max_answer_bytes_per_stream
        within = getattr(self.backend, "get_blocks_within", None)
        start = 0
        while start < len(gets):
            held = cap
            await self.budget.acquire(peer, held, self.idle_timeout / 2)
            try:
                rest = gets[start:]
                try:
                    if within is not None:
                        found, taken, next_size = await within(rest, cap)
                        if taken == 0:  # one block over the cap: reserve its size, load it alone
                            self.budget.release(peer, held)
                            held = 0
                            await self.budget.acquire(peer, next_size, self.idle_timeout / 2)
                            held = next_size
                            found, taken = await self.backend.get_blocks(rest[:1]), 1
                    else:
                        found, taken = await self.backend.get_blocks(rest[:1]), 1
                except Rlp2pError as exc:
                    log.warning("cas: reading blocks failed: %s", exc)
                    for _ in rest:
                        yield Reply(encode_error(Code.UNAVAILABLE, "storage failed"))
                    return
                chunk = rest[:taken]
                used = sum(len(found.get(a, b"")) for a in chunk)  # each answer is built anew
                if used < held:
                    self.budget.release(peer, held - used)
                    held = used
                last = {address: i for i, address in enumerate(chunk)}
                for i, address in enumerate(chunk):
                    # the last answer naming a block drops our reference to it
                    data = found.pop(address, None) if last[address] == i else found.get(address)
                    if data is None:
                        yield Reply(encode_error(Code.NOT_FOUND, f"no block {address_to_text(address)}"))
                    else:
                        frame = encode_content(data)
                        del data
                        yield Reply(frame)
            finally:
                self.budget.release(peer, held)
            start += taken


# --- client --------------------------------------------------------------------------------


def _get_result(address: bytes, frame: bytes, verify: bool = True) -> bytes | Rlp2pError:
    """The block a Get answer holds (verified unless ``verify`` is off), or the error it stands for."""
    response = decode_response(frame)
    kind = response.WhichOneof("result")
    if kind == "content":
        try:
            if verify:
                verify_block(address, response.content.data)
        except HashMismatch as exc:
            return exc
        return response.content.data
    if kind == "error":
        return _remote_error(response.error)
    return ProtocolError(f"unexpected answer to get: {kind}")


class CasClient:
    """CAS calls on one open stream to one peer; every answer is checked before it is returned."""

    def __init__(self, rpc: RpcStream) -> None:
        self.rpc = rpc
        self._asked: deque[bytes] = deque()  # addresses sent by send_gets, not answered yet

    async def get_many(self, addresses: Sequence[bytes], *, verify: bool = True) -> dict[bytes, bytes | Rlp2pError]:
        """Fetch blocks, pipelined. Per address: the verified bytes, or the error for that one.

        A block that does not hash to its address is reported as HashMismatch, never returned.
        ``verify=False`` leaves that check to the caller, for one that hashes every block itself
        anyway (a sync's :meth:`~rlp2p.core.sync.SyncPlan.receive`): each block hashed once.
        """
        frames = await self.rpc.call_many([encode_get(a) for a in addresses])
        return {a: _get_result(a, frame, verify) for a, frame in zip(addresses, frames, strict=True)}

    # streaming Gets: a reader that decides what to fetch next from what came (see Reader)

    @property
    def in_flight(self) -> int:
        """Gets sent by :meth:`send_gets` and not yet returned by :meth:`receive_gets`."""
        return len(self._asked)

    async def send_gets(self, addresses: Sequence[bytes]) -> None:
        """Ask for ``addresses`` in one write; keep at most ``rpc.window`` in flight."""
        self._asked.extend(addresses)
        await self.rpc.send([encode_get(a) for a in addresses])

    def abandon(self) -> list[bytes]:
        """Give up the Gets in flight (their answers are left unread, so the stream is not used
        again): returns their addresses."""
        asked = list(self._asked)
        self._asked.clear()
        if asked:
            self.rpc.broken = True
        return asked

    async def receive_gets(self, *, verify: bool = True) -> list[tuple[bytes, bytes | Rlp2pError]]:
        """The answers that have arrived (at least one), in the order asked: per address the
        verified bytes or the error for that one, as :meth:`get_many` (``verify`` as there). Raises as ``rpc.receive``
        when the stream fails (the Gets still in flight are then lost with it)."""
        frames = await self.rpc.receive()
        out: list[tuple[bytes, bytes | Rlp2pError]] = []
        for frame in frames:
            address = self._asked.popleft()
            try:
                out.append((address, _get_result(address, frame, verify)))
            except ProtocolError as exc:  # a malformed answer: that address's error
                out.append((address, exc))
        return out

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


def _update_record(update: Any, limits: Limits) -> bytes:
    """An UploadNameUpdate's record: its content, or the record its compact form (field 11) stands
    for, unverified (judged next as any record); empty when that is malformed (refused next)."""
    if update.content or not update.compact:
        return bytes(update.content)
    try:
        return expand_record(None, update.compact, limits=limits)
    except Rlp2pError:
        return b""


__all__ = ["CAS_PROTOCOL", "BlockBackend", "CasClient", "CasServer"]

