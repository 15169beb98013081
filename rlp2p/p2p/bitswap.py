"""Bitswap, as rlp2p uses it: storage peers answer IPFS nodes' wants from rlp2p's store, and a
reader may fetch blocks from IPFS providers (``Reader(ipfs=True)``).

py-libp2p's :class:`~libp2p.bitswap.client.BitswapClient` does the protocol (1.0.0 to 1.2.0);
what is ours is the block store it is given:

* :class:`StoreBlocks` (storage peers) reads rlp2p's store through the node's
  :class:`~rlp2p.node.backend.AsyncStore`: no second copy of any block. It never writes: py-libp2p
  stores every block a peer sends, asked for or not, and a storage peer takes blocks only through
  CAS Put, where admission and quotas apply. Listing all blocks (``get_all_cids``) answers an
  empty list: nothing in the protocol needs it, and it would cost O(history).
* :class:`WantedBlocks` (readers) keeps only blocks that are wanted right now, checked against
  their address, and at most ``MAX_WANTED`` of them: what a peer pushes unasked is dropped.

Only rlp2p's CAS addresses (CIDv1, raw, sha2-256) are served or taken; any other CID is "not
held".

One sharp edge of py-libp2p 0.8.1's Bitswap, worked around here (:class:`_Client`): it answers a
wantlist on the stream the wantlist came on. The protocol sends each message on the sender's own
stream, and js (Helia) closes the read side of the stream it sends a wantlist on, so those
answers are lost ("Failed to load block"). Our client sends its answers on a stream of its own to
the peer, as go and js do; py-libp2p peers read blocks from inbound streams too. Only the first
``MAX_ANSWER_BLOCKS`` entries of a wantlist are read and answered (py-libp2p would read every
block a wantlist names into memory first; a peer asks again for the rest). docs/upstream.md has the patch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import trio
from typing import Any

from libp2p.abc import IHost, INetStream
from libp2p.bitswap.config import BITSWAP_PROTOCOL_V120
from libp2p.custom_types import TProtocol
from libp2p.bitswap.block_store import BlockStore
from libp2p.bitswap.cid import CIDInput, parse_cid
from libp2p.bitswap.client import BitswapClient
from libp2p.peer.id import ID

from rlp2p.core.address import address_of, check_address
from rlp2p.errors import NotFound, Rlp2pError

log = logging.getLogger(__name__)

#: most blocks a reader waits for over Bitswap at once
MAX_WANTED = 256
#: most blocks a storage peer answers one wantlist with
MAX_ANSWER_BLOCKS = 256


class _Client(BitswapClient):
    """py-libp2p's client, answering on its own stream (module doc)."""

    async def _process_wantlist(self, wantlist: Any, peer_id: ID, stream: INetStream) -> None:
        # py-libp2p reads every wanted block into memory before answering: bound the entries first
        if len(wantlist.entries) > MAX_ANSWER_BLOCKS:
            del wantlist.entries[MAX_ANSWER_BLOCKS:]
        await super()._process_wantlist(wantlist, peer_id, stream)

    async def _send_wantlist_responses_inline(
        self,
        stream: INetStream,
        peer_id: ID,
        blocks_to_send_v100: list[bytes],
        blocks_to_send_v110: list[tuple[bytes, bytes]],
        presences_to_send: list[tuple[Any, bool]],
    ) -> None:
        protocol = stream.get_protocol() or BITSWAP_PROTOCOL_V120
        out = await self.host.new_stream(peer_id, [TProtocol(str(protocol))])
        try:
            await super()._send_wantlist_responses_inline(
                out,
                peer_id,
                blocks_to_send_v100,
                blocks_to_send_v110,
                presences_to_send,
            )
        finally:
            await out.close()


def _address(cid: CIDInput) -> bytes | None:
    """The CAS address ``cid`` stands for, or None if it is not one of ours."""
    try:
        address = bytes(parse_cid(cid).buffer)
        check_address(address)
    except (Rlp2pError, Exception):  # py-cid raises several unrelated types
        return None
    return address


