"""Polling many logs at once: which storage peers to ask, and what their answers mean.

Pure decisions over verified records, no I/O (the NS Poll extension is :mod:`rlp2p.wire.ns_poll`,
the reader that drives it :meth:`rlp2p.node.reader.Reader.poll`):

* :func:`assign` — each log goes to its first ``fanout`` storage peers not asked yet; every peer
  is asked once a round, for all of its logs (one round trip per storage peer, in parallel).
* :func:`combine` — the answers for one log: the best record offered with a sequence above the
  one the reader holds (IPNS's rule, :func:`~rlp2p.core.record.best_record`), the peers holding
  its head, and the peers that answered "unchanged" or "not held" while another offered newer:
  ``behind`` (lagging, or withholding). Fanout is the defence against a withholding replica:
  one honest peer among those asked is enough.
* :func:`needs_more` — a log for which no peer answered at all goes to its next peers.
* :func:`split` — a poll longer than one request may carry is sent as several requests,
  pipelined on one stream (still one round trip).

One record per poll, not one per replica: :func:`record_asks` picks, for each log, the one peer
of a round asked for the record (the first, the one a sync would go to); the others are asked
for the sequence only and answer NEWER with the sequence they hold (NS Poll's ``sequence_only``,
an rlp2p extension; a server without it sends the record, which is as good). A NEWER claim above
the best record received (a withholding or lagging first peer) is settled by
:func:`claims_to_fetch`: the reader asks that peer for its record, and :func:`resolve` keeps the
record if it verifies and backs the claim, else the peer is failed
(:class:`~rlp2p.errors.UnbackedSequence`). So the fanout's defence stands: one honest peer among
those asked is still enough, and a liar costs at most one more round trip.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TypeVar

import cbor2

from rlp2p.core.record import RecordInfo, best_record, record_order
from rlp2p.errors import UnbackedSequence

P = TypeVar("P", bound=Hashable)

#: bytes a log costs in a Poll request beyond its id: the field tags, lengths and sequence
POLL_ENTRY_OVERHEAD = 16


class State(Enum):
    UNCHANGED = "unchanged"  # the same sequence the reader holds
    OLDER = "older"  # a lower sequence than the reader holds (nothing sent)
    CHANGED = "changed"  # a newer record (``info``)
    NOT_HELD = "not held"  # the peer holds no record of the log
    FAILED = "failed"  # no usable answer (``error``): unreachable, refused, a bad record
    NEWER = "newer"  # a higher sequence (``sequence``), its record not asked for


@dataclass(frozen=True)
class PeerAnswer:
    """What one storage peer said about one log (its record verified by the caller)."""

    state: State
    info: RecordInfo | None = None
    error: str = ""
    #: NEWER: the sequence the peer says it holds
    sequence: int | None = None


UNCHANGED = PeerAnswer(State.UNCHANGED)
OLDER = PeerAnswer(State.OLDER)
NOT_HELD = PeerAnswer(State.NOT_HELD)


@dataclass
class LogPoll:
    """The outcome of polling one log across its storage peers."""

    name: str
    #: the sequence the reader held when it asked (None: it held no record)
    held: int | None
    #: the best record offered above ``held`` (None: nothing newer anywhere asked)
    best: RecordInfo | None = None
    #: peers whose record names ``best``'s head, in the order they were given
    holders: list = field(default_factory=list)
    #: peers that offered nothing newer (or an older newer record) while ``best`` exists
    behind: list = field(default_factory=list)
    #: peers with no usable answer, and why
    failed: dict = field(default_factory=dict)
    #: peers that answered at all (any state but FAILED)
    answered: int = 0
    #: peers that hold the very sequence the reader holds (UNCHANGED)
    same: int = 0
    #: peers that hold a lower sequence than the reader's (OLDER): behind, with nothing newer
    older: list = field(default_factory=list)
    #: every storage peer known for the log, in the order asked (set by the caller)
    peers: list = field(default_factory=list)
    #: peers that answered NEWER (sequence only) with a sequence above ``best``'s (or above
    #: ``held`` when there is no ``best``): their record is still to be fetched, highest first
    claims: dict = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.best is not None or bool(self.claims)

    @property
    def caught_up(self) -> bool:
        """Nothing newer, and some peer holds exactly what the reader holds (not only older ones
        or none: then the reader should hear why, from a plain Fetch)."""
        return self.best is None and self.same > 0 and not self.claims


def assign(
    peers_of: Mapping[str, Sequence[P]], asked: Mapping[str, set[P]], fanout: int, only: Sequence[str] | None = None
) -> dict[P, list[str]]:
    """The next round: for each log (of ``only``, default all), its first ``fanout`` peers it was
    not ``asked`` yet; grouped by peer, logs in the order given, so each peer gets one request."""
    if fanout < 1:
        raise ValueError("fanout must be at least 1")
    plan: dict[P, list[str]] = {}
    for name in peers_of if only is None else only:
        done = asked.get(name, set())
        for peer in [p for p in peers_of[name] if p not in done][:fanout]:
            plan.setdefault(peer, []).append(name)
    return plan


def record_asks(peers_of: Mapping[str, Sequence[P]], plan: Mapping[P, Sequence[str]]) -> dict[str, P]:
    """For each log of a round's ``plan``, the one peer asked for its record: the first of the
    log's peers in the plan (the one a sync would go to). The others get the sequence only."""
    planned: dict[str, set[P]] = {}
    for peer, names in plan.items():
        for name in names:
            planned.setdefault(name, set()).add(peer)
    return {name: next(p for p in peers_of[name] if p in asked) for name, asked in planned.items()}


