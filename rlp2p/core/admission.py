"""Admission for writers: whose blocks and records a storage peer stores, and how much of them.

Pure policy over plain values; the node asks it before every write (see ``rlp2p.node.storage``)
and the answer is either nothing (admitted) or a typed :class:`~rlp2p.errors.WriteRefused` that
travels back to the writer as ``QUOTA`` or ``NOT_ALLOWED``. Reads are never asked about.

Who is who: a *writer* is the libp2p peer id of the host that opened the stream (Alice's node
key, not her log key); a *log name* is the peer id of a log key. Both are base58 peer ids, so one
allow-list holds either kind and an entry matches a writer or a name.

Modes:

* ``open``: anyone may write, within the per-peer quotas. Allow-listed writers are exempt from
  the per-peer quotas and the rate limit.
* ``allowlist``: records are stored only for an allow-listed name or from an allow-listed
  writer. A CAS block does not say which log it belongs to, so when the list names logs, any
  writer may still upload blocks within its per-peer quotas (blocks that no held head reaches are
  collected by retention); when the list names no log (only writers), strangers may not write
  at all.
* ``invite``: only writers that presented a valid, unexpired invitation signed by this storage
  peer (:mod:`rlp2p.core.invitation`) write, within the invitation's byte quota (or the per-peer
  one when it sets none); an invitation for a log admits records for that log only. Allow-listed
  writers and logs are admitted as in ``allowlist``.

Attribution: a block's bytes count against the peer that first stored it (a block already held
costs nothing: content addressing deduplicates). A name counts against the peer whose update
first created it. A log's bytes are what its head reaches, as the last retention pass measured
them (walking a log on every update would cost O(history)); an update of a log measured over
its quota is refused.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from libp2p.rcmgr.token_bucket import TokenBucket, TokenBucketConfig

from rlp2p.errors import DecodeError, NotAllowed, QuotaExceeded

if TYPE_CHECKING:
    from rlp2p.core.invitation import Invitation

GiB = 1024 * 1024 * 1024
MiB = 1024 * 1024

Mode = Literal["open", "allowlist", "invite"]
MODES: tuple[Mode, ...] = ("open", "allowlist", "invite")

#: rate-limit buckets kept in memory; the least recently used peer's bucket is dropped beyond
#: (that peer starts again with a full burst: bounded memory rather than exact fairness)
MAX_TRACKED_WRITERS = 10_000
#: writers whose presented invitation is remembered; the least recent is forgotten beyond (it
#: presents again on its next connection)
MAX_INVITED_WRITERS = 10_000
#: invitations (one per subject) remembered for one writer
MAX_INVITATIONS_PER_WRITER = 16


QUOTAS = ("quota_bytes_per_peer", "quota_names_per_peer", "quota_bytes_per_log", "quota_bytes_all_peers", "quota_names_all_peers")


@dataclass(frozen=True)
class AdmissionConfig:
    """A storage peer's write policy. ``None`` for a quota means no limit."""

    mode: Mode = "open"
    #: peer ids of writers, or log names (see the module doc)
    allow: frozenset[str] = frozenset()
    #: bytes of blocks one writer may have stored here
    quota_bytes_per_peer: int | None = 1 * GiB
    #: names (logs) one writer may create here
    quota_names_per_peer: int | None = 64
    #: bytes one log's head may reach, as measured by retention
    quota_bytes_per_log: int | None = 1 * GiB
    #: bytes and names all writers but the allow-listed may hold here together: fresh peer ids
    #: cost nothing, so per-peer quotas alone do not bound the disk
    quota_bytes_all_peers: int | None = 10 * GiB
    quota_names_all_peers: int | None = 10_000
    #: sustained writes (blocks and record updates) per second and writer, and the burst above it
    write_rate: float | None = 2000.0
    write_burst: float = 20_000.0

    @classmethod
    def unlimited(cls) -> AdmissionConfig:
        """Everyone writes without quotas or rate limit (a private swarm, a test)."""
        return cls(
            quota_bytes_per_peer=None,
            quota_names_per_peer=None,
            quota_bytes_per_log=None,
            quota_bytes_all_peers=None,
            quota_names_all_peers=None,
            write_rate=None,
        )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        object.__setattr__(self, "allow", frozenset(self.allow))
        for what in QUOTAS:
            value = getattr(self, what)
            if value is not None and value < 0:
                raise ValueError(f"{what} must be >= 0 or None, not {value}")
        if self.write_rate is not None and self.write_rate <= 0:
            raise ValueError(f"write_rate must be > 0 or None, not {self.write_rate}")
        if self.write_burst < 1:
            raise ValueError(f"write_burst must be >= 1, not {self.write_burst}")