class StoreBlocks(BlockStore):
    """Bitswap's block store over a storage peer's own store, read-only (module doc)."""

    def __init__(
        self,
        get_blocks: Callable[[list[bytes]], Awaitable[dict[bytes, bytes]]],
    ) -> None:
        self._get_blocks = get_blocks
        # py-libp2p asks has_block, then at once get_block, for each want: the block has_block
        # read is kept for that get_block (one block, so memory stays one block per store)
        self._last: tuple[bytes, bytes] | None = None

    async def get_block(self, cid: CIDInput) -> bytes | None:
        address = _address(cid)
        if address is None:
            return None
        last, self._last = self._last, None
        if last is not None and last[0] == address:
            return last[1]
        return (await self._get_blocks([address])).get(address)

    async def has_block(self, cid: CIDInput) -> bool:
        data = await self.get_block(cid)
        address = _address(cid)
        if data is not None and address is not None:
            self._last = (address, data)
        return data is not None

    async def put_block(self, cid: CIDInput, data: bytes) -> None:
        log.debug("dropped a block pushed over bitswap (storage peers take blocks through CAS Put)")

    async def delete_block(self, cid: CIDInput) -> None:
        return None  # retention owns deletion

    def get_all_cids(self) -> list[bytes]:
        return []


class WantedBlocks(BlockStore):
    """A reader's bitswap store: only blocks wanted now, verified, bounded (module doc)."""

    def __init__(self, limit: int = MAX_WANTED) -> None:
        self.limit = limit
        self._wanted: set[bytes] = set()
        self._got: dict[bytes, bytes] = {}

    def want(self, addresses: Iterable[bytes]) -> None:
        for address in addresses:
            if len(self._wanted) >= self.limit:
                raise ValueError(f"over {self.limit} blocks wanted at once")
            self._wanted.add(address)

    def forget(self, addresses: Iterable[bytes]) -> None:
        for address in addresses:
            self._wanted.discard(address)
            self._got.pop(address, None)

    async def get_block(self, cid: CIDInput) -> bytes | None:
        address = _address(cid)
        return None if address is None else self._got.get(address)

    async def has_block(self, cid: CIDInput) -> bool:
        return await self.get_block(cid) is not None

    async def put_block(self, cid: CIDInput, data: bytes) -> None:
        address = _address(cid)
        if address is None or address not in self._wanted:
            return  # unasked: dropped
        if address_of(data) != address:
            log.debug("bitswap block does not match its address: dropped")
            return
        self._got[address] = data

    async def delete_block(self, cid: CIDInput) -> None:
        address = _address(cid)
        if address is not None:
            self._got.pop(address, None)

    def get_all_cids(self) -> list[bytes]:
        return list(self._got)


class Bitswap:
    """py-libp2p's Bitswap on a host, over ``store``, while :meth:`running`."""

    def __init__(self, host: IHost, store: BlockStore) -> None:
        self.host = host
        self.store = store
        self.client = _Client(host, store)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Bitswap]:
        async with trio.open_nursery() as nursery:
            self.client.set_nursery(nursery)
            await self.client.start()
            try:
                yield self
            finally:
                await self.client.stop()
                nursery.cancel_scope.cancel()

    async def fetch(self, addresses: list[bytes], peers: list[ID], timeout: float) -> dict[bytes, bytes]:
        """The blocks among ``addresses`` that ``peers`` send within ``timeout`` (each verified).

        Needs a :class:`WantedBlocks` store. Blocks not received are left out.
        """
        store = self.store
        assert isinstance(store, WantedBlocks), "fetching needs a WantedBlocks store"
        got: dict[bytes, bytes] = {}
        store.want(addresses)
        try:
            session = self.client.new_session()
            with trio.move_on_after(timeout):

                async def one(address: bytes, peer: ID | None) -> None:
                    try:
                        data = await session.get_block(address, peer, timeout=timeout)
                    except Exception as exc:  # BitswapTimeoutError and the odd stream error
                        log.debug("bitswap fetch failed: %s", exc)
                        return
                    if address_of(data) == address:
                        got[address] = data

                async with trio.open_nursery() as nursery:
                    for i, address in enumerate(addresses):
                        nursery.start_soon(one, address, peers[i % len(peers)] if peers else None)
        finally:
            store.forget(addresses)
        return got