def claims_to_fetch(poll: LogPoll, fetched: Set[P]) -> P | None:
    """The peer to ask for its record next: the highest NEWER claim above what is known (ties to
    the first asked), not yet asked for its record (``fetched``); None when nothing is left."""
    left: list[tuple[int, P]] = [(sequence, peer) for peer, sequence in poll.claims.items() if peer not in fetched]
    if not left:
        return None
    top = max(sequence for sequence, _ in left)
    return next(peer for sequence, peer in left if sequence == top)


def resolve(claim: PeerAnswer, fetched: PeerAnswer) -> PeerAnswer:
    """What a peer that claimed NEWER ``claim.sequence`` answered when asked for the record: its
    record if it verified and is at least the sequence claimed (it may have moved on), else the
    peer is failed with :class:`~rlp2p.errors.UnbackedSequence` (its ``error`` names it)."""
    claimed = claim.sequence if claim.sequence is not None else 0
    if fetched.state is State.CHANGED and fetched.info is not None and fetched.info.sequence >= claimed:
        return fetched
    got = fetched.info.sequence if fetched.info is not None else None
    why = fetched.error or f"answered {fetched.state.value}" + (f" with sequence {got}" if got is not None else "")
    exc = UnbackedSequence(f"claimed sequence {claimed}, then {why}", claimed=claimed, got=got)
    return PeerAnswer(State.FAILED, error=f"{type(exc).__name__}: {exc}")


