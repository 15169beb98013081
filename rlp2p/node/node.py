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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.crypto.keys import KeyPair
from libp2p.kad_dht import KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from rlp2p.core.admission import Admission, AdmissionConfig
from rlp2p.core.keys import generate_log_key, load_key, save_key
from rlp2p.core.record import RecordInfo, verify_record
from rlp2p.core.retention import RetentionConfig
from rlp2p.errors import ProtocolError, Rlp2pError, StreamClosed, leaves
from rlp2p.limits import DEFAULT_HOST_LIMITS, DEFAULT_LIMITS, HostLimits, Limits
from rlp2p.node.backend import AsyncStore
from rlp2p.node.dht import Discovery
from rlp2p.node.host import (
    DEFAULT_LISTEN,
    close_listeners,
    full_addrs,
    make_host,
    parse_listen_addr,
    parse_peer_addr,
    serves,
    with_peer_id,
)
from rlp2p.node.storage import Retention, StorageGate
from rlp2p.store import Store, open_store
from rlp2p.store.lock import DataDirLock, lock_data_dir
from rlp2p.wire.cas import CAS_PROTOCOL, CasClient, CasServer
from rlp2p.wire.invite import INVITE_PROTOCOL, InviteServer, present
from rlp2p.wire.ns import NS_PROTOCOL, NsClient, NsServer
from rlp2p.wire.rpc import RpcStream

log = logging.getLogger(__name__)

