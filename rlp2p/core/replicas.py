"""Which replicas, in what order: the decisions of a publish and a sync about peers, no I/O.

Peers are opaque here (any hashable: py-libp2p ids in the node, strings in tests). The node's
publisher and reader ask these functions and do what they say:

- a publisher needs ``write_quorum`` replicas to take a record (a majority of ``replicas`` by
  default), and replaces each one that failed by the next candidate (:func:`next_batch`);
- a reader takes the best record of those offered (:func:`judge_records`, the one freshness rule
  of :func:`rlp2p.core.record.best_record`), asks the peers that hold its head first, the others
  after (:func:`fallover_order`), and a head page's hints last, at most ``MAX_HINTS`` of them
  (:func:`add_hints`): a hint is the page writer's word, not a proof.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rlp2p.core.record import RecordInfo, best_record, record_order

P = TypeVar("P", bound=Hashable)

#: most CAS peers a reader takes from a head page's hint
MAX_HINTS = 16


def write_quorum(replicas: int, quorum: int | None = None) -> int:
    """The replicas that must take a record for a publish to succeed: ``quorum``, or a majority
    of ``replicas``. ValueError for a count that cannot be met."""
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    quorum = quorum or (replicas // 2 + 1)
    if not 1 <= quorum <= replicas:
        raise ValueError("write_quorum must be between 1 and replicas")
    return quorum


def next_batch(pending: Sequence[P], stored: int, replicas: int) -> tuple[list[P], list[P]]:
    """The candidates to write to next and those left: as many as copies are still missing
    (``replicas - stored``), nearest first, so each failed replica is replaced by the next one."""
    need = max(replicas - stored, 0)
    return list(pending[:need]), list(pending[need:])


@dataclass
class Judgement(Generic[P]):
    """What the records offered by several peers say."""

    best: RecordInfo
    #: the peers whose record names the best head, in the order asked (blocks first from them)
    holders: list[P]
    #: peers bypassed for the head: what each offered was older than the best (why, in words)
    older: dict[P, str] = field(default_factory=dict)


def judge_records(found: Mapping[P, RecordInfo], asked: Sequence[P]) -> Judgement[P]:
    """The best of the records ``found`` (ties go to the first of ``asked``), the peers holding
    its head, and those whose record is older. ValueError if nothing was found."""
    answered = [p for p in asked if p in found]
    best = best_record(found[p] for p in answered)
    older: dict[P, str] = {}
    for peer in answered:
        info = found[peer]
        if info.head != best.head and record_order(info) < record_order(best):
            # still asked for blocks last (blocks are content-addressed), never for the head
            why = f"seq {info.sequence} < {best.sequence}"
            if info.sequence == best.sequence:
                why = f"seq {info.sequence}, validity {info.validity.isoformat()} < {best.validity.isoformat()}"
            older[peer] = f"older ({why})"
    # a peer with an older record of the same head (one that missed a renewal) holds its blocks
    holders = [p for p in answered if found[p].head == best.head]
    return Judgement(best, holders, older)


def fallover_order(peers: Sequence[P], holders: Sequence[P]) -> list[P]:
    """Where a sync fetches blocks: the peers holding the best record first, then the rest
    (blocks are content-addressed, so an older replica may still hold most of them)."""
    first = list(dict.fromkeys(holders))
    return first + [p for p in dict.fromkeys(peers) if p not in first]


def hint_budget(hints: Sequence[bytes]) -> list[bytes]:
    """The part of a head page's CAS hint a reader considers: the first ``MAX_HINTS``."""
    return list(hints[:MAX_HINTS])


def add_hints(order: list[P], hinted: Iterable[P], known: Iterable[P]) -> None:
    """Append the hinted peers not ``known`` already to a fall-over ``order``: last resorts."""
    seen = set(known) | set(order)
    for peer in hinted:
        if peer not in seen:
            seen.add(peer)
            order.append(peer)
