"""The host and the DHT as the rest of rlp2p sees them: peers by id, streams, addresses.

Everything here turns py-libp2p's failures into ``rlp2p.errors`` types at the point they happen:
a stream that cannot be opened is :class:`~rlp2p.errors.DialFailure`, one that is not opened in
time is :class:`~rlp2p.errors.Timeout`, an unparsable address is
:class:`~rlp2p.errors.DecodeError`. Callers above this package catch ``Rlp2pError`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from rlp2p.errors import DialFailure, Rlp2pError, Timeout
from rlp2p.p2p.dht import Discovery
from rlp2p.p2p.host import full_addrs, parse_peer_addr, serves, with_peer_id

log = logging.getLogger(__name__)

#: seconds the peerstore keeps addresses learnt from the DHT or a page's hints
ADDR_TTL = 3600


class Network:
    """One host (and, while the node runs, its :class:`Discovery`), with typed failures."""

    def __init__(self, host: IHost, *, timeout: float) -> None:
        self.host = host
        self.timeout = timeout
        self.discovery: Discovery | None = None  # set by the node while it runs

    @property
    def peer_id(self) -> ID:
        return self.host.get_id()

    @property
    def addrs(self) -> list[str]:
        return full_addrs(self.host)

    def connected(self) -> list[ID]:
        return list(self.host.get_connected_peers())

    def connection_count(self) -> int:
        """Open connections (0 while the host stops)."""
        try:
            return sum(len(c) for c in self.host.get_network().get_connections_map().values())
        except Exception:  # the host is stopping
            return 0

    async def connect(self, addr: str | PeerInfo) -> ID:
        """Connect (DecodeError for a bad address, Timeout or DialFailure if no connection)."""
        info = addr if isinstance(addr, PeerInfo) else parse_peer_addr(addr)
        assert self.discovery is not None, "use the node inside `async with`"
        await self.discovery.connect(info)
        return info.peer_id

    async def open_stream(self, peer: ID, protocol: str) -> Any:
        """A new stream to ``peer`` speaking ``protocol``; a peer known by id only is looked up
        in the DHT first."""
        await self._ensure_addrs(peer)
        try:
            with trio.fail_after(self.timeout):
                return await self.host.new_stream(peer, [TProtocol(protocol)])
        except trio.TooSlowError as exc:
            raise Timeout(f"opening {protocol} to {peer} took over {self.timeout:g} s") from exc
        except Rlp2pError:
            raise
        except Exception as exc:  # py-libp2p raises many unrelated types for a failed dial
            raise DialFailure(f"cannot open {protocol} to {peer}: {exc!r}") from exc

    async def _ensure_addrs(self, peer: ID) -> None:
        if peer in self.host.get_connected_peers() or self.peer_addrs(peer):
            return
        if self.discovery is None:
            return
        with trio.move_on_after(self.timeout):
            try:
                info = await self.discovery.dht.find_peer(peer)
            except Exception as exc:  # not found is reported by the dial that follows
                log.debug("finding %s in the DHT failed: %s", peer, exc)
                return
            if info is not None and info.addrs:
                self.host.get_peerstore().add_addrs(peer, info.addrs, ADDR_TTL)

    def peer_addrs(self, peer: ID) -> list[multiaddr.Multiaddr]:
        """The addresses the peerstore holds for ``peer`` (none for an unknown peer)."""
        try:
            return list(self.host.get_peerstore().addrs(peer))
        except Exception:  # py-libp2p raises PeerStoreError for a peer it never saw
            return []

    def serves(self, peer: ID, protocol: str) -> bool:
        return serves(self.host, peer, protocol)

    def serving(self, protocols: Sequence[str]) -> list[ID]:
        """Connected or remembered peers that said (through identify) they serve ``protocols``."""
        peers = set(self.host.get_connected_peers())
        peers.update(self.host.get_peerstore().peer_ids())
        peers.discard(self.peer_id)
        return [p for p in peers if all(self.serves(p, proto) for proto in protocols)]

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
                self.host.get_peerstore().add_addrs(info.peer_id, info.addrs, ADDR_TTL)
                out.append(info.peer_id)
        return out

    async def find_log_peers(self, name: str) -> list[ID]:
        """Peers that announced they hold log ``name`` (DHT provider records), remembered."""
        assert self.discovery is not None, "use the node inside `async with`"
        out = []
        for info in await self.discovery.find_log_peers(name):
            self.host.get_peerstore().add_addrs(info.peer_id, info.addrs, ADDR_TTL)
            out.append(info.peer_id)
        return out

    async def candidates(self, key: bytes, protocols: Sequence[str], count: int = 20) -> list[ID]:
        """Peers near ``key`` in the DHT and those known already, connected and checked to serve
        ``protocols``.

        The DHT tells peer ids and addresses, not protocols: we connect to each (identify then
        says what it serves) and keep those that serve them all.
        """
        discovery = self.discovery
        assert discovery is not None, "use the node inside `async with`"
        found: list[ID] = []
        with trio.move_on_after(self.timeout):
            found = await discovery.dht.peer_routing.find_closest_peers_network(key, count)
        peers = dict.fromkeys(p for p in [*found, *self.serving(protocols)] if p != self.peer_id)

        async def check(peer: ID) -> None:
            if self.serves(peer, protocols[0]):
                return
            addrs = self.peer_addrs(peer)
            if not addrs:
                return
            with trio.move_on_after(self.timeout):
                try:
                    await discovery.connect(PeerInfo(peer, addrs))
                except Exception as exc:  # unreachable candidates are simply skipped
                    log.debug("candidate %s unreachable: %s", peer, exc)

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(check, peer)
        return [p for p in peers if all(self.serves(p, proto) for proto in protocols)]
