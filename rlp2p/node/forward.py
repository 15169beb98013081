"""Upload once (issue 11.3): Alice uploads to one storage peer, which forwards to the others.

Both ends live here. :class:`Forwarder` is a storage peer's handler of the NS ``forward``
extension: for a log whose record it took (from Alice, through its admission gate) at the
sequence asked, it copies the blocks each target lacks over ordinary CAS Adds, then sends the
record as an ordinary NS Update, and says per target: stored, failed (why), or the sequence the
target holds. :func:`replicate_once` is the publisher's side: upload to the first candidate that
takes it, ask it to forward, confirm each target with an NS Fetch of her own, and fall over to
the next candidate (which uploads what it still lacks and forwards) for the targets not
confirmed. The plan and the trust argument are :mod:`rlp2p.core.forward`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import multiaddr
import trio
from libp2p.peer.id import ID

from rlp2p.core.ack import AckCheck, check_ack, sign_ack
from rlp2p.core.address import address_to_text
from rlp2p.core.page import Page
from rlp2p.core.forward import MAX_FORWARD_TARGETS, MAX_TARGET_ADDRS, Confirmation, Lacks, TargetPlan, confirm, plan_forward
from rlp2p.core.publish import Holding, PublishReport, ReplicaResult, holding_after, lacking
from rlp2p.core.retention import page_needs
from rlp2p.errors import DecodeError, LimitExceeded, RemoteError, Rlp2pError, UnsupportedRequest, WriteRefused
from rlp2p.p2p.host import parse_peer_addr
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.forward import ForwardOutcome, ForwardRequest, ForwardTarget, decode_forward, encode_forwarded, forward
from rlp2p.wire.ns import Code, Status, encode_error, encode_status
from rlp2p.wire.upload import add_then_update, serve_ack

if TYPE_CHECKING:
    from rlp2p.node.node import Node
    from rlp2p.node.peers import Peers
    from rlp2p.node.publisher import Publisher, _Build

log = logging.getLogger(__name__)

#: forward requests a storage peer serves at once (the others wait: back-pressure on their streams)
FORWARDS = 2
#: block bytes read from the store per CAS batch to one target (memory per target)
FORWARD_BATCH_BYTES = 512 * 1024
#: how much longer than one network operation Alice waits for a forward's answer (the forwarder
#: waits up to its timeout for the record, then bounds each target by it, targets at once)
FORWARD_WAIT = 3.0
#: logs whose record forward requests wait for at once
MAX_WAITING = 64
#: logs whose latest stored sequence a storage peer remembers for its acks, and for how long
#: (seconds): an ack follows its record on the same stream, so a short memory saves a store read
MAX_RECENT = 1024
RECENT_SECONDS = 10.0


class Forwarder:
    """A storage peer's side of upload once (set as ``NsServer.forward``)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._slots = trio.CapacityLimiter(FORWARDS)
        self._waiting: dict[str, trio.Event] = {}  # log name -> set when a record for it is stored
        #: logs whose record was stored here lately -> (its sequence, trio time), oldest first
        self._recent: dict[str, tuple[int, float]] = {}
        #: the shared list's blocks of the requests being served, read once (by id of the request)
        self._shared: dict[int, list[bytes]] = {}
        #: awaited before the targets are served (tests stop the node here: a forwarder dying mid-way)
        self.before_targets: Callable[[], Awaitable[None]] | None = None
        key = node.host.get_private_key()
        #: this peer's side of the upload-once acknowledgement (CasRequest.ack)
        self.acker = serve_ack(self._held_seq, lambda name, seq: sign_ack(key, name, seq))

    async def _held_seq(self, name: str) -> int:
        recent = self._recent.get(name)
        if recent is not None and trio.current_time() - recent[1] < RECENT_SECONDS:
            return recent[0]  # stored just now (an ack follows its record): no trip to the store
        held = await self.node.astore.call(self.node.store.get_record, name)
        return 0 if held is None else held.sequence

    async def handle(self, message: ns_pb2.ForwardRequest, writer: str | None) -> bytes:
        try:
            request = decode_forward(message)
        except LimitExceeded as exc:
            return encode_error(Code.TOO_LARGE, str(exc))
        except DecodeError as exc:
            return encode_error(Code.BAD_REQUEST, str(exc))
        node = self.node
        held = await self._record(request.name, request.sequence)
        if held is None or held.sequence != request.sequence:
            # only a record this peer took (through its gate, from the writer) is forwarded
            return encode_error(Code.NOT_FOUND, f"no record of {request.name} at sequence {request.sequence} here")
        try:
            node.admission.check_allowed(writer, request.name)
            listed = len(request.blocks) + sum(len(t.plan.blocks) for t in request.targets)
            node.admission.check_rate(writer, listed + len(request.targets))  # the asker pays for the work
        except WriteRefused as exc:
            return encode_status(Status.Value(exc.code), str(exc))
        # a target named by hint position is answered without its peer id: the results are in
        # request order, and the asker named it compactly to save those bytes
        outcomes = [ForwardOutcome(b"" if t.hint else t.peer, "UNAVAILABLE", "not tried") for t in request.targets]
        async with self._slots:  # the blocks read ahead are held in a slot only
            if self.before_targets is not None:
                await self.before_targets()
            try:
                await self._prepare(request, held.record)
                await self._serve(request, held.record, outcomes)
            finally:
                self._shared.pop(id(request), None)
        return encode_forwarded(outcomes)

    async def _prepare(self, request: ForwardRequest, record: bytes) -> None:
        """In one trip to the store: name the compact targets (:meth:`_resolve_hints`), and read
        the shared list's blocks once for all its targets when they fit one batch
        (``FORWARD_BATCH_BYTES``: memory per request; else each target reads its own batches)."""
        from rlp2p.node.storage import head_of

        store = self.node.store
        head = head_of(record) if any(t.hint for t in request.targets) else None
        shared = request.blocks if sum(t.plan.lacks is Lacks.SHARED for t in request.targets) > 1 else []

        def read() -> tuple[bytes | None, list[bytes] | None]:
            page = None if head is None else store.get_blocks([head]).get(head)
            if not shared:
                return page, None
            sizes = store.block_sizes(shared)
            if len(sizes) < len(set(shared)) or sum(sizes.get(a, 0) for a in shared) > FORWARD_BATCH_BYTES:
                return page, None
            found = store.get_blocks(shared)
            return page, [found[a] for a in shared] if all(a in found for a in shared) else None

        if head is None and not shared:
            return
        page, blocks = await self.node.astore.call(read)
        if blocks is not None:
            self._shared[id(request)] = blocks
        if head is not None:
            self._resolve_hints(request, page)

    async def _serve(self, request: ForwardRequest, record: bytes, outcomes: list[ForwardOutcome]) -> None:
        """Every target at once."""
        async with trio.open_nursery() as nursery:
            for i, target in enumerate(request.targets):
                if target.hint and not target.peer:
                    outcomes[i].status, outcomes[i].error = "BAD_REQUEST", f"no CAS hint at position {target.hint}"
                    continue
                nursery.start_soon(self._one, request, target, record, outcomes, i)

    def _resolve_hints(self, request: ForwardRequest, page: bytes | None) -> None:
        """Name the compact targets by the CAS hint of the head ``page`` of the record held (the
        publisher uploaded it): peer id and address. A position the hint lacks stays empty."""
        try:
            hints = () if page is None else Page.decode(page, self.node.config.limits, start=None).cas
        except DecodeError:
            hints = ()
        for target in request.targets:
            if not target.hint or target.hint > len(hints):
                continue
            try:
                info = parse_peer_addr(multiaddr.Multiaddr(hints[target.hint - 1]))
            except Exception:  # a hint is the publisher's, but parse it as untrusted all the same
                continue
            target.peer = info.peer_id.to_bytes()
            target.addrs = [a.to_bytes() for a in info.addrs[:MAX_TARGET_ADDRS]]

    def record_stored(self, name: str, sequence: int = 0) -> None:
        """A record for ``name`` was stored here: wake forward requests waiting for it, and
        remember its sequence for the ack that follows it on the same stream."""
        if sequence:
            recent = self._recent
            recent.pop(name, None)
            if len(recent) >= MAX_RECENT:
                del recent[next(iter(recent))]  # the oldest
            recent[name] = (sequence, trio.current_time())
        event = self._waiting.pop(name, None)
        if event is not None:
            event.set()

    async def _record(self, name: str, sequence: int) -> Any:
        """The record held for ``name`` once its sequence is at least ``sequence``: Alice sends
        the forward request beside her upload, so it may come before the record it names. Waits
        up to the node's timeout, ``MAX_WAITING`` logs at once (past that, no wait)."""
        node = self.node
        event: trio.Event | None = None
        try:
            with trio.move_on_after(node.config.timeout):
                while True:
                    event = self._waiting.get(name)
                    if event is None and len(self._waiting) < MAX_WAITING:
                        event = self._waiting[name] = trio.Event()
                    held = await node.astore.call(node.store.get_record, name)
                    if held is not None and held.sequence >= sequence or event is None:
                        return held
                    await event.wait()
        finally:
            # a wait that ended without its record leaves no entry behind for a name never stored
            if event is not None and self._waiting.get(name) is event and not event.statistics().tasks_waiting:
                del self._waiting[name]
        return await node.astore.call(node.store.get_record, name)

    async def _one(self, request: ForwardRequest, target: ForwardTarget, record: bytes, out: list[ForwardOutcome], i: int) -> None:
        outcome = out[i]
        try:
            peer = ID(target.peer)
            if peer == self.node.peer_id:
                outcome.status, outcome.error = "BAD_REQUEST", "a forwarder does not forward to itself"
                return
            addrs = []
            for raw in target.addrs[:MAX_TARGET_ADDRS]:
                try:
                    addrs.append(multiaddr.Multiaddr(raw))
                except Exception:  # a hint is untrusted: skip what does not parse
                    continue
            if addrs:
                self.node.network.add_addrs(peer, addrs, 600)
            with trio.move_on_after(self.node.config.timeout) as scope:
                await self._copy(request, target, peer, record, outcome)
            if scope.cancelled_caught:
                outcome.status, outcome.error = "UNAVAILABLE", "timed out"
        except RemoteError as exc:
            outcome.status = exc.code if exc.code in Status.keys() else "UNAVAILABLE"
            outcome.error = str(exc)
        except (Rlp2pError, ValueError) as exc:
            outcome.status, outcome.error = "UNAVAILABLE", f"{type(exc).__name__}: {exc}"

    async def _copy(self, request: ForwardRequest, target: ForwardTarget, peer: ID, record: bytes, outcome: ForwardOutcome) -> None:
        node = self.node
        wanted = request.lacking(target)
        shared = self._shared.get(id(request)) if wanted is request.blocks else None
        if shared is not None:
            batches = _one_batch(shared)
        else:
            batches = self._listed(wanted) if wanted is not None else self._whole(record)
        sent_record = False
        stale: RemoteError | None = None
        async with node.cas(peer) as cas:
            pending: list[bytes] | None = None  # one batch held back: the last goes with the record
            async for blocks in batches:
                if pending is not None:
                    await cas.add_many(pending)
                    outcome.blocks_sent += len(pending)
                pending = blocks
            if pending is not None:
                try:
                    acked = await add_then_update(cas, pending, request.name, record, ack=True)
                    sent_record = True
                    if acked is not None:  # relayed as it came: Alice checks it, not us
                        outcome.ack_seq, outcome.ack = acked
                except UnsupportedRequest:
                    pass  # an older target: the record goes over NS
                except RemoteError as exc:
                    if exc.code != "STALE":
                        raise
                    stale = exc
                outcome.blocks_sent += len(pending)
        if sent_record:
            outcome.status, outcome.error = "OK", ""
            return
        async with node.ns(peer) as ns:
            try:
                if stale is not None:
                    raise stale
                await ns.update(request.name, record)
            except RemoteError as exc:
                if exc.code != "STALE":
                    raise
                held = await ns.fetch(request.name, allow_expired=True)
                if held.raw != record:
                    outcome.status, outcome.error, outcome.held_seq = "STALE", str(exc), held.sequence
                    return
        outcome.status, outcome.error = "OK", ""

    async def _read(self, addresses: list[bytes]) -> AsyncIterator[list[bytes]]:
        """The blocks at ``addresses``, in order, in batches of at most FORWARD_BATCH_BYTES (or one
        block); RemoteError INCOMPLETE for one this peer lacks."""
        astore = self.node.astore
        start = 0
        while start < len(addresses):
            found, count, _ = await astore.get_blocks_within(addresses[start:], FORWARD_BATCH_BYTES)
            count = max(count, 1)
            chunk = addresses[start : start + count]
            if count == 1 and chunk[0] not in found:
                found = await astore.get_blocks(chunk)
            missing = [a for a in chunk if a not in found]
            if missing:
                raise RemoteError("INCOMPLETE", f"the forwarder lacks block {address_to_text(missing[0])}")
            yield [found[a] for a in chunk]
            start += count

    async def _listed(self, addresses: list[bytes]) -> AsyncIterator[list[bytes]]:
        async for blocks in self._read(addresses):
            yield blocks

    async def _whole(self, record: bytes) -> AsyncIterator[list[bytes]]:
        """Every block the record's head reaches, a page at a time (its message blocks, then it)."""
        from rlp2p.node.storage import head_of

        limits = self.node.config.limits
        address = head_of(record)
        pages = 0
        while address is not None and pages < limits.max_pages_walk:
            pages += 1
            got = await self.node.astore.get_blocks([address])
            if address not in got:
                raise RemoteError("INCOMPLETE", f"the forwarder lacks page {address_to_text(address)}")
            page = got[address]
            tail, needed = page_needs(page, limits)
            async for blocks in self._read(needed):
                yield blocks
            yield [page]
            address = tail