def serves_bitswap(host: IHost, peer: ID) -> bool:
    """Whether identify said ``peer`` speaks a Bitswap version we speak."""
    from libp2p.bitswap.config import BITSWAP_PROTOCOLS

    from rlp2p.p2p.host import serves

    return any(serves(host, peer, str(p)) for p in BITSWAP_PROTOCOLS)




# --- a reader with IPFS as storage (Reader(ipfs=True)) --------------------------------------------

#: providers of a log's head page a reader asks over Bitswap at most
MAX_IPFS_PROVIDERS = 5


class _Counters:
    """The traffic figures a sync report reads from a CAS client's ``rpc`` (none for Bitswap)."""

    bytes_in = 0
    bytes_out = 0
    new_streams = 0


class BitswapCas:
    """Blocks over Bitswap from ``peers``, shaped as a CAS client for the reader's fetch loop."""

    def __init__(self, host: IHost, peers: list[ID], timeout: float) -> None:
        self.host = host
        self.peers = peers
        self.timeout = timeout
        self.rpc = _Counters()
        self._asked: list[bytes] = []  # sent by send_gets, not yet fetched

    # the reader's streaming calls (rlp2p.wire.cas.CasClient's): a Bitswap round is one fetch

    @property
    def in_flight(self) -> int:
        return len(self._asked)

    async def send_gets(self, addresses: Sequence[bytes]) -> None:
        self._asked.extend(addresses)

    def abandon(self) -> list[bytes]:
        asked, self._asked = self._asked, []
        return asked

    async def receive_gets(self, *, verify: bool = True) -> list[tuple[bytes, bytes | Rlp2pError]]:
        asked, self._asked = self._asked[:MAX_WANTED], self._asked[MAX_WANTED:]
        got = await self.get_many(asked, verify=verify)
        return [(a, got[a]) for a in asked]

    async def get_many(self, addresses: Sequence[bytes], *, verify: bool = True) -> dict[bytes, bytes | Rlp2pError]:
        """Per address: the block (checked against its address), or NotFound."""
        results: dict[bytes, bytes | Rlp2pError] = {}
        for start in range(0, len(addresses), MAX_WANTED):
            batch = list(addresses[start : start + MAX_WANTED])
            async with Bitswap(self.host, WantedBlocks()).running() as bitswap:
                got = await bitswap.fetch(batch, self.peers, self.timeout)
            for address in batch:
                data = got.get(address)
                results[address] = data if data is not None else NotFound("no Bitswap provider sent it")
                if data is not None:
                    self.rpc.bytes_in += len(data)
        return results


class IpfsSource:
    """What ``Reader(ipfs=True)`` falls back on when no rlp2p storage peer answers: the record
    from the DHT (under the standard IPNS key), and blocks over Bitswap from the peers that
    provide the log's head page in the DHT (storage peers and IPFS nodes that pinned the log).
    Every block is verified by the reader as any other."""

    def __init__(self, host: IHost, discovery: Any, timeout: float) -> None:
        self.host = host
        self.discovery = discovery  # rlp2p.p2p.dht.Discovery
        self.timeout = timeout

    async def record(self, name: str, *, allow_expired: bool) -> Any:
        """The best valid record of ``name`` in the DHT (a RecordInfo), or None."""
        return await self.discovery.get_record(name, allow_expired=allow_expired)

    async def cas(self, head: bytes) -> tuple[ID, BitswapCas] | None:
        """A Bitswap source over the head page's providers we could connect to, or None."""
        reached: list[ID] = []
        for info in (await self.discovery.find_block_providers(head))[:MAX_IPFS_PROVIDERS]:
            try:
                await self.discovery.connect(info)
            except Rlp2pError as exc:
                log.info("ipfs provider %s unreachable: %s", info.peer_id, exc)
                continue
            reached.append(info.peer_id)
        if not reached:
            return None
        return reached[0], BitswapCas(self.host, reached, self.timeout)


__all__ = ["MAX_WANTED", "Bitswap", "BitswapCas", "IpfsSource", "StoreBlocks", "WantedBlocks", "serves_bitswap"]
