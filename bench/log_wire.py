"""The real bytes of a remote log, for the offline simulation: no byte is re-derived by hand.

:class:`LogWire` holds one publisher's log of deterministic messages and makes, with the
library's own code, everything a publish and a sync put on the wire:

- messages and pages: :class:`rlp2p.core.page.LogEntry` and :func:`~rlp2p.core.page.build_pages`
  in the publisher's layout, the head page carrying the replicas' CAS hints as the publisher
  writes them (binary multiaddrs with ``/p2p/``);
- what a replica lacks: :func:`rlp2p.core.publish.lacking` over the :class:`Holding` it has, as the
  publisher decides it;
- the record: :func:`rlp2p.core.record.create_record`, signed with a real Ed25519 key;
- what a reader fetches: a real :class:`rlp2p.core.sync.SyncPlan`, fed the blocks, which must
  deliver every message (so the bytes counted are bytes a reader accepts);
- the frames: the CAS and NS codecs of :mod:`rlp2p.wire` and their length prefix
  (:func:`rlp2p.wire.framing.encode_frame`); the two answers the servers build inline (a CAS
  Add's address, an NS Fetch's record) are built the same way here;
- a publish as the publisher sends it by default: the Adds and the record's Update on the CAS
  stream (:mod:`rlp2p.wire.upload`; the record in compact form, 151 B for 221); with upload once, the Forward request
  (:mod:`rlp2p.wire.forward`, its lists from :func:`rlp2p.core.forward.plan_forward`), the
  forwarder's ack request after each target's record and each target's signed ack
  (:mod:`rlp2p.core.ack`), relayed in the Forward answer: Alice sends no confirming Fetch
  (``rlp2p/node/forward.py``; a target without acks would cost her one);
- page deltas (:mod:`rlp2p.core.pagedelta`), as the library sends them: the publisher's new
  head page (and the page the old head became) as DeltaAdds against the head the replica holds
  (:func:`~rlp2p.core.pagedelta.upload_deltas`, pipelined: the one-off probe of a new peer is
  left out), the reader's Gets of pages naming the head page he holds, answered by the server's
  own :func:`rlp2p.wire.cas.delta_answer`; the forwarder copies pages whole to the others;
- a reader holding a record asks with NS Poll (:mod:`rlp2p.wire.ns_poll`), one replica for the
  record (in compact form, ``PollQuery.compact``: 151 B for a 221 B record) and the others for
  the sequence only (``sequence_only``), else with Fetch.

Ignored, as for MVDS: the transport below (multistream-select, Noise, yamux, TCP/IP).

A publish or a sync depends only on the log lengths before and after (and the record's
sequence), so each is computed once and cached: the simulation's seeds and online fractions
share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import multiaddr
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair

from rlp2p import LogMode, Message
from rlp2p.core.ack import sign_ack
from rlp2p.core.compact import standalone_compact
from rlp2p.core.forward import plan_forward
from rlp2p.core.keys import log_name, name_to_peer_id
from rlp2p.core.page import BuiltLog, LogEntry, build_log
from rlp2p.core.pagedelta import upload_deltas
from rlp2p.core.publish import Holding, holding_after, lacking, usable
from rlp2p.core.record import create_record
from rlp2p.core.sync import SyncPlan
from rlp2p.pb.vac import cas_pb2, ns_pb2
from rlp2p.wire import cas, ns
from rlp2p.wire.forward import ForwardOutcome, ForwardRequest, ForwardTarget, encode_forward, encode_forwarded
from rlp2p.wire.framing import encode_frame
from rlp2p.wire.ns_poll import PollState, encode_answer, encode_poll
from rlp2p.wire.upload import encode_ack_request, encode_cas_update

__all__ = ["DEFAULT_MODE", "LogWire", "PublishFrames", "SyncFrames", "replica_addr", "replica_id", "sim_message"]

#: the publisher's default layout (``Node.publisher``): pages of 64, every payload embedded
DEFAULT_MODE = LogMode.paged(64, embed=None)
#: the fixed group id and first timestamp of the simulated messages (a present-day Unix second)
GROUP_ID = b"\x5a" * 32
MODEL_TIMESTAMP = 1_700_000_000
#: the records' signing time: fixed, so sizes never depend on the calendar (never verified
#: against the real clock here)
RECORD_TIME = datetime(2026, 1, 1, tzinfo=UTC)
#: a fixed key, so every run signs the same bytes
KEY_SEED = b"rlp2p offline simulation log key"


def sim_message(index: int, payload_bytes: int) -> Message:
    """Message ``index`` (0-based) of the simulated log: ``payload_bytes`` of body, distinct for
    each index (so each has its own block and CAS address)."""
    stamp = index.to_bytes(4, "big")
    body = (stamp * (payload_bytes // 4 + 1))[:payload_bytes]
    return Message(GROUP_ID, MODEL_TIMESTAMP + index, body)


def _replica_key(i: int) -> KeyPair:
    return create_new_key_pair(f"replica {i}".encode().ljust(32, b"."))


def replica_id(i: int) -> str:
    """Replica ``i``'s peer id (base58), from a fixed key."""
    return log_name(_replica_key(i).public_key)