async def _one_batch(blocks: list[bytes]) -> AsyncIterator[list[bytes]]:
    yield blocks


# --- the publisher's side ----------------------------------------------------------------------


def _hints(peers: Peers, peer: ID) -> list[bytes]:
    return [a.to_bytes() for a in peers.network.peer_addrs(peer)[:MAX_TARGET_ADDRS]]


def _target(peers: Peers, peer: ID, plan: TargetPlan, head_hint: list[bytes]) -> ForwardTarget:
    """``peer`` as a forward target: by its position in the head page's CAS hint when it is
    there (``head_hint``: empty for a forwarder not known to read that form), else by peer id
    and addresses."""
    for position, raw in enumerate(head_hint, start=1):
        try:
            named = multiaddr.Multiaddr(raw).value_for_protocol("p2p")
        except Exception:  # our own hint; skip what does not parse all the same
            continue
        if named == peer.to_base58():
            return ForwardTarget(b"", [], plan, hint=position)
    return ForwardTarget(peer.to_bytes(), _hints(peers, peer), plan)


async def replicate_once(
    pub: Publisher,
    candidates: list[ID],
    length: int,
    pages_for: Callable[[Iterable[Holding | None]], Awaitable[_Build]],
    record: bytes,
    sequence: int,
    report: PublishReport,
    tick: Callable[..., None],
) -> None:
    """Aim for ``pub.replicas`` copies, uploading each new block once: to the first candidate that
    takes it, which forwards to the next ones. Targets not confirmed go back to the front of the
    candidates: the next one becomes the forwarder (uploading only what it lacks), so a forwarder
    dying mid-way costs a second upload, never the quorum. Every candidate is a forwarder at most
    once, so this ends."""
    peers = pub.peers
    pending = list(candidates)
    while pending and len(report.stored_on) < pub.replicas:
        forwarder = pending.pop(0)
        count = min(pub.replicas - len(report.stored_on) - 1, MAX_FORWARD_TARGETS)
        targets, pending = pending[:count], pending[count:]
        have = await pub._holding(forwarder, length)
        holdings = [await pub._holding(t, length) for t in targets]
        build = await pages_for([have, *holdings])
        # after a truncation no holding is usable, but the replicas still hold the message blocks
        held = [await pub._held_messages(p, h, length) for p, h in zip([forwarder, *targets], [have, *holdings], strict=True)]
        lists = [
            None if h is None and not m else lacking(h, build.built, build.entries, pub.mode, m)
            for h, m in zip(holdings, held[1:], strict=True)
        ]
        shared, plans = plan_forward(lists)
        compact = forwarder in pub._compact_forwarders
        request = ForwardRequest(
            pub.name, sequence, [_target(peers, t, p, pub._hint if compact else []) for t, p in zip(targets, plans, strict=True)], shared
        )
        asked = _Asked()

        async with trio.open_nursery() as nursery:
            if targets:  # sent at once: the forwarder waits for the record this upload ends with
                nursery.start_soon(_ask, peers, forwarder, request, asked)
            result = await pub._replicate(
                forwarder, have, build, record, tick, full_build=lambda: pages_for([None]), held_messages=held[0]
            )
            if not result.ok:
                nursery.cancel_scope.cancel()  # it holds no record of this sequence: nothing to forward
        result.bytes_sent += asked.bytes_sent
        said = asked.outcomes
        if said is not None and any(o.ack for o in said):
            pub._compact_forwarders.add(forwarder)  # it relays acks: it reads compact targets too
        elif said is not None:
            pub._compact_forwarders.discard(forwarder)  # replaced by an older release, maybe
        report.replicas.append(result)
        if not targets:
            continue
        results: list[ReplicaResult] = [ReplicaResult(peer=t.to_string(), ok=False) for t in targets]
        if result.ok or said is not None:
            async with trio.open_nursery() as nursery:
                for i, (target, r) in enumerate(zip(targets, results, strict=True)):
                    nursery.start_soon(_confirm, pub, target, record, sequence, build, r, None if said is None else said[i])
        retry = []
        for i, (target, r) in enumerate(zip(targets, results, strict=True)):
            if r.ok or r.holds_seq:
                report.replicas.append(r)  # stored, or holds a higher record of ours: no retry helps
                continue
            why = "the forwarder failed" if said is None else f"forwarded: {said[i].status} {said[i].error}".strip()
            log.info("replica %s not confirmed (%s): uploading to it", target, why)
            retry.append(target)
        pending = retry + pending


