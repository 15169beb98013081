"""Upload once: what a publisher asks a forwarding storage peer to copy, and what it believes.

Alice uploads a publish's new blocks and her record to one storage peer (the forwarder), then
asks it, in one small request, to copy them to the other replicas (the targets). Each target
lacks a list of blocks Alice computed (:func:`~rlp2p.core.publish.lacking`); replicas in step lack
the same list, so it is sent once and shared. A target that holds nothing usable gets the whole
log (the forwarder walks it from the head). The request's size is bounded: lists that do not fit
``MAX_FORWARD_BLOCKS`` become WHOLE (a superset: sending a block a target holds is harmless).

Trust: blocks are content-addressed and the record is Alice's signature, so the forwarder can
forge nothing; targets verify both as always. It can lie about a target only by saying it stored
what it did not, so Alice confirms each target herself with one NS Fetch (a few dozen bytes out):
a target serving her record at this sequence verified and took it (:func:`confirm`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from rlp2p.errors import LimitExceeded

__all__ = [
    "MAX_FORWARD_BLOCKS",
    "MAX_FORWARD_TARGETS",
    "MAX_HINT_INDEX",
    "MAX_TARGET_ADDRS",
    "Confirmation",
    "Lacks",
    "TargetPlan",
    "check_forward",
    "confirm",
    "plan_forward",
]

#: targets one forward request names (the forwarder's work per request is bounded by it)
MAX_FORWARD_TARGETS = 8
#: block addresses one forward request lists in all (~38 B each: ~40 KiB, under an NS frame)
MAX_FORWARD_BLOCKS = 1024
#: addresses a target is named with, each at most ``MAX_ADDR_BYTES``
MAX_TARGET_ADDRS = 4
MAX_ADDR_BYTES = 256
#: the highest position in the head page's CAS hint a compact target may name
MAX_HINT_INDEX = 64


class Lacks(Enum):
    SHARED = 0  # the request's shared list
    WHOLE = 1  # everything the record's head reaches
    OWN = 2  # a list of its own


@dataclass(frozen=True)
class TargetPlan:
    lacks: Lacks
    blocks: list[bytes] = field(default_factory=list)  # for OWN only


def plan_forward(
    lacking: Sequence[list[bytes] | None], max_blocks: int = MAX_FORWARD_BLOCKS
) -> tuple[list[bytes], list[TargetPlan]]:
    """The shared list and one plan per target, from what each target lacks (None: nothing usable,
    the whole log). The most common list is shared; the others are listed while the request stays
    within ``max_blocks`` addresses, else sent WHOLE."""
    counts = Counter(tuple(x) for x in lacking if x is not None)
    shared: list[bytes] = []
    if counts:
        most = max(counts, key=lambda k: (counts[k], -len(k)))
        if len(most) <= max_blocks:
            shared = list(most)
    budget = max_blocks - len(shared)
    plans: list[TargetPlan] = []
    for blocks in lacking:
        if blocks is None:
            plans.append(TargetPlan(Lacks.WHOLE))
        elif blocks == shared:
            plans.append(TargetPlan(Lacks.SHARED))
        elif len(blocks) <= budget:
            budget -= len(blocks)
            plans.append(TargetPlan(Lacks.OWN, list(blocks)))
        else:
            plans.append(TargetPlan(Lacks.WHOLE))
    return shared, plans


def check_forward(targets: int, blocks: int, addrs: Sequence[int], hints: Sequence[int] = ()) -> None:
    """Raise LimitExceeded unless a forward request's counts fit its limits: ``targets`` named,
    ``blocks`` addresses listed in all, ``addrs`` the byte sizes of each target's addresses,
    ``hints`` the compact targets' positions in the head page's CAS hint."""
    for hint in hints:
        if hint > MAX_HINT_INDEX:
            raise LimitExceeded("forward target hint position", hint, MAX_HINT_INDEX)
    if targets > MAX_FORWARD_TARGETS:
        raise LimitExceeded("forward targets", targets, MAX_FORWARD_TARGETS)
    if blocks > MAX_FORWARD_BLOCKS:
        raise LimitExceeded("forward block addresses", blocks, MAX_FORWARD_BLOCKS)
    if len(addrs) > MAX_TARGET_ADDRS * max(targets, 1):
        raise LimitExceeded("forward target addresses", len(addrs), MAX_TARGET_ADDRS * max(targets, 1))
    for size in addrs:
        if size > MAX_ADDR_BYTES:
            raise LimitExceeded("forward target address", size, MAX_ADDR_BYTES)


class Confirmation(Enum):
    STORED = "stored"  # it serves this very record
    HIGHER = "higher"  # it serves a record of ours with a higher sequence (our state is behind)
    MISSING = "missing"  # no record, or an older one: the forward did not reach it


def confirm(record: bytes, sequence: int, held: bytes | None, held_seq: int) -> Confirmation:
    """What a target's answer to Alice's own NS Fetch says (``held``: the record it serves, verified
    for her name, and its sequence; None if it has none)."""
    if held is None:
        return Confirmation.MISSING
    if held == record:
        return Confirmation.STORED
    return Confirmation.HIGHER if held_seq >= sequence else Confirmation.MISSING
