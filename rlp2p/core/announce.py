"""Live updates: the gossipsub topic of a log, and whether an announcement received may trigger work.

An announcement is a log's serialized IPNS record, unchanged, published on the log's topic
``/rlp2p/log/<name>`` (``name`` is the log key's base58btc peer id, the same name readers sync;
the same text the provider key of ``placement.py`` hashes). Nothing new is signed or parsed: an
announcement is verified exactly like a record fetched from a storage peer.

The verdict is pure (no clock read, no store): the node hands in what it holds for the log.

* accept, new: a valid record for the topic's log with a sequence above the one held; the only
  verdict that triggers work (a sync);
* accept, not new: a byte-identical copy of the record held, or a valid record at least as new
  as the one held a short while ago (``floor_seq``): honest relays deliver late (a mesh peer's
  copy after a faster one, the message cache gossipsub replays to a new subscriber), and
  rejecting those would punish them; passing them on costs one message per link;
* reject: anything else, which gossipsub drops and counts against the peer that sent it
  (malformed, forged, signed by another key, expired, over 10 KiB, or a valid record older than
  anything held lately: a replay).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from rlp2p.core.keys import name_to_peer_id
from rlp2p.core.record import RecordInfo, verify_record
from rlp2p.errors import DecodeError, RecordError
from rlp2p.limits import DEFAULT_LIMITS, Limits

#: a log's topic is this prefix followed by the log's name
TOPIC_PREFIX = "/rlp2p/log/"


def log_topic(name: str) -> str:
    """The gossipsub topic on which records of log ``name`` are announced."""
    return TOPIC_PREFIX + name


def topic_log(topic: str, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """The log name a topic belongs to; :class:`DecodeError` for any other topic."""
    if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIX):
        raise DecodeError(f"not an rlp2p log topic: {str(topic)[:80]!r}")
    if len(topic) > len(TOPIC_PREFIX) + limits.max_name:
        raise DecodeError(f"topic over {len(TOPIC_PREFIX) + limits.max_name} characters")
    name = topic[len(TOPIC_PREFIX) :]
    name_to_peer_id(name, limits=limits)  # a log name is a peer id
    return name


def announcement_id(data: bytes) -> bytes:
    """Gossipsub message id of an announcement: the hash of the record, so the same record
    announced by Alice and by each of her replicas is one message, seen once."""
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Verdict:
    accept: bool
    #: a record newer than the one held: sync the log
    new: bool = False
    info: RecordInfo | None = None
    reason: str = ""


def judge_announcement(
    topics: list[str],
    data: bytes,
    held_seq: int,
    held_raw: bytes | None,
    *,
    now: datetime,
    floor_seq: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Verdict:
    """Judge an announcement received on ``topics`` against the record held (seq 0: none) and
    ``floor_seq``, the sequence held a short while ago (default: ``held_seq``, no grace)."""
    if len(topics) != 1:
        return Verdict(False, reason=f"an announcement names one log, this one {len(topics)} topics")
    try:
        name = topic_log(topics[0], limits=limits)
        info = verify_record(name, data, now=now, limits=limits)
    except (DecodeError, RecordError) as exc:
        return Verdict(False, reason=f"{type(exc).__name__}: {exc}")
    if info.sequence > held_seq:
        return Verdict(True, new=True, info=info)
    if info.sequence == held_seq and data == held_raw:
        return Verdict(True, info=info, reason="the record held")
    floor = held_seq if floor_seq is None else min(floor_seq, held_seq)
    if floor <= info.sequence < held_seq:
        return Verdict(True, info=info, reason=f"late: sequence {info.sequence}, held {floor} lately")
    return Verdict(False, info=info, reason=f"replay: sequence {info.sequence}, holding {held_seq}")


__all__ = ["TOPIC_PREFIX", "Verdict", "announcement_id", "judge_announcement", "log_topic", "topic_log"]
