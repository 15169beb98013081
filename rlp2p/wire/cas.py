"""/vac/cas/1.0.0: Add(Content) -> Address, Get(Address) -> Content over a libp2p stream.

Frames carry ``vac.cas.CasRequest`` / ``vac.cas.CasResponse`` envelopes (proto/vac/cas.proto).
The server recomputes every address it is given data for and never trusts the client's; the
client checks every block it gets against the address it asked for.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from functools import partial
from typing import Any, Protocol

from libp2p.custom_types import TProtocol

from rlp2p.core.address import address_of, address_to_text, check_address, verify_block
from rlp2p.core.pagedelta import MAX_DELTA_BASES, apply_checked, apply_page_delta, page_delta
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
from rlp2p.wire.framing import uvarint

log = logging.getLogger(__name__)

CAS_PROTOCOL = TProtocol("/vac/cas/1.0.0")
Code = cas_pb2.Error.Code


# --- codec ---------------------------------------------------------------------------------


def encode_add(data: bytes) -> bytes:
    return cas_pb2.CasRequest(add=cas_pb2.Content(data=data)).SerializeToString()


def _wrap(field_tag: bytes, data: bytes) -> bytes:
    """``<envelope field field_tag>(<inner field 1>=data)`` serialized, as protobuf writes it (an
    empty ``data`` is left out of the inner message): CasRequest.get / CasResponse.content are
    built by hand on the bulk Get path (tests/wire compare the bytes with the generated classes)."""
    if not data:
        return field_tag + b"\x00"
    data_len = uvarint(len(data))
    return b"".join((field_tag, uvarint(1 + len(data_len) + len(data)), b"\x0a", data_len, data))


def _varint_at(frame: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` of at most 3 bytes (under 2 MiB) and where it ends; (-1, pos) when
    there is none such (the caller then leaves the frame to protobuf). Unrolled: it runs twice
    per block of a bulk Get."""
    if pos < len(frame) - 2:
        b0 = frame[pos]
        if b0 < 0x80:
            return b0, pos + 1
        b1 = frame[pos + 1]
        if b1 < 0x80:
            return (b0 & 0x7F) | (b1 << 7), pos + 2
        b2 = frame[pos + 2]
        if b2 < 0x80:
            return (b0 & 0x7F) | ((b1 & 0x7F) << 7) | (b2 << 14), pos + 3
    return -1, pos


def _unwrap(field_tag: int, frame: bytes) -> bytes | None:
    """The inner field 1 of a frame that is exactly ``_wrap(field_tag, data)`` (what our peers
    and protobuf write for a Get or its Content answer), else None: the caller parses it with
    protobuf. A shortcut, never a second parser: any other shape goes the generated way."""
    if not frame or frame[0] != field_tag:
        return None
    inner, pos = _varint_at(frame, 1)
    if pos + inner != len(frame):  # the envelope spans the frame (also false for inner -1)
        return None
    if inner == 0:
        return b""
    if frame[pos] != 0x0A:
        return None
    length, pos = _varint_at(frame, pos + 1)
    if length < 0 or pos + length != len(frame):
        return None
    return frame[pos:]


#: field 2 (get / content), length-delimited
_TAG_2 = 0x12


def encode_get(address: bytes) -> bytes:
    """``CasRequest(get=Address(id=address))`` serialized."""
    return _wrap(b"\x12", address)


def encode_get_delta(address: bytes, bases: Sequence[bytes]) -> bytes:
    """A Get of ``address`` naming pages the client holds (page-delta extension, oneof 35)."""
    return cas_pb2.CasRequest(get_delta=cas_pb2.DeltaGet(id=address, bases=bases)).SerializeToString()


def encode_add_delta(address: bytes | None, delta: bytes) -> bytes:
    """An Add of a page as ``delta`` (a serialized PageDelta; oneof 36). ``address`` None: the
    page's CID is left out (the server computes it and answers it, as for an Add; 38 bytes less),
    else the server checks the page against it."""
    return cas_pb2.CasRequest(
        add_delta=cas_pb2.DeltaAdd(id=address or b"", delta=cas_pb2.PageDelta.FromString(delta))
    ).SerializeToString()


