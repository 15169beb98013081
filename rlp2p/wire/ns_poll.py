"""Poll: a conditional, batched Fetch on /vac/ns/1.0.0 (an rlp2p extension; the spec's Fetch is
unchanged).

A request (``NsRequest.poll``, proto/vac/ns.proto) names up to ``Limits.max_poll_names`` logs by
binary peer id, each with the sequence the reader holds; the answer (``NsResponse.polled``) has,
in request order, the record of each log the server holds with a higher sequence, and a 2-byte
UNCHANGED (same sequence), OLDER or NOT_HELD for the rest. A caught-up poll of one log is about 50 bytes each way
instead of a whole record.

Bounded: the request is one frame of at most the NS request size (64 KiB); the server reads
records :data:`READ_CHUNK` logs at a time and stops adding records once the answer would pass
:data:`MAX_POLL_ANSWER` (256 KiB, at most ``Limits.max_answer_bytes_per_stream``); the client
asks again for the logs left unanswered. A log
asked with ``sequence_only`` (PollLog field 10, the pollrecord extension) is answered, when newer,
CHANGED with the sequence held (PollResult field 10) and no record: the reader polling its fanout
takes the record from one replica only (:func:`rlp2p.core.poll.record_asks`); a server from
before ignores the field and sends the record. A poll with ``compact`` (PollQuery field 11, the
compactrec extension) is answered, for a record that compacts, CHANGED with PollResult.compact in
place of the record: a ``CompactRecord`` with Value and TTL (rlp2p/core/compact.py), 151 B
instead of 221, from which the reader rebuilds the exact record with the log's name alone and
verifies it as any record; a server from before ignores the field and sends records. A
server without the extension answers BAD_REQUEST (py servers before it, the js storage peer in
interop/): :func:`poll` then falls back to the spec's Fetch, pipelined on the same stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from libp2p.peer.id import ID

from rlp2p.core.compact import expand_record, standalone_compact
from rlp2p.core.keys import name_to_peer_id
from rlp2p.core.poll import NOT_HELD, OLDER, UNCHANGED, PeerAnswer, State, held_sequence, split
from rlp2p.core.record import verify_record
from rlp2p.errors import DecodeError, ProtocolError, RecordError, RemoteError, Rlp2pError
from rlp2p.limits import Limits
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.ns_codec import Code, decode_response, encode_error, encode_fetch
from rlp2p.wire.rpc import RpcStream, enum_name

log = logging.getLogger(__name__)

PollState = ns_pb2.PollResult.State
#: logs whose records a server reads from its store at once while answering a poll
READ_CHUNK = 64
#: bytes an answer carries beyond its records (one empty result: 2 bytes; a record's tag and length)
RESULT_OVERHEAD = 8
#: most bytes of one poll answer, under ``Limits.max_answer_bytes_per_stream``: 1,000 compact
#: records (221 B) fit; an answer is built whole before it is written, and, like a Fetch answer,
#: is not charged to the server's memory budget, so it stays small
MAX_POLL_ANSWER = 256 * 1024
#: request bytes a client puts in one poll frame (under the servers' 64 KiB NS request frame)
MAX_POLL_FRAME = 48 * 1024

# --- codec ---------------------------------------------------------------------------------------


def encode_poll(
    entries: Sequence[tuple[bytes, int | None]], sequence_only: Sequence[bool] | None = None, *, compact: bool = False
) -> bytes:
    """A Poll of ``(binary log id, held sequence or None)``; ``sequence_only[i]`` asks for entry
    ``i``'s sequence only (the pollrecord extension, PollLog field 10); ``compact`` takes compact
    records (PollQuery field 11)."""
    logs = []
    for i, (log_id, sequence) in enumerate(entries):
        entry = ns_pb2.PollLog(log=log_id)
        if sequence is not None:
            entry.sequence = sequence
        if sequence_only is not None and sequence_only[i]:
            entry.sequence_only = True
        logs.append(entry)
    return ns_pb2.NsRequest(poll=ns_pb2.PollQuery(logs=logs, compact=compact)).SerializeToString()


def encode_answer(results: Sequence[tuple[int, bytes] | tuple[int, bytes, int] | ns_pb2.PollResult]) -> bytes:
    """A Poll answer of ``(state, record)`` (record empty unless CHANGED), or ``(CHANGED, b"",
    sequence)``: the sequence only, for a log asked with ``sequence_only``; or PollResults."""
    out = []
    for result in results:
        if isinstance(result, ns_pb2.PollResult):
            out.append(result)
            continue
        item = ns_pb2.PollResult(state=result[0], record=result[1])  # type: ignore[arg-type]
        if len(result) > 2:
            item.sequence = result[2]  # type: ignore[misc]
        out.append(item)
    return ns_pb2.NsResponse(polled=ns_pb2.PollAnswer(results=out)).SerializeToString()


# --- server --------------------------------------------------------------------------------------

GetRecord = Callable[[str], Awaitable[bytes | None]]
GetRecords = Callable[[list[str]], Awaitable[dict[str, bytes]]]


async def answer_poll(backend: Any, query: ns_pb2.PollQuery, limits: Limits) -> bytes:
    """The answer frame to a Poll: see the module docstring. ``backend`` is the NS server's
    :class:`~rlp2p.wire.ns.RecordBackend`; one with ``get_records(names)`` reads a chunk at once."""
    if len(query.logs) > limits.max_poll_names:
        return encode_error(Code.TOO_LARGE, f"poll of {len(query.logs)} logs; at most {limits.max_poll_names}")
    names: list[str] = []
    for entry in query.logs:
        if not entry.log or len(entry.log) > limits.max_name:
            return encode_error(Code.BAD_REQUEST, "a poll names a log by its binary peer id")
        names.append(ID(entry.log).to_base58())
    cap = min(limits.max_answer_bytes_per_stream, MAX_POLL_ANSWER)
    get_many: GetRecords | None = getattr(backend, "get_records", None)
    results: list[tuple[int, bytes] | tuple[int, bytes, int] | ns_pb2.PollResult] = []
    size = 0
    try:
        for start in range(0, len(names), READ_CHUNK):
            chunk = names[start : start + READ_CHUNK]
            if get_many is not None:
                held = await get_many(chunk)
            else:
                held = {}
                for name in chunk:
                    record = await backend.get_record(name)
                    if record is not None:
                        held[name] = record
            for offset, name in enumerate(chunk):
                entry = query.logs[start + offset]
                record = held.get(name)
                if record is None:
                    results.append((PollState.NOT_HELD, b""))
                    size += 2
                    continue
                sequence = held_sequence(record)
                if entry.HasField("sequence") and sequence is not None and sequence <= entry.sequence:
                    results.append((PollState.UNCHANGED if sequence == entry.sequence else PollState.OLDER, b""))
                    size += 2
                    continue
                if entry.sequence_only and sequence is not None:
                    results.append((PollState.CHANGED, b"", sequence))  # a dozen bytes, not the record
                    size += RESULT_OVERHEAD + 4
                    continue
                compact = standalone_compact(record) if query.compact else None
                sent = record if compact is None else compact
                if results and size + len(sent) + RESULT_OVERHEAD > cap:
                    return encode_answer(results)  # the client asks again for the rest
                if compact is None:
                    results.append((PollState.CHANGED, record))
                else:
                    results.append(ns_pb2.PollResult(state=PollState.CHANGED, compact=compact))
                size += len(sent) + RESULT_OVERHEAD
    except Rlp2pError as exc:
        log.warning("ns: reading records for a poll failed: %s", exc)
        return encode_error(Code.UNAVAILABLE, "storage failed")
    return encode_answer(results)


# --- client --------------------------------------------------------------------------------------


class PollStats:
    """What one peer's poll cost: round trips, and whether it fell back to Fetch."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.requests = 0
        self.fell_back = False


