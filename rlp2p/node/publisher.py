"""Alice: append to a log, lay it out in pages, replicate it, point the name at its head.

A publish costs what changed. Per replica, Alice keeps what it holds as a high-water mark (a
:class:`~rlp2p.core.publish.Holding`: the log length whose record it acknowledged, its head, and
where that log's open pages start); she rebuilds only the pages from the lowest open page among the
replicas she writes to, reads only those messages from the local log, and sends each replica what
it lacks (:func:`~rlp2p.core.publish.lacking`), then the signed record. A replica left behind
(it was down) gets everything from its own mark on, at the next publish.

Record sequences are reserved durably before a record is signed and sent: a sequence that may
have left the process is never used again, so a retry after any crash (ours or a replica's) signs
a higher one, and replicas holding a failed attempt take it. A publish with no new messages
refreshes the record alone (new sequence and validity, same head, no pages).

:meth:`Publisher.truncate` drops the log's older messages (from the local log too) and publishes
the kept ones with a head page saying where history starts (:mod:`rlp2p.core.history`).
"""

from __future__ import annotations

from typing import Any

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from rlp2p.core.keys import log_name
from rlp2p.core.message import Message
from rlp2p.core.history import plan_truncation
from rlp2p.core.invitation import decode_token
from rlp2p.core.invitation import verify as verify_invitation
from rlp2p.core.page import BuiltLog, LogEntry, LogMode, base_page, build_pages
from rlp2p.core.placement import log_key, order_candidates
from rlp2p.core.private import SEAL_OVERHEAD, SEAL_VERSION, Capability, Keyring, PrivateState, new_seed, seal_entries
from rlp2p.core.publish import (
    PublishReport,
    ReplicaResult,
    Holding,
    build_start,
    holding_after,
    lacking,
    messages_held,
    next_sequence,
    partial_holding,
    usable,
)
from rlp2p.core.replicas import next_batch
from rlp2p.core.replicas import write_quorum as write_quorum_of
from rlp2p.core.record import DEFAULT_TTL, DEFAULT_VALIDITY, create_record, verify_record
from rlp2p.errors import PublishError, RemoteError, Rlp2pError, StreamClosed, UnsupportedRequest
from rlp2p.limits import Limits
from rlp2p.node.backend import AsyncStore
from rlp2p.node.peers import Peers
from rlp2p.store import PublishState
from rlp2p.core.pagedelta import MAX_DELTA_BASES, upload_deltas
from rlp2p.wire.upload import add_then_update


log = logging.getLogger(__name__)

DEFAULT_MODE = LogMode.paged(64, embed=None)
#: blocks per pipelined batch while uploading
UPLOAD_BATCH = 256
#: messages below which a build or a plan runs on the trio thread (a worker thread's hop costs more)
INLINE_ENTRIES = 2048
#: publish attempts with a new sequence when replicas hold a higher one of ours (lost state)
SEQUENCE_RETRIES = 1
#: ways of replicating: through one forwarding replica, or to each replica directly
UPLOADS = ("once", "each")
#: seconds the storage peers found in the DHT are used for the next publishes without a lookup
CANDIDATES_TTL = 600.0


Progress = Callable[[int, int], None]


@dataclass
class _Build:
    """The pages of the log from one page on, and the messages they were made from."""

    built: BuiltLog
    entries: list[LogEntry]