def combine(
    name: str, held: int | None, answers: Mapping[P, PeerAnswer], order: Sequence[P]
) -> LogPoll:
    """One log's outcome from its peers' ``answers``, peers taken in ``order`` (ties go to the
    first). A CHANGED answer whose record is not above ``held`` is a peer's error: failed; so is
    a NEWER one whose sequence is not above ``held``. A NEWER peer whose sequence equals the
    best record's counts as a holder; one above it is a claim to settle (``claims``)."""
    result = LogPoll(name, held)
    newer: list[tuple[P, RecordInfo]] = []
    claimed: list[tuple[P, int]] = []
    for peer in order:
        answer = answers.get(peer)
        if answer is None:
            continue
        if answer.state is State.CHANGED and answer.info is not None and (held is None or answer.info.sequence > held):
            newer.append((peer, answer.info))
        elif answer.state is State.CHANGED:
            result.failed[peer] = f"offered sequence {answer.info.sequence if answer.info else '?'}, not above {held}"
            continue
        elif answer.state is State.NEWER:
            if answer.sequence is None or (held is not None and answer.sequence <= held):
                result.failed[peer] = f"said newer with sequence {answer.sequence}, not above {held}"
                continue
            claimed.append((peer, answer.sequence))
        elif answer.state is State.FAILED:
            result.failed[peer] = answer.error
            continue
        elif answer.state is State.UNCHANGED:
            result.same += 1
        elif answer.state is State.OLDER:
            result.older.append(peer)
        result.answered += 1
    if not newer:
        result.claims = dict(claimed)
        return result
    best = best_record(info for _, info in newer)
    result.best = best
    result.holders = [peer for peer, info in newer if info.head == best.head]
    result.claims = {peer: sequence for peer, sequence in claimed if sequence > best.sequence}
    # a peer holding the best record's very sequence: a sync may fetch from it (blocks are
    # checked by address, so a wrong guess only costs a fall-over)
    same = {peer for peer, sequence in claimed if sequence == best.sequence}
    result.holders = [peer for peer in order if peer in result.holders or peer in same]
    for peer in order:
        answer = answers.get(peer)
        if answer is None or peer in result.holders or peer in result.failed or peer in result.claims:
            continue
        if answer.state is not State.CHANGED or (answer.info is not None and record_order(answer.info) < record_order(best)):
            result.behind.append(peer)
    return result


def settles(poll: LogPoll, now: datetime) -> bool:
    """A sync may go by this poll alone: caught up, or a newer record that has not expired. Else
    (only older or no records on the peers, or only an expired newer one) it asks with Fetch,
    whose rules say why (StaleRecord) or look further for a fresh record."""
    if poll.claims:  # a higher sequence said and not fetched: Fetch looks for it
        return False
    if poll.best is None:
        return poll.caught_up
    return not poll.best.is_expired(now)


def needs_more(poll: LogPoll) -> bool:
    """Ask this log's next peers: none of those asked gave a usable answer."""
    return poll.answered == 0


def split(entries: Sequence[tuple[bytes, int | None]], max_logs: int, max_bytes: int) -> list[list[int]]:
    """Indexes of ``entries`` (binary log id, held sequence) grouped into requests of at most
    ``max_logs`` logs and about ``max_bytes`` bytes each, in order."""
    if max_logs < 1 or max_bytes < 1:
        raise ValueError("max_logs and max_bytes must be at least 1")
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, (log, _) in enumerate(entries):
        cost = len(log) + POLL_ENTRY_OVERHEAD
        if current and (len(current) >= max_logs or size + cost > max_bytes):
            groups.append(current)
            current, size = [], 0
        current.append(i)
        size += cost
    if current:
        groups.append(current)
    return groups


def held_sequence(record: bytes) -> int | None:
    """The sequence of a record this node already verified and stored (read, not verified again:
    a server compares it with a poll's); None if it cannot be read."""
    from rlp2p.core.record import _IpnsEntry  # the presence-keeping schema record.py builds

    try:
        data = cbor2.loads(_IpnsEntry.FromString(record).data)
        sequence = data["Sequence"]
    except Exception:  # a stored record always parses; anything else answers as if newer
        return None
    return sequence if type(sequence) is int else None


__all__ = [
    "NOT_HELD",
    "OLDER",
    "UNCHANGED",
    "LogPoll",
    "PeerAnswer",
    "State",
    "assign",
    "claims_to_fetch",
    "combine",
    "held_sequence",
    "needs_more",
    "record_asks",
    "resolve",
    "settles",
    "split",
]