async def poll(
    rpc: RpcStream,
    entries: Sequence[tuple[str, int | None]],
    limits: Limits,
    *,
    now: datetime,
    allow_expired: bool = True,
    stats: PollStats | None = None,
    sequence_only: Sequence[bool] | None = None,
    compact: bool = True,
) -> list[PeerAnswer]:
    """Poll one peer for ``entries`` (log name, held sequence or None); an answer per entry, in
    order, every record verified (a bad one is FAILED for its log, not for the others).
    ``sequence_only[i]`` asks for entry ``i``'s sequence only: NEWER with the sequence, or the
    record from a server without the extension (judged as usual). ``compact`` takes records in
    compact form (rebuilt, then verified as any record).

    All requests go pipelined on ``rpc`` (one round trip) unless the answer was cut by the
    server's budget; a server without Poll is asked with Fetch instead (one more round trip).
    Raises for a failed stream or a refused request (the caller counts the peer as failed).
    """
    stats = stats if stats is not None else PollStats()
    ids = [(name_to_peer_id(name, limits=limits).to_bytes(), held) for name, held in entries]
    answers: list[PeerAnswer | None] = [None] * len(entries)
    todo = list(range(len(entries)))
    # each round answers at least one log (a server always sends one result): bounded by len
    for _ in range(len(entries) + 1):
        if not todo:
            break
        groups = [[todo[i] for i in group] for group in split([ids[i] for i in todo], limits.max_poll_names, MAX_POLL_FRAME)]
        only = sequence_only
        frames = await rpc.call_many(
            [
                encode_poll(
                    [ids[i] for i in group],
                    None if only is None else [only[i] for i in group],
                    # a query for sequences only gets no record: the flag would be 2 wasted bytes
                    compact=compact and (only is None or not all(only[i] for i in group)),
                )
                for group in groups
            ]
        )
        stats.round_trips += 1
        stats.requests += len(groups)
        left: list[int] = []
        for group, frame in zip(groups, frames, strict=True):
            response = decode_response(frame)
            kind = response.WhichOneof("result")
            if kind == "error":
                if response.error.code == Code.BAD_REQUEST and all(a is None for a in answers):
                    stats.fell_back = True
                    return await _fetch_instead(rpc, entries, limits, now=now, allow_expired=allow_expired, stats=stats)
                raise RemoteError(enum_name(Code, response.error.code), response.error.message)
            if kind != "polled":
                raise ProtocolError(f"unexpected answer to poll: {kind}")
            results = response.polled.results
            if len(results) > len(group) or (not results and group):
                raise ProtocolError(f"poll of {len(group)} logs answered with {len(results)} results")
            for index, result in zip(group, results, strict=False):
                asked_only = sequence_only is not None and sequence_only[index]
                answers[index] = _judge(entries[index], result, limits, now, allow_expired, asked_only, compact)
            left += group[len(results) :]
        todo = left
    if todo:
        raise ProtocolError("poll did not finish")
    return [a for a in answers if a is not None]