@dataclass
class _Asked:
    outcomes: list[ForwardOutcome] | None = None
    bytes_sent: int = 0


async def _ask(peers: Peers, forwarder: ID, request: ForwardRequest, asked: _Asked) -> None:
    try:
        async with peers.ns(forwarder) as ns:
            ns.rpc.timeout = peers.timeout * FORWARD_WAIT
            before = ns.rpc.bytes_out
            try:
                asked.outcomes = await forward(ns.rpc, request)
            finally:
                ns.rpc.timeout = peers.timeout
                asked.bytes_sent += ns.rpc.bytes_out - before
    except Rlp2pError as exc:
        log.info("forwarder %s failed: %s", forwarder, exc)


def _by_ack(target: ID, name: str, sequence: int, said: ForwardOutcome | None) -> Confirmation | None:
    """What the target's own signed acknowledgement, relayed by the forwarder, says (None: there
    is none Alice can check, or it does not verify: she asks the target herself)."""
    if said is None or not said.ack:
        return None
    check = check_ack(target.to_bytes(), name, said.ack_seq, said.ack)
    if check is AckCheck.INVALID:
        log.warning("forwarder relayed an acknowledgement of %s that %s did not sign", name, target)
        return None
    if check is AckCheck.NO_KEY:
        return None
    if said.ack_seq == sequence:
        return Confirmation.STORED
    return Confirmation.HIGHER if said.ack_seq > sequence else Confirmation.MISSING