def encode_adds(blocks: Sequence[bytes], deltas: dict[bytes, bytes] | None = None) -> list[bytes]:
    """Add requests for ``blocks``; a block whose address is in ``deltas`` as that DeltaAdd."""
    if not deltas:
        return [encode_add(b) for b in blocks]
    out = []
    for block in blocks:
        address = address_of(block)
        delta = deltas.get(address)
        # the CID left out: the answer names it and the caller checks it against address_of
        out.append(encode_add(block) if delta is None else encode_add_delta(None, delta))
    return out


def encode_delta(delta: bytes, *, implied: bool = False) -> bytes:
    """``CasResponse(delta=...)``: the answer to a DeltaGet when a delta is smaller. ``implied``:
    the client named that one base only, so the delta leaves its CID out (38 B)."""
    pb = cas_pb2.PageDelta.FromString(delta)
    if implied:
        pb.base = b""
    return cas_pb2.CasResponse(delta=pb).SerializeToString()


def delta_answer(data: bytes, base: bytes | None, limits: Limits = DEFAULT_LIMITS, *, implied: bool = False) -> bytes:
    """A server's answer to a DeltaGet of ``data`` by a client holding ``base``: the delta when
    there is one smaller than the block, else the block. ``implied``: the client named that one
    base only, so the delta leaves its CID out (38 B)."""
    delta = page_delta(base, data, limits) if base is not None else None
    return encode_content(data) if delta is None else encode_delta(delta, implied=implied)


def encode_error(code: int, message: str) -> bytes:
    return cas_pb2.CasResponse(error=cas_pb2.Error(code=code, message=message[:500])).SerializeToString()  # type: ignore[arg-type]


