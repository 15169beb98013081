"""The reader's poll of many logs: each storage peer asked once, for all its logs, in parallel.

Decisions are :mod:`rlp2p.core.poll`'s; this module only asks (NS Poll, :mod:`rlp2p.wire.ns_poll`)
and reads the reader's state. See :meth:`rlp2p.node.reader.Reader.poll`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio

from rlp2p.core.poll import LogPoll, PeerAnswer, State, assign, combine, needs_more
from rlp2p.errors import Rlp2pError
from rlp2p.wire.ns_poll import PollStats

if TYPE_CHECKING:
    from rlp2p.node.reader import Reader

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
    pending = list(names)
    if now is None:
        now = reader.clock()  # one reading: every record is judged at the same instant
    max_rounds = max((len(p) for p in peers_of.values()), default=0) + 1
    for _ in range(max_rounds):
        plan = assign(peers_of, asked, reader.fanout, only=pending)
        if not plan:
            break
        report.rounds += 1

        async def ask(peer: Any, logs: list[str]) -> None:
            stats = PollStats()
            key = peer.to_string()
            try:
                async with reader.peers.ns(peer) as ns:
                    try:
                        got = await ns.poll(
                            [(n, held[n]) for n in logs], now=now, allow_expired=not reader.require_fresh, stats=stats
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
                got = [PeerAnswer(State.FAILED, error=why)] * len(logs)
            for name, answer in zip(logs, got, strict=True):
                answers[name][peer] = answer

        async with trio.open_nursery() as nursery:
            for peer, logs in plan.items():
                for name in logs:
                    asked[name].add(peer)
                nursery.start_soon(ask, peer, logs)
        pending = [n for n in pending if needs_more(combine(n, held[n], answers[n], peers_of[n]))]
        if not pending:
            break

    out: dict[str, LogPoll] = {}
    for name in names:
        result = combine(name, held[name], answers[name], peers_of[name])
        result.peers = peers_of[name]
        out[name] = result
    return out


__all__ = ["PollReport", "poll_logs"]