def _judge(
    entry: tuple[str, int | None],
    result: ns_pb2.PollResult,
    limits: Limits,
    now: datetime,
    allow_expired: bool,
    sequence_only: bool = False,
    compact: bool = False,
) -> PeerAnswer:
    name, held = entry
    if result.state == PollState.CHANGED and not result.record and result.HasField("sequence"):
        if not sequence_only:
            return PeerAnswer(State.FAILED, error="poll: the sequence only, where the record was asked for")
        return PeerAnswer(State.NEWER, sequence=result.sequence)
    if result.state == PollState.UNCHANGED:
        return UNCHANGED
    if result.state == PollState.NOT_HELD:
        return NOT_HELD
    if result.state == PollState.OLDER:
        return OLDER
    if result.state != PollState.CHANGED:
        return PeerAnswer(State.FAILED, error=f"poll: unknown state {result.state}")
    if result.compact and (result.record or not compact):
        return PeerAnswer(State.FAILED, error="poll: a compact record where it was not asked for")
    try:
        record = expand_record(None, result.compact, limits=limits) if result.compact else result.record
        info = verify_record(name, record, now=now, limits=limits, allow_expired=allow_expired)
    except (RecordError, DecodeError) as exc:
        return PeerAnswer(State.FAILED, error=f"record: {type(exc).__name__}: {exc}")
    return PeerAnswer(State.CHANGED, info)


async def _fetch_instead(
    rpc: RpcStream,
    entries: Sequence[tuple[str, int | None]],
    limits: Limits,
    *,
    now: datetime,
    allow_expired: bool,
    stats: PollStats,
) -> list[PeerAnswer]:
    """The spec's Fetch for every entry, pipelined: what a server without Poll can answer."""
    out: list[PeerAnswer] = []
    for start in range(0, len(entries), limits.max_pipeline):
        chunk = entries[start : start + limits.max_pipeline]
        frames = await rpc.call_many([encode_fetch(name) for name, _ in chunk])
        stats.round_trips += 1
        stats.requests += len(chunk)
        for (name, held), frame in zip(chunk, frames, strict=True):
            response = decode_response(frame)
            kind = response.WhichOneof("result")
            if kind == "error" and response.error.code == Code.NOT_FOUND:
                out.append(NOT_HELD)
                continue
            if kind == "error":
                out.append(PeerAnswer(State.FAILED, error=f"{enum_name(Code, response.error.code)}: {response.error.message}"))
                continue
            if kind != "content":
                raise ProtocolError(f"unexpected answer to fetch: {kind}")
            try:
                info = verify_record(name, response.content.data, now=now, limits=limits, allow_expired=allow_expired)
            except (RecordError, DecodeError) as exc:
                out.append(PeerAnswer(State.FAILED, error=f"record: {type(exc).__name__}: {exc}"))
                continue
            if held is not None and info.sequence <= held:
                out.append(UNCHANGED if info.sequence == held else OLDER)
            else:
                out.append(PeerAnswer(State.CHANGED, info))
    return out


__all__ = ["PollStats", "answer_poll", "encode_answer", "encode_poll", "poll"]
