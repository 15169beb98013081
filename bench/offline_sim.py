"""Two mostly-offline phones: plain MVDS (batch mode) against the remote log, epoch by epoch.

A pure, seeded simulation: no network, no clock. Sizes come from the real encoders: MVDS
payloads from the generated ``rlp2p.pb`` classes, every byte of the remote log from the
library's own pages, records, frames and plans (:mod:`bench.log_wire`). It quantifies the "ping-pong" problem that
motivates 3/REMOTE-LOG: MVDS delivers only when sender and receiver are online in the same epoch,
while the remote log parks the data on always-on storage that the reader polls when he likes.

Model
=====

Time
    Discrete epochs ``0 .. epochs-1``. An epoch is one MVDS sync round: RFC 2/MVDS ("Flow") sends
    at most one payload per peer per epoch, and a reaction to what arrived (an ack) goes into a
    later payload. So an ack costs one epoch after the message arrived.

Presence
    Alice (writer) and Bob (reader) are each online in an epoch with probability ``online``,
    independently per epoch and per peer. For each seed we draw ``u_A[t], u_B[t] ~ U[0, 1)`` once
    and a peer is online at ``t`` iff ``u[t] < online``: both designs see the same schedules, and a
    higher fraction's schedule contains a lower one's (common random numbers, less noise between
    rows). :func:`simulate_mvds` and :func:`simulate_remote_log` also take any explicit schedule.

Messages
    ``n_messages`` messages with ``payload_bytes`` bodies are created over the first
    ``send_window`` epochs (default ``epochs // 2``): at ``c_i = floor(i * W / N)`` ("even"), or
    at sorted uniform random epochs ("random"). A message may be created while Alice is offline;
    it leaves with her next online epoch.

Plain MVDS, batch mode (RFC 2/MVDS, "Batch Mode" and "Retransmission")
    Alice keeps ``send_count`` (initially 0) and ``send_epoch`` (initially ``c_i``) per message.
    In an epoch ``t`` in which she is online she sends one Payload holding every unacknowledged
    message with ``send_epoch <= t``, and for each of them sets ``send_count += 1`` and
    ``send_epoch = t + d(send_count)`` with the back-off

    - clamp (default): ``d(k) = min(base * 2**(k-1), cap)``
    - reset (``backoff_reset=True``): ``d(k) = base * 2**((k-1) mod m)``, ``m`` the number of
      doublings of ``base`` that stay ``<= cap``: the delay climbs to the bound, then drops back.

    RFC 2/MVDS ("Retransmission") requires send count and send epoch to grow on every
    retransmission and says the send epoch SHOULD grow exponentially up to an upper bound, then go
    back to a lower epoch; it defines no function. ``d`` is our choice of that shape (base 2,
    ``base`` epochs first, bounded by ``cap``); clamp is the conventional bounded back-off, reset
    reads the RFC's sentence literally. ``base`` defaults to 2 epochs because an ack needs one: with
    ``base = 1`` Alice retransmits in the very epoch the ack reaches her, even when both are always
    online.

    Bob, in an epoch in which he is online, sends one Payload with an ack for every copy he
    received in earlier epochs and has not acked yet. Acks are not retransmitted (RFC: they are
    resent whenever the message arrives again). Bob delivers a message to his application on its
    first copy; later copies are counted as duplicates and acked again.

    A payload sent in epoch ``t`` arrives iff BOTH peers are online in ``t``; otherwise it is lost
    (its bytes still count: the sender's radio sent them). Both payloads of an epoch are built from
    the state at the start of the epoch (a simultaneous exchange): acks that arrive in ``t`` stop
    retransmissions from ``t + 1``.

Remote log (3/REMOTE-LOG, as rlp2p builds it; the defaults are the library's)
    Storage (``replicas`` peers, default 3) is always online and loses nothing. In an epoch in
    which Alice is online and has ``k > 0`` messages not yet uploaded, she publishes once: the
    blocks a replica lacks (new message blocks and the pages that changed, as the publisher's
    core decides them) as CAS Adds, then the newly signed record as an Update on the same CAS
    stream. With ``upload_once`` (the publisher's default) she sends that to one replica, plus
    the Forward request naming the others; the forwarder sends them the same frames and asks each
    for its signed ack (storage bytes, not hers), and relays the acks in its answer to her.
    Otherwise she sends it to each replica. Storage answers each Add with an Address, the Update
    with its status.

    In an epoch in which Bob is online (and ``poll_interval`` epochs have passed since his last
    poll) he asks ``fanout`` replicas (the reader's default is 3): holding no record, with an NS
    Fetch (NOT_FOUND before the first publish); holding one, with an NS Poll of his sequence
    (``conditional``, the reader's default), answered "unchanged" or with the newer record by the
    one replica he asks for the record, and "unchanged" or the newer sequence (no record) by the
    others (``sequence_only``; storage here never withholds, so no claim is followed up). His
    record is taken as fresh (no wall clock here) unless ``record_validity`` gives the epochs a
    record stays fresh: past it, as the reader does, he asks with Fetch (the record from each). If the log
    grew, he syncs from one replica: the CAS Gets a real ``SyncPlan`` asks for (the head page,
    back to the page he needs, then the message blocks not embedded), and delivers the new
    messages in that epoch. Within an epoch Alice publishes before Bob polls, so a message
    uploaded at ``t`` is delivered in the first epoch ``>= t`` in which Bob polls.

Byte model
==========

MVDS: the serialized ``vac.mvds.Payload`` (``rlp2p.pb``) with one unsigned-varint length prefix.
Message ids are 32 bytes, ``group_id`` 32, the timestamp a present-day Unix second. Repeated
protobuf fields are encoded element by element, so a Payload's size is exact and additive::

    size(Payload with m messages and a acks) = m * e_msg + a * e_ack   (+ length prefix)

The remote log: every byte comes from the library's own code (:mod:`bench.log_wire`): messages,
pages in the publisher's layout (default pages of 64, every payload embedded without its hashes,
the replicas' CAS hints in the head page), the record signed by ``create_record`` with a real key
(compact, as the library writes it), the CAS, NS, Forward and Poll frames of ``rlp2p.wire``. Ignored for both
designs: the transport below (Noise, yamux, TCP/IP or a Waku envelope), connection set-up and DHT
look-ups.

Floor
=====

What an ideal remote log would need on the same schedules, whatever its layout and protocol,
given that every publish carries a freshly signed record (the library's real compact record,
221 B here, :meth:`bench.log_wire.LogWire.record`):

- Alice: every payload she published once, plus one record per publish she made;
- Bob: every payload he received once, plus one record per sync that found something new
  (polls that found nothing cost nothing in the floor).

Each is reported over the same payload bytes as the multipliers (``Alice floor x``,
``Bob floor x``). It is a floor for any design that sends the whole signed record with each
publish, not a goal: with ``m`` messages a publish Alice's floor is ``1 + 221 / (256 m)``, under
1.3 only for ``m > 2.88`` (:func:`floor_crossing`). At the defaults (100 messages over 500 epochs,
a message every 5 epochs) and 10 % online she publishes about 2.4 messages at a time: her floor is
about 1.36, above the 1.3 goal; Bob's (about 3.8 messages a sync) is about 1.23. Only a record
sent as a delta (its 64-byte signature and what changed; the receiver derives the head from the
page it got and the rest from the previous record) would go lower: not built.

Metrics (per design and online fraction, pooled over seeds)
===========================================================

- delivered share: messages Bob delivered by the horizon / messages created;
- latency: delivery epoch - creation epoch of each delivered message; median and p95 (nearest
  rank);
- each phone's multiplier, over the payload bytes Bob delivered (ratios of sums over the seeds,
  ``inf`` when nothing was delivered): Alice's is the bytes she sent (MVDS: payloads with
  retransmissions, lost ones too; the log: uploads, records, Forward requests), Bob's the bytes he received (MVDS: the payloads that reached him; the log: records,
  poll answers, pages, blocks and NOT_FOUNDs); beside them, the bytes Alice received;
- bandwidth multiplier: all bytes sent by Alice, Bob and storage over the same;
- the log's floors (above) over the same, and Alice's messages per publish.

Run ``python -m bench.offline_sim`` for the default comparison table.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise
from typing import Literal

from bench.log_wire import DEFAULT_MODE, LogWire
from rlp2p import LogMode
from rlp2p.pb.vac import mvds_pb2

__all__ = [
    "DEFAULT_ONLINE_FRACTIONS",
    "DEFAULT_SEEDS",
    "MESSAGE_ID_BYTES",
    "MVDS",
    "REMOTE_LOG",
    "Arrivals",
    "Result",
    "RunResult",
    "SimConfig",
    "WireModel",
    "creation_epochs",
    "floor_crossing",
    "format_layouts",
    "format_table",
    "layout_table",
    "mvds_backoff",
    "online_draws",
    "run_comparison",
    "schedule",
    "simulate_mvds",
    "simulate_remote_log",
    "summarize",
]

MVDS = "mvds-batch"
REMOTE_LOG = "remote-log"
DEFAULT_ONLINE_FRACTIONS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.9, 1.0)
DEFAULT_SEEDS = 10

Arrivals = Literal["even", "random"]

#: MVDS message id (H1): sha256
MESSAGE_ID_BYTES = 32
GROUP_ID_BYTES = 32
#: a present-day Unix time in seconds: its varint takes 5 bytes, as any time until 2514 would
MODEL_TIMESTAMP = 1_700_000_000


# --------------------------------------------------------------------------------------------
# Wire sizes
# --------------------------------------------------------------------------------------------


def _uvarint_size(n: int) -> int:
    """Bytes of ``n`` as an unsigned varint (7 bits a byte): the length prefix of a frame."""
    return max(1, (n.bit_length() + 6) // 7)


def _framed(size: int) -> int:
    """A protobuf of ``size`` bytes on a stream: its unsigned-varint length, then itself."""
    return _uvarint_size(size) + size


@dataclass(frozen=True, slots=True)
class WireModel:
    """Sizes in bytes of what plain MVDS sends, measured on the real protobuf messages.

    ``mvds_*_entry`` are the bytes one element adds to a Payload; :meth:`mvds_payload` frames the
    whole Payload. (The remote log's bytes come from :class:`bench.log_wire.LogWire`.)
    """

    payload_bytes: int
    #: a serialized vac.mvds.Message
    message_block: int
    mvds_message_entry: int
    mvds_ack_entry: int

    @classmethod
    def measure(cls, payload_bytes: int = 256) -> WireModel:
        return _measure(payload_bytes)

    def mvds_payload(self, n_messages: int, n_acks: int) -> int:
        """A framed vac.mvds.Payload with ``n_messages`` messages and ``n_acks`` acks."""
        body = n_messages * self.mvds_message_entry + n_acks * self.mvds_ack_entry
        return _framed(body)


@lru_cache(maxsize=64)
def _measure(payload_bytes: int) -> WireModel:
    if payload_bytes < 0:
        raise ValueError("sizes must be >= 0")
    message = mvds_pb2.Message(
        group_id=bytes(GROUP_ID_BYTES), timestamp=MODEL_TIMESTAMP, body=bytes(payload_bytes)
    )
    return WireModel(
        payload_bytes=payload_bytes,
        message_block=message.ByteSize(),
        mvds_message_entry=mvds_pb2.Payload(messages=[message]).ByteSize(),
        mvds_ack_entry=mvds_pb2.Payload(acks=[bytes(MESSAGE_ID_BYTES)]).ByteSize(),
    )


# --------------------------------------------------------------------------------------------
# Configuration, schedules, arrivals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything but the online fraction and the seed. See the module docstring."""

    n_messages: int = 100
    epochs: int = 1000
    #: messages are created in epochs [0, send_window); None: epochs // 2
    send_window: int | None = None
    payload_bytes: int = 256
    arrivals: Arrivals = "even"
    #: MVDS back-off: first retransmission ``backoff_base`` epochs after the first send
    backoff_base: int = 2
    #: MVDS back-off upper bound, in epochs
    backoff_cap: int = 64
    #: True: after reaching the cap the delay drops back to ``backoff_base`` (RFC's wording)
    backoff_reset: bool = False
    #: remote log: Bob polls at most once every ``poll_interval`` epochs (when online)
    poll_interval: int = 1
    #: remote log: storage peers holding the log (each gets every block, page and record)
    replicas: int = 3
    #: remote log: replicas Bob asks for the record on each poll (the reader's fanout)
    fanout: int = 3
    #: remote log: Alice uploads once, to one replica, which forwards to the others (the
    #: publisher's default, ``upload="once"``); False: she uploads to each replica
    upload_once: bool = True
    #: remote log: a reader holding a record asks with NS Poll (the reader's default), else Fetch
    conditional: bool = True
    #: remote log: the publisher's layout (default: pages of 64, every payload embedded)
    mode: LogMode = DEFAULT_MODE
    #: remote log: the record carries its V1 fields (None: the library's default record)
    record_v1: bool | None = None
    #: remote log: epochs a record stays fresh after Alice signs it (the library's 7 days in
    #: epochs); past it Bob's reader asks with Fetch. None (default): never expires, no wall clock
    record_validity: int | None = None
    #: remote log: pages on the wire as deltas against the page the receiver holds (the
    #: library's default, rlp2p.core.pagedelta); False: every page whole, as before
    page_deltas: bool = True

    def __post_init__(self) -> None:
        if self.n_messages < 0 or self.epochs < 1:
            raise ValueError("need n_messages >= 0 and epochs >= 1")
        if not 1 <= self.window <= self.epochs:
            raise ValueError(f"send_window must be in [1, epochs], got {self.window}")
        if self.payload_bytes < 1:
            raise ValueError("need payload_bytes >= 1")
        if self.arrivals not in ("even", "random"):
            raise ValueError(f"arrivals must be 'even' or 'random', got {self.arrivals!r}")
        if self.backoff_base < 1 or self.backoff_cap < self.backoff_base:
            raise ValueError("need 1 <= backoff_base <= backoff_cap")
        if self.record_validity is not None and self.record_validity < 1:
            raise ValueError("record_validity must be at least 1 epoch (or None)")
        if self.poll_interval < 1 or self.replicas < 1 or self.fanout < 1:
            raise ValueError("need poll_interval >= 1, replicas >= 1 and fanout >= 1")

    @property
    def window(self) -> int:
        return self.epochs // 2 if self.send_window is None else self.send_window

    def log_wire(self) -> LogWire:
        """The real bytes of this configuration's log (shared by runs of the same settings)."""
        return _log_wire(self.payload_bytes, self.mode, self.replicas, self.record_v1, self.page_deltas)


@lru_cache(maxsize=16)
def _log_wire(
    payload_bytes: int, mode: LogMode, replicas: int, record_v1: bool | None, page_deltas: bool = True
) -> LogWire:
    return LogWire(payload_bytes=payload_bytes, mode=mode, replicas=replicas, record_v1=record_v1, deltas=page_deltas)


def mvds_backoff(send_count: int, base: int, cap: int, reset: bool = False) -> int:
    """Epochs until the next send of a record already sent ``send_count`` (>= 1) times.

    Clamp: ``min(base * 2**(send_count-1), cap)``. Reset: ``base * 2**((send_count-1) mod m)``
    where ``m`` is the number of delays ``base, 2*base, ...`` that do not exceed ``cap``.
    """
    if send_count < 1:
        raise ValueError("send_count starts at 1 after the first send")
    if base < 1 or cap < base:
        raise ValueError("need 1 <= base <= cap")
    steps = (cap // base).bit_length()  # delays base * 2**j <= cap for j in [0, steps)
    exponent = send_count - 1
    if reset:
        return base << (exponent % steps)
    if exponent >= steps:
        return cap
    return min(base << exponent, cap)


def online_draws(epochs: int, rng: random.Random) -> tuple[list[float], list[float]]:
    """Per-epoch uniform draws for Alice and Bob; threshold them with :func:`schedule`."""
    alice = [rng.random() for _ in range(epochs)]
    bob = [rng.random() for _ in range(epochs)]
    return alice, bob


def schedule(draws: Sequence[float], online: float) -> list[bool]:
    """Online in epoch ``t`` iff ``draws[t] < online``."""
    if not 0.0 <= online <= 1.0:
        raise ValueError(f"online fraction must be in [0, 1], got {online}")
    return [u < online for u in draws]


def creation_epochs(
    n_messages: int, send_window: int, arrivals: Arrivals = "even", rng: random.Random | None = None
) -> list[int]:
    """Creation epoch of each message, non-decreasing, all in ``[0, send_window)``."""
    if arrivals == "even":
        return [i * send_window // n_messages for i in range(n_messages)]
    if rng is None:
        raise ValueError("random arrivals need an rng")
    return sorted(rng.randrange(send_window) for _ in range(n_messages))


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    """One design, one pair of schedules."""

    design: str
    payload_bytes: int
    created: tuple[int, ...]
    #: per message: the epoch Bob delivered it, or None
    delivered_at: tuple[int | None, ...]
    #: every delivery to Bob's application, in order: (message index, epoch)
    deliveries: tuple[tuple[int, int], ...]
    bytes_alice: int
    bytes_bob: int
    bytes_storage: int
    #: bytes that reached Bob (payloads, or what storage sent him)
    bytes_to_bob: int
    #: message copies Alice put on the wire (MVDS: with retransmissions; log: uploads x replicas)
    message_sends: int
    #: copies Bob received of messages he already had
    duplicates: int
    #: bytes that reached Alice (MVDS: acks; the log: storage's answers, the targets' signed acks)
    bytes_to_alice: int = 0
    #: the log only: what an ideal remote log would need (module docstring, "Floor"): Alice,
    #: every payload once plus one record per publish; Bob, every payload once plus one record
    #: per sync that found something new
    floor_alice: int = 0
    floor_bob: int = 0
    #: the log only: Alice's publishes, Bob's syncs that found something new
    publishes: int = 0
    syncs: int = 0
    #: the log only: messages Alice published
    published: int = 0

    @property
    def bytes_total(self) -> int:
        return self.bytes_alice + self.bytes_bob + self.bytes_storage

    @property
    def latencies(self) -> list[int]:
        return [
            d - c for c, d in zip(self.created, self.delivered_at, strict=True) if d is not None
        ]

    @property
    def delivered(self) -> int:
        return sum(d is not None for d in self.delivered_at)

    @property
    def multiplier(self) -> float:
        useful = self.delivered * self.payload_bytes
        return self.bytes_total / useful if useful else math.inf

    @property
    def alice_multiplier(self) -> float:
        """Bytes Alice's radio sent per payload byte delivered."""
        useful = self.delivered * self.payload_bytes
        return self.bytes_alice / useful if useful else math.inf

    @property
    def bob_multiplier(self) -> float:
        """Bytes Bob's radio received per payload byte delivered."""
        useful = self.delivered * self.payload_bytes
        return self.bytes_to_bob / useful if useful else math.inf


def _check_inputs(
    config: SimConfig, alice: Sequence[bool], bob: Sequence[bool], created: Sequence[int]
) -> None:
    if len(alice) != config.epochs or len(bob) != config.epochs:
        raise ValueError(f"schedules must have {config.epochs} epochs")
    if any(b < a for a, b in pairwise(created)):
        raise ValueError("creation epochs must be non-decreasing")
    if created and not (created[0] >= 0 and created[-1] < config.epochs):
        raise ValueError("creation epochs must lie within the horizon")


def simulate_mvds(
    config: SimConfig,
    alice: Sequence[bool],
    bob: Sequence[bool],
    created: Sequence[int],
    wire: WireModel | None = None,
) -> RunResult:
    """Plain MVDS in batch mode from Alice to Bob over the given presence schedules."""
    _check_inputs(config, alice, bob, created)
    wire = wire or WireModel.measure(config.payload_bytes)
    n = len(created)
    send_count = [0] * n
    send_epoch = list(created)
    acked = [False] * n
    delivered_at: list[int | None] = [None] * n
    deliveries: list[tuple[int, int]] = []
    unacked: list[int] = []  # created, not yet acked, in creation order
    next_new = 0
    pending_acks: list[int] = []  # copies Bob received in earlier epochs, not acked yet
    bytes_alice = bytes_bob = bytes_to_bob = bytes_to_alice = sends = duplicates = 0

    for t in range(config.epochs):
        while next_new < n and created[next_new] <= t:
            unacked.append(next_new)
            next_new += 1
        a_on, b_on = alice[t], bob[t]

        # Both payloads of the epoch are built from the state at its start.
        outgoing: list[int] = []
        if a_on:
            outgoing = [i for i in unacked if send_epoch[i] <= t]
            for i in outgoing:
                send_count[i] += 1
                send_epoch[i] = t + mvds_backoff(
                    send_count[i], config.backoff_base, config.backoff_cap, config.backoff_reset
                )
        # No id repeats in it: a second copy can only arrive in an epoch Bob is online, and in
        # that epoch he has already sent the acks of the earlier copies.
        acks: list[int] = []
        if b_on and pending_acks:
            acks, pending_acks = pending_acks, []

        if outgoing:
            size = wire.mvds_payload(len(outgoing), 0)
            bytes_alice += size
            sends += len(outgoing)
            if b_on:
                bytes_to_bob += size
                for i in outgoing:
                    if delivered_at[i] is None:
                        delivered_at[i] = t
                        deliveries.append((i, t))
                    else:
                        duplicates += 1
                    pending_acks.append(i)
        if acks:
            bytes_bob += wire.mvds_payload(0, len(acks))
            if a_on:
                bytes_to_alice += wire.mvds_payload(0, len(acks))
                for i in acks:
                    acked[i] = True
                unacked = [i for i in unacked if not acked[i]]

    return RunResult(
        design=MVDS,
        payload_bytes=config.payload_bytes,
        created=tuple(created),
        delivered_at=tuple(delivered_at),
        deliveries=tuple(deliveries),
        bytes_alice=bytes_alice,
        bytes_bob=bytes_bob,
        bytes_storage=0,
        bytes_to_bob=bytes_to_bob,
        message_sends=sends,
        duplicates=duplicates,
        bytes_to_alice=bytes_to_alice,
    )


def simulate_remote_log(
    config: SimConfig,
    alice: Sequence[bool],
    bob: Sequence[bool],
    created: Sequence[int],
    wire: LogWire | None = None,
) -> RunResult:
    """Alice publishes to always-on storage when online; Bob polls it when online."""
    _check_inputs(config, alice, bob, created)
    wire = wire or config.log_wire()
    n = len(created)
    replicas = config.replicas
    fanout = min(config.fanout, replicas)
    delivered_at: list[int | None] = [None] * n
    deliveries: list[tuple[int, int]] = []
    uploaded = 0  # messages [0, uploaded) are in the log
    sequence = 0  # of the newest record
    signed_at = 0  # the epoch the newest record was signed
    bob_has = 0  # messages [0, bob_has) delivered
    bob_seq = 0  # sequence of the record Bob holds (0: none)
    bob_signed = 0  # the epoch it was signed
    last_poll: int | None = None
    bytes_alice = bytes_bob = bytes_storage = bytes_to_bob = bytes_to_alice = sends = 0
    floor_alice = floor_bob = publishes = syncs = published = 0
    forwarding = config.upload_once and replicas > 1

    for t in range(config.epochs):
        if alice[t]:
            ready = uploaded
            while ready < n and created[ready] <= t:
                ready += 1
            if ready > uploaded:
                sequence += 1
                signed_at = t
                frames = wire.publish(uploaded, ready, sequence)
                publishes += 1
                published += ready - uploaded
                floor_alice += (ready - uploaded) * config.payload_bytes + len(wire.record(ready, sequence))
                if forwarding:
                    # one upload (the record on the CAS stream) and the Forward request to the
                    # first replica; it copies the same frames to the others (storage's bytes);
                    # each target's signed ack rides the Forward answer (LogWire.confirmation)
                    targets = replicas - 1
                    ask, told = wire.forward(uploaded, ready, sequence)
                    confirm_out, confirm_in = wire.confirmation(ready, sequence)
                    bytes_alice += frames.sent + len(ask) + targets * confirm_out
                    to_alice = frames.answered + len(told) + targets * confirm_in
                    # the forwarder copies pages and records whole (Alice sent deltas and a compact record)
                    copies = wire.publish(uploaded, ready, sequence, compact=False)
                    bytes_storage += targets * (copies.whole + copies.answered + sum(wire.ack_frames(sequence)))
                    sends += ready - uploaded
                else:
                    bytes_alice += replicas * frames.sent
                    to_alice = replicas * frames.answered
                    sends += replicas * (ready - uploaded)
                bytes_storage += to_alice
                bytes_to_alice += to_alice
                uploaded = ready

        if bob[t] and (last_poll is None or t - last_poll >= config.poll_interval):
            last_poll = t
            # past its validity the reader asks with Fetch, as for no record
            fresh = config.record_validity is None or t - bob_signed < config.record_validity
            if config.conditional and bob_seq and fresh:
                # he holds a record: an NS Poll to each of the fanout, "above bob_seq?", the record
                # asked of one replica, the sequence only of the others (all honest here: no
                # claim above the record to follow)
                others = fanout - 1
                bytes_bob += wire.poll_request_size(bob_seq) + others * wire.poll_request_size(bob_seq, True)
                got = wire.poll_answer_size(uploaded, sequence, bob_seq) + others * wire.poll_answer_size(
                    uploaded, sequence, bob_seq, True
                )
            else:
                bytes_bob += fanout * wire.fetch_request()
                got = fanout * wire.fetch_response(uploaded, sequence)
            bob_seq, bob_signed = sequence, signed_at
            if uploaded > bob_has:
                sync = wire.sync(bob_has, uploaded)
                bytes_bob += sync.sent
                got += sync.received
                for seq in sync.delivered:
                    # a message Bob already has cannot come again: the plan starts after it
                    delivered_at[seq - 1] = t
                    deliveries.append((seq - 1, t))
                syncs += 1
                floor_bob += len(sync.delivered) * config.payload_bytes + len(wire.record(uploaded, sequence))
                bob_has = uploaded
            bytes_storage += got
            bytes_to_bob += got

    return RunResult(
        design=REMOTE_LOG,
        payload_bytes=config.payload_bytes,
        created=tuple(created),
        delivered_at=tuple(delivered_at),
        deliveries=tuple(deliveries),
        bytes_alice=bytes_alice,
        bytes_bob=bytes_bob,
        bytes_storage=bytes_storage,
        bytes_to_bob=bytes_to_bob,
        message_sends=sends,
        duplicates=0,
        bytes_to_alice=bytes_to_alice,
        floor_alice=floor_alice,
        floor_bob=floor_bob,
        publishes=publishes,
        syncs=syncs,
        published=published,
    )


# --------------------------------------------------------------------------------------------
# Many runs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """One design at one online fraction, pooled over ``seeds`` runs."""

    design: str
    online: float
    seeds: int
    messages: int
    delivered: int
    delivered_share: float
    #: epochs from creation to delivery, over delivered messages; None if none was delivered
    latency_median: float | None
    latency_p95: float | None
    bytes_alice: int
    bytes_bob: int
    bytes_storage: int
    bytes_total: int
    bytes_to_bob: int
    delivered_payload_bytes: int
    #: bytes_total / delivered_payload_bytes (inf if nothing was delivered)
    multiplier: float
    #: bytes Alice sent / delivered_payload_bytes; bytes Bob received / the same
    alice_multiplier: float
    bob_multiplier: float
    message_sends: int
    duplicates: int
    #: bytes that reached Alice / delivered_payload_bytes (her radio's receive side)
    alice_in_multiplier: float = math.inf
    bytes_to_alice: int = 0
    #: the log only (None for MVDS): each phone's floor over the same payload bytes (module
    #: docstring, "Floor"; inf if nothing was delivered), and Alice's messages per publish
    alice_floor: float | None = None
    bob_floor: float | None = None
    messages_per_publish: float | None = None
    publishes: int = 0
    syncs: int = 0


def _nearest_rank(sorted_values: Sequence[int], q: float) -> float:
    return float(sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)])


def summarize(online: float, runs: Sequence[RunResult]) -> Result:
    """Pool runs of one design: sums of counts and bytes, percentiles over all latencies."""
    if not runs or len({r.design for r in runs}) != 1:
        raise ValueError("summarize needs runs of exactly one design")
    latencies = sorted(lat for r in runs for lat in r.latencies)
    messages = sum(len(r.created) for r in runs)
    delivered = sum(r.delivered for r in runs)
    total = sum(r.bytes_total for r in runs)
    useful = sum(r.delivered * r.payload_bytes for r in runs)
    floors_alice = sum(r.floor_alice for r in runs)
    floors_bob = sum(r.floor_bob for r in runs)
    publishes = sum(r.publishes for r in runs)
    published = sum(r.published for r in runs)
    is_log = runs[0].design == REMOTE_LOG
    return Result(
        design=runs[0].design,
        online=online,
        seeds=len(runs),
        messages=messages,
        delivered=delivered,
        delivered_share=delivered / messages if messages else 0.0,
        latency_median=float(statistics.median(latencies)) if latencies else None,
        latency_p95=_nearest_rank(latencies, 0.95) if latencies else None,
        bytes_alice=sum(r.bytes_alice for r in runs),
        bytes_bob=sum(r.bytes_bob for r in runs),
        bytes_storage=sum(r.bytes_storage for r in runs),
        bytes_total=total,
        bytes_to_bob=sum(r.bytes_to_bob for r in runs),
        delivered_payload_bytes=useful,
        multiplier=total / useful if useful else math.inf,
        alice_multiplier=sum(r.bytes_alice for r in runs) / useful if useful else math.inf,
        bob_multiplier=sum(r.bytes_to_bob for r in runs) / useful if useful else math.inf,
        message_sends=sum(r.message_sends for r in runs),
        duplicates=sum(r.duplicates for r in runs),
        alice_in_multiplier=sum(r.bytes_to_alice for r in runs) / useful if useful else math.inf,
        bytes_to_alice=sum(r.bytes_to_alice for r in runs),
        alice_floor=None if not is_log else floors_alice / useful if useful else math.inf,
        bob_floor=None if not is_log else floors_bob / useful if useful else math.inf,
        messages_per_publish=None if not is_log else published / publishes if publishes else 0.0,
        publishes=publishes,
        syncs=sum(r.syncs for r in runs),
    )


def run_comparison(
    online_fractions: Iterable[float] = DEFAULT_ONLINE_FRACTIONS,
    n_messages: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    *,
    seeds: int = DEFAULT_SEEDS,
    config: SimConfig | None = None,
) -> list[Result]:
    """Both designs at each online fraction, ``seeds`` runs each, same schedules for both.

    ``random.Random(seed)`` draws one 64-bit sub-seed per run; each run's generator draws the
    presence of Alice and Bob for every epoch (:func:`online_draws`), then the creation epochs.
    Every online fraction thresholds the same draws.

    ``n_messages`` and ``epochs`` override ``config`` (default :class:`SimConfig`, 100 messages
    over 1,000 epochs). Results come as ``[mvds(f0), log(f0), mvds(f1), log(f1), ...]``.
    """
    if seeds < 1:
        raise ValueError("seeds must be >= 1")
    cfg = config or SimConfig()
    if n_messages is not None:
        cfg = replace(cfg, n_messages=n_messages)
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    wire = WireModel.measure(cfg.payload_bytes)
    log_wire = cfg.log_wire()

    master = random.Random(seed)
    worlds: list[tuple[list[float], list[float], list[int]]] = []
    for _ in range(seeds):
        rng = random.Random(master.getrandbits(64))
        draws_a, draws_b = online_draws(cfg.epochs, rng)
        created = creation_epochs(cfg.n_messages, cfg.window, cfg.arrivals, rng)
        worlds.append((draws_a, draws_b, created))

    results: list[Result] = []
    for online in online_fractions:
        mvds_runs: list[RunResult] = []
        log_runs: list[RunResult] = []
        for draws_a, draws_b, created in worlds:
            alice, bob = schedule(draws_a, online), schedule(draws_b, online)
            mvds_runs.append(simulate_mvds(cfg, alice, bob, created, wire))
            log_runs.append(simulate_remote_log(cfg, alice, bob, created, log_wire))
        results.append(summarize(online, mvds_runs))
        results.append(summarize(online, log_runs))
    return results


def floor_crossing(record_bytes: int, payload_bytes: int, limit: float) -> float:
    """Messages per publish at which Alice's floor ``1 + record / (m * payload)`` equals ``limit``
    (above it her floor is under ``limit``); the same for Bob with messages per sync that found
    something new."""
    if limit <= 1 or payload_bytes < 1:
        raise ValueError("need limit > 1 and payload_bytes >= 1")
    return record_bytes / ((limit - 1) * payload_bytes)


def layout_table(
    modes: Iterable[LogMode], online: float, seed: int = 0, *, seeds: int = DEFAULT_SEEDS, config: SimConfig | None = None
) -> list[tuple[LogMode, Result, Result]]:
    """Per layout: (mode, the log uploading once, the log uploading to each replica) at ``online``,
    on the same worlds as :func:`run_comparison` (the rest of ``config`` as given)."""
    cfg = config or SimConfig()
    out = []
    for mode in modes:
        once = run_comparison([online], seed=seed, seeds=seeds, config=replace(cfg, mode=mode, upload_once=True))[1]
        each = run_comparison([online], seed=seed, seeds=seeds, config=replace(cfg, mode=mode, upload_once=False))[1]
        out.append((mode, once, each))
    return out


def format_layouts(rows: Iterable[tuple[LogMode, Result, Result]]) -> str:
    """The layout table: each phone's multiplier uploading once (and Alice's uploading to each)."""
    header = (
        "layout/embed", "delivered", "Alice x", "Alice floor x", "Alice in x", "Bob x", "Bob floor x",
        "Alice x (each)", "storage KiB", "total x",
    )

    def x(value: float | None) -> str:
        return "-" if value is None else "inf" if math.isinf(value) else f"{value:.2f}"

    body = [
        (
            "/".join(mode.to_args()),
            f"{100 * once.delivered_share:.1f}%",
            x(once.alice_multiplier),
            x(once.alice_floor),
            x(once.alice_in_multiplier),
            x(once.bob_multiplier),
            x(once.bob_floor),
            x(each.alice_multiplier),
            f"{once.bytes_storage / 1024:.1f}",
            x(once.multiplier),
        )
        for mode, once, each in rows
    ]
    widths = [max(len(row[c]) for row in [header, *body]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip() for row in [header, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def format_table(results: Iterable[Result]) -> str:
    """A plain-text table, one row per result."""
    header = (
        "design",
        "online",
        "delivered",
        "lat p50",
        "lat p95",
        "multiplier",
        "Alice x",
        "Alice floor x",
        "Bob x",
        "Bob floor x",
        "sends/msg",
        "dups",
        "Alice KiB",
        "Bob KiB",
        "storage KiB",
        "total KiB",
    )

    def opt(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    def x(value: float | None) -> str:
        return "-" if value is None else "inf" if math.isinf(value) else f"{value:.2f}"

    rows = [
        (
            r.design,
            f"{r.online:g}",
            f"{100 * r.delivered_share:.1f}%",
            opt(r.latency_median),
            opt(r.latency_p95),
            "inf" if math.isinf(r.multiplier) else f"{r.multiplier:.2f}",
            x(r.alice_multiplier),
            x(r.alice_floor),
            x(r.bob_multiplier),
            x(r.bob_floor),
            f"{r.message_sends / r.messages:.2f}" if r.messages else "-",
            str(r.duplicates),
            f"{r.bytes_alice / 1024:.1f}",
            f"{r.bytes_bob / 1024:.1f}",
            f"{r.bytes_storage / 1024:.1f}",
            f"{r.bytes_total / 1024:.1f}",
        )
        for r in results
    ]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.offline_sim",
        description="MVDS (batch) vs the remote log between two mostly-offline peers",
    )
    defaults = SimConfig()
    parser.add_argument("--online", type=float, nargs="+", default=list(DEFAULT_ONLINE_FRACTIONS))
    parser.add_argument("--messages", type=int, default=defaults.n_messages)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    parser.add_argument("--arrivals", choices=("even", "random"), default=defaults.arrivals)
    parser.add_argument("--payload-bytes", type=int, default=defaults.payload_bytes)
    parser.add_argument("--backoff-base", type=int, default=defaults.backoff_base)
    parser.add_argument("--backoff-cap", type=int, default=defaults.backoff_cap)
    parser.add_argument("--backoff-reset", action="store_true")
    parser.add_argument("--poll-interval", type=int, default=defaults.poll_interval)
    parser.add_argument("--replicas", type=int, default=defaults.replicas)
    parser.add_argument("--fanout", type=int, default=defaults.fanout)
    parser.add_argument(
        "--upload",
        choices=("once", "each"),
        default="once" if defaults.upload_once else "each",
        help="once: Alice uploads to one replica, which forwards (the publisher's default); each: to every replica",
    )
    parser.add_argument("--upload-once", action="store_const", const="once", dest="upload", help="same as --upload once")
    parser.add_argument("--fetch", action="store_true", help="Bob fetches the record on every poll (no NS Poll)")
    parser.add_argument(
        "--record-validity", type=int, default=None, help="epochs a record stays fresh (default: never expires)"
    )
    parser.add_argument(
        "--layouts",
        nargs="+",
        metavar="LAYOUT/EMBED",
        help="instead of the comparison: one row per layout at --online's first fraction (e.g. paged:64/all paged:16/newest:1)",
    )
    layout, embed = defaults.mode.to_args()
    parser.add_argument("--layout", default=layout, help=f"the log's layout, as rlp2p publish takes it (default {layout})")
    parser.add_argument("--embed", default=embed, help=f"what pages embed, as rlp2p publish takes it (default {embed})")
    parser.add_argument("--compact-record", action="store_true", help="records without their V1 fields (the library's default)")
    parser.add_argument("--v1-record", action="store_true", help="records with their V1 fields, for old resolvers")
    parser.add_argument("--whole-pages", action="store_true", help="every page whole on the wire (no page deltas)")
    args = parser.parse_args(argv)
    config = SimConfig(
        n_messages=args.messages,
        epochs=args.epochs,
        payload_bytes=args.payload_bytes,
        arrivals=args.arrivals,
        backoff_base=args.backoff_base,
        backoff_cap=args.backoff_cap,
        backoff_reset=args.backoff_reset,
        poll_interval=args.poll_interval,
        replicas=args.replicas,
        fanout=args.fanout,
        upload_once=args.upload == "once",
        conditional=not args.fetch,
        mode=LogMode.parse(args.layout, args.embed),
        record_v1=True if args.v1_record else False if args.compact_record else None,
        record_validity=args.record_validity,
        page_deltas=not args.whole_pages,
    )
    if args.layouts:
        modes = [LogMode.parse(*text.split("/", 1)) for text in args.layouts]
        print(format_layouts(layout_table(modes, args.online[0], seed=args.seed, seeds=args.seeds, config=config)))
        return 0
    results = run_comparison(args.online, seed=args.seed, seeds=args.seeds, config=config)
    print(format_table(results))
    print(
        f"\n{config.n_messages} messages of {config.payload_bytes} B created over epochs "
        f"[0, {config.window}), horizon {config.epochs} epochs, {args.seeds} seeds pooled; "
        f"MVDS back-off base {config.backoff_base}, cap {config.backoff_cap}"
        f"{' (reset)' if config.backoff_reset else ''}; log {config.mode.describe()}, {config.replicas} replicas"
        f" ({'upload once' if config.upload_once else 'upload to each'}), record fanout {config.fanout}"
        f"{' (NS Poll when he holds a record)' if config.conditional else ' (Fetch)'}, "
        f"poll every {config.poll_interval} online epoch(s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