#: the node's own libp2p identity in its data folder (an Ed25519 key, like a log key)
NODE_KEY_FILE = "node.key"
#: seconds an idle request stream is kept for reuse (servers close idle streams after 30 s)
POOL_IDLE = 20.0
#: idle request streams kept per peer and protocol
POOL_PER_PEER = 2


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
        self.discovery: Discovery | None = None
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self.cas_server = CasServer(self.astore, self.config.limits)
        self.ns_server = NsServer(self.astore, self.config.limits, clock=self.config.clock)
        self.admission = Admission(self.config.admission, now=self._now)
        self.invite_server = InviteServer(self.admission, self.host.get_id().to_base58(), self._now, self.config.limits)
        self.gate = StorageGate(store, self.admission, self._now, self.config.limits, on_new_record=self._on_new_record)
        self.cas_server.gate = self.ns_server.gate = self.gate
        self.retention = None if self.config.retention is None else Retention(store, self.gate, self.config.retention, self.config.limits)
        self.metrics: Any = None
        self._announce_queue: trio.MemorySendChannel[str] | None = None
        self.announcements: Any = None  # rlp2p.node.announce.Announcements while running
        # idle request streams, by peer and protocol, with the trio time they came back
        self._pool: dict[tuple[ID, str], list[tuple[RpcStream, float]]] = {}

    @classmethod
    def open(cls, data_dir: str | Path, **kwargs: Any) -> Node:
        """A node whose store is the SQLite database in ``data_dir`` (created if missing).

        Unless ``key_pair`` or ``host`` is given, the node's identity is ``data_dir/node.key``,
        made on first open, so a restarted storage peer keeps its peer id and its replicas.
        The folder is locked (``rlp2p.store.lock``) until :meth:`close_store`: one node per folder.
        """
        data_dir = Path(data_dir)
        lock = lock_data_dir(data_dir)
        store = open_store(data_dir)
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
            self._nursery = await stack.enter_async_context(trio.open_nursery())
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
            self._nursery = None
        self._pool.clear()  # their streams end with the host's connections
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
        return full_addrs(self.host)

    # --- roles -------------------------------------------------------------------------------

    def publisher(self, key_pair: KeyPair, **kwargs: Any) -> Any:
        from rlp2p.node.publisher import Publisher

        return Publisher(self, key_pair, **kwargs)

    def reader(self, **kwargs: Any) -> Any:
        from rlp2p.node.reader import Reader

        return Reader(self, **kwargs)

    # --- talking to peers ----------------------------------------------------------------------

    async def connect(self, addr: str | PeerInfo) -> ID:
        info = addr if isinstance(addr, PeerInfo) else parse_peer_addr(addr)
        assert self.discovery is not None, "use the node inside `async with`"
        await self.discovery.connect(info)
        return info.peer_id

    @asynccontextmanager
    async def rpc(self, peer: ID, protocol: str, *, fresh: bool = False) -> AsyncIterator[RpcStream]:
        """A request stream to ``peer``, kept for the next caller when this one is done with it.

        A new stream costs a protocol negotiation (about five open-stream round trips on
        py-libp2p), so a stream that served its caller well goes back to a small pool for
        ``POOL_IDLE`` seconds (less than the servers' idle timeout); one the server closed in
        the meantime is replaced on its first call (:class:`RpcStream`). A peer known by id only
        is looked up in the DHT first. ``fresh`` opens a stream of its own and closes it after
        (to measure what a new stream costs).
        """
        rpc = None if fresh else self._take_pooled(peer, protocol)
        if rpc is None:
            rpc = RpcStream(
                await self._open_stream(peer, protocol),
                self.config.limits,
                timeout=self.config.timeout,
                reopen=partial(self._open_stream, peer, protocol),
            )
        done = False
        try:
            yield rpc
            done = True
        finally:
            pool = self._pool.setdefault((peer, protocol), [])
            if done and not fresh and not rpc.broken and self._nursery is not None and len(pool) < POOL_PER_PEER:
                pool.append((rpc, trio.current_time()))
            else:
                await rpc.aclose()

    def _take_pooled(self, peer: ID, protocol: str) -> RpcStream | None:
        pool = self._pool.get((peer, protocol))
        now = trio.current_time()
        while pool:
            rpc, since = pool.pop()
            if now - since < POOL_IDLE:
                rpc.reset_counters()
                rpc.reused = True
                return rpc
            self.in_background(rpc.aclose)  # too old: the server may have closed it already
        return None

    async def _open_stream(self, peer: ID, protocol: str) -> Any:
        await self._ensure_addrs(peer)
        try:
            with trio.fail_after(self.config.timeout):
                return await self.host.new_stream(peer, [TProtocol(protocol)])
        except trio.TooSlowError as exc:
            raise StreamClosed(f"opening {protocol} to {peer} timed out") from exc
        except Rlp2pError:
            raise
        except Exception as exc:  # py-libp2p raises many unrelated types for a failed dial
            raise StreamClosed(f"cannot open {protocol} to {peer}: {exc!r}") from exc

    async def _ensure_addrs(self, peer: ID) -> None:
        if peer in self.host.get_connected_peers() or self.peer_addrs(peer):
            return
        if self.discovery is None:
            return
        with trio.move_on_after(self.config.timeout):
            try:
                info = await self.discovery.dht.find_peer(peer)
            except Exception as exc:  # not found is reported by the dial that follows
                log.debug("finding %s in the DHT failed: %s", peer, exc)
                return
            if info is not None and info.addrs:
                self.host.get_peerstore().add_addrs(peer, info.addrs, 3600)

    @asynccontextmanager
    async def cas(self, peer: ID, *, fresh: bool = False) -> AsyncIterator[CasClient]:
        async with self.rpc(peer, CAS_PROTOCOL, fresh=fresh) as rpc:
            yield CasClient(rpc)

    @asynccontextmanager
    async def ns(self, peer: ID, *, fresh: bool = False) -> AsyncIterator[NsClient]:
        async with self.rpc(peer, NS_PROTOCOL, fresh=fresh) as rpc:
            yield NsClient(rpc, self.config.limits, clock=self.config.clock)

    async def present_invitation(self, peer: ID, signed: bytes) -> None:
        """Present a signed invitation ``peer`` issued, before writing to it (rlp2p.wire.invite)."""
        async with self.rpc(peer, INVITE_PROTOCOL) as rpc:
            await present(rpc, signed)

    def peer_addrs(self, peer: ID) -> list[multiaddr.Multiaddr]:
        """The addresses the peerstore holds for ``peer`` (none for an unknown peer)."""
        try:
            return list(self.host.get_peerstore().addrs(peer))
        except Exception:  # py-libp2p raises PeerStoreError for a peer it never saw
            return []

    def serves(self, peer: ID, protocol: str) -> bool:
        return serves(self.host, peer, protocol)

    def multiaddrs_of(self, peers: Sequence[ID]) -> list[bytes]:
        """Binary multiaddrs with /p2p/ of ``peers``, as the peerstore knows them (one each)."""
        out = []
        for peer in peers:
            addrs = self.peer_addrs(peer)
            if addrs:
                out.append(multiaddr.Multiaddr(with_peer_id(addrs[0], peer.to_string())).to_bytes())
        return out

    def peers_from_multiaddrs(self, hints: Sequence[bytes]) -> list[ID]:
        """Peers named by binary multiaddrs (a page's CAS hint), added to the peerstore."""
        out = []
        for raw in hints:
            try:
                info = parse_peer_addr(multiaddr.Multiaddr(raw))
            except Exception as exc:  # a hint is untrusted input: skip what does not parse
                log.debug("ignoring a CAS hint: %s", exc)
                continue
            if info.peer_id != self.peer_id:
                self.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
                out.append(info.peer_id)
        return out

    def known_storage_peers(self) -> list[ID]:
        """Connected or remembered peers that said (through identify) they serve CAS and NS."""
        peers = set(self.host.get_connected_peers())
        peers.update(self.host.get_peerstore().peer_ids())
        peers.discard(self.peer_id)
        return [p for p in peers if self.serves(p, CAS_PROTOCOL) and self.serves(p, NS_PROTOCOL)]

    async def storage_candidates(self, key: bytes, count: int = 20) -> list[ID]:
        """Storage peers near ``key`` in the DHT, connected and checked to serve CAS and NS.

        The DHT tells peer ids and addresses, not protocols: we connect to each (identify then
        says what it serves) and keep those that serve both.
        """
        assert self.discovery is not None
        found: list[ID] = []
        with trio.move_on_after(self.config.timeout):
            found = await self.discovery.dht.peer_routing.find_closest_peers_network(key, count)
        peers = dict.fromkeys(p for p in [*found, *self.known_storage_peers()] if p != self.peer_id)

        async def check(peer: ID) -> None:
            if self.serves(peer, CAS_PROTOCOL):
                return
            addrs = self.peer_addrs(peer)
            if not addrs:
                return
            with trio.move_on_after(self.config.timeout):
                try:
                    await self.discovery.connect(PeerInfo(peer, addrs))  # type: ignore[union-attr]
                except Exception as exc:  # unreachable candidates are simply skipped
                    log.debug("candidate %s unreachable: %s", peer, exc)

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(check, peer)
        return [p for p in peers if self.serves(p, CAS_PROTOCOL) and self.serves(p, NS_PROTOCOL)]

    def in_background(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the node's nursery, bounded by the timeout; failures are logged.

        For work nobody waits for (a redundant DHT put); it is cancelled when the node stops.
        """

        async def run() -> None:
            with trio.move_on_after(self.config.timeout):
                try:
                    await fn(*args)
                except Exception:  # background work must never take the node down
                    log.exception("background %s failed", getattr(fn, "__qualname__", fn))

        assert self._nursery is not None, "use the node inside `async with`"
        self._nursery.start_soon(run)

    # --- storage role --------------------------------------------------------------------------

    def _now(self) -> float:
        """Unix seconds by the node's clock: when a block or record was stored here."""
        return self.config.clock().timestamp()

    async def _on_new_record(self, info: RecordInfo) -> None:
        if self.announcements is not None:
            self.announcements.announce(info)
        if self._announce_queue is not None:
            try:
                self._announce_queue.send_nowait(info.name)
            except trio.WouldBlock:
                log.warning("announcement queue full; %s waits for the next republish", info.name)

    async def _announce(self, name: str) -> None:
        """Announce a log held (a provider record), and put its record into the DHT while fresh.

        A record that expired since we took it is still served and the log still announced:
        readers find storage peers through provider records, fetch the record over NS and
        accept it as maybe stale. Only the DHT put stops, as IPNS validators refuse it.
        """
        assert self.discovery is not None
        stored = await self.astore.call(self.store.get_record, name)
        await self.discovery.announce_log(name)
        if stored is not None:
            now = self.config.clock()
            try:
                info = verify_record(name, stored.record, now=now, limits=self.config.limits, allow_expired=True)
            except Rlp2pError as exc:  # verified when stored: only a changed rule gets here
                log.warning("not republishing %s: %s", name, exc)
                return
            if info.is_expired(now):
                log.debug("record of %s expired at %s: announced, not put into the DHT", name, info.validity)
                return
            await self.discovery.put_record(info)

    async def _announcer(self, receive: trio.MemoryReceiveChannel[str]) -> None:
        """Announces logs one at a time, off the request path, so an Update answers at once."""
        async for name in receive:
            try:
                await self._announce(name)
            except (Rlp2pError, ProtocolError, trio.TooSlowError) as exc:
                log.info("announcing %s failed: %s", name, exc)
            except Exception:  # a DHT failure must never stop a storage peer
                log.exception("announcing %s failed", name)

    async def _republish_loop(self) -> None:
        """Re-announce and re-put every record held, so logs stay findable while publishers are away.

        The first round runs at start: a restarted storage peer (a DHT server loses the provider
        records it held) is findable again at once, not one interval later.
        """
        while True:
            names = await self.astore.call(self.store.record_names)
            for name in names:
                if self._announce_queue is not None:
                    await self._announce_queue.send(name)
            await trio.sleep(self.config.republish_interval)
