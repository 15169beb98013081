"""The Kademlia DHT, as rlp2p uses it: bootstrap, log announcements, records.

Every sharp edge of py-libp2p 0.8.1's DHT that rlp2p meets is handled here, each with a comment
and a test in tests/node/test_dht.py:

1. The DHT must exist before we connect, so identify advertises /ipfs/kad/1.0.0 to the other side
   (``Discovery`` creates it in ``__init__``; the node connects only after).
2. There is no bootstrap helper: we connect, ``add_peer`` and refresh ourselves (``bootstrap``,
   ``refresh``).
3. ``find_providers`` can return the same peer several times: we de-duplicate.
4. ``provide`` returns True even when servers dropped it (ADD_PROVIDER is limited to 10 per peer
   per 10 s): we announce each log once (one provider record per log, never per block), and the
   storage peer's republish loop spaces announcements out.
5. ``get_value`` answers from the local copy without asking the network, so a node that once saw
   seq 1 keeps seeing it: ``get_record`` asks the closest peers itself and keeps the best valid
   record, its own copy included.
6. Records live 24 h on servers and only the original putter republishes them: storage peers
   re-put every record they hold (they need no key: a record is self-authenticating).
7. Keys: records travel under the standard IPNS key ``b"/ipns/" + binary multihash``
   (:func:`binary_record_key`, 44 bytes), the one go and js resolvers ask for. The text key
   ``/ipns/<base58 name>`` that py-libp2p's public ``put_value`` / ``get_value`` take is not used
   any more: it is 58 bytes, over the 50 bytes py-libp2p's FIND_NODE accepts for a key that is not
   a multihash, so multi-hop lookups of it failed between py-libp2p peers (the binary key is
   under the limit: tests/node/test_dht_ipns.py).
8. Every peer that opens a KAD stream is put in the routing table, DHT clients included: we
   refuse those that identify says do not serve kad (``_guard_routing_table``).
9. py-libp2p's public ``put_value`` / ``get_value`` take ``str`` keys and encode them as UTF-8,
   so they cannot send the binary key: :meth:`Discovery.put_record_to_peers` and
   :meth:`Discovery.get_record_from_peers` send it themselves with py-libp2p's private
   ``value_store._store_at_peer`` / ``value_store._get_from_peer`` (which take ``bytes`` keys) to
   the peers that ``peer_routing.find_closest_peers_network(binary key)`` finds. A server that
   refused a binary-key put (a py-libp2p server without edge 10: a reset stream on a live
   connection) is not sent binary keys again for ``BINARY_REFUSAL_MEMORY`` seconds. The private
   functions are those of libp2p 0.8.1; tests/interop/test_records.py fails if they change.
10. py-libp2p's PUT_VALUE handler decodes every key as UTF-8 before validating, so it refuses
   (resets) a put under the binary key. Our servers put their own handler in front of
   py-libp2p's for ``/ipfs/kad/1.0.0`` (:meth:`Discovery._handle_kad_stream`): it answers the
   PUT_VALUE requests whose key is a standard IPNS key itself, keeping the record by the IPNS
   rules (:func:`rlp2p.core.ipns.accept_offered`) in py-libp2p's value store, and hands the stream
   (with the message it read) to py-libp2p's handler at the first other request. GET_VALUE and
   FIND_NODE need no help: py-libp2p serves any ``bytes`` key from its value store. A stream that
   mixes requests keeps the workaround only until its first other request (js sends one request
   per stream). The patch upstream is in docs/upstream.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import trio
import varint
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.pb.kademlia_pb2 import Message, Record
from libp2p.kad_dht.common import MAX_DHT_MESSAGE_SIZE, format_time_rfc3339
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.utils.varint import read_varint_prefixed_bytes_limited
from libp2p.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.records.record import make_signed_put_record
from libp2p.tools.anyio_service import background_trio_service

from rlp2p.core.address import address_to_text
from rlp2p.core.placement import provider_key
from rlp2p.core.record import RecordInfo, ipns_dht_key, select_best
from rlp2p.core.ipns import accept_offered, is_standard_key
from rlp2p.errors import DecodeError, DialFailure, RecordError, Timeout
from rlp2p.p2p.host import serves
from rlp2p.limits import DEFAULT_LIMITS, Limits

log = logging.getLogger(__name__)

KAD_PROTOCOL = "/ipfs/kad/1.0.0"
#: seconds to wait for identify after a new connection
IDENTIFY_WAIT = 2.0
#: most peers one record put or get asks (Kademlia's k)
MAX_RECORD_PEERS = 20
#: seconds a peer that refused a binary-key put is not sent one again (edge 9)
BINARY_REFUSAL_MEMORY = 6 * 3600.0
#: most such peers remembered
MAX_REMEMBERED_REFUSALS = 4096
#: most standard-key puts we answer on one inbound KAD stream (edge 10)
MAX_KAD_PUTS_PER_STREAM = 64


def binary_record_key(name: str) -> bytes:
    """The standard IPNS DHT key of a log's record, the only one rlp2p uses (edge 7 above)."""
    return ipns_dht_key(name)