async def _confirm(
    pub: Publisher, target: ID, record: bytes, sequence: int, build: _Build, result: ReplicaResult,
    said: ForwardOutcome | None = None,
) -> None:
    """Alice's own check that ``target`` took the record: its signed acknowledgement, relayed by
    the forwarder (no round trip), else one NS Fetch. The forwarder's word is not enough: it may
    say a replica stored what it did not."""
    seen = _by_ack(target, pub.name, sequence, said)
    if seen is not None:
        _confirmed(pub, seen, said.ack_seq if said is not None else 0, build, result)
        return
    held: Any = None
    try:
        async with pub.peers.ns(target) as ns:
            before = ns.rpc.bytes_out
            try:
                held = await ns.fetch(pub.name, allow_expired=True)
            except RemoteError as exc:
                if exc.code != "NOT_FOUND":
                    raise
            finally:
                result.bytes_sent += ns.rpc.bytes_out - before
    except Rlp2pError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return
    seen = confirm(record, sequence, None if held is None else held.raw, 0 if held is None else held.sequence)
    _confirmed(pub, seen, 0 if held is None else held.sequence, build, result)


def _confirmed(pub: Publisher, seen: Confirmation, held_seq: int, build: _Build, result: ReplicaResult) -> None:
    if seen is Confirmation.STORED:
        pub._acked[result.peer] = holding_after(build.built, pub.mode)  # written with the publish's state
        result.ok = True
    elif seen is Confirmation.HIGHER:
        result.holds_seq, result.error = held_seq, f"holds sequence {held_seq}"
    else:
        result.error = "the record did not reach it"