def replica_addr(i: int) -> multiaddr.Multiaddr:
    """Replica ``i``'s listen address (without /p2p/, as a peerstore holds it)."""
    return multiaddr.Multiaddr(f"/ip4/203.0.113.{i + 1}/tcp/4001")


def _hints(replicas: int) -> tuple[bytes, ...]:
    """The head page's CAS hint: one binary ``/ip4/.../tcp/4001/p2p/<id>`` per replica."""
    return tuple(
        multiaddr.Multiaddr(f"{replica_addr(i)}/p2p/{replica_id(i)}").to_bytes() for i in range(replicas)
    )


def _peer_bytes(i: int) -> bytes:
    return name_to_peer_id(replica_id(i)).to_bytes()


def _name_bytes(name: str) -> bytes:
    """A log's binary id, as the reader puts it in a Poll."""
    return name_to_peer_id(name).to_bytes()


def _framed(payload: bytes) -> int:
    return len(encode_frame(payload))


@dataclass(frozen=True, slots=True)
class PublishFrames:
    """What one publish sends to one replica, and what that replica answers."""

    #: CAS Add frames (blocks: new message blocks and changed pages), then the record's Update,
    #: all on the CAS stream (``add_then_update``)
    requests: tuple[bytes, ...]
    responses: tuple[bytes, ...]
    #: blocks among the Adds that are message blocks (the rest are pages)
    message_blocks: int
    #: bytes of ``requests`` with every page whole: what a forwarder sends each other replica
    whole: int = 0

    @property
    def sent(self) -> int:
        return sum(len(f) for f in self.requests)

    @property
    def answered(self) -> int:
        return sum(len(f) for f in self.responses)


@dataclass(frozen=True, slots=True)
class SyncFrames:
    """What one reader's sync from one replica sends and receives (the record fetch apart)."""

    requests: tuple[bytes, ...]
    responses: tuple[bytes, ...]
    #: the sequence numbers the real SyncPlan delivered, in order
    delivered: tuple[int, ...]

    @property
    def sent(self) -> int:
        return sum(len(f) for f in self.requests)

    @property
    def received(self) -> int:
        return sum(len(f) for f in self.responses)