@dataclass(frozen=True)
class PeerUsage:
    """What one writer has stored here."""

    bytes: int = 0
    names: int = 0


@dataclass
class Refusals:
    """Counts of refusals by reason, for metrics."""

    by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


#: the reasons a refusal is counted under (metrics)
REASONS = ("incomplete", "not_allowed", "quota_bytes", "quota_bytes_all", "quota_log_bytes", "quota_names", "quota_names_all", "rate")


class Admission:
    """Decides writes. Holds only the rate-limit buckets (bounded); usage is passed in.

    ``monotonic`` is the clock of the rate limit (seconds, any origin): time is an input.
    """

    def __init__(
        self,
        config: AdmissionConfig | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or AdmissionConfig()
        self.monotonic = monotonic
        #: Unix seconds, for invitations' expiry
        self.now = now
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        # writer -> subject -> the invitation it presented (verified by the caller)
        self._invited: OrderedDict[str, dict[str, Invitation]] = OrderedDict()
        #: refusals by reason, counted by whoever asks (the node's gate, for metrics)
        self.refusals = Refusals()

    # --- who -----------------------------------------------------------------------------------

    def trusted(self, writer: str | None) -> bool:
        """An allow-listed writer: exempt from per-peer quotas and the rate limit."""
        return writer is not None and writer in self.config.allow

    def present(self, writer: str, invitation: Invitation) -> None:
        """Remember that ``writer`` presented ``invitation`` (verified: signed by this peer,
        unexpired); a later one for the same subject replaces it (a writer with several logs
        holds one for each, at most MAX_INVITATIONS_PER_WRITER)."""
        held = self._invited.setdefault(writer, {})
        held.pop(invitation.subject, None)
        held[invitation.subject] = invitation
        while len(held) > MAX_INVITATIONS_PER_WRITER:
            del held[next(iter(held))]
        self._invited.move_to_end(writer)
        while len(self._invited) > MAX_INVITED_WRITERS:
            self._invited.popitem(last=False)

    def invitations(self, writer: str | None) -> list[Invitation]:
        """The unexpired invitations ``writer`` presented."""
        held = None if writer is None else self._invited.get(writer)
        if not held:
            return []
        now = self.now()
        for subject in [s for s, inv in held.items() if inv.expired(now)]:
            del held[subject]
        return list(held.values())

    def _names_listed(self) -> bool:
        # entries cannot be told apart (both are peer ids); any entry may be a log name
        return bool(self.config.allow)

    # --- decisions -----------------------------------------------------------------------------

    def check_rate(self, writer: str | None, writes: int) -> None:
        """Take ``writes`` tokens from the writer's bucket, or refuse with QUOTA."""
        cfg = self.config
        if cfg.write_rate is None or writes <= 0 or self.trusted(writer):
            return
        key = writer or ""
        bucket = self._buckets.get(key)
        now = self.monotonic()
        if bucket is None:
            bucket = TokenBucket(
                TokenBucketConfig(
                    refill_rate=cfg.write_rate,
                    capacity=cfg.write_burst,
                    initial_tokens=cfg.write_burst,
                    enable_monitoring=False,  # its history reads the real clock and grows
                )
            )
            bucket._last_refill_time = now  # the bucket's own clock is time.time(): start at ours
            self._buckets[key] = bucket
            while len(self._buckets) > MAX_TRACKED_WRITERS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        if writes > cfg.write_burst or not bucket.try_consume(writes, current_time=now):
            raise QuotaExceeded(f"over the write rate of {cfg.write_rate:g}/s (burst {cfg.write_burst:g})", reason="rate")

    def check_blocks(self, writer: str | None, usage: PeerUsage, new_bytes: int, others: PeerUsage = PeerUsage()) -> None:
        """May ``writer``, having stored ``usage``, store ``new_bytes`` more bytes of blocks?

        ``others``: what all writers but the allow-listed hold together (``writer`` included)."""
        cfg = self.config
        if self.trusted(writer):
            return
        if cfg.mode == "allowlist" and not self._names_listed():
            raise NotAllowed("this storage peer stores blocks only from its allow-listed writers", reason="not_allowed")
        limit = cfg.quota_bytes_per_peer
        if cfg.mode == "invite":
            invited = self.invitations(writer)
            if not invited:
                raise NotAllowed("this storage peer stores blocks only for writers it invited", reason="not_allowed")
            quotas = [inv.quota_bytes for inv in invited]
            if None not in quotas:  # the largest quota it holds; one without a quota: the peer's own
                limit = max(q for q in quotas if q is not None)
        if limit is not None and new_bytes > 0 and usage.bytes + new_bytes > limit:
            raise QuotaExceeded(f"over the quota of {limit} bytes per peer ({usage.bytes} stored, {new_bytes} more)", reason="quota_bytes")
        limit = cfg.quota_bytes_all_peers
        if limit is not None and new_bytes > 0 and others.bytes + new_bytes > limit:
            raise QuotaExceeded(f"this storage peer holds all it takes from writers it does not list ({limit} bytes)", reason="quota_bytes_all")

    def check_allowed(self, writer: str | None, name: str) -> None:
        """The allow-list's part of :meth:`check_record`, which needs no usage: asked first, so
        a refused writer costs nothing more."""
        mode = self.config.mode
        if mode == "open" or self.trusted(writer) or name in self.config.allow:
            return
        if mode == "invite":
            if any(inv.admits_record(writer, name) for inv in self.invitations(writer)):
                return
            raise NotAllowed(f"this storage peer stores the log {name} only for writers it invited", reason="not_allowed")
        raise NotAllowed(f"this storage peer does not store the log {name}", reason="not_allowed")

    def check_record(
        self, writer: str | None, name: str, *, new_name: bool, usage: PeerUsage, log_bytes: int = 0, others: PeerUsage = PeerUsage()
    ) -> None:
        """May ``writer`` store a record for ``name`` (``new_name``: none is held for it yet)?"""
        cfg = self.config
        trusted = self.trusted(writer)
        self.check_allowed(writer, name)
        limit = cfg.quota_bytes_per_log
        if limit is not None and log_bytes > limit:
            raise QuotaExceeded(f"the log {name} holds {log_bytes} bytes here, over the quota of {limit} per log", reason="quota_log_bytes")
        names = cfg.quota_names_per_peer
        if new_name and not trusted and names is not None and usage.names + 1 > names:
            raise QuotaExceeded(f"over the quota of {names} names per peer", reason="quota_names")
        names = cfg.quota_names_all_peers
        if new_name and not trusted and names is not None and others.names + 1 > names:
            raise QuotaExceeded(f"this storage peer holds all the logs it takes from writers it does not list ({names})", reason="quota_names_all")



def parse_allow(entries: Iterable[str]) -> frozenset[str]:
    """Allow-list entries, each checked to be a peer id in its canonical base58 spelling.

    Raises :class:`~rlp2p.errors.DecodeError` for anything else (a typo must not silently
    allow nobody)."""
    import base58
    import multihash

    out = set()
    for entry in entries:
        entry = entry.strip()
        try:
            raw = base58.b58decode(entry.encode("ascii"))
            decoded = multihash.decode(raw)  # checks the digest's length; identity or sha2-256 below
        except Exception as exc:  # base58 and multihash raise several unrelated types
            raise DecodeError(f"not a peer id or log name: {entry[:80]!r}") from exc
        if decoded.code not in (0x00, 0x12) or not raw or base58.b58encode(raw).decode() != entry:
            raise DecodeError(f"not a peer id in its canonical spelling: {entry[:80]!r}")
        out.add(entry)
    return frozenset(out)


__all__ = ["Admission", "AdmissionConfig", "MAX_INVITATIONS_PER_WRITER", "MAX_INVITED_WRITERS", "MAX_TRACKED_WRITERS", "PeerUsage", "QUOTAS", "REASONS", "parse_allow"]
