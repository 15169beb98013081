"""What a publisher and a reader need of the network, and nothing else.

:class:`Peers` keeps request streams for reuse, opens CAS and NS clients on them, finds storage
peers (DHT candidates, provider records, a page's hints) and hands a published record to the DHT
and to followers. The node builds one and passes it to each :class:`~rlp2p.node.publisher.Publisher`
and :class:`~rlp2p.node.reader.Reader`, with the store and the limits, instead of itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any

import trio
from libp2p.peer.id import ID

from rlp2p.core.record import RecordInfo
from rlp2p.limits import Limits
from rlp2p.p2p.network import Network
from rlp2p.wire.cas import CAS_PROTOCOL, CasClient
from rlp2p.wire.ns import NS_PROTOCOL, NsClient
from rlp2p.wire.invite import INVITE_PROTOCOL, present
from rlp2p.wire.rpc import RpcStream

log = logging.getLogger(__name__)

#: seconds an idle request stream is kept for reuse (servers close idle streams after 30 s)
POOL_IDLE = 20.0
#: idle request streams kept per peer and protocol
POOL_PER_PEER = 2
#: the protocols a storage peer serves
STORAGE_PROTOCOLS = (CAS_PROTOCOL, NS_PROTOCOL)


class Peers:
    """Storage peers and request streams to them, over one :class:`~rlp2p.p2p.network.Network`."""

    def __init__(self, network: Network, limits: Limits, *, clock: Callable[[], datetime]) -> None:
        self.network = network
        self.limits = limits
        self.clock = clock
        #: the node's nursery while it runs (pooling and background work need one)
        self.nursery: trio.Nursery | None = None
        #: rlp2p.node.announce.Announcements while the node runs them (live updates)
        self.announcements: Any = None
        # idle request streams, by peer and protocol, with the trio time they came back
        self._pool: dict[tuple[ID, str], list[tuple[RpcStream, float]]] = {}
        #: logs whose record Alice is putting into the DHT -> a newer record to put after it
        self._putting: dict[str, RecordInfo | None] = {}

    @property
    def peer_id(self) -> ID:
        return self.network.peer_id

    @property
    def timeout(self) -> float:
        """Seconds for one network operation (the node's ``NodeConfig.timeout``)."""
        return self.network.timeout

    # --- request streams -----------------------------------------------------------------------

    @asynccontextmanager
    async def rpc(self, peer: ID, protocol: str, *, fresh: bool = False) -> AsyncIterator[RpcStream]:
        """A request stream to ``peer``, kept for the next caller when this one is done with it.

        A new stream costs a protocol negotiation (about five open-stream round trips on
        py-libp2p), so a stream that served its caller well goes back to a small pool for
        ``POOL_IDLE`` seconds (less than the servers' idle timeout); one the server closed in
        the meantime is replaced on its first call (:class:`RpcStream`). ``fresh`` opens a
        stream of its own and closes it after (to measure what a new stream costs).
        """
        rpc = None if fresh else self._take_pooled(peer, protocol)
        if rpc is None:
            rpc = RpcStream(
                await self.network.open_stream(peer, protocol),
                self.limits,
                timeout=self.timeout,
                reopen=partial(self.network.open_stream, peer, protocol),
            )
        done = False
        try:
            yield rpc
            done = True
        finally:
            pool = self._pool.setdefault((peer, protocol), [])
            if done and not fresh and not rpc.broken and self.nursery is not None and len(pool) < POOL_PER_PEER:
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

    async def present_invitation(self, peer: ID, signed: bytes) -> None:
        """Present a signed invitation ``peer`` issued, before writing to it (rlp2p.wire.invite)."""
        async with self.rpc(peer, INVITE_PROTOCOL) as rpc:
            await present(rpc, signed)

    def pooled(self) -> list[tuple[ID, str]]:
        """(peer, protocol) of every kept stream waiting for its next use."""
        return [key for key, streams in self._pool.items() if streams]

    def clear_pool(self) -> None:
        self._pool.clear()  # their streams end with the host's connections

    @asynccontextmanager
    async def cas(self, peer: ID, *, fresh: bool = False) -> AsyncIterator[CasClient]:
        async with self.rpc(peer, CAS_PROTOCOL, fresh=fresh) as rpc:
            yield CasClient(rpc)

    @asynccontextmanager
    async def ns(self, peer: ID, *, fresh: bool = False) -> AsyncIterator[NsClient]:
        async with self.rpc(peer, NS_PROTOCOL, fresh=fresh) as rpc:
            yield NsClient(rpc, self.limits, clock=self.clock)

    # --- finding storage peers -----------------------------------------------------------------

    def known_storage_peers(self) -> list[ID]:
        """Connected or remembered peers that said (through identify) they serve CAS and NS."""
        return self.network.serving(STORAGE_PROTOCOLS)

    async def storage_candidates(self, key: bytes, count: int = 20) -> list[ID]:
        """Storage peers near ``key`` in the DHT, connected and checked to serve CAS and NS."""
        return await self.network.candidates(key, STORAGE_PROTOCOLS, count)

    async def log_peers(self, name: str) -> list[ID]:
        """Peers that announced they hold log ``name``."""
        return await self.network.find_log_peers(name)

    def hints_for(self, peers: Sequence[ID]) -> list[bytes]:
        """A head page's CAS hint naming ``peers`` (binary multiaddrs with /p2p/)."""
        return self.network.multiaddrs_of(peers)

    def peers_from_hints(self, hints: Sequence[bytes]) -> list[ID]:
        """The peers a head page's CAS hint names (untrusted: what does not parse is skipped)."""
        return self.network.peers_from_multiaddrs(hints)

    # --- after a publish -----------------------------------------------------------------------

    def published(self, info: RecordInfo) -> None:
        """A record of ours that replicas took: a second copy into the DHT, off the caller's path
        (the replicas put it themselves), and an announcement to followers."""
        discovery = self.network.discovery
        if discovery is not None:
            # one put per log at a time: a record published while one is under way waits and
            # replaces any other waiting (the DHT keeps the newest anyway)
            if info.name in self._putting:
                self._putting[info.name] = info
            else:
                self._putting[info.name] = None
                self.in_background(self._put_latest, info)
        if self.announcements is not None:  # live updates for followers (node/announce.py)
            self.announcements.announce(info)

    async def _put_latest(self, info: RecordInfo) -> None:
        discovery = self.network.discovery
        try:
            while discovery is not None:
                await discovery.put_record(info)
                newer = self._putting.get(info.name)
                if newer is None:
                    break
                info, self._putting[info.name] = newer, None
        finally:
            self._putting.pop(info.name, None)

    def in_background(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the node's nursery, bounded by the timeout; failures are logged.

        For work nobody waits for (a redundant DHT put); it is cancelled when the node stops.
        """

        async def run() -> None:
            with trio.move_on_after(self.timeout):
                try:
                    await fn(*args)
                except Exception:  # background work must never take the node down
                    log.exception("background %s failed", getattr(fn, "__qualname__", fn))

        assert self.nursery is not None, "use the node inside `async with`"
        self.nursery.start_soon(run)