class _Replayed:
    """A stream that reads ``head`` first, then the stream itself: how a request we already read
    is handed to py-libp2p's handler (edge 10). Everything else is the stream's."""

    def __init__(self, stream: INetStream, head: bytes) -> None:
        self._stream = stream
        self._head = head

    async def read(self, n: int | None = None) -> bytes:
        if self._head:
            size = len(self._head) if n is None or n < 0 else n
            out, self._head = self._head[:size], self._head[size:]
            return out
        return await self._stream.read(n)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._stream, attr)


class Discovery:
    def __init__(
        self,
        host: IHost,
        *,
        server: bool,
        limits: Limits = DEFAULT_LIMITS,
        timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.host = host
        self.limits = limits
        self.timeout = timeout
        #: the wall clock records are judged by (the node's :attr:`NodeConfig.clock`)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        # edge 1: created before any connection exists
        self.dht = KadDHT(host, DHTMode.SERVER if server else DHTMode.CLIENT)
        self._guard_routing_table()
        # edge 9: peers that refused a binary-key put, and when (trio clock)
        self._binary_refusals: dict[ID, float] = {}
        self.server = server
        if server:  # edge 10: in front of py-libp2p's handler, which KadDHT just registered
            host.set_stream_handler(TProtocol(KAD_PROTOCOL), self._handle_kad_stream)

    def _guard_routing_table(self) -> None:
        """Edge 8: py-libp2p adds every peer that opens a KAD stream to the routing table,
        skipping the server-mode check, so DHT clients (every phone that publishes or reads) end
        up there and lookups later dial them long after they left. We keep the check for peers
        whose identify already said they do not serve kad."""
        add_peer = self.dht.add_peer

        async def guarded(peer_id: ID, *, skip_server_mode_check: bool = False) -> bool:
            if skip_server_mode_check and self._identified(peer_id) and not self._serves_kad(peer_id):
                return False
            return await add_peer(peer_id, skip_server_mode_check=skip_server_mode_check)

        self.dht.add_peer = guarded  # type: ignore[method-assign]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Discovery]:
        async with background_trio_service(self.dht):
            yield self

    async def connect(self, info: PeerInfo) -> None:
        """Connect to a peer and, if it serves the DHT, put it in the routing table.

        Raises Timeout or DialFailure if no connection came up.
        """
        try:
            with trio.fail_after(self.timeout):
                await self.host.connect(info)
        except trio.TooSlowError as exc:
            raise Timeout(f"connecting to {info.peer_id} took over {self.timeout:g} s") from exc
        except Exception as exc:  # py-libp2p raises many unrelated types for a failed dial
            raise DialFailure(f"cannot connect to {info.peer_id}: {exc}") from exc
        if info.peer_id not in self.host.get_connected_peers():
            raise DialFailure(f"no connection to {info.peer_id}")
        # identify runs right after the connection: wait (briefly) until it told us the protocols,
        # not until the peer serves kad, which a DHT client never will
        with trio.move_on_after(IDENTIFY_WAIT):
            while not self._identified(info.peer_id):
                await trio.sleep(0.01)
        if self._serves_kad(info.peer_id):
            await self.dht.add_peer(info.peer_id)

    def _identified(self, peer: ID) -> bool:
        try:
            return bool(self.host.get_peerstore().get_protocols(peer))
        except Exception:  # unknown peer
            return False

    def _serves_kad(self, peer: ID) -> bool:
        return serves(self.host, peer, KAD_PROTOCOL)

    async def bootstrap(self, peers: Iterable[PeerInfo]) -> int:
        """Edge 2: connect to each bootstrap peer and add it. Returns how many answered.

        The routing-table refresh that should follow is :meth:`refresh`, which the node runs in
        the background: lookups are iterative, so nothing waits for it.
        """
        reached = 0
        for info in peers:
            try:
                await self.connect(info)
                reached += 1
            except Exception as exc:  # one dead bootstrap peer must not stop the others
                log.warning("bootstrap peer %s unreachable: %s", info.peer_id, exc)
        return reached

    async def refresh(self) -> None:
        with trio.move_on_after(self.timeout):
            try:
                await self.dht.refresh_routing_table()
            except Exception as exc:  # a failed refresh leaves the table as it was
                log.info("routing table refresh failed: %s", exc)

    async def announce_log(self, name: str) -> bool:
        """Edge 4: one provider record per log."""
        with trio.move_on_after(self.timeout):
            return await self.dht.provide(provider_key(name))
        return False

    async def provide_block(self, address: bytes) -> bool:
        """Announce that we hold the block ``address`` (a log's head page, for IPFS nodes)."""
        with trio.move_on_after(self.timeout):
            return await self.dht.provide(address_to_text(address))
        return False

    async def find_block_providers(self, address: bytes, count: int = 20) -> list[PeerInfo]:
        """Peers that announced the block ``address``, ourselves excluded (edge 3)."""
        found: list[PeerInfo] = []
        with trio.move_on_after(self.timeout):
            found = await self.dht.find_providers(address_to_text(address), count)
        return _unique(found, self.host.get_id())

    async def find_log_peers(self, name: str, count: int = 20) -> list[PeerInfo]:
        """Storage peers that announced the log, de-duplicated (edge 3), ourselves excluded."""
        found: list[PeerInfo] = []
        with trio.move_on_after(self.timeout):
            found = await self.dht.find_providers(provider_key(name), count)
        return _unique(found, self.host.get_id())

    async def put_record(self, info: RecordInfo) -> None:
        """Put a verified record into the DHT (edge 6: storage peers call this to republish).

        Under the standard key (edge 7) to the closest peers (edge 9), and into our own value
        store when we serve the DHT, as py-libp2p's ``put_value`` does.
        """
        if self.server:
            self.keep_record(binary_record_key(info.name), info.raw)
        await self.put_record_to_peers(info)

    def keep_record(self, key: bytes, value: bytes) -> bool:
        """Edge 10: store ``value`` under the standard IPNS ``key`` if the IPNS rules say so.

        Returns whether it was kept; an invalid, expired or not better record is not (its reason
        is logged: the caller is a remote peer's request or our own put).
        """
        return self._keep(key, value) is not None

    def _keep(self, key: bytes, value: bytes) -> Record | None:
        store = self.dht.value_store
        held = store.get(key)
        try:
            accept_offered(key, value, held.value if held is not None else None, self.clock(), limits=self.limits)
        except (DecodeError, RecordError) as exc:
            log.debug("not keeping the record offered under %s: %s", key.hex(), exc)
            return None
        record = Record()
        record.key = key
        record.value = value
        record.timeReceived = format_time_rfc3339()
        # no author or signature: the IPNS record inside authenticates itself, and py-libp2p's
        # GET_VALUE handler checks a DHT-record signature only when there is one
        store.put_record(key, record)
        return record

    async def _handle_kad_stream(self, stream: INetStream) -> None:
        """Edge 10: answer PUT_VALUE under a standard IPNS key; hand anything else to py-libp2p."""
        dht = self.dht
        for _ in range(MAX_KAD_PUTS_PER_STREAM):
            try:
                with trio.fail_after(self.timeout):
                    data = await read_varint_prefixed_bytes_limited(stream, MAX_DHT_MESSAGE_SIZE)
                message = Message()
                message.ParseFromString(data)
            except Exception as exc:  # EOF, a slow or oversized or undecodable request: as py-libp2p
                log.debug("kad stream ended: %s", exc)
                await _reset(stream)
                return
            if not (
                message.type == Message.MessageType.PUT_VALUE
                and message.HasField("record")
                and is_standard_key(message.record.key)
            ):
                await dht.handle_stream(_Replayed(stream, varint.encode(len(data)) + data))  # type: ignore[arg-type]
                return
            kept = self._keep(message.key, message.record.value) if message.key == message.record.key else None
            if kept is None:
                await _reset(stream)  # py-libp2p's (and the spec's) answer to a refused put
                return
            response = Message()
            response.type = Message.MessageType.PUT_VALUE
            response.key = message.key
            response.record.CopyFrom(kept)
            response.senderRecord = env_to_send_in_RPC(self.host)[0]
            body = response.SerializeToString()
            try:
                await stream.write(varint.encode(len(body)) + body)
            except Exception as exc:
                log.debug("kad put answer not sent: %s", exc)
                return
        await _reset(stream)

    async def put_record_to_peers(self, info: RecordInfo, peers: Iterable[ID] | None = None) -> list[ID]:
        """Edge 9: put a verified record under the standard binary key; returns the peers that kept it.

        ``peers`` defaults to the closest peers to the key in the network, less those that
        refused a binary key recently (py-libp2p servers always do); peers given by the caller
        are all asked.
        """
        key = binary_record_key(info.name)
        stored: list[ID] = []
        # our own signature over the DHT record (go and js ignore it; the IPNS record inside is
        # what is validated), made here so that no copy in the local store is sent instead
        record = make_signed_put_record(key, info.raw, self.host.get_private_key())
        with trio.move_on_after(self.timeout):
            if peers is None:
                found = await self.dht.peer_routing.find_closest_peers_network(key, MAX_RECORD_PEERS)
                targets = [p for p in found if not self._refused_binary_key(p)]
            else:
                targets = list(peers)
            targets = [p for p in dict.fromkeys(targets) if p != self.host.get_id()][:MAX_RECORD_PEERS]

            async def store(peer: ID) -> None:
                ok = False
                with trio.move_on_after(self.timeout / 2) as slow:
                    try:
                        ok = await self.dht.value_store._store_at_peer(peer, key, info.raw, record=record)
                    except Exception as exc:  # it logs and returns False itself; this is belt and braces
                        log.debug("binary-key put to %s failed: %s", peer, exc)
                if ok:
                    stored.append(peer)
                    self._binary_refusals.pop(peer, None)
                elif not slow.cancelled_caught and peer in self.host.get_connected_peers():
                    # a refusal (the stream was reset, the connection is up), not an unreachable
                    # or slow peer: _store_at_peer reports all three as False
                    self._remember_refusal(peer)

            async with trio.open_nursery() as nursery:
                for peer in targets:
                    nursery.start_soon(store, peer)
        return stored

    def _refused_binary_key(self, peer: ID) -> bool:
        when = self._binary_refusals.get(peer)
        if when is None:
            return False
        if trio.current_time() - when > BINARY_REFUSAL_MEMORY:
            del self._binary_refusals[peer]
            return False
        return True

    def _remember_refusal(self, peer: ID) -> None:
        if peer not in self._binary_refusals and len(self._binary_refusals) >= MAX_REMEMBERED_REFUSALS:
            del self._binary_refusals[next(iter(self._binary_refusals))]  # the oldest
        self._binary_refusals[peer] = trio.current_time()

    async def get_record_from_peers(self, name: str, peers: Iterable[ID] | None = None) -> dict[ID, bytes]:
        """Edge 9: the raw values (not yet verified) that peers hold under the binary key.

        ``peers`` defaults to the closest peers to the key in the network. py-libp2p peers answer
        "not found" (they cannot have stored a binary key), which costs nothing more.
        """
        key = binary_record_key(name)
        values: dict[ID, bytes] = {}
        with trio.move_on_after(self.timeout):
            if peers is None:
                peers = await self.dht.peer_routing.find_closest_peers_network(key, MAX_RECORD_PEERS)
            targets = [p for p in dict.fromkeys(peers) if p != self.host.get_id()][:MAX_RECORD_PEERS]
            await self._ask_peers(key, targets, values)
        return values

    async def _ask_peers(self, key: bytes, peers: list[ID], values: dict[ID, bytes]) -> None:
        async def ask(peer: ID) -> None:
            with trio.move_on_after(self.timeout / 2):
                try:
                    value = await self.dht.value_store._get_from_peer(peer, key)
                except Exception as exc:
                    log.debug("dht get from %s failed: %s", peer, exc)
                    return
                if isinstance(value, bytes) and value:
                    values[peer] = value

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(ask, peer)

    async def get_record(self, name: str, *, allow_expired: bool = False) -> RecordInfo | None:
        """Edge 5: ask the closest peers ourselves and keep the best valid record.

        Under the standard key (edge 7), from our own value store and the closest peers. The
        choice is :func:`~rlp2p.core.record.select_best`'s, at :attr:`clock`; expired records take part only with ``allow_expired`` (IPNS's DHT drops them anyway: readers
        find expired heads through storage peers' provider records and NS, not here).
        """
        values: list[bytes] = []
        local = self.dht.value_store.get(binary_record_key(name))
        if local is not None:
            values.append(local.value)
        values.extend((await self.get_record_from_peers(name)).values())
        if not values:
            return None
        try:
            return select_best(name, values, self.clock(), limits=self.limits, allow_expired=allow_expired)
        except RecordError:
            return None


async def _reset(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception:  # already gone
        pass


def _unique(found: Iterable[PeerInfo], own: ID) -> list[PeerInfo]:
    """Edge 3: providers de-duplicated (their addresses merged), ourselves left out."""
    unique: dict[ID, PeerInfo] = {}
    for info in found:
        if info.peer_id == own:
            continue
        if info.peer_id in unique:
            unique[info.peer_id].addrs.extend(a for a in info.addrs if a not in unique[info.peer_id].addrs)
        else:
            unique[info.peer_id] = PeerInfo(info.peer_id, list(info.addrs))
    return list(unique.values())
