"""The reader's poll of many logs: each storage peer asked once, for all its logs, in parallel.

Decisions are :mod:`rlp2p.core.poll`'s; this module only asks (NS Poll, :mod:`rlp2p.wire.ns_poll`)
and reads the reader's state. Each log's record is asked of one peer of a round, the sequence
only of the others; a higher sequence said by another is followed with one more ask of it. See :meth:`rlp2p.node.reader.Reader.poll`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio

from rlp2p.core.poll import (
    LogPoll,
    PeerAnswer,
    State,
    assign,
    claims_to_fetch,
    combine,
    needs_more,
    record_asks,
    resolve,
)
from rlp2p.errors import Rlp2pError
from rlp2p.wire.ns_poll import PollStats

if TYPE_CHECKING:
    from rlp2p.node.reader import Reader

log = logging.getLogger(__name__)

#: storage-peer lookups (DHT) a poll runs at once
FIND_CONCURRENCY = 8


@dataclass
class PollReport:
    """What one :meth:`Reader.poll` cost."""

    #: sequential rounds of parallel asks (one unless a log's first peers all failed)
    rounds: int = 0
    #: request/answer waits per storage peer (one, unless its answer was cut by its budget or
    #: it lacks Poll and was asked with Fetch after)
    round_trips: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    streams: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    #: peers that do not speak Poll (asked with the spec's Fetch instead)
    fell_back: list[str] = field(default_factory=list)
    #: peers that failed as a whole, and why
    failed: dict[str, str] = field(default_factory=dict)
    #: logs whose record was asked again of a peer that said a higher sequence than received
    followed_claims: int = 0
    #: peers that said a higher sequence and could not back it (UnbackedSequence), and how
    unbacked: dict[str, str] = field(default_factory=dict)


async def poll_logs(
    reader: Reader,
    names: list[str],
    report: PollReport | None = None,
    *,
    known_peers: dict[str, list[Any]] | None = None,
    now: datetime | None = None,
) -> dict[str, LogPoll]:
    """Poll ``names`` (see :meth:`Reader.poll`); ``known_peers`` skips finding their peers."""
    report = report if report is not None else PollReport()
    store = reader.store
    names = list(dict.fromkeys(names))
    states = await reader.astore.call(lambda: {n: store.get_reader_state(n) for n in names})
    held = {n: (s.record_seq if s.record is not None else None) for n, s in states.items()}

    peers_of: dict[str, list[Any]] = dict(known_peers or {})
    limiter = trio.CapacityLimiter(FIND_CONCURRENCY)

    async def find(name: str) -> None:
        async with limiter:
            try:
                peers_of[name] = await reader.find_peers(name)
            except Rlp2pError:
                peers_of[name] = []

    async with trio.open_nursery() as nursery:
        for name in names:
            if name not in peers_of:
                nursery.start_soon(find, name)

    answers: dict[str, dict[Any, PeerAnswer]] = {n: {} for n in names}
    asked: dict[str, set[Any]] = {n: set() for n in names}
    # the peers each log's record was asked from (the others: its sequence only)
    fetched: dict[str, set[Any]] = {n: set() for n in names}
    pending = list(names)
    if now is None:
        now = reader.clock()  # one reading: every record is judged at the same instant

    async def ask(peer: Any, logs: list[str], only: list[bool]) -> list[PeerAnswer]:
        stats = PollStats()
        key = peer.to_string()
        try:
            async with reader.peers.ns(peer) as ns:
                try:
                    return await ns.poll(
                        [(n, held[n]) for n in logs],
                        now=now,
                        allow_expired=not reader.require_fresh,
                        stats=stats,
                        sequence_only=only if any(only) else None,
                    )
                finally:
                    report.streams += ns.rpc.new_streams
                    report.bytes_in += ns.rpc.bytes_in
                    report.bytes_out += ns.rpc.bytes_out
                    report.requests += stats.requests
                    report.round_trips[key] = report.round_trips.get(key, 0) + stats.round_trips
                    if stats.fell_back:
                        report.fell_back.append(key)
        except Rlp2pError as exc:
            why = f"poll: {type(exc).__name__}: {exc}"
            report.failed[key] = why
            return [PeerAnswer(State.FAILED, error=why)] * len(logs)

    max_rounds = max((len(p) for p in peers_of.values()), default=0) + 1
    for _ in range(max_rounds):
        plan = assign(peers_of, asked, reader.fanout, only=pending)
        if not plan:
            break
        report.rounds += 1
        # one peer per log is asked for the record, the rest for the sequence only
        records = record_asks(peers_of, plan)

        async def ask_round(peer: Any, logs: list[str], only: list[bool]) -> None:
            got = await ask(peer, logs, only)
            for name, answer in zip(logs, got, strict=True):
                answers[name][peer] = answer

        async with trio.open_nursery() as nursery:
            for peer, logs in plan.items():
                for name in logs:
                    asked[name].add(peer)
                    if records[name] == peer:
                        fetched[name].add(peer)
                nursery.start_soon(ask_round, peer, logs, [records[n] != peer for n in logs])
        pending = [n for n in pending if needs_more(combine(n, held[n], answers[n], peers_of[n]))]
        if not pending:
            break

    # a peer said a higher sequence than the record received (the record's peer withholding or
    # lagging): ask it for its record; each peer at most once per log, so bounded by its peers
    for _ in range(max_rounds):
        follow: dict[Any, list[str]] = {}
        for name in names:
            peer = claims_to_fetch(combine(name, held[name], answers[name], peers_of[name]), fetched[name])
            if peer is not None:
                follow.setdefault(peer, []).append(name)
        if not follow:
            break
        report.rounds += 1
        report.followed_claims += sum(len(logs) for logs in follow.values())

        async def ask_record(peer: Any, logs: list[str]) -> None:
            got = await ask(peer, logs, [False] * len(logs))
            for name, answer in zip(logs, got, strict=True):
                settled = resolve(answers[name][peer], answer)
                if settled.state is State.FAILED:
                    log.warning("poll of %s: %s ignored: %s", name, peer.to_string(), settled.error)
                    report.unbacked[peer.to_string()] = settled.error
                answers[name][peer] = settled

        async with trio.open_nursery() as nursery:
            for peer, logs in follow.items():
                for name in logs:
                    fetched[name].add(peer)
                nursery.start_soon(ask_record, peer, logs)

    out: dict[str, LogPoll] = {}
    for name in names:
        result = combine(name, held[name], answers[name], peers_of[name])
        result.peers = peers_of[name]
        out[name] = result
    return out


__all__ = ["PollReport", "poll_logs"]