class Publisher:
    def __init__(
        self,
        peers: Peers,
        astore: AsyncStore,
        key_pair: KeyPair,
        *,
        limits: Limits,
        clock: Callable[[], datetime],
        mode: LogMode = DEFAULT_MODE,
        replicas: int = 3,
        write_quorum: int | None = None,
        replica_peers: Sequence[ID] | None = None,
        group_id: bytes | None = None,
        validity: timedelta = DEFAULT_VALIDITY,
        ttl: timedelta = DEFAULT_TTL,
        invitations: Sequence[str | bytes] = (),
        private: bool | None = None,
        upload: str = "once",
        record_v1: bool = False,
    ) -> None:
        quorum = write_quorum_of(replicas, write_quorum)  # ValueError for an impossible count
        self.peers = peers
        self.astore, self.store = astore, astore.store
        self.limits = limits
        #: the wall clock (time is an input): message timestamps, record validity
        self.clock = clock
        self.key_pair = key_pair
        self.name = log_name(key_pair.public_key)
        self.mode = mode
        self.replicas = replicas
        self.write_quorum = quorum
        self.replica_peers = list(replica_peers) if replica_peers else None
        if upload not in UPLOADS:
            raise ValueError(f"upload must be one of {UPLOADS}, got {upload!r}")
        #: "once": new blocks go to one replica, which forwards them (rlp2p/node/forward.py);
        #: "each": Alice uploads to every replica herself
        self.upload = upload
        #: peers that do not take a record on the CAS stream (they get it over NS)
        self._ns_only: set[ID] = set()
        # peers from before compact record uploads (UploadNameUpdate field 11): whole records
        self._whole_records: set[ID] = set()
        #: (trio time found, storage peers found in the DHT): see :meth:`candidates`
        self._candidates: tuple[float, list[ID]] | None = None
        #: what replicas acknowledged during the publish under way (peer id -> holding)
        self._acked: dict[str, Holding] = {}
        #: what the store said the candidates held when the publish under way started
        self._held: dict[str, Holding | None] = {}
        #: the CAS hint of the head page of the publish under way (binary multiaddrs with /p2p/)
        self._hint: list[bytes] = []
        #: forwarders seen relaying signed acks: they also take targets named by hint position
        self._compact_forwarders: set[ID] = set()
        #: the head pages of the last few builds (CID -> bytes): bases of page deltas for the
        #: replicas that hold them (rlp2p.core.pagedelta); empty after a restart (pages go whole)
        self._heads: dict[bytes, bytes] = {}
        #: peers that took a delta Add (sent pipelined from then on) and peers that refused one
        self._delta_ok: set[ID] = set()
        self._delta_no: set[ID] = set()
        if validity <= timedelta(0) or ttl < timedelta(0):
            raise ValueError(f"validity must be positive and ttl not negative, got {validity}, {ttl}")
        #: how long each record stays valid from its publish, and how long readers may cache it
        self.validity = validity
        self.ttl = ttl
        #: records with IPNS V1 fields and pubKey too, for old resolvers (default: compact, V2 only)
        self.record_v1 = record_v1
        # MVDS messages carry a group; by default one group per log
        self.group_id = group_id if group_id is not None else hashlib.sha256(self.name.encode()).digest()
        # the oldest seq of the local log (1 until a truncation), read at each publish
        self._first_seq = 1
        #: storage peers' signed invitations (tokens or their bytes), by issuer peer id: each is
        #: presented to its issuer before writing there (rlp2p.core.invitation)
        self.invitations: dict[str, bytes] = {}
        for token in invitations:
            signed = decode_token(token) if isinstance(token, str) else token
            self.invitations[verify_invitation(signed).issuer] = signed
        # private logs (rlp2p.core.private): True makes a new log private, False insists on a
        # public one, None takes what the store recorded when the log was created
        self._private_wanted = private
        self._private: PrivateState | None = None
        self._keyring: Keyring | None = None
        self._private_loaded = False

    # --- private logs ----------------------------------------------------------------------------

    async def private_state(self) -> PrivateState | None:
        """The log's private state (None for a public log), recorded at its creation."""
        if self._private_loaded:
            return self._private
        store, astore = self.store, self.astore
        state = await astore.call(store.private_state, self.name)
        if state is None and self._private_wanted:
            if await self.length() > 0:
                raise ValueError(f"{self.name} was created public: a log's mode is chosen at creation")
            state = PrivateState(new_seed())
            await astore.call(store.set_private_state, self.name, state)
        elif state is not None and self._private_wanted is False:
            raise ValueError(f"{self.name} was created private")
        self._set_private(state)
        return state

    def _set_private(self, state: PrivateState | None) -> None:
        self._private, self._private_loaded = state, True
        self._keyring = None if state is None else state.keyring(self.name)

    async def capability(self) -> Capability:
        """The read capability of the current epoch (it reads every epoch up to it)."""
        await self.private_state()
        if self._keyring is None:
            raise ValueError(f"{self.name} is a public log: it has no capability")
        return self._keyring.capability()

    async def rotate(self) -> Capability:
        """Start a new epoch: messages appended from now on are sealed under a fresh secret that
        earlier capabilities cannot derive. Returns the new capability."""
        state = await self.private_state()
        if state is None:
            raise ValueError(f"{self.name} is a public log: there is no key to rotate")
        state = state.rotated(await self.length())
        await self.astore.call(self.store.set_private_state, self.name, state)
        self._set_private(state)
        assert self._keyring is not None
        return self._keyring.capability()

    # --- the local log -------------------------------------------------------------------------

    async def append(self, bodies: Iterable[bytes], *, timestamp: int | None = None) -> list[int]:
        """Append messages to the local log (durably); returns their seqs. Nothing is sent."""
        ts = int(self.clock().timestamp()) if timestamp is None else timestamp
        datas = [Message(self.group_id, ts, body).encode() for body in bodies]
        limit = self.limits.max_message
        if await self.private_state() is not None:
            limit -= SEAL_OVERHEAD  # the block is the sealed message
        for data in datas:
            if len(data) > limit:
                raise ValueError(f"a message of {len(data)} bytes is over the limit of {limit}")
        return await self.astore.call(self.store.append_messages, self.name, datas)

    async def length(self) -> int:
        return await self.astore.call(self.store.log_length, self.name)

    async def first_seq(self) -> int:
        """The oldest seq the local log holds: 1, or where a truncation made it start."""
        rows = await self.astore.call(self.store.log_entries, self.name, 0, 1)
        return rows[0][0] if rows else 1

    async def truncate(
        self, before: int | None = None, *, keep: int | None = None, progress: Progress | None = None
    ) -> PublishReport:
        """Drop the messages before seq ``before`` (or all but the newest ``keep``) and publish.

        The local log forgets them first, so a publish that fails here is completed by the next
        one. Readers that lacked them get the rest and a report of what is gone
        (:attr:`~rlp2p.node.reader.SyncReport.gone`); storage peers collect the unreachable
        blocks with their retention. Truncating to where the log starts already just publishes.
        """
        store, astore = self.store, self.astore
        length = await astore.call(store.log_length, self.name)
        plan = plan_truncation(self.mode, length, await self.first_seq(), before=before, keep=keep)
        if plan.changes:
            forgotten = await astore.call(store.forget_messages, self.name, plan.first_seq)
            log.info(
                "truncated %s before seq %d: %d messages forgotten, %d pages to rewrite",
                self.name, plan.first_seq, forgotten, plan.pages_rewritten,
            )
        return await self.publish(progress=progress)

    # --- publishing ------------------------------------------------------------------------------

    async def candidates(self) -> list[ID]:
        """Storage peers to replicate to, nearest to the log's key first.

        Found in the DHT once and kept for ``CANDIDATES_TTL`` seconds (a publish that misses its
        quorum forgets them): the DHT lookups were most of a publish's time."""
        if self.replica_peers is not None:
            return list(self.replica_peers)
        cached = self._candidates
        if cached is not None and trio.current_time() - cached[0] < CANDIDATES_TTL:
            return list(cached[1])
        found = await self._find_candidates()
        self._candidates = (trio.current_time(), found)
        return list(found)

    def _known_candidates(self) -> list[ID] | None:
        """The candidates when no lookup is needed (named, or found recently), else None."""
        if self.replica_peers is not None:
            return list(self.replica_peers)
        cached = self._candidates
        if cached is not None and trio.current_time() - cached[0] < CANDIDATES_TTL:
            return list(cached[1])
        return None

    async def _find_candidates(self) -> list[ID]:
        peers = {p.to_bytes(): p for p in await self.peers.storage_candidates(log_key(self.name))}
        # peers already holding the log come too: they have most blocks
        for peer in await self.peers.log_peers(self.name):
            peers.setdefault(peer.to_bytes(), peer)
        ordered = order_candidates(log_key(self.name), list(peers))
        return [peers[p] for p in ordered]

    async def publish(self, *, progress: Progress | None = None) -> PublishReport:
        """Replicate what the replicas lack of the local log and point the name at its head.

        With no new message since the last publish, this refreshes the record alone (new
        sequence, new validity, same head). Raises PublishError when fewer than ``write_quorum``
        replicas stored everything; what each did store is remembered, so the next publish sends
        only the rest.
        """
        started = time.monotonic()
        store, astore = self.store, self.astore
        self._acked = {}
        self._held = {}
        name = self.name

        known = self._known_candidates()
        mode, replicas = self.mode, self.replicas

        def start(wanted: list[str]) -> tuple[int, int, PublishState | None, dict[str, Holding | None], Any]:
            # one trip to the store's thread for everything a publish reads before it signs
            # (each trip costs more than the reads on a busy machine): the log's length and start,
            # the publish state, what the candidates hold, the messages the build needs, and the
            # sequence reserved durably
            rows = store.log_entries(name, 0, 1)
            length, first = store.log_length(name), rows[0][0] if rows else 1
            state = store.get_publish_state(name)
            held = {p: store.replica_holding(name, p) for p in wanted}
            if length == 0 or not wanted:
                return length, first, state, held, None
            page, tail = build_start([usable(held[p], mode, length, first) for p in wanted[:replicas]], base_page(mode, first))
            after = first - 1 if page == base_page(mode, first) else page * (mode.page_size or 1)
            sequence = next_sequence(state.record_seq, state.reserved_seq) if state else 1
            store.reserve_sequence(name, sequence)
            return length, first, state, held, (page, tail, store.log_entries(name, after, length - after), sequence)

        length, self._first_seq, state, self._held, prepared = await astore.call(start, [p.to_string() for p in known or []])
        if length == 0:
            raise PublishError("the log is empty: append messages before publishing")
        candidates = known if known is not None else await self.candidates()
        if known is None:
            wanted = [p.to_string() for p in candidates]
            self._held = await astore.call(lambda: {p: store.replica_holding(name, p) for p in wanted})
        if len(candidates) < self.write_quorum:
            raise PublishError(
                f"found {len(candidates)} storage peers, need {self.write_quorum} for the write quorum"
            )
        # the head page names the intended replicas (the spec's CAS multiaddr), as a hint for readers
        hint = self._hint = self.peers.hints_for(candidates[: self.replicas])
        build: _Build | None = None

        async def pages_for(holdings: Iterable[Holding | None]) -> _Build:
            nonlocal build
            page, tail = build_start(holdings, base_page(self.mode, self._first_seq))
            if build is None or page < build.built.first_page:
                build = await self._build(length, page, tail, hint)
            return build

        reserved = 0
        if prepared is not None:  # the build's messages were read with the rest
            page, tail, rows, reserved = prepared
            build = await self._build(length, page, tail, hint, rows)
        # what the first replicas hold decides where the build starts; a replacement that holds
        # less makes it start earlier (same pages, same head)
        first = [await self._holding(p, length) for p in candidates[: self.replicas]]
        head = (await pages_for(first)).built.head
        assert head is not None
        sequence = next_sequence(state.record_seq, state.reserved_seq) if state else 1

        report = PublishReport(self.name, length, sequence, head)
        for attempt in range(SEQUENCE_RETRIES + 1):
            # reserved before the record exists: once it may have left, it is never signed again
            if sequence != reserved:
                await astore.call(store.reserve_sequence, self.name, sequence)
            record = create_record(
                self.key_pair, head, sequence, validity=self.validity, ttl=self.ttl, now=self.clock(),
                v1_compatible=self.record_v1,
            )
            report = PublishReport(self.name, length, sequence, head)
            await self._replicate_all(candidates, length, pages_for, record, report, progress)
            if len(report.stored_on) >= self.write_quorum:
                break
            higher = max((r.holds_seq for r in report.replicas), default=0)
            if higher < sequence or attempt == SEQUENCE_RETRIES:
                break
            # replicas hold a record of ours this store forgot (restored data folder, old
            # release): go above it
            log.info("replicas hold sequence %d of %s; publishing again above it", higher, self.name)
            sequence = higher + 1
        report.seconds = time.monotonic() - started
        if len(report.stored_on) < self.replicas:
            self._candidates = None  # some were unreachable or refused: look again next time
        if len(report.stored_on) < self.write_quorum:
            # what each replica acknowledged is remembered: the next publish sends only the rest
            await astore.call(store.record_publish, self.name, self._acked)
            # the next publish goes above whatever our replicas were seen to hold
            held = max((r.holds_seq for r in report.replicas), default=0)
            if held > sequence:
                await astore.call(store.reserve_sequence, self.name, held)
            failures = "; ".join(f"{r.peer}: {r.error}" for r in report.replicas if not r.ok)
            raise PublishError(
                f"stored on {len(report.stored_on)} of the {self.write_quorum} replicas needed ({failures})"
            )
        # the bookkeeping of a publish, one transaction: what each replica holds and the state
        await astore.call(
            store.record_publish,
            self.name,
            self._acked,
            PublishState(record_seq=sequence, published_length=length, reserved_seq=sequence),
        )
        # the replicas that took the record put it into the DHT themselves; ours is a second
        # copy, so nobody waits for it (it was most of a publish's time)
        self.peers.published(verify_record(self.name, record, now=self.clock()))
        log.info("published %s: %d messages, seq %d, on %s", self.name, length, sequence, report.stored_on)
        return report

    async def assume_held(self, peer: ID, built: BuiltLog) -> None:
        """Remember that ``peer`` holds every block of ``built`` (a whole build of this log, in this
        mode): for set-ups that put the blocks there themselves. The next publish sends it only
        what changed since."""
        holding = holding_after(built, self.mode)
        await self.astore.call(self.store.set_replica_holding, self.name, peer.to_string(), holding)

    async def _note_progress(self, peer: ID, have: Holding | None, built: BuiltLog, pages: list[int]) -> Holding | None:
        """After whole pages of a long upload went through: remember them, so an upload cut short
        (a crash, a lost link) resumes after them rather than from the replica's last record."""
        partial = partial_holding(built, self.mode, max(pages)) if pages else None
        if partial is None or (have is not None and partial.length <= have.length):
            return have
        await self.astore.call(self.store.set_replica_holding, self.name, peer.to_string(), partial)
        self._held[peer.to_string()] = partial
        return partial

    def _page_deltas(self, peer: ID, have: Holding | None, built: BuiltLog, missing: list[bytes]) -> dict[bytes, bytes]:
        """Pages among ``missing`` to send as deltas against the head page ``peer`` holds (the
        new head, the page the old head became): page address -> delta. At most
        MAX_DELTA_BASES pages are tried (one build each); none for a peer that refused one."""
        head = built.head
        if head is not None:
            self._heads[head] = built.blocks[head]
            while len(self._heads) > MAX_DELTA_BASES:
                del self._heads[next(iter(self._heads))]
        base = self._heads.get(have.head) if have is not None else None
        if peer in self._delta_no:
            return {}
        return upload_deltas(base, dict(built.pages), missing, self.limits)

    async def _probe_deltas(self, cas: Any, peer: ID, deltas: dict[bytes, bytes]) -> set[bytes]:
        """A peer not yet known to take delta Adds gets them in a call of their own, so a refusal
        never leaves it a record without its page: the pages it stored."""
        results = await cas.add_deltas(deltas)
        stored = {a for a, error in results.items() if error is None}
        if stored:
            self._delta_ok.add(peer)
        elif any(isinstance(e, RemoteError) and e.code == "BAD_REQUEST" for e in results.values()):
            self._delta_no.add(peer)  # an old server: whole pages from now on
        return stored

    async def _add_then_update(
        self, cas: Any, peer: ID, blocks: list[bytes], record: bytes, deltas: dict[bytes, bytes] | None = None
    ) -> tuple[RemoteError | None, bool]:
        """The last blocks and the record in one pipelined call (rlp2p/wire/upload.py): (a STALE
        refusal to check over NS, whether the record was stored). A peer that does not know the
        request gets its records over NS from now on."""
        compact = peer not in self._whole_records
        try:
            await add_then_update(cas, blocks, self.name, record, deltas=deltas, compact=compact)
        except UnsupportedRequest:
            self._ns_only.add(peer)
            return None, False
        except RemoteError as exc:
            if compact and exc.code == "INVALID_RECORD":
                # our own record, so a peer from before that saw none: the whole one, from now on
                self._whole_records.add(peer)
                return await self._add_then_update(cas, peer, [], record)
            if exc.code != "STALE":
                raise
            return exc, False
        return None, True

    async def _holding(self, peer: ID, length: int) -> Holding | None:
        key = peer.to_string()
        have = self._acked.get(key)
        if have is None and key in self._held:
            have = self._held[key]
        elif have is None:
            have = await self.astore.call(self.store.replica_holding, self.name, key)
        return usable(have, self.mode, length, self._first_seq)

    async def _build(
        self, length: int, page: int, tail: bytes | None, hint: Sequence[bytes], rows: list[tuple[int, bytes]] | None = None
    ) -> _Build:
        """Read seq page*P+1..length from the local log (unless ``rows`` holds them already) and
        lay out those pages."""
        first = self._first_seq
        after = first - 1 if page == base_page(self.mode, first) else page * (self.mode.page_size or 1)
        if rows is None:
            rows = await self.astore.call(self.store.log_entries, self.name, after, length - after)
        limits = self.limits
        private = await self.private_state()
        keyring = self._keyring

        def lay_out() -> _Build:
            entries = [LogEntry(seq=seq, data=data) for seq, data in rows]
            sealed = 0
            if private is not None and keyring is not None:
                entries, sealed = seal_entries(entries, private, keyring), SEAL_VERSION
            built = build_pages(
                entries, self.mode, hint, first_page=page, tail=tail, limits=limits, first_seq=first, sealed=sealed
            )
            return _Build(built, entries)

        if len(rows) <= INLINE_ENTRIES:
            return lay_out()
        return await trio.to_thread.run_sync(lay_out)

    async def _replicate_all(
        self,
        candidates: list[ID],
        length: int,
        pages_for: Callable[[Iterable[Holding | None]], Awaitable[_Build]],
        record: bytes,
        report: PublishReport,
        progress: Progress | None,
    ) -> None:
        """Aim for ``replicas`` copies; a failed replica is replaced by the next-closest candidate."""
        counts = [0, 0]  # blocks done, blocks to send (grows as each replica's plan is known)

        def tick(done: int, more: int = 0) -> None:
            counts[0] += done
            counts[1] += more
            if progress is not None:
                progress(min(counts[0], counts[1]), counts[1])

        if self.upload == "once" and self.replicas > 1:
            from rlp2p.node.forward import replicate_once

            await replicate_once(self, candidates, length, pages_for, record, report.sequence, report, tick)
            return
        pending = list(candidates)
        while pending and len(report.stored_on) < self.replicas:
            batch, pending = next_batch(pending, len(report.stored_on), self.replicas)
            holdings = [await self._holding(p, length) for p in batch]
            build = await pages_for(holdings)
            results: list[ReplicaResult] = []

            async def one(peer: ID, have: Holding | None, build: _Build, results: list[ReplicaResult]) -> None:
                held = await self._held_messages(peer, have, length)
                results.append(
                    await self._replicate(
                        peer, have, build, record, tick, full_build=lambda: pages_for([None]), held_messages=held
                    )
                )

            async with trio.open_nursery() as nursery:
                for peer, have in zip(batch, holdings, strict=True):
                    nursery.start_soon(one, peer, have, build, results)
            report.replicas.extend(results)

    async def _held_messages(self, peer: ID, have: Holding | None, length: int) -> int:
        """For a replica without a usable holding: the log length whose message blocks it still
        holds (after a truncation it keeps them, so they are not sent again); 0 otherwise."""
        if have is not None:
            return 0
        raw = await self.astore.call(self.store.replica_holding, self.name, peer.to_string())
        return messages_held(raw, self.mode, length, self._first_seq)

    async def _replicate(
        self,
        peer: ID,
        have: Holding | None,
        build: _Build,
        record: bytes,
        tick: Callable[..., None],
        *,
        full_build: Callable[[], Awaitable[_Build]] | None = None,
        held_messages: int = 0,
    ) -> ReplicaResult:
        store, astore = self.store, self.astore
        built = build.built
        result = ReplicaResult(peer=peer.to_string(), ok=False)
        try:
            invitation = self.invitations.get(peer.to_base58())
            if invitation is not None:  # before any write: an invite-only peer admits nothing else
                try:
                    await self.peers.present_invitation(peer, invitation)
                except StreamClosed as exc:  # a peer without the protocol: its writes will tell
                    log.info("could not present an invitation to %s: %s", peer, exc)
            if len(build.entries) <= INLINE_ENTRIES:
                missing = lacking(have, built, build.entries, self.mode, held_messages)
            else:
                missing = await trio.to_thread.run_sync(lacking, have, built, build.entries, self.mode, held_messages)
            tick(0, len(missing))
            sent_record = False  # the record went with the last blocks, on the CAS stream
            stale: RemoteError | None = None
            if missing:
                pages = {a: i for i, (a, _) in enumerate(built.pages, start=built.first_page)}
                deltas = self._page_deltas(peer, have, built, missing)
                async with self.peers.cas(peer) as cas:
                    before = cas.rpc.bytes_out  # a kept stream counts what earlier callers sent
                    try:
                        if deltas and peer not in self._delta_ok:
                            stored = await self._probe_deltas(cas, peer, deltas)
                            missing = [a for a in missing if a not in stored]
                            deltas = {} if peer not in self._delta_ok else {a: d for a, d in deltas.items() if a not in stored}
                            result.blocks_sent += len(stored)
                            if not missing and peer not in self._ns_only:  # the probe took them all
                                stale, sent_record = await self._add_then_update(cas, peer, [], record)
                        for start in range(0, len(missing), UPLOAD_BATCH):
                            chunk = missing[start : start + UPLOAD_BATCH]
                            blocks = [built.blocks[a] for a in chunk]
                            sent = {a: deltas[a] for a in chunk if a in deltas}
                            for attempt in range(2):  # the second whole: a base the peer lost
                                try:
                                    if start + UPLOAD_BATCH >= len(missing) and peer not in self._ns_only:
                                        stale, sent_record = await self._add_then_update(cas, peer, blocks, record, sent)
                                    else:
                                        await cas.add_many(blocks, sent)
                                    break
                                except RemoteError as exc:
                                    if not sent or attempt or exc.code not in ("NOT_FOUND", "BAD_REQUEST"):
                                        raise
                                    self._delta_ok.discard(peer)  # probe it again next time
                                    sent = {}
                            result.blocks_sent += len(chunk)
                            tick(len(chunk))
                            if start + UPLOAD_BATCH < len(missing):  # after the last, the record says more
                                done = [pages[a] for a in chunk if a in pages]
                                have = await self._note_progress(peer, have, built, done)
                    finally:
                        result.bytes_sent += cas.rpc.bytes_out - before
            if not sent_record:
                async with self.peers.ns(peer) as ns:
                    before = ns.rpc.bytes_out
                    try:
                        if stale is None:
                            await ns.update(self.name, record)
                        else:
                            raise stale
                    except RemoteError as exc:
                        # the replica holds this very record already (a retried publish): fine
                        if exc.code != "STALE":
                            raise
                        held = await ns.fetch(self.name)
                        if held.raw != record:
                            result.holds_seq = held.sequence
                            raise
                    finally:
                        result.bytes_sent += ns.rpc.bytes_out - before
            # it acknowledged a record naming this head: it holds everything the head reaches
            # (written with the publish's state, in one transaction)
            self._acked[result.peer] = holding_after(built, self.mode)
            result.ok = True
        except Rlp2pError as exc:
            if isinstance(exc, RemoteError) and exc.code == "INCOMPLETE" and full_build is not None:
                # the replica no longer holds blocks it acknowledged (its retention dropped the
                # log): forget what it held and send it the whole log once more
                await astore.call(store.forget_replica, self.name, peer.to_string())
                self._held[peer.to_string()] = None
                return await self._replicate(peer, None, await full_build(), record, tick)
            result.error = f"{type(exc).__name__}: {exc}"
            log.info("replica %s failed: %s", peer, result.error)
        return result