@dataclass
class LogWire:
    """One publisher's log of ``payload_bytes`` messages laid out in ``mode`` for ``replicas``."""

    payload_bytes: int = 256
    mode: LogMode = DEFAULT_MODE
    replicas: int = 3
    #: the record's V1 fields, for old resolvers (None: whatever ``create_record`` writes by default)
    record_v1: bool | None = None
    #: page deltas on the wire (the library's default); False: every page whole
    deltas: bool = True
    _entries: list[LogEntry] = field(default_factory=list, repr=False)
    _builds: dict[int, BuiltLog] = field(default_factory=dict, repr=False)
    _publishes: dict[tuple[int, int], PublishFrames] = field(default_factory=dict, repr=False)
    _syncs: dict[tuple[int, int], SyncFrames] = field(default_factory=dict, repr=False)
    _records: dict[tuple[int, int], bytes] = field(default_factory=dict, repr=False)
    _sizes: dict[tuple[object, ...], int] = field(default_factory=dict, repr=False)

    @cached_property
    def key(self) -> KeyPair:
        return create_new_key_pair(KEY_SEED)

    @cached_property
    def name(self) -> str:
        return log_name(self.key.public_key)

    @cached_property
    def hints(self) -> tuple[bytes, ...]:
        return _hints(self.replicas)

    def entries(self, n: int) -> list[LogEntry]:
        """Seq 1..n of the log."""
        while len(self._entries) < n:
            i = len(self._entries)
            self._entries.append(LogEntry.from_message(i + 1, sim_message(i, self.payload_bytes)))
        return self._entries[:n]

    def built(self, n: int) -> BuiltLog:
        """The whole log of ``n`` messages, as the publisher lays it out."""
        if n not in self._builds:
            self._builds[n] = build_log(self.entries(n), self.mode, self.hints)
        return self._builds[n]

    def head(self, n: int) -> bytes:
        head = self.built(n).head
        assert head is not None, "an empty log has no head"
        return head

    def holding(self, n: int) -> Holding | None:
        """What a replica that stored the log of ``n`` messages holds (None for nothing)."""
        return holding_after(self.built(n), self.mode) if n else None

    def record(self, n: int, sequence: int) -> bytes:
        """The signed record of sequence ``sequence`` naming the head of the log of ``n``."""
        key = (n, sequence)
        if key not in self._records:
            head = self.head(n)
            if self.record_v1 is None:  # the library's default
                record = create_record(self.key, head, sequence, now=RECORD_TIME)
            else:
                record = create_record(self.key, head, sequence, now=RECORD_TIME, v1_compatible=self.record_v1)
            self._records[key] = record
        return self._records[key]

    def publish(self, have: int, n: int, sequence: int, *, compact: bool = True) -> PublishFrames:
        """A publish of the log of ``n`` to a replica holding the log of ``have``: the blocks the
        core says it lacks (:func:`lacking`), then the record of ``sequence`` on the same CAS
        stream (:func:`rlp2p.wire.upload.add_then_update`, the publisher's and the forwarder's
        way to every replica that knows it). The publisher sends the record in compact form
        (UploadNameUpdate.compact: 151 B for 221); the forwarder's copies to the other replicas
        send the whole record (``compact=False``)."""
        key = (have, n)
        if key not in self._publishes:
            holding = usable(self.holding(have), self.mode, n)
            built = self.built(n)  # the whole log: pages the replica holds are left out by lacking
            blocks = dict(built.blocks)
            pages = {address for address, _ in built.pages}
            missing = lacking(holding, built, self.entries(n), self.mode)
            base = self.built(have).pages[-1][1] if self.deltas and holding is not None else None
            deltas = upload_deltas(base, dict(built.pages), missing)
            whole = [encode_frame(cas.encode_add(blocks[a])) for a in missing]
            self._publishes[key] = PublishFrames(
                requests=tuple(encode_frame(r) for r in cas.encode_adds([blocks[a] for a in missing], deltas)),
                responses=tuple(
                    encode_frame(cas_pb2.CasResponse(address=cas_pb2.Address(id=a)).SerializeToString())
                    for a in missing
                ),
                message_blocks=sum(a not in pages for a in missing),
                whole=sum(len(f) for f in whole),
            )
        frames = self._publishes[key]
        update = encode_frame(encode_cas_update(self.name, self.record(n, sequence), compact=compact))
        ok = encode_frame(
            cas_pb2.CasResponse(updated=cas_pb2.UploadNameResult(status=ns_pb2.Response.OK)).SerializeToString()
        )
        return PublishFrames(
            frames.requests + (update,), frames.responses + (ok,), frames.message_blocks, frames.whole + len(update)
        )

    def lacks(self, have: int, n: int) -> list[bytes]:
        """The addresses a replica holding the log of ``have`` lacks of the log of ``n``."""
        holding = usable(self.holding(have), self.mode, n)
        return lacking(holding, self.built(n), self.entries(n), self.mode)

    def forward(self, have: int, n: int, sequence: int) -> tuple[bytes, bytes]:
        """Upload once: the framed Forward request Alice sends the first replica (it copies to
        replicas 1..R-1, each holding the log of ``have`` as she knows from her confirmations),
        and its framed answer (every target stored)."""
        targets = range(1, self.replicas)
        shared, plans = plan_forward([self.lacks(have, n) for _ in targets])
        # the first publish names targets in full; from then on the forwarder is known to relay
        # acks and Alice names each by its position in the head page's CAS hint (replica i's is
        # at i + 1: the hint lists the replicas in order)
        request = ForwardRequest(
            self.name,
            sequence,
            [
                ForwardTarget(b"", [], plan, hint=i + 1)
                if sequence > 1
                else ForwardTarget(_peer_bytes(i), [replica_addr(i).to_bytes()], plan)
                for i, plan in zip(targets, plans, strict=True)
            ],
            shared,
        )
        counts = [len(request.lacking(t) or ()) for t in request.targets]
        answer = encode_forwarded(
            [
                ForwardOutcome(
                    b"" if sequence > 1 else _peer_bytes(i), "OK", blocks_sent=c, ack_seq=sequence, ack=self._ack(i, sequence)
                )
                for i, c in zip(targets, counts, strict=True)
            ]
        )
        return encode_frame(encode_forward(request)), encode_frame(answer)

    def _ack(self, replica: int, sequence: int) -> bytes:
        """Replica ``replica``'s signed ack of ``sequence`` (its real Ed25519 signature)."""
        return sign_ack(_replica_key(replica).private_key, self.name, sequence)

    def confirmation(self, n: int, sequence: int) -> tuple[int, int]:
        """Bytes Alice sends and receives to confirm one forwarded target, beyond the Forward
        request and its answer: none, its signed ack rides the answer (:meth:`forward`)."""
        return 0, 0

    def ack_frames(self, sequence: int) -> tuple[int, int]:
        """Bytes of the forwarder's ack request to one target (after the record, on the same CAS
        stream) and of the target's answer: storage's bytes, not Alice's."""
        request = encode_frame(encode_ack_request(self.name))
        answer = encode_frame(
            cas_pb2.CasResponse(
                acked=cas_pb2.AckResult(sequence=sequence, signature=self._ack(1, sequence))
            ).SerializeToString()
        )
        return len(request), len(answer)

    def poll_request(self, held: int, sequence_only: bool = False) -> bytes:
        """A framed NS Poll of this log by a reader holding the record of sequence ``held``; with
        ``sequence_only``, asking for the sequence only (the reader's ask of all but one replica).
        It takes compact records (PollQuery.compact), as :func:`rlp2p.wire.ns_poll.poll` asks."""
        return encode_frame(encode_poll([(_name_bytes(self.name), held)], [sequence_only], compact=not sequence_only))

    def poll_answer(self, n: int, sequence: int, held: int, sequence_only: bool = False) -> bytes:
        """A replica's framed answer to :meth:`poll_request`: UNCHANGED, or the newer record in
        compact form, as :func:`rlp2p.wire.ns_poll.answer_poll` sends it (with ``sequence_only``,
        CHANGED with the sequence and no record)."""
        if sequence <= held:
            return encode_frame(encode_answer([(PollState.UNCHANGED if sequence == held else PollState.OLDER, b"")]))
        if sequence_only:
            return encode_frame(encode_answer([(PollState.CHANGED, b"", sequence)]))
        record = self.record(n, sequence)
        compact = standalone_compact(record)
        if compact is not None:
            return encode_frame(encode_answer([ns_pb2.PollResult(state=PollState.CHANGED, compact=compact)]))
        return encode_frame(encode_answer([(PollState.CHANGED, record)]))

    def poll_request_size(self, held: int, sequence_only: bool = False) -> int:
        key = ("poll", held, sequence_only)
        if key not in self._sizes:
            self._sizes[key] = len(self.poll_request(held, sequence_only))
        return self._sizes[key]

    def poll_answer_size(self, n: int, sequence: int, held: int, sequence_only: bool = False) -> int:
        key = ("polled", n, sequence, held, sequence_only)
        if key not in self._sizes:
            self._sizes[key] = len(self.poll_answer(n, sequence, held, sequence_only))
        return self._sizes[key]

    def fetch_request(self) -> int:
        """Bytes of an NS Fetch of the log, framed."""
        return _framed(ns.encode_fetch(self.name))

    def fetch_answer(self, n: int, sequence: int) -> bytes:
        """The framed answer to an NS Fetch: the record, or NOT_FOUND before the first publish."""
        if n == 0:
            return encode_frame(ns.encode_error(ns.Code.NOT_FOUND, f"no record for {self.name}"))
        record = self.record(n, sequence)
        return encode_frame(ns_pb2.NsResponse(content=ns_pb2.Content(data=record)).SerializeToString())

    def fetch_response(self, n: int, sequence: int) -> int:
        """Bytes of :meth:`fetch_answer`."""
        key = (-n, sequence)  # beside the records, by the same key
        if key not in self._records:
            self._records[key] = self.fetch_answer(n, sequence)
        return len(self._records[key])

    def sync(self, delivered: int, n: int) -> SyncFrames:
        """A reader that delivered seq 1..``delivered`` catching up to the log of ``n`` from one
        replica: the CAS Gets a real :class:`SyncPlan` asks for, answered with the real blocks."""
        key = (delivered, n)
        if key not in self._syncs:
            blocks = self.built(n).blocks  # what the replica holds of the log of n
            plan = SyncPlan(self.head(n), delivered)
            # the head page he holds (cached from his last sync, which delivered all of it)
            base = self.built(delivered).pages[-1] if self.deltas and delivered else None
            requests: list[bytes] = []
            responses: list[bytes] = []
            seqs: list[int] = []
            for _ in range(4 * n + 8):  # bounded: each round fetches at least one block
                wanted = plan.wants()
                if not wanted:
                    break
                for address in wanted:
                    if base is not None and plan.is_page(address) and address != base[0]:
                        requests.append(encode_frame(cas.encode_get_delta(address, [base[0]])))
                        responses.append(encode_frame(cas.delta_answer(blocks[address], base[1], implied=True)))
                    else:
                        requests.append(encode_frame(cas.encode_get(address)))
                        responses.append(encode_frame(cas.encode_content(blocks[address])))
                    plan.receive(address, blocks[address])
                seqs += [d.seq for d in plan.ready()]
            if not plan.done or seqs != list(range(delivered + 1, n + 1)):
                raise RuntimeError(f"the sync plan did not deliver {delivered + 1}..{n}: {seqs[:5]}...")
            self._syncs[key] = SyncFrames(tuple(requests), tuple(responses), tuple(seqs))
        return self._syncs[key]
