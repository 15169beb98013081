"""Pipelined CAS Gets at the transport's limit: many requests a write, answers streamed as read."""

from __future__ import annotations

import pytest

from rlp2p.errors import RemoteError
from rlp2p.core.address import address_of
from rlp2p.wire.rpc import WRITE_BATCH


@pytest.fixture
async def peers(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client", bootstrap=(storage.addrs[0],))
    return storage, client


def count_writes(framed) -> list[int]:
    """Record the frames of each write the client makes."""
    sizes: list[int] = []
    write_frames = framed.write_frames

    async def counting(payloads):
        sizes.append(len(payloads))
        await write_frames(payloads)

    framed.write_frames = counting
    return sizes


async def test_a_bulk_get_writes_many_requests_at_a_time(peers):
    storage, client = peers
    blocks = [f"block {i}".encode() * 40 for i in range(2000)]
    addresses = [address_of(b) for b in blocks]
    await storage.astore.call(storage.store.put_blocks, list(zip(addresses, blocks, strict=True)))
    async with client.cas(storage.peer_id, fresh=True) as cas:
        writes = count_writes(cas.rpc.framed)
        got = await cas.get_many(addresses)
        assert cas.rpc.round_trips == 1
    assert [got[a] for a in addresses] == blocks
    # a refill waits for a quarter of the window: never one request per answer
    assert sum(writes) == len(addresses)
    assert all(n >= cas.rpc.window // 4 for n in writes[:-1]) and max(writes) <= WRITE_BATCH
    assert len(writes) <= 2 * len(addresses) // (cas.rpc.window // 4)


async def test_streamed_gets_come_back_in_order_with_their_errors(peers):
    storage, client = peers
    blocks = [f"streamed {i}".encode() for i in range(700)]
    addresses = [address_of(b) for b in blocks]
    await storage.astore.call(storage.store.put_blocks, list(zip(addresses, blocks, strict=True)))
    absent = address_of(b"never stored")
    asked = addresses[:300] + [absent] + addresses[300:]
    got: list = []
    async with client.cas(storage.peer_id, fresh=True) as cas:
        writes = count_writes(cas.rpc.framed)
        await cas.send_gets(asked[:400])
        await cas.send_gets(asked[400:])
        assert cas.in_flight == len(asked)
        while cas.in_flight:
            got += await cas.receive_gets()
        assert cas.rpc.unanswered == 0 and not cas.rpc.broken
    assert writes == [400, len(asked) - 400]  # each send is one write
    assert [a for a, _ in got] == asked
    results = dict(got)
    assert isinstance(results.pop(absent), RemoteError)
    assert [results[a] for a in addresses] == blocks


async def test_abandoned_gets_are_handed_back_and_the_stream_not_reused(peers):
    storage, client = peers
    blocks = [f"abandoned {i}".encode() for i in range(50)]
    addresses = [address_of(b) for b in blocks]
    await storage.astore.call(storage.store.put_blocks, list(zip(addresses, blocks, strict=True)))
    async with client.cas(storage.peer_id) as cas:
        await cas.send_gets(addresses[:10])
        assert [a for a, _ in await cas.receive_gets()] == addresses[:10]
        assert cas.abandon() == [] and not cas.rpc.broken  # nothing unread: still usable
        await cas.send_gets(addresses)
        assert cas.abandon() == addresses
        assert cas.in_flight == 0 and cas.rpc.broken
        kept = cas.rpc
    async with client.cas(storage.peer_id) as cas:
        assert cas.rpc is not kept  # its unread answers would answer the next caller's requests
        assert await cas.get(addresses[0]) == blocks[0]


async def test_blocks_of_every_prefix_size_come_back_whole_and_checked(peers):
    # 0 B (protobuf's own shape), 1 to 3 byte lengths (the hand-read shape), and one over 2 MiB
    # (read by protobuf again), all in one pipelined batch between real hosts
    storage, client = peers
    blocks = [b"", b"x", bytes(range(256)) * 16, bytes(70_000), bytes(3 << 20)]
    addresses = [address_of(b) for b in blocks]
    await storage.astore.call(storage.store.put_blocks, list(zip(addresses, blocks, strict=True)))
    missing = address_of(b"not stored")
    async with client.cas(storage.peer_id, fresh=True) as cas:
        got = await cas.get_many([*addresses, missing])
    assert [got[a] for a in addresses] == blocks
    assert isinstance(got[missing], RemoteError) and got[missing].code == "NOT_FOUND"
