"""/vac/ns/1.0.0: Update(NameUpdate) -> Response, Fetch(Query) -> Content over a libp2p stream.

Frames carry ``vac.ns.NsRequest`` / ``vac.ns.NsResponse`` envelopes (proto/vac/ns.proto). The
content of a name is a signed IPNS record. A server accepts an Update only for a record that
verifies for that name, has not expired, and whose sequence beats the one it holds, and says why
when it refuses; a client verifies every record it fetches, so a lying server costs a retry, not a
wrong log.

Expiry (see :mod:`rlp2p.core.record`): a server keeps serving the record it holds after that
record expired (Fetch never looks at the clock), since it is still the publisher's signature over
her head. It refuses an Update whose record has already expired (``INVALID_RECORD``), even one
newer than what it holds: the one writer of records, the publisher, sends only records she has
just signed, so an expired one is a replay or comes from a publisher whose clock is wrong, and
she should hear so rather than have her log marked stale from its first read; the js storage
peer (interop/) and IPNS's DHT validators refuse it too. Both ends judge expiry by the node's
clock (``clock``), not the system's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from libp2p.custom_types import TProtocol

from rlp2p.core.bounds import check_record_bounds
from rlp2p.core.poll import PeerAnswer
from rlp2p.core.record import RecordInfo, verify_record
from rlp2p.errors import (
    DecodeError,
    ProtocolError,
    RecordError,
    RecordTooLarge,
    RemoteError,
    Rlp2pError,
    StaleRecord,
    WriteRefused,
)
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.rpc import (
    MemoryBudget,
    Reply,
    RpcStream,
    budget_for,
    enum_name,
    one_at_a_time,
    refusal,
    serve_stream,
)
from rlp2p.wire.admit import WriteGate, peer_of
from rlp2p.wire.ns_codec import (
    Code,
    Status,
    decode_request,
    decode_response,
    encode_error,
    encode_fetch,
    encode_status,
    encode_update,
)
from rlp2p.wire.ns_poll import PollStats, answer_poll, poll

log = logging.getLogger(__name__)

NS_PROTOCOL = TProtocol("/vac/ns/1.0.0")


# --- codec ---------------------------------------------------------------------------------


error_for = refusal(encode_error, Code.TOO_LARGE, Code.BAD_REQUEST, Code.UNAVAILABLE)


def max_request_frame(limits: Limits) -> int:
    """The largest NS request a server reads: ``large_frame`` (64 KiB), well over an Update with a
    record and a name of the largest sizes, so an oversize record still gets its TOO_LARGE status
    on an open stream; never a CAS-sized frame (8 MiB)."""
    return max(limits.large_frame, limits.max_record + limits.max_name + 64)


# --- server --------------------------------------------------------------------------------


class RecordBackend(Protocol):
    async def get_record(self, name: str) -> bytes | None: ...

    async def put_record(self, info: RecordInfo) -> None:
        """Persist a verified record; raise StaleRecord unless it beats the one held (atomically)."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class NsServer:
    """The stream handler of a storage peer's name system."""

    def __init__(
        self,
        backend: RecordBackend,
        limits: Limits = DEFAULT_LIMITS,
        *,
        idle_timeout: float = 30.0,
        budget: MemoryBudget | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.backend = backend
        self.limits = limits
        self.idle_timeout = idle_timeout
        self.budget = budget or budget_for(limits)
        #: the storage peer's wall clock: record expiry and the bounds on a record's validity
        self.clock = clock
        #: the storage peer's admission policy, which then stores the Updates (None: the backend
        #: stores every valid record)
        self.gate: WriteGate | None = None
        #: the upload-once extension's handler (rlp2p.node.forward.Forwarder.handle); None: refused
        self.forward: Callable[[ns_pb2.ForwardRequest, str | None], Awaitable[bytes]] | None = None

    async def handle_stream(self, stream: Any) -> None:
        writer = peer_of(stream)

        async def handle(frame: bytes) -> Reply:
            return await self.handle_frame(frame, writer=writer)

        await serve_stream(
            stream,
            one_at_a_time(handle),
            error_for,
            self.limits,
            idle_timeout=self.idle_timeout,
            name="ns",
            budget=self.budget,
            max_frame=max_request_frame(self.limits),
        )

    async def handle_frame(self, frame: bytes, *, writer: str | None = None) -> Reply:
        try:
            request = decode_request(frame)
        except DecodeError as exc:
            return Reply(encode_error(Code.BAD_REQUEST, str(exc)), keep_open=False)
        method = request.WhichOneof("method")
        if method == "update":
            return Reply(await self._update(request.update.name, request.update.content, writer))
        if method == "fetch":
            return Reply(await self._fetch(request.fetch.name))
        if method == "forward" and self.forward is not None:
            return Reply(await self.forward(request.forward, writer))
        if method == "poll":  # rlp2p extension: rlp2p.wire.ns_poll
            return Reply(await answer_poll(self.backend, request.poll, self.limits))
        return Reply(encode_error(Code.BAD_REQUEST, "unknown or missing method"))

    async def _update(self, name: str, record: bytes, writer: str | None = None) -> bytes:
        if len(name) > self.limits.max_name:
            return encode_status(Status.BAD_REQUEST, f"name longer than {self.limits.max_name}")
        try:
            # an expired record is refused here (ExpiredRecord is a RecordError): see the docstring
            info = verify_record(name, record, now=self.clock(), limits=self.limits)
        except RecordTooLarge as exc:
            return encode_status(Status.TOO_LARGE, str(exc))
        except (RecordError, DecodeError) as exc:
            return encode_status(Status.INVALID_RECORD, str(exc))
        try:
            check_record_bounds(info, self.clock(), self.limits)  # so a record cannot pin itself
        except RecordError as exc:
            return encode_status(Status.INVALID_RECORD, str(exc))
        try:
            if self.gate is None:
                await self.backend.put_record(info)
            else:
                await self.gate.put_record(writer, info)
        except WriteRefused as exc:
            return encode_status(Status.Value(exc.code), str(exc))
        except StaleRecord as exc:
            return encode_status(Status.STALE, str(exc))
        except Rlp2pError as exc:
            log.warning("ns: storing a record failed: %s", exc)
            return encode_status(Status.UNAVAILABLE, "storage failed")
        return encode_status(Status.OK)

    async def _fetch(self, name: str) -> bytes:
        if len(name) > self.limits.max_name:
            return encode_error(Code.BAD_REQUEST, f"name longer than {self.limits.max_name}")
        try:
            record = await self.backend.get_record(name)
        except Rlp2pError as exc:
            log.warning("ns: reading a record failed: %s", exc)
            return encode_error(Code.UNAVAILABLE, "storage failed")
        if record is None:
            return encode_error(Code.NOT_FOUND, f"no record for {name}")
        return ns_pb2.NsResponse(content=ns_pb2.Content(data=record)).SerializeToString()


# --- client --------------------------------------------------------------------------------


class NsClient:
    """NS calls on one open stream to one peer."""

    def __init__(
        self, rpc: RpcStream, limits: Limits = DEFAULT_LIMITS, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.rpc = rpc
        self.limits = limits
        self.clock = clock

    async def update(self, name: str, record: bytes) -> None:
        """Store a record; raises RemoteError with the server's status name when refused."""
        response = decode_response(await self.rpc.call(encode_update(name, record)))
        kind = response.WhichOneof("result")
        if kind == "error":
            raise RemoteError(enum_name(Code, response.error.code), response.error.message)
        if kind != "response":
            raise ProtocolError(f"unexpected answer to update: {kind}")
        if response.response.status != Status.OK:
            raise RemoteError(enum_name(Status, response.response.status), response.response.error)

    async def fetch(self, name: str, *, now: datetime | None = None, allow_expired: bool = False) -> RecordInfo:
        """The peer's record for ``name``, verified (signature, name, and expiry at ``now``, default
        the client's clock, unless ``allow_expired``: then ask :meth:`RecordInfo.is_expired`)."""
        response = decode_response(await self.rpc.call(encode_fetch(name)))
        kind = response.WhichOneof("result")
        if kind == "error":
            raise RemoteError(enum_name(Code, response.error.code), response.error.message)
        if kind != "content":
            raise ProtocolError(f"unexpected answer to fetch: {kind}")
        when = self.clock() if now is None else now
        return verify_record(name, response.content.data, now=when, limits=self.limits, allow_expired=allow_expired)


    async def poll(
        self,
        entries: Sequence[tuple[str, int | None]],
        *,
        now: datetime | None = None,
        allow_expired: bool = True,
        stats: PollStats | None = None,
        sequence_only: Sequence[bool] | None = None,
        compact: bool = True,
    ) -> list[PeerAnswer]:
        """For each (log name, sequence held or None): UNCHANGED, NOT_HELD, or CHANGED with the
        verified newer record, or FAILED for a bad record (:mod:`rlp2p.wire.ns_poll`); falls
        back to Fetch on a peer without the extension. ``sequence_only[i]``: NEWER with the
        sequence instead of the record. ``compact``: records may come in compact form."""
        when = self.clock() if now is None else now
        return await poll(
            self.rpc,
            entries,
            self.limits,
            now=when,
            allow_expired=allow_expired,
            stats=stats,
            sequence_only=sequence_only,
            compact=compact,
        )