def encode_content(data: bytes) -> bytes:
    """``CasResponse(content=Content(data=data))`` serialized, with one copy of ``data`` rather
    than protobuf's two (the bytes are the same: a test compares them)."""
    return _wrap(b"\x12", data)


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
            address = _unwrap(_TAG_2, frame)  # a plain Get, the bulk of a reader's requests
            if address is not None:
                try:
                    check_address(address)
                except AddressError:
                    pass  # refused below, as protobuf parses it
                else:
                    push("get", address)
                    continue
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
            elif method == "get_delta":
                try:
                    check_address(request.get_delta.id)
                    if len(request.get_delta.bases) > MAX_DELTA_BASES:
                        raise AddressError(f"more than {MAX_DELTA_BASES} bases")
                    for base in request.get_delta.bases:
                        check_address(base)
                except AddressError as exc:
                    push("reply", Reply(encode_error(Code.BAD_ADDRESS, str(exc))))
                else:
                    push("dget", (request.get_delta.id, list(request.get_delta.bases)))
            elif method == "add_delta":
                try:
                    if request.add_delta.id:
                        check_address(request.add_delta.id)
                    check_address(request.add_delta.delta.base)
                except AddressError as exc:
                    push("reply", Reply(encode_error(Code.BAD_ADDRESS, str(exc))))
                else:
                    # after the adds before it (the base may be one of them)
                    delta = request.add_delta.delta
                    push("dadd", (request.add_delta.id, delta.base, delta.SerializeToString()))
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
            elif kind == "dget":
                for address, bases in items:
                    async for reply in self._load_delta(address, bases, peer):
                        yield reply
            elif kind == "dadd":
                for address, base, delta in items:
                    yield await self._store_delta(address, base, delta, writer)
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

    async def _read(self, address: bytes) -> bytes | None:
        return (await self.backend.get_blocks([address])).get(address)

    async def _load_delta(self, address: bytes, bases: list[bytes], peer: Any) -> AsyncIterator[Reply]:
        """The answer to a DeltaGet: the block, or a delta against the first named base held here
        (one base read, one delta made), whichever is smaller; its bytes held in the budget
        until taken, as a Get's."""
        held = self.limits.max_answer_bytes_per_stream  # as a chunk of Gets
        await self.budget.acquire(peer, held, self.idle_timeout / 2)
        try:
            try:
                data = await self._read(address)
                base = None
                for candidate in bases:
                    if data is None or candidate == address:
                        break
                    base = await self._read(candidate)
                    if base is not None:
                        break
            except Rlp2pError as exc:
                log.warning("cas: reading blocks failed: %s", exc)
                yield Reply(encode_error(Code.UNAVAILABLE, "storage failed"))
                return
            if data is None:
                frame = encode_error(Code.NOT_FOUND, f"no block {address_to_text(address)}")
            else:
                frame = delta_answer(data, base, self.limits, implied=len(bases) == 1)
            del data, base
            self.budget.release(peer, held - min(held, len(frame)))
            held = min(held, len(frame))
            yield Reply(frame)
        finally:
            self.budget.release(peer, held)

    async def _store_delta(self, address: bytes, base_address: bytes, delta: bytes, writer: str | None) -> Reply:
        """A DeltaAdd: the base read, the delta applied, the page checked to be ``address`` (when
        the writer named it; else its CID computed, as for an Add), then stored as an Add of the
        whole page would be."""
        try:
            base = await self._read(base_address)
        except Rlp2pError as exc:
            log.warning("cas: reading blocks failed: %s", exc)
            return Reply(encode_error(Code.UNAVAILABLE, "storage failed"))
        if base is None:
            return Reply(encode_error(Code.NOT_FOUND, f"no base block {address_to_text(base_address)}"))
        try:
            if address:
                page = apply_checked(base, delta, address, self.limits)
            else:
                page = apply_page_delta(base, delta, self.limits)
                address = address_of(page)
        except (DecodeError, HashMismatch) as exc:
            return Reply(encode_error(Code.BAD_REQUEST, f"page delta: {exc}"))
        del base
        (reply,) = await self._store([(address, page)], writer)
        return reply

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
    data = _unwrap(_TAG_2, frame)  # a Content answer as everyone writes it: no protobuf object
    if data is not None:
        if verify:
            try:
                verify_block(address, data)
            except HashMismatch as exc:
                return exc
        return data
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
    """CAS calls on one open stream to one peer; every answer is checked before it is returned.

    Page deltas (rlp2p.core.pagedelta): pages the caller holds are offered with
    :meth:`offer_bases`; a Get that :meth:`send_gets` marks as a page then names them, and a
    delta answer is applied and checked against the CID asked for. A server that refuses the
    request (an old one) or answers a delta that does not give that page is asked for the page
    whole, and this client asks it no more deltas.
    """

    def __init__(self, rpc: RpcStream) -> None:
        self.rpc = rpc
        # (address, the bases named: none for a plain Get) sent by send_gets, not answered yet
        self._asked: deque[tuple[bytes, tuple[bytes, ...]]] = deque()
        #: whether to ask for deltas: False once the server refused one or answered a wrong one
        self.deltas = True
        #: pages offered as bases (CID -> bytes), the newest MAX_DELTA_BASES
        self.bases: dict[bytes, bytes] = {}
        #: delta answers taken, and the bytes of the pages they made
        self.delta_answers = 0
        self.delta_page_bytes = 0

    def offer_bases(self, pages: dict[bytes, bytes]) -> None:
        """Pages this client may name as bases (their bytes must hash to their CIDs: they were
        verified when fetched); the newest MAX_DELTA_BASES kept."""
        self.bases.update(pages)
        while len(self.bases) > MAX_DELTA_BASES:
            del self.bases[next(iter(self.bases))]

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

    async def send_gets(self, addresses: Sequence[bytes], pages: Collection[bytes] = ()) -> None:
        """Ask for ``addresses`` in one write; keep at most ``rpc.window`` in flight. Those in
        ``pages`` are asked as deltas against the offered bases, if any and deltas are on."""
        bases = tuple(self.bases) if self.deltas else ()
        asked = [(a, bases if a in pages and a not in self.bases else ()) for a in addresses]
        self._asked.extend(asked)
        await self.rpc.send([encode_get_delta(a, named) if named else encode_get(a) for a, named in asked])

    def abandon(self) -> list[bytes]:
        """Give up the Gets in flight (their answers are left unread, so the stream is not used
        again): returns their addresses."""
        asked = [a for a, _ in self._asked]
        self._asked.clear()
        if asked:
            self.rpc.broken = True
        return asked

    def _delta_result(
        self, address: bytes, named: tuple[bytes, ...], frame: bytes, verify: bool
    ) -> bytes | Rlp2pError | None:
        """A DeltaGet's answer: the page, an error for it, or None: ask for it whole."""
        response = decode_response(frame)
        kind = response.WhichOneof("result")
        if kind == "delta":
            delta = response.delta.SerializeToString()
            # no base named in the delta: the one base we named (the server left its CID out)
            implied = named[0] if len(named) == 1 and not response.delta.base else response.delta.base
            base = self.bases.get(implied) if implied in named else None
            try:
                if base is None:
                    raise ProtocolError("the delta names a base we did not offer")
                page = apply_checked(base, delta, address, self.rpc.limits)
            except (DecodeError, HashMismatch, ProtocolError) as exc:
                log.info("cas: a wrong page delta for %s (%s): asking for it whole", address_to_text(address), exc)
                self.deltas = False
                return None
            self.delta_answers += 1
            self.delta_page_bytes += len(page)
            return page
        if kind == "error" and response.error.code == Code.BAD_REQUEST:
            self.deltas = False  # an old server: plain Gets from now on
            return None
        return _get_result(address, frame, verify)

    async def receive_gets(self, *, verify: bool = True) -> list[tuple[bytes, bytes | Rlp2pError]]:
        """The answers that have arrived (at least one), in the order asked: per address the
        verified bytes or the error for that one, as :meth:`get_many` (``verify`` as there). Raises as ``rpc.receive``
        when the stream fails (the Gets still in flight are then lost with it). A delta that
        was refused or wrong is asked again whole (its answer comes in a later call)."""
        out: list[tuple[bytes, bytes | Rlp2pError]] = []
        # bounded: each pass takes at least one answer; only delta asks are asked again, once
        for _ in range(2 * len(self._asked) + 1):
            frames = await self.rpc.receive()
            again: list[bytes] = []
            for frame in frames:
                address, named = self._asked.popleft()
                try:
                    result = self._delta_result(address, named, frame, verify) if named else _get_result(address, frame, verify)
                except ProtocolError as exc:  # a malformed answer: that address's error
                    result = exc
                if result is None:
                    again.append(address)
                else:
                    out.append((address, result))
            if again:
                await self.send_gets(again)
            if out or not self._asked:
                break
        return out

    async def get(self, address: bytes) -> bytes:
        result = (await self.get_many([address]))[address]
        if isinstance(result, Exception):
            raise result
        return result

    async def add_deltas(self, deltas: dict[bytes, bytes]) -> dict[bytes, Rlp2pError | None]:
        """Store pages given as deltas (page address -> serialized PageDelta), pipelined: per
        page None when stored, else the refusal (NOT_FOUND base, BAD_REQUEST from an old server)."""
        addresses = list(deltas)
        frames = await self.rpc.call_many([encode_add_delta(None, deltas[a]) for a in addresses])
        out: dict[bytes, Rlp2pError | None] = {}
        for address, frame in zip(addresses, frames, strict=True):
            response = decode_response(frame)
            kind = response.WhichOneof("result")
            if kind == "error":
                out[address] = _remote_error(response.error)
            elif kind != "address" or response.address.id != address:
                out[address] = ProtocolError(f"unexpected answer to a delta add: {kind}")
            else:
                out[address] = None
        return out

    async def add_many(self, blocks: Sequence[bytes], deltas: dict[bytes, bytes] | None = None) -> list[bytes]:
        """Store blocks, pipelined; returns their addresses. Raises on the first refusal, and if
        the server names an address other than the one we compute. A block whose address is in
        ``deltas`` is sent as that page delta (see :meth:`add_deltas`)."""
        frames = await self.rpc.call_many(encode_adds(blocks, deltas))
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

