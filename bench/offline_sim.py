"""Two mostly-offline phones: plain MVDS (batch mode) against the remote log, epoch by epoch.

A pure, seeded simulation (standard library plus the generated protobuf classes of ``rlp2p.pb``,
used only to measure sizes): no network, no clock. It quantifies the "ping-pong" problem that
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

Remote log (3/REMOTE-LOG, paged with CAS mapping, nothing embedded)
    Storage (``replicas`` peers, default 1) is always online and loses nothing. In an epoch in
    which Alice is online and has ``k > 0`` messages not yet uploaded, she publishes once, to each
    replica: ``k`` CAS Adds of the message blocks, one CAS Add of a new page (``k`` pairs of
    32-byte H1 and 36-byte CID plus our ``seq``, ``tail`` = address of her previous page) and one
    NS Update carrying the record. Storage answers each Add with an Address, the Update with a
    Response.

    In an epoch in which Bob is online (and ``poll_interval`` epochs have passed since his last
    poll) he fetches the record with one NS Fetch (answered with NOT_FOUND before the first
    publish). If the head moved, he fetches each new page with a CAS Get, walking ``tail`` back to
    the page he already has, then each new message block with a CAS Get, and delivers all of them
    in that epoch. Within an epoch Alice publishes before Bob polls, so a message uploaded at ``t``
    is delivered in the first epoch ``>= t`` in which Bob polls.

Byte model
==========

Every counted byte is the serialized size of the protobuf the design puts on the wire, measured
with ``rlp2p.pb`` (``vac.mvds.Payload`` and ``Message``; ``vac.cas.CasRequest`` /
``CasResponse``; ``vac.ns.NsRequest`` / ``NsResponse``; ``vac.remotelog.RemoteLog``), plus one
unsigned-varint length prefix per protobuf (the framing of rlp2p's CAS and NS streams, applied to
MVDS payloads too). Message ids are 32 bytes, CAS addresses 36 (binary CIDv1, raw, sha2-256),
``group_id`` 32, the timestamp a present-day Unix second (a 5-byte varint), the log name a
52-character peer id. The signed IPNS record is modeled as ``record_bytes`` opaque bytes (default
300). Repeated protobuf fields are encoded element by element, so a Payload's size is exact and
additive::

    size(Payload with m messages and a acks) = m * e_msg + a * e_ack   (+ length prefix)

with ``e_msg = 310`` and ``e_ack = 36`` bytes for 256-byte bodies. Ignored for both designs: the
transport below (Noise, yamux, TCP/IP or a Waku envelope), connection set-up and DHT look-ups.

Metrics (per design and online fraction, pooled over seeds)
===========================================================

- delivered share: messages Bob delivered by the horizon / messages created;
- latency: delivery epoch - creation epoch of each delivered message; median and p95 (nearest
  rank);
- bandwidth multiplier: all bytes sent by Alice, Bob and storage / (``payload_bytes`` x messages
  delivered), as a ratio of sums over the seeds (``inf`` when nothing was delivered). For MVDS it
  includes retransmissions, lost payloads and acks; for the remote log uploads, pages, records,
  polls, requests and their answers.

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

from rlp2p.pb.vac import cas_pb2, mvds_pb2, ns_pb2, remotelog_pb2

__all__ = [
    "CAS_ADDRESS_BYTES",
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
    "format_table",
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
#: binary CIDv1, raw codec, sha2-256 multihash (H2); equals rlp2p.core.address.ADDRESS_SIZE
CAS_ADDRESS_BYTES = 36
GROUP_ID_BYTES = 32
#: a present-day Unix time in seconds: its varint takes 5 bytes, as any time until 2514 would
MODEL_TIMESTAMP = 1_700_000_000
#: a base58btc Ed25519 libp2p peer id ("12D3KooW..."), the log's name
MODEL_NAME = "12D3KooW" + "x" * 44


# --------------------------------------------------------------------------------------------
# Wire sizes
# --------------------------------------------------------------------------------------------


def _uvarint_size(n: int) -> int:
    """Bytes of ``n`` as an unsigned varint (7 bits a byte): the length prefix of a frame."""
    return max(1, (n.bit_length() + 6) // 7)


def _framed(size: int) -> int:
    """A protobuf of ``size`` bytes on a stream: its unsigned-varint length, then itself."""
    return _uvarint_size(size) + size


@lru_cache(maxsize=4096)
def _cas_add_request(data_len: int) -> int:
    request = cas_pb2.CasRequest(add=cas_pb2.Content(data=bytes(data_len)))
    return _framed(request.ByteSize())


@lru_cache(maxsize=4096)
def _cas_content_response(data_len: int) -> int:
    response = cas_pb2.CasResponse(content=cas_pb2.Content(data=bytes(data_len)))
    return _framed(response.ByteSize())


@lru_cache(maxsize=4096)
def _page_size(first_seq: int, count: int, has_tail: bool) -> int:
    """Serialized size of a RemoteLog page of ``count`` pairs numbered from ``first_seq``."""
    pairs = [
        remotelog_pb2.RemoteLog.Pair(
            remoteHash=bytes(CAS_ADDRESS_BYTES), localHash=bytes(MESSAGE_ID_BYTES), seq=seq
        )
        for seq in range(first_seq + count - 1, first_seq - 1, -1)  # newest first
    ]
    page = remotelog_pb2.RemoteLog(pair=pairs, tail=bytes(CAS_ADDRESS_BYTES) if has_tail else b"")
    return page.ByteSize()


@dataclass(frozen=True, slots=True)
class WireModel:
    """Sizes in bytes of what each design sends, measured on the real protobuf messages.

    Every ``cas_*`` and ``ns_*`` size is framed (length prefix included). ``mvds_*_entry`` are
    the bytes one element adds to a Payload; :meth:`mvds_payload` frames the whole Payload.
    """

    payload_bytes: int
    record_bytes: int
    #: a serialized vac.mvds.Message: the CAS block of one message
    message_block: int
    mvds_message_entry: int
    mvds_ack_entry: int
    cas_add_block: int
    cas_get_request: int
    cas_get_block: int
    cas_address_response: int
    ns_update_request: int
    ns_update_response: int
    ns_fetch_request: int
    ns_fetch_response: int
    ns_not_found_response: int

    @classmethod
    def measure(cls, payload_bytes: int = 256, record_bytes: int = 300) -> WireModel:
        return _measure(payload_bytes, record_bytes)

    def mvds_payload(self, n_messages: int, n_acks: int) -> int:
        """A framed vac.mvds.Payload with ``n_messages`` messages and ``n_acks`` acks."""
        body = n_messages * self.mvds_message_entry + n_acks * self.mvds_ack_entry
        return _framed(body)

    def page(self, first_seq: int, count: int, has_tail: bool) -> int:
        """A serialized RemoteLog page (the CAS block, unframed)."""
        return _page_size(first_seq, count, has_tail)

    def cas_add(self, data_len: int) -> int:
        """A framed CasRequest{add} storing ``data_len`` bytes."""
        return _cas_add_request(data_len)

    def cas_content(self, data_len: int) -> int:
        """A framed CasResponse{content} returning ``data_len`` bytes."""
        return _cas_content_response(data_len)


@lru_cache(maxsize=64)
def _measure(payload_bytes: int, record_bytes: int) -> WireModel:
    if payload_bytes < 0 or record_bytes < 0:
        raise ValueError("sizes must be >= 0")
    message = mvds_pb2.Message(
        group_id=bytes(GROUP_ID_BYTES), timestamp=MODEL_TIMESTAMP, body=bytes(payload_bytes)
    )
    message_id = bytes(MESSAGE_ID_BYTES)
    address = cas_pb2.Address(id=bytes(CAS_ADDRESS_BYTES))
    record = bytes(record_bytes)
    block = message.ByteSize()
    return WireModel(
        payload_bytes=payload_bytes,
        record_bytes=record_bytes,
        message_block=block,
        mvds_message_entry=mvds_pb2.Payload(messages=[message]).ByteSize(),
        mvds_ack_entry=mvds_pb2.Payload(acks=[message_id]).ByteSize(),
        cas_add_block=_cas_add_request(block),
        cas_get_request=_framed(cas_pb2.CasRequest(get=address).ByteSize()),
        cas_get_block=_cas_content_response(block),
        cas_address_response=_framed(cas_pb2.CasResponse(address=address).ByteSize()),
        ns_update_request=_framed(
            ns_pb2.NsRequest(update=ns_pb2.NameUpdate(name=MODEL_NAME, content=record)).ByteSize()
        ),
        # Status OK is proto3's default: an empty Response, as the server sends it
        ns_update_response=_framed(ns_pb2.NsResponse(response=ns_pb2.Response()).ByteSize()),
        ns_fetch_request=_framed(ns_pb2.NsRequest(fetch=ns_pb2.Query(name=MODEL_NAME)).ByteSize()),
        ns_fetch_response=_framed(
            ns_pb2.NsResponse(content=ns_pb2.Content(data=record)).ByteSize()
        ),
        ns_not_found_response=_framed(
            ns_pb2.NsResponse(error=ns_pb2.Error(code=ns_pb2.Error.NOT_FOUND)).ByteSize()
        ),
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
    #: remote log: storage peers Alice uploads every block, page and record to
    replicas: int = 1
    #: remote log: size of the signed IPNS record
    record_bytes: int = 300

    def __post_init__(self) -> None:
        if self.n_messages < 0 or self.epochs < 1:
            raise ValueError("need n_messages >= 0 and epochs >= 1")
        if not 1 <= self.window <= self.epochs:
            raise ValueError(f"send_window must be in [1, epochs], got {self.window}")
        if self.payload_bytes < 1 or self.record_bytes < 0:
            raise ValueError("need payload_bytes >= 1 and record_bytes >= 0")
        if self.arrivals not in ("even", "random"):
            raise ValueError(f"arrivals must be 'even' or 'random', got {self.arrivals!r}")
        if self.backoff_base < 1 or self.backoff_cap < self.backoff_base:
            raise ValueError("need 1 <= backoff_base <= backoff_cap")
        if self.poll_interval < 1 or self.replicas < 1:
            raise ValueError("need poll_interval >= 1 and replicas >= 1")

    @property
    def window(self) -> int:
        return self.epochs // 2 if self.send_window is None else self.send_window


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
    wire = wire or WireModel.measure(config.payload_bytes, config.record_bytes)
    n = len(created)
    send_count = [0] * n
    send_epoch = list(created)
    acked = [False] * n
    delivered_at: list[int | None] = [None] * n
    deliveries: list[tuple[int, int]] = []
    unacked: list[int] = []  # created, not yet acked, in creation order
    next_new = 0
    pending_acks: list[int] = []  # copies Bob received in earlier epochs, not acked yet
    bytes_alice = bytes_bob = bytes_to_bob = sends = duplicates = 0

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
    )


def simulate_remote_log(
    config: SimConfig,
    alice: Sequence[bool],
    bob: Sequence[bool],
    created: Sequence[int],
    wire: WireModel | None = None,
) -> RunResult:
    """Alice publishes to always-on storage when online; Bob polls it when online."""
    _check_inputs(config, alice, bob, created)
    wire = wire or WireModel.measure(config.payload_bytes, config.record_bytes)
    n = len(created)
    replicas = config.replicas
    delivered_at: list[int | None] = [None] * n
    deliveries: list[tuple[int, int]] = []
    uploaded = 0  # messages [0, uploaded) are in the log
    page_sizes: list[int] = []  # every page Alice wrote, oldest first
    page_ends: list[int] = []  # uploaded count after each page
    bob_pages = 0  # pages Bob has walked
    bob_has = 0  # messages [0, bob_has) delivered
    last_poll: int | None = None
    bytes_alice = bytes_bob = bytes_storage = bytes_to_bob = sends = 0

    for t in range(config.epochs):
        if alice[t]:
            ready = uploaded
            while ready < n and created[ready] <= t:
                ready += 1
            k = ready - uploaded
            if k:
                page = wire.page(uploaded + 1, k, has_tail=bool(page_sizes))
                sent = k * wire.cas_add_block + wire.cas_add(page) + wire.ns_update_request
                answered = (k + 1) * wire.cas_address_response + wire.ns_update_response
                bytes_alice += replicas * sent
                bytes_storage += replicas * answered
                sends += replicas * k
                page_sizes.append(page)
                page_ends.append(ready)
                uploaded = ready

        if bob[t] and (last_poll is None or t - last_poll >= config.poll_interval):
            last_poll = t
            bytes_bob += wire.ns_fetch_request
            if not page_sizes:
                got = wire.ns_not_found_response
            else:
                got = wire.ns_fetch_response
                new_pages = page_sizes[bob_pages:]
                new_messages = uploaded - bob_has
                bytes_bob += (len(new_pages) + new_messages) * wire.cas_get_request
                got += sum(wire.cas_content(size) for size in new_pages)
                got += new_messages * wire.cas_get_block
                for i in range(bob_has, uploaded):
                    if delivered_at[i] is None:
                        delivered_at[i] = t
                        deliveries.append((i, t))
                    # a copy of a message Bob already has cannot come: he fetches only new pairs
                bob_pages, bob_has = len(page_sizes), uploaded
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
    message_sends: int
    duplicates: int


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
        message_sends=sum(r.message_sends for r in runs),
        duplicates=sum(r.duplicates for r in runs),
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
    wire = WireModel.measure(cfg.payload_bytes, cfg.record_bytes)

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
            log_runs.append(simulate_remote_log(cfg, alice, bob, created, wire))
        results.append(summarize(online, mvds_runs))
        results.append(summarize(online, log_runs))
    return results


def format_table(results: Iterable[Result]) -> str:
    """A plain-text table, one row per result."""
    header = (
        "design",
        "online",
        "delivered",
        "lat p50",
        "lat p95",
        "multiplier",
        "sends/msg",
        "dups",
        "Alice KiB",
        "Bob KiB",
        "storage KiB",
        "total KiB",
    )

    def opt(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    rows = [
        (
            r.design,
            f"{r.online:g}",
            f"{100 * r.delivered_share:.1f}%",
            opt(r.latency_median),
            opt(r.latency_p95),
            "inf" if math.isinf(r.multiplier) else f"{r.multiplier:.2f}",
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
    parser.add_argument("--record-bytes", type=int, default=defaults.record_bytes)
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
        record_bytes=args.record_bytes,
    )
    results = run_comparison(args.online, seed=args.seed, seeds=args.seeds, config=config)
    print(format_table(results))
    print(
        f"\n{config.n_messages} messages of {config.payload_bytes} B created over epochs "
        f"[0, {config.window}), horizon {config.epochs} epochs, {args.seeds} seeds pooled; "
        f"MVDS back-off base {config.backoff_base}, cap {config.backoff_cap}"
        f"{' (reset)' if config.backoff_reset else ''}; log replicas {config.replicas}, "
        f"poll every {config.poll_interval} online epoch(s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
