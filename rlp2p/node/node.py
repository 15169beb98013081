"""The node: one object an application opens to take part in remote logs.

``Node`` is an async context manager. It runs on a host it creates, or on a host the application
already runs (``host=``, and ``dht=`` if the application also runs its own Kademlia DHT), with
three roles that one node may combine:

- storage peer (``storage=True``): serves /vac/cas/1.0.0 and /vac/ns/1.0.0 from its store,
  announces each log it holds in the DHT, and republishes the records it holds;
- publisher: ``node.publisher(key)`` appends to a log and publishes it to replicas;
- reader: ``node.reader()`` syncs logs from whichever storage peers hold them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from rlp2p.core.admission import Admission, AdmissionConfig
from rlp2p.core.keys import generate_log_key, load_key, save_key
from rlp2p.core.record import RecordInfo, verify_record
from rlp2p.core.retention import RetentionConfig
from rlp2p.errors import Rlp2pError, leaves
from rlp2p.limits import DEFAULT_HOST_LIMITS, DEFAULT_LIMITS, HostLimits, Limits
from rlp2p.node.backend import AsyncStore
from rlp2p.node.forward import Forwarder
from rlp2p.node.peers import Peers
from rlp2p.node.publisher import Publisher
from rlp2p.node.reader import Reader
from rlp2p.node.storage import Retention, StorageGate
from rlp2p.p2p.dht import Discovery, KadDHT
from rlp2p.p2p.host import DEFAULT_LISTEN, IHost, close_listeners, make_host, parse_listen_addr, parse_peer_addr
from rlp2p.p2p.network import Network, PeerInfo
from rlp2p.store import Store, open_store
from rlp2p.store.lock import DataDirLock, lock_data_dir
from rlp2p.wire.cas import CAS_PROTOCOL, CasClient, CasServer
from rlp2p.wire.invite import INVITE_PROTOCOL, InviteServer
from rlp2p.wire.ns import NS_PROTOCOL, NsClient, NsServer
from rlp2p.wire.rpc import RpcStream
from rlp2p.wire.upload import serve_name_update

log = logging.getLogger(__name__)

#: the node's own libp2p identity in its data folder (an Ed25519 key, like a log key)
NODE_KEY_FILE = "node.key"
#: logs a storage peer remembers having provided in the DHT this republish round
MAX_PROVIDED = 100_000
#: seconds between a storage peer's DHT announcements of one log's new records: a log published
#: every few seconds costs one DHT put per interval, not one per message (the newest record wins)
ANNOUNCE_SPACING = 2.0
#: records whose pushes are worked out at once while their commits run (more are pushed without)
MAX_PREPARING = 8



def utc_now() -> datetime:
    """The wall clock, timezone-aware: the default :attr:`NodeConfig.clock`."""
    return datetime.now(timezone.utc)


@dataclass
class NodeConfig:
    #: multiaddrs to listen on when the node creates its host (loopback by default)
    listen: Sequence[str] = (DEFAULT_LISTEN,)
    #: multiaddrs with /p2p/ of peers to join the swarm through
    bootstrap: Sequence[str] = ()
    #: serve CAS and NS from the store, announce and republish the logs held
    storage: bool = False
    #: fsync each of a reader's deliveries (``Node.open``'s store): off, a power cut may undo the
    #: last ones, which the next sync delivers again (rlp2p/store/sqlite.py); storage peers always do
    durable_deliveries: bool = False
    #: run the DHT in server mode (default: storage peers are servers, others clients)
    dht_server: bool | None = None
    #: seconds for one network operation (a dial, a batch of requests, a DHT query)
    timeout: float = 10.0
    #: retries of a failed dial (py-libp2p's default is 3 with back-off); a reader or publisher
    #: falls over to another replica instead of waiting on a dead one
    dial_retries: int = 1
    #: seconds between a storage peer's republications of its records and announcements
    republish_interval: float = 3600.0
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    #: connection and stream limits of the host the node creates (rlp2p.limits.HostLimits:
    #: 512 connections, 384 inbound, 4 per peer, 4,096 streams, 10 new connections a second per
    #: peer); not applied to a host the application passes in
    host_limits: HostLimits = field(default_factory=lambda: DEFAULT_HOST_LIMITS)
    #: the wall clock every part of the node reads (record validity, expiry, retention): time is
    #: an input, so tests and simulations can move it
    clock: Callable[[], datetime] = utc_now
    #: a storage peer's write policy: who may write, quotas, rate (docs/operators.md)
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    #: a storage peer's retention: dropping stale logs, collecting unreachable blocks (None: keep all)
    retention: RetentionConfig | None = field(default_factory=RetentionConfig)
    #: "127.0.0.1:PORT" to serve a storage peer's Prometheus metrics on (None: off)
    metrics: str | None = None
    #: live updates: run gossipsub, announce records on each log's topic (rlp2p/node/announce.py);
    #: False when the application runs its own pubsub on the host it hands the node
    announce: bool = True
    #: a storage peer serves its blocks over Bitswap and provides each log's head page CID in the
    #: DHT, so IPFS nodes read its logs (rlp2p/p2p/bitswap.py, docs/ipfs.md)
    bitswap: bool = True


class Node:
    def __init__(
        self,
        store: Store,
        *,
        config: NodeConfig | None = None,
        key_pair: KeyPair | None = None,
        host: IHost | None = None,
        dht: KadDHT | None = None,
    ) -> None:
        self.config = config or NodeConfig()
        self.store = store
        self.astore = AsyncStore(store, on_new_record=self._on_new_record)
        self._own_host = host is None
        #: a store :meth:`open` made is the node's to close; one the caller passed is the caller's
        self._own_store = False
        self._data_lock: DataDirLock | None = None  # held by a node made by open()
        self.host = host or make_host(key_pair, dial_retries=self.config.dial_retries, limits=self.config.host_limits)
        self._given_dht = dht
        #: the host as the rest of rlp2p sees it, and the peers publishers and readers talk to
        self.network = Network(self.host, timeout=self.config.timeout)
        self.peers = Peers(self.network, self.config.limits, clock=self.config.clock)
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self.cas_server = CasServer(self.astore, self.config.limits)
        self.ns_server = NsServer(self.astore, self.config.limits, clock=self.config.clock)
        self.admission = Admission(self.config.admission, now=self._now)
        self.invite_server = InviteServer(self.admission, self.host.get_id().to_base58(), self._now, self.config.limits)
        self.gate = StorageGate(
            store, self.admission, self._now, self.config.limits, on_new_record=self._on_new_record, on_blocks=self._on_blocks
        )
        self.cas_server.gate = self.ns_server.gate = self.gate
        self.gate.before_record = self._before_record
        self._preparing = 0
        # upload once: this peer forwards a publisher's log to her other replicas
        self.forwarder = Forwarder(self)
        self.forwarder.before_targets = self._push_first
        self.ns_server.forward = self.forwarder.handle
        self.cas_server.acker = self.forwarder.acker  # signed acks of what this peer holds
        # a publish's record may come on the CAS stream after its blocks (one round trip)
        self.cas_server.name_update = serve_name_update(self.ns_server.handle_frame)
        self.retention = None if self.config.retention is None else Retention(store, self.gate, self.config.retention, self.config.limits)
        self.metrics: Any = None
        self._announce_queue: trio.MemorySendChannel[str] | None = None
        #: logs waiting in the announce queue: a newer record of one joins its entry (the
        #: announcer reads the latest record when it gets there), so a burst of publishes costs
        #: one DHT put, not one each
        self._queued: set[str] = set()
        #: logs whose provider record went out in this republish round (a new record of a log
        #: announced already needs no new provider record; bounded: cleared each round and at
        #: MAX_PROVIDED)
        self._provided: set[str] = set()
        #: trio time of each log's last announcement (entries older than ANNOUNCE_SPACING pruned)
        self._announced_at: dict[str, float] = {}

    @property
    def discovery(self) -> Discovery | None:
        """The DHT as rlp2p uses it, while the node runs."""
        return self.network.discovery

    @discovery.setter
    def discovery(self, value: Discovery | None) -> None:
        self.network.discovery = value

    @property
    def announcements(self) -> Any:
        """rlp2p.node.announce.Announcements while the node runs them."""
        return self.peers.announcements

    @announcements.setter
    def announcements(self, value: Any) -> None:
        self.peers.announcements = value

    @classmethod
    def open(cls, data_dir: str | Path, **kwargs: Any) -> Node:
        """A node whose store is the SQLite database in ``data_dir`` (created if missing).

        Unless ``key_pair`` or ``host`` is given, the node's identity is ``data_dir/node.key``,
        made on first open, so a restarted storage peer keeps its peer id and its replicas.
        The folder is locked (``rlp2p.store.lock``) until :meth:`close_store`: one node per folder.
        """
        data_dir = Path(data_dir)
        lock = lock_data_dir(data_dir)
        config = kwargs.get("config") or NodeConfig()
        durable = config.storage or config.durable_deliveries
        store = open_store(data_dir, deliveries="FULL" if durable else "NORMAL")
        if kwargs.get("key_pair") is None and kwargs.get("host") is None:
            key_file = data_dir / NODE_KEY_FILE
            if not key_file.exists():
                save_key(key_file, generate_log_key())
            kwargs["key_pair"] = load_key(key_file)
        node = cls(store, **kwargs)
        node._own_store = True
        node._data_lock = lock
        return node

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Node:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            if self._own_host:
                listen = [parse_listen_addr(a) for a in self.config.listen]
                await stack.enter_async_context(self.host.run(listen_addrs=listen))
            if self.config.announce:  # before any connection: see rlp2p/node/announce.py
                from rlp2p.node.announce import Announcements

                self.announcements = await stack.enter_async_context(Announcements(self).running())
            server = self.config.storage if self.config.dht_server is None else self.config.dht_server
            self.discovery = Discovery(
                self.host, server=server, limits=self.config.limits, timeout=self.config.timeout, clock=self.config.clock
            )
            if self._given_dht is not None:
                self.discovery.dht = self._given_dht  # the application runs it
            else:
                await stack.enter_async_context(self.discovery.running())
            if self.config.storage:
                if self.config.metrics is not None:
                    from rlp2p.node.metrics import StorageMetrics

                    self.metrics = StorageMetrics(self)
                    self.metrics.start(self.config.metrics)
                    stack.push_async_callback(self.metrics.stop)
                cas_handler, ns_handler = self.cas_server.handle_stream, self.ns_server.handle_stream
                if self.metrics is not None:
                    cas_handler, ns_handler = self.metrics.counted("cas", cas_handler), self.metrics.counted("ns", ns_handler)
                self.host.set_stream_handler(CAS_PROTOCOL, cas_handler)
                self.host.set_stream_handler(NS_PROTOCOL, ns_handler)
                self.host.set_stream_handler(INVITE_PROTOCOL, self.invite_server.handle_stream)
                if self.config.bitswap:
                    from rlp2p.p2p.bitswap import Bitswap, StoreBlocks

                    await stack.enter_async_context(Bitswap(self.host, StoreBlocks(self.astore.get_blocks)).running())
            self._nursery = self.peers.nursery = await stack.enter_async_context(trio.open_nursery())
            if self.config.bootstrap:
                if await self.discovery.bootstrap([parse_peer_addr(a) for a in self.config.bootstrap]):
                    self._nursery.start_soon(self.discovery.refresh)
            if self.config.storage:
                send, receive = trio.open_memory_channel[str](1024)
                self._announce_queue = send
                self._nursery.start_soon(self._announcer, receive)
                self._nursery.start_soon(self._republish_loop)
                if self.retention is not None:
                    self._nursery.start_soon(self.retention.loop)
        except BaseException:
            await stack.__aexit__(None, None, None)
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
            self._nursery = self.peers.nursery = None
        self.peers.clear_pool()
        if self._own_host and self._stack is not None:
            await close_listeners(self.host)
        if self.config.storage and not self._own_host:
            for protocol in (CAS_PROTOCOL, NS_PROTOCOL, INVITE_PROTOCOL):
                self.host.remove_stream_handler(protocol)
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        try:
            return await stack.__aexit__(*exc)
        except BaseExceptionGroup as group:
            # py-libp2p's nurseries wrap an error of the `async with` body in exception groups;
            # give the application back the error it raised
            body_error = exc[1]
            if body_error is not None and all(leaf is body_error for leaf in leaves(group)):
                raise body_error from None
            raise
        finally:
            if self._own_store:
                self.close_store()

    async def start(self, nursery: trio.Nursery) -> Node:
        """Run the node in its own task of ``nursery`` until :meth:`stop`.

        For programs that start and stop nodes out of nesting order (a test or demo stopping one
        storage peer of several): ``async with`` cannot, as trio's scopes must nest.
        """
        self._stop_requested = trio.Event()
        self._stopped = trio.Event()

        async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            try:
                async with self:
                    task_status.started()
                    await self._stop_requested.wait()
            finally:
                self._stopped.set()

        await nursery.start(run)
        return self

    async def stop(self) -> None:
        """Stop a node started with :meth:`start`, and wait until it is down."""
        self._stop_requested.set()
        await self._stopped.wait()

    def close_store(self) -> None:
        """Close the store and release the data folder's lock (idempotent). A node made by
        :meth:`open` does this on exit itself."""
        self.store.close()
        if self._data_lock is not None:
            self._data_lock.release()

    # --- identity ----------------------------------------------------------------------------

    @property
    def peer_id(self) -> ID:
        return self.host.get_id()

    @property
    def addrs(self) -> list[str]:
        return self.network.addrs

    # --- roles -------------------------------------------------------------------------------

    def publisher(self, key_pair: KeyPair, **kwargs: Any) -> Publisher:
        return Publisher(self.peers, self.astore, key_pair, limits=self.config.limits, clock=self.config.clock, **kwargs)

    def reader(self, **kwargs: Any) -> Reader:
        return Reader(self.peers, self.astore, limits=self.config.limits, clock=self.config.clock, **kwargs)

    # --- talking to peers (rlp2p.node.peers and rlp2p.p2p.network do the work) -----------------

    async def connect(self, addr: str | PeerInfo) -> ID:
        return await self.network.connect(addr)

    def rpc(self, peer: ID, protocol: str, *, fresh: bool = False) -> AbstractAsyncContextManager[RpcStream]:
        """A request stream to ``peer``, pooled for reuse (:meth:`Peers.rpc`)."""
        return self.peers.rpc(peer, protocol, fresh=fresh)

    def cas(self, peer: ID, *, fresh: bool = False) -> AbstractAsyncContextManager[CasClient]:
        return self.peers.cas(peer, fresh=fresh)

    def ns(self, peer: ID, *, fresh: bool = False) -> AbstractAsyncContextManager[NsClient]:
        return self.peers.ns(peer, fresh=fresh)

    def peer_addrs(self, peer: ID) -> list[Any]:
        """The addresses the peerstore holds for ``peer`` (none for an unknown peer)."""
        return self.network.peer_addrs(peer)

    def serves(self, peer: ID, protocol: str) -> bool:
        return self.network.serves(peer, protocol)

    def known_storage_peers(self) -> list[ID]:
        """Connected or remembered peers that said (through identify) they serve CAS and NS."""
        return self.peers.known_storage_peers()

    def in_background(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the node's nursery, bounded by the timeout; failures are logged."""
        self.peers.in_background(fn, *args)

    # --- storage role --------------------------------------------------------------------------

    def _now(self) -> float:
        """Unix seconds by the node's clock: when a block or record was stored here."""
        return self.config.clock().timestamp()

    async def _push_first(self) -> None:
        # a forward waits (a few ms, bounded) for the push streams to write the record it
        # follows: the followers' latency is not the forward's CPU (bench/live.py)
        if self.announcements is not None and self.announcements.push is not None:
            await self.announcements.push.written()

    def _on_blocks(self, items: list[tuple[bytes, bytes]]) -> None:
        # the push streams keep the newest small blocks: the head page of a record about to be
        # accepted is pushed from memory, not read back through a worker thread
        if self.announcements is not None and self.announcements.push is not None:
            self.announcements.push.saw_blocks(items)

    def _before_record(self, info: RecordInfo) -> None:
        # the push streams work out a record's frames while the store commits it (its accept
        # then leaves only their writes: bench/live.py)
        push = self.announcements.push if self.announcements is not None else None
        if push is None or not push.watching(info.name) or self._nursery is None or self._preparing >= MAX_PREPARING:
            return
        self._preparing += 1
        self._nursery.start_soon(self._prepare_push, push, info)

    async def _prepare_push(self, push: Any, info: RecordInfo) -> None:
        try:
            await push.prepare(info)
        except Exception:  # an optimisation only: the streams work it out themselves
            log.exception("preparing the pushes of %s seq %d failed", info.name, info.sequence)
        finally:
            self._preparing -= 1

    async def _on_new_record(self, info: RecordInfo) -> None:
        self.forwarder.record_stored(info.name, info.sequence)
        if self.announcements is not None:
            self.announcements.announce(info)
            # the push streams write it before this task answers the writer (a few ms at most,
            # bounded): a follower's push is not queued behind the answer's CPU (bench/live.py)
            await self._push_first()
        if self._announce_queue is not None and info.name not in self._queued:
            wait = self._announced_at.get(info.name, -ANNOUNCE_SPACING) + ANNOUNCE_SPACING - trio.current_time()
            if wait > 0 and self._nursery is not None:
                self._queued.add(info.name)
                self._nursery.start_soon(self._queue_later, info.name, wait)
            else:
                self._queue(info.name)

    def _queue(self, name: str) -> None:
        assert self._announce_queue is not None
        try:
            self._announce_queue.send_nowait(name)
            self._queued.add(name)
        except trio.WouldBlock:
            self._queued.discard(name)
            log.warning("announcement queue full; %s waits for the next republish", name)

    async def _queue_later(self, name: str, wait: float) -> None:
        await trio.sleep(wait)
        self._queue(name)

    async def _announce(self, name: str) -> None:
        """Announce a log held (a provider record), and put its record into the DHT while fresh.

        A record that expired since we took it is still served and the log still announced:
        readers find storage peers through provider records, fetch the record over NS and
        accept it as maybe stale. Only the DHT put stops, as IPNS validators refuse it.
        """
        assert self.discovery is not None
        self._queued.discard(name)  # a record stored from here on queues it again
        at = trio.current_time()
        if len(self._announced_at) >= MAX_PROVIDED:
            self._announced_at = {n: t for n, t in self._announced_at.items() if at - t < ANNOUNCE_SPACING}
        self._announced_at[name] = at
        stored = await self.astore.call(self.store.get_record, name)
        if name not in self._provided:  # the provider record names the log, not a sequence
            await self.discovery.announce_log(name)
            if len(self._provided) >= MAX_PROVIDED:
                self._provided.clear()
            self._provided.add(name)
        if stored is not None:
            now = self.config.clock()
            try:
                info = verify_record(name, stored.record, now=now, limits=self.config.limits, allow_expired=True)
            except Rlp2pError as exc:  # verified when stored: only a changed rule gets here
                log.warning("not republishing %s: %s", name, exc)
                return
            if self.config.bitswap:  # IPFS nodes that know only the CID find us (docs/ipfs.md)
                await self.discovery.provide_block(info.head)
            if info.is_expired(now):
                log.debug("record of %s expired at %s: announced, not put into the DHT", name, info.validity)
                return
            await self.discovery.put_record(info)

    async def _announcer(self, receive: trio.MemoryReceiveChannel[str]) -> None:
        """Announces logs one at a time, off the request path, so an Update answers at once."""
        async for name in receive:
            try:
                await self._announce(name)
            except Rlp2pError as exc:
                log.info("announcing %s failed: %s", name, exc)
            except Exception:  # a DHT failure must never stop a storage peer
                log.exception("announcing %s failed", name)

    async def _republish_loop(self) -> None:
        """Re-announce and re-put every record held, so logs stay findable while publishers are away.

        The first round runs at start: a restarted storage peer (a DHT server loses the provider
        records it held) is findable again at once, not one interval later.
        """
        while True:
            self._provided.clear()  # each round provides every log again (DHT servers forget)
            names = await self.astore.call(self.store.record_names)
            for name in names:
                if self._announce_queue is not None:
                    await self._announce_queue.send(name)
            await trio.sleep(self.config.republish_interval)
