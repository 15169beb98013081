"""Live updates over gossipsub: every rlp2p use of ``libp2p.pubsub`` goes through here.

A log's records are announced on its topic ``/rlp2p/log/<name>`` (:mod:`rlp2p.core.announce`):
a storage peer publishes a record when it accepts it (an NS Update with a higher sequence), Alice
when her publish reached its quorum. Only the record travels; a follower that learns of a newer
one syncs the log from storage peers as any reader does, so pages, blocks and order stay what
the remote log defines.

Every announcement received is judged by a gossipsub topic validator (signature, name, expiry,
size, and a sequence above what this node holds, as reader or as storage peer). A rejected one
is dropped and counted by gossipsub's peer scoring against the peer that sent it (P4, invalid
messages); a peer whose score falls under the publish threshold is no longer heard on the topic.

Storage peers subscribe to the topics of the logs they hold (up to ``MAX_RELAY_TOPICS``), so they
are mesh members that relay to the followers connected to them; followers subscribe to the logs
they follow. Everyone else publishes through gossipsub's fanout.

Sharp edges of py-libp2p 0.8.1's pubsub, handled here (see ``docs/upstream.md``):

* its pubsub must run before the node's first connection: the connection notifee blocks on an
  unbuffered channel until the pubsub service reads it; connections that exist before (a host
  the application runs) are registered by hand;
* validators cannot say "ignore" (drop without penalty), only accept or reject; a copy of the
  record held is therefore accepted (not forwarded work, but no penalty for honest late relays);
* validation results are cached by message id for 5 minutes whatever the validator would say
  now; we turn that cache off, as what a node holds changes between two announcements;
* the per-topic rate limit (10 a second per forwarding peer) also drops this node's *own*
  publishes, silently; validation already bounds valid announcements (each needs a new signed
  sequence), so it is off;
* a message is marked seen only once it passed validation (go: before validating), so copies
  of a rejected announcement are judged again, and charged to their sender again, and our IHAVE
  handling asks for them again (IWANT); the validator marks each message seen when it starts;
* a peer that leaves a topic (an unsubscribe: a follower's ``pause()``) is kept out of its
  peers' meshes for the unsubscribe back-off (10 s), and py-libp2p sends no gossip (IHAVE) to a
  peer it backs off from, so what is announced meanwhile never reaches it; seen here: when both
  sides' back-offs end in the same second, a GRAFT is refused as too early and both sides back
  off for the prune back-off (60 s). A follower therefore syncs until it is in a mesh again
  (``meshed``; rlp2p/node/follow.py);
* the heartbeat defaults to 120 s (go: 1 s), and "adaptive gossip" retunes the heartbeat and mesh
  degrees from a health estimate; we set 1 s and turn adaptation off;
* every RPC carries our signed peer record (``senderRecord``, a few hundred bytes: more than the
  announcement itself), IHAVE gossip included; go and js send none. We strip it from what we
  send (upstream item 9);
* a remote peer may subscribe to at most 100 topics by default: a follower of more logs through
  one storage peer would be ignored past that, so the limit is ``MAX_TOPICS_PER_PEER``;
* any failure on a peer's *outbound* stream (a write to a reset stream, a lost race between two
  stream opens) forgets every subscription the peer sent on its *inbound* stream, which stays
  open, so the peer never sends them again and gets no announcement, ever (upstream item 12).
  A peer's subscriptions are kept here while a stream they came on is still being read, and
  forgotten when the last one ends;
* a new peer's stream starts with a hello listing our subscriptions, built before the stream
  write is awaited, and the peer joins ``peers`` only after it: a subscribe in between reaches
  neither (the peer never learns we follow the log, and never sends us its announcements; seen
  in the CLI follow test). Once a peer is registered, the subscriptions that changed during its
  registration are sent to it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import ScoreParams, TopicScoreParams
from libp2p.tools.anyio_service import background_trio_service

from rlp2p.core.announce import announcement_id, judge_announcement, log_topic, topic_log
from rlp2p.core.record import RecordInfo, verify_record
from rlp2p.errors import DecodeError, RecordError
from rlp2p.wire.push import PUSH_COMPACT_PROTOCOL, PUSH_MESSAGES_PROTOCOL, PUSH_PROTOCOL, PushServer

if TYPE_CHECKING:
    from rlp2p.node.node import Node

log = logging.getLogger(__name__)

#: gossipsub versions we speak, preferred first (js and go speak all three)
PROTOCOLS = [PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID]
#: mesh degree and its bounds (go-libp2p's defaults: D=6, Dlo=5, Dhi=12)
DEGREE, DEGREE_LOW, DEGREE_HIGH = 6, 5, 12
#: a node that is no storage peer only follows: it relays for nobody, and each mesh peer sends
#: it a copy of every announcement (the replicas announce a record at the same moment, before
#: IDONTWANT can stop the copies: 3 copies with 3 replicas), so it keeps two mesh peers, not
#: six; the others still send it IHAVE gossip every heartbeat. Not one: when that one peer
#: restarted under the same peer id, the follower heard nothing for 15 s and more in 3 of 7
#: runs of tests/node/test_follow.py (py-libp2p did not replace it in the mesh)
FOLLOWER_DEGREE, FOLLOWER_DEGREE_LOW, FOLLOWER_DEGREE_HIGH = 2, 2, 3
#: seconds between gossipsub heartbeats (mesh upkeep, gossip, score decay)
HEARTBEAT = 1
#: topics a storage peer relays (subscribes to) at most; it publishes on the others via fanout
MAX_RELAY_TOPICS = 1024
#: topics one remote peer may subscribe to at this node
MAX_TOPICS_PER_PEER = 1024
#: announcements waiting to be published; past it they are dropped (readers' polls catch up)
PUBLISH_QUEUE = 256
#: seconds during which a valid record older than the one held is taken for a late relay, not a
#: replay: gossipsub's message cache keeps 5 heartbeats and is replayed to new subscribers
LATE_GRACE = 30.0
#: changes of the held sequence remembered per topic (to know what was held LATE_GRACE ago)
HELD_HISTORY = 16
#: forwarders of new announcements remembered between validation and dispatch
FORWARDERS = 256

#: each invalid announcement costs its sender INVALID_WEIGHT; the count decays by INVALID_DECAY
#: per heartbeat (about 7 s to halve), so an honest relay that was late once recovers
INVALID_WEIGHT = 10.0
INVALID_DECAY = 0.9
#: below GOSSIP_THRESHOLD no gossip to or from the peer, below PUBLISH_THRESHOLD its messages are
#: dropped before validation (5 invalid announcements in a short time), below GRAYLIST_THRESHOLD
#: it is graylisted
GOSSIP_THRESHOLD = -20.0
PUBLISH_THRESHOLD = -40.0
GRAYLIST_THRESHOLD = -80.0


def score_params() -> ScoreParams:
    return ScoreParams(
        p4_invalid_messages=TopicScoreParams(weight=INVALID_WEIGHT, cap=100.0, decay=INVALID_DECAY),
        publish_threshold=PUBLISH_THRESHOLD,
        gossip_threshold=GOSSIP_THRESHOLD,
        graylist_threshold=GRAYLIST_THRESHOLD,
        accept_px_threshold=0.0,
    )


def _message_id(msg: rpc_pb2.Message) -> bytes:
    return announcement_id(msg.data)


@dataclass
class AnnounceStats:
    published: int = 0
    accepted_new: int = 0
    accepted_held: int = 0
    rejected: int = 0
    dropped: int = 0  # not published: the queue was full
    #: times py-libp2p would have forgotten the subscriptions of a peer still heard from
    kept_subscriptions: int = 0
    #: peers told our subscriptions again after registering them (their hello may lack some)
    resubscribed: int = 0
    #: bytes read from peers' gossipsub streams (announcements, control messages, everything)
    bytes_in: int = 0
    #: rejected announcements by the peer that sent them (forgotten past MAX_TOPICS_PER_PEER peers)
    rejected_from: Counter[ID] = field(default_factory=Counter)


Listener = Callable[[RecordInfo], None]


class Announcements:
    """The node's gossipsub: topics, validators, scoring, publishing and subscribing."""

    def __init__(self, node: Node) -> None:
        self.node = node
        storage = node.config.storage
        self.router = GossipSub(
            protocols=PROTOCOLS,
            degree=DEGREE if storage else FOLLOWER_DEGREE,
            degree_low=DEGREE_LOW if storage else FOLLOWER_DEGREE_LOW,
            degree_high=DEGREE_HIGH if storage else FOLLOWER_DEGREE_HIGH,
            heartbeat_interval=HEARTBEAT,
            score_params=score_params(),
            adaptive_gossip_enabled=False,
            spam_protection_enabled=False,
        )
        self.pubsub = Pubsub(
            node.host,
            self.router,
            msg_id_constructor=_message_id,
            validation_cache_ttl=0,
            validation_cache_size=1,
            max_subscriptions_per_peer=MAX_TOPICS_PER_PEER,
        )
        self.stats = AnnounceStats()
        #: a storage peer also pushes what it accepts to readers that follow without the mesh
        #: (``/rlp2p/push/1.0.0``, rlp2p/wire/push.py)
        self.push: PushServer | None = (
            PushServer(node.config.limits, self._stored, self._block) if node.config.storage else None
        )
        # count what peers send us on gossipsub streams (the pubsub reads nowhere else)
        self.pubsub.continuously_read_stream = self._counting(self.pubsub.continuously_read_stream)  # type: ignore[method-assign, assignment]
        # streams being read per peer: its subscriptions hold while one is (upstream item 12)
        self._reading: Counter[ID] = Counter()
        self._forget_subscriptions = self.pubsub._forget_all_subscriptions
        self.pubsub._forget_all_subscriptions = self._forget_unless_heard  # type: ignore[method-assign, assignment]
        self.pubsub._handle_new_peer = self._registering(self.pubsub._handle_new_peer)  # type: ignore[method-assign, assignment]
        self.pubsub.write_msg = self._without_peer_record(self.pubsub.write_msg)  # type: ignore[method-assign, assignment]
        self._holders: dict[str, int] = {}  # subscriptions per log name (relay, followers)
        self._listeners: dict[str, set[Listener]] = {}
        self._relayed: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self._queue: trio.MemorySendChannel[RecordInfo] | None = None
        self._lock = trio.Lock()  # subscribe/unsubscribe one at a time
        #: LATE_GRACE, an attribute so tests can take the grace away
        self.grace = LATE_GRACE
        # per subscribed log: (trio time first seen, sequence held), oldest first
        self._held_since: dict[str, deque[tuple[float, int]]] = {}
        # message id -> the peer that delivered a new announcement (validated, not yet dispatched)
        self._forwarders: dict[bytes, ID] = {}
        #: per log, the peer that delivered its newest announcement (a follower syncs from it)
        self.via: dict[str, ID] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Announcements]:
        async with background_trio_service(self.pubsub), background_trio_service(self.router):
            await self.pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                send, receive = trio.open_memory_channel[RecordInfo](PUBLISH_QUEUE)
                self._queue = send
                nursery.start_soon(self._publisher, receive)
                # peers connected before pubsub ran (a host the application runs) never
                # reached its notifee
                for peer in self.node.host.get_connected_peers():
                    nursery.start_soon(self.pubsub.ensure_peer_stream, peer)
                if self.node.config.storage:
                    nursery.start_soon(self._relay_held)
                if self.push is not None:
                    self.node.host.set_stream_handler(PUSH_PROTOCOL, self.push.handle)
                    self.node.host.set_stream_handler(PUSH_MESSAGES_PROTOCOL, self.push.handle_messages)
                    self.node.host.set_stream_handler(PUSH_COMPACT_PROTOCOL, self.push.handle_compact)
                try:
                    yield self
                finally:
                    if self.push is not None:
                        self.node.host.remove_stream_handler(PUSH_PROTOCOL)
                        self.node.host.remove_stream_handler(PUSH_MESSAGES_PROTOCOL)
                        self.node.host.remove_stream_handler(PUSH_COMPACT_PROTOCOL)
                    self._nursery = None
                    self._queue = None
                    if self.node.announcements is self:  # a stopped node announces nothing
                        self.node.announcements = None
                    nursery.cancel_scope.cancel()

    def _counting(self, read_loop: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        stats = self.stats

        async def counted(stream: Any) -> None:
            read = stream.read

            async def counting_read(n: int | None = None) -> bytes:
                data: bytes = await read(n)
                stats.bytes_in += len(data)
                return data

            stream.read = counting_read
            peer = stream.muxed_conn.peer_id
            self._reading[peer] += 1
            try:
                await read_loop(stream)
            finally:
                self._reading[peer] -= 1
                if self._reading[peer] <= 0:
                    del self._reading[peer]
                    # what the peer said on it no longer holds; a new stream repeats it
                    self._forget_subscriptions(peer)

        return counted

    def _registering(self, handle_new_peer: Callable[[ID], Awaitable[None]]) -> Callable[[ID], Awaitable[None]]:
        pubsub = self.pubsub

        async def register(peer: ID) -> None:
            known = peer in pubsub.peers
            before = set(pubsub.topic_ids)
            await handle_new_peer(peer)
            queue = pubsub.peer_queues.get(peer)
            after = set(pubsub.topic_ids)
            if known or queue is None or after == before:
                return
            # the hello may predate these (un)subscriptions, and subscribe() skipped the peer
            changes = [rpc_pb2.RPC.SubOpts(subscribe=True, topicid=t) for t in sorted(after - before)]
            changes += [rpc_pb2.RPC.SubOpts(subscribe=False, topicid=t) for t in sorted(before - after)]
            self.stats.resubscribed += 1
            log.info("told %s our subscriptions again (%d changed while it registered)", peer, len(changes))
            queue.push(rpc_pb2.RPC(subscriptions=changes))

        return register

    @staticmethod
    def _without_peer_record(write_msg: Callable[[Any, rpc_pb2.RPC], Awaitable[bool]]) -> Callable[[Any, rpc_pb2.RPC], Awaitable[bool]]:
        async def write(stream: Any, rpc: rpc_pb2.RPC) -> bool:
            rpc.ClearField("senderRecord")
            return await write_msg(stream, rpc)

        return write

    def _forget_unless_heard(self, peer: ID) -> None:
        if self._reading.get(peer, 0) > 0 and peer not in self.pubsub.blacklisted_peers:
            self.stats.kept_subscriptions += 1
            log.info("kept the subscriptions of %s: its stream to us is open", peer)
            return
        self._forget_subscriptions(peer)

    # --- publishing ------------------------------------------------------------------------------

    def announce(self, info: RecordInfo) -> None:
        """Announce ``info`` on its log's topic, in the background (never on a request path).

        A storage peer calls it when it accepts a newer record, a publisher when her publish
        reached its quorum. A storage peer also starts relaying the log's topic.
        """
        if self._queue is None:
            return
        if self.push is not None:
            self.push.push(info)
        try:
            self._queue.send_nowait(info)
        except trio.WouldBlock:
            self.stats.dropped += 1
            log.info("announcement queue full; %s seq %d not announced", info.name, info.sequence)

    async def _publisher(self, receive: trio.MemoryReceiveChannel[RecordInfo]) -> None:
        async for info in receive:
            try:
                if self.push is not None:  # the push streams' writes first (bench/live.py)
                    await self.push.written()
                if self.node.config.storage:
                    await self._relay(info.name)
                await self.pubsub.publish(log_topic(info.name), info.raw)
                self.stats.published += 1
            except Exception:  # gossip is best effort: the readers' polls catch up
                log.exception("announcing %s seq %d failed", info.name, info.sequence)

    async def _relay_held(self) -> None:
        names = await self.node.astore.call(self.node.store.record_names)
        for name in names[:MAX_RELAY_TOPICS]:
            await self._relay(name)

    async def _relay(self, name: str) -> None:
        if name not in self._relayed and len(self._relayed) < MAX_RELAY_TOPICS:
            self._relayed.add(name)
            await self._hold(name)

    # --- subscribing -----------------------------------------------------------------------------

    @asynccontextmanager
    async def listening(self, name: str, listener: Listener) -> AsyncIterator[None]:
        """Subscribe to ``name``'s topic for as long as the block runs; ``listener`` gets each
        valid announcement of a record newer than the one held when it arrived."""
        topic_log(log_topic(name), limits=self.node.config.limits)  # DecodeError for a bad name
        self._listeners.setdefault(name, set()).add(listener)
        try:
            await self._hold(name)
            try:
                yield
            finally:
                with trio.CancelScope(shield=True):
                    await self._release(name)
        finally:
            listeners = self._listeners.get(name)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[name]

    async def _hold(self, name: str) -> None:
        async with self._lock:
            self._holders[name] = self._holders.get(name, 0) + 1
            if self._holders[name] > 1:
                return
            topic = log_topic(name)
            held_seq, _ = await self.node.astore.call(self._held, name)
            self._held_since[name] = deque([(trio.current_time(), held_seq)], maxlen=HELD_HISTORY)
            self.pubsub.set_topic_validator(topic, self._validator, True)
            subscription = await self.pubsub.subscribe(topic)
            if self._nursery is not None:
                self._nursery.start_soon(self._dispatch, name, subscription)

    async def _release(self, name: str) -> None:
        async with self._lock:
            held = self._holders.get(name, 0) - 1
            if held > 0:
                self._holders[name] = held
                return
            self._holders.pop(name, None)
            self._held_since.pop(name, None)
            self.via.pop(name, None)
            topic = log_topic(name)
            if self._nursery is not None:  # after the services stopped there is nobody to tell
                await self.pubsub.unsubscribe(topic)  # ends the dispatcher
            self.pubsub.remove_topic_validator(topic)

    async def _dispatch(self, name: str, subscription: AsyncIterator[rpc_pb2.Message]) -> None:
        async for msg in subscription:
            listeners = self._listeners.get(name)
            if not listeners:
                continue  # a storage peer's relay subscription: nothing to do here
            try:
                info = verify_record(name, msg.data, now=self.node.config.clock(), limits=self.node.config.limits)
            except RecordError:
                continue  # validated a moment ago; expired since
            forwarder = self._forwarders.pop(_message_id(msg), None)
            if forwarder is not None:
                self.via[name] = forwarder
            for listener in list(listeners):
                listener(info)

    async def _validator(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        # each message judged once, as go does: py-libp2p marks a message seen only after it
        # passed validation, so copies of a rejected one (re-sent, arriving while it is judged,
        # or asked for again by our IWANT after an IHAVE) would each be judged and charged again
        self.pubsub.seen_messages.add(_message_id(msg))
        topics = list(msg.topicIDs)
        held_seq, held_raw, floor = 0, None, 0
        try:
            name = topic_log(topics[0], limits=self.node.config.limits) if len(topics) == 1 else None
        except DecodeError:
            name = None
        if name is not None:
            held_seq, held_raw = await self.node.astore.call(self._held, name)
            floor = self._floor(name, held_seq)
        verdict = judge_announcement(
            topics,
            msg.data,
            held_seq,
            held_raw,
            now=self.node.config.clock(),
            floor_seq=floor,
            limits=self.node.config.limits,
        )
        if not verdict.accept:
            self.stats.rejected += 1
            if len(self.stats.rejected_from) >= MAX_TOPICS_PER_PEER:
                self.stats.rejected_from.clear()
            self.stats.rejected_from[forwarder] += 1
            log.info("rejected an announcement from %s: %s", forwarder, verdict.reason)
        elif verdict.new:
            self.stats.accepted_new += 1
            if len(self._forwarders) >= FORWARDERS:
                self._forwarders.clear()
            self._forwarders[_message_id(msg)] = forwarder
        else:
            self.stats.accepted_held += 1
        return verdict.accept

    def _floor(self, name: str, held_seq: int) -> int:
        """The sequence this node held ``grace`` seconds ago (as far as its validator saw)."""
        history = self._held_since.setdefault(name, deque(maxlen=HELD_HISTORY))
        now = trio.current_time()
        if not history or history[-1][1] != held_seq:
            history.append((now, held_seq))
        floor = history[0][1]
        for since, seq in history:
            if since > now - self.grace:
                break
            floor = seq
        return floor

    async def _block(self, address: bytes) -> bytes | None:
        blocks = await self.node.astore.call(self.node.store.get_blocks, [address])
        return blocks.get(address)

    async def _stored(self, name: str) -> bytes | None:
        """The record held for ``name`` as a push stream opens; not an expired one (a reader
        refuses it and ends the stream)."""
        stored = await self.node.astore.call(self.node.store.get_record, name)
        if stored is None:
            return None
        try:
            verify_record(name, stored.record, now=self.node.config.clock(), limits=self.node.config.limits)
        except RecordError:
            return None
        return stored.record

    def _held(self, name: str) -> tuple[int, bytes | None]:
        """The newest record this node holds for ``name``, as reader or as storage peer."""
        store = self.node.store
        state = store.get_reader_state(name)
        seq, raw = state.record_seq, state.record
        stored = store.get_record(name)
        if stored is not None and stored.sequence > seq:
            seq, raw = stored.sequence, stored.record
        return seq, raw

    # --- observing -------------------------------------------------------------------------------

    def score(self, peer: ID, name: str) -> float:
        """``peer``'s gossipsub score on ``name``'s topic, as this node sees it."""
        assert self.router.scorer is not None
        return self.router.scorer.score(peer, [log_topic(name)])

    def meshed(self, name: str) -> bool:
        """Some peer is in our mesh of ``name``'s topic (it sends us what it hears at once)."""
        return bool(self.router.mesh.get(log_topic(name)))

    def topic_peers(self, name: str) -> set[ID]:
        """Connected peers that told us they subscribe to ``name``'s topic."""
        return set(self.pubsub.peer_topics.get(log_topic(name), set()))


__all__ = ["AnnounceStats", "Announcements", "log_topic"]
