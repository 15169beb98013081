"""Bitswap on storage peers (rlp2p/p2p/bitswap.py): IPFS nodes fetch every block of a log from
rlp2p's store, and find a log's head page by its CID in the DHT."""

from __future__ import annotations

import pytest
import trio

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode, Page
from rlp2p.core.record import verify_record
from rlp2p.errors import NoReplicas
from rlp2p.p2p.bitswap import Bitswap, StoreBlocks, WantedBlocks, serves_bitswap


async def published(swarm, count: int, size: int):
    storage = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    # pages of 8 pairs, no payload embedded: the walk needs pages and message blocks
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(8, embed=0))
    bodies = [b"%05d" % i + b"x" * size for i in range(count)]
    await publisher.append(bodies)
    report = await publisher.publish()
    return storage, publisher.name, report.head, bodies


async def walk(bitswap: Bitswap, head: bytes, peers, timeout: float = 10.0):
    """Every page and message block of the log from ``head``, over Bitswap only."""
    blocks: dict[bytes, bytes] = {}
    messages = 0
    address: bytes | None = head
    while address is not None:
        got = await bitswap.fetch([address], peers, timeout)
        page = Page.decode(got[address])
        blocks[address] = got[address]
        wanted = [p.remote_hash for p in page.pairs if not p.embedded]
        if wanted:
            got = await bitswap.fetch(wanted, peers, timeout)
            assert set(got) == set(wanted)
            blocks.update(got)
        messages += len(page.pairs)
        address = page.tail
    return blocks, messages


async def test_an_ipfs_node_fetches_every_block_of_a_log_from_a_storage_peer(swarm):
    storage, name, head, bodies = await published(swarm, 40, 100)
    ipfs = await swarm.start_node("ipfs", bootstrap=(storage[0].addrs[0],))
    with trio.fail_after(5):  # identify tells the other side the storage peer speaks bitswap
        while not serves_bitswap(ipfs.host, storage[0].peer_id):
            await trio.sleep(0.02)
    async with Bitswap(ipfs.host, WantedBlocks()).running() as bitswap:
        blocks, messages = await walk(bitswap, head, [storage[0].peer_id])
    assert messages == len(bodies)
    # every block equals the storage peer's copy (no second copy: read from its store)
    held = storage[0].store.get_blocks(list(blocks))
    assert held == blocks and len(blocks) > len(bodies)  # pages and messages
    assert all(address_of(data) == address for address, data in blocks.items())


async def test_storage_peers_provide_each_logs_head_page(swarm):
    storage, name, head, _ = await published(swarm, 3, 10)
    reader = await swarm.start_node("reader")
    with trio.fail_after(10):  # announcements run in the background
        while True:
            found = {p.peer_id for p in await reader.discovery.find_block_providers(head)}
            if found >= {s.peer_id for s in storage}:
                break
            await trio.sleep(0.1)
    stored = storage[0].store.get_record(name)
    assert verify_record(name, stored.record).head == head


async def test_storage_peers_never_store_blocks_pushed_over_bitswap(swarm):
    (storage,) = await swarm.add_storage(1)
    blocks = StoreBlocks(storage.astore.get_blocks)
    data = b"pushed"
    await blocks.put_block(address_of(data), data)
    assert not storage.store.has_blocks([address_of(data)])
    assert await blocks.get_block(address_of(data)) is None
    # a CID that is not a CAS address is never held
    assert await blocks.get_block(b"\x01\x70\x12\x20" + bytes(32)) is None


async def test_a_reader_keeps_only_wanted_verified_blocks():
    store = WantedBlocks(limit=2)
    good, other = b"good", b"other"
    await store.put_block(address_of(good), good)  # unasked
    assert await store.get_block(address_of(good)) is None
    store.want([address_of(good), address_of(other)])
    await store.put_block(address_of(other), good)  # wrong data for the address
    await store.put_block(address_of(good), good)
    assert await store.get_block(address_of(good)) == good
    assert await store.get_block(address_of(other)) is None
    try:
        store.want([address_of(b"third")])
    except ValueError:
        pass
    else:
        raise AssertionError("a third want went past the limit")
    store.forget([address_of(good), address_of(other)])
    assert store.get_all_cids() == []


async def test_a_storage_peer_with_bitswap_off_does_not_speak_it(swarm):
    (storage,) = await swarm.add_storage(1)
    quiet = await swarm.start_node("quiet", storage=True, bitswap=False)

    def speaks(node):
        return any("bitswap" in str(p) for p in node.host.get_mux().handlers)

    assert speaks(storage) and not speaks(quiet)


async def test_a_reader_with_ipfs_syncs_from_a_bitswap_provider_when_every_storage_peer_is_gone(swarm):
    storage, name, head, bodies = await published(swarm, 20, 50)
    # an IPFS node: a DHT server that holds copies of the log's blocks and serves them over
    # Bitswap, provides the head page, and holds the record (as a pinning Helia node does)
    ipfs = await swarm.start_node("ipfs", dht_server=True)
    record = verify_record(name, storage[0].store.get_record(name).record)
    async with Bitswap(ipfs.host, WantedBlocks()).running() as fetcher:
        copies, _ = await walk(fetcher, head, [storage[0].peer_id])

    async def from_copies(addresses):
        return {a: copies[a] for a in addresses if a in copies}

    async with Bitswap(ipfs.host, StoreBlocks(from_copies)).running():
        assert await ipfs.discovery.provide_block(head)
        await ipfs.discovery.put_record(record)
        for node in storage:
            await swarm.stop(node)

        plain = await swarm.start_node("plain", bootstrap=(ipfs.addrs[0],))
        with trio.fail_after(20):
            with pytest.raises(NoReplicas):
                await plain.reader().sync(name)

        reader = await swarm.start_node("reader", bootstrap=(ipfs.addrs[0],))
        got: list[bytes] = []
        with trio.fail_after(30):
            report = await reader.reader(ipfs=True).sync(name, on_message=lambda d: got.append(d.message.body))
    assert got == bodies
    assert report.peers_used == [f"ipfs:{ipfs.peer_id.to_string()}"]


async def ask_wantlist(asker, peer, entries) -> tuple[object, bytes]:
    """Send a Bitswap 1.2.0 wantlist of ``entries`` from ``asker`` to ``peer``: the stream it went
    on, and the bytes of the first stream the peer opened back with its answer."""
    from libp2p.bitswap.config import BITSWAP_PROTOCOL_V120
    from libp2p.bitswap.messages import create_message
    from libp2p.utils.varint import encode_varint_prefixed

    answers: list[bytes] = []
    answered = trio.Event()

    async def inbound(stream):
        data = b""
        with trio.move_on_after(5):
            while True:
                try:
                    chunk = await stream.read(65536)
                except Exception:
                    break
                if not chunk:
                    break
                data += chunk
        answers.append(data)
        answered.set()

    asker.host.set_stream_handler(BITSWAP_PROTOCOL_V120, inbound)
    body = create_message(wantlist_entries=entries).SerializeToString()
    stream = await asker.host.new_stream(peer, [BITSWAP_PROTOCOL_V120])
    await stream.write(encode_varint_prefixed(body))
    with trio.fail_after(10):
        await answered.wait()
    return stream, answers[0]


async def test_a_storage_peer_answers_a_wantlist_on_a_stream_of_its_own(swarm):
    # the sharp edge _Client works around: js never reads the stream it sent its wantlist on
    from libp2p.bitswap.pb.bitswap_pb2 import Message

    storage, _, head, _ = await published(swarm, 3, 10)
    asker = await swarm.start_node("asker", bootstrap=(storage[0].addrs[0],))
    entry = Message.Wantlist.Entry(block=head, priority=1, wantType=0, sendDontHave=True)
    stream, answer = await ask_wantlist(asker, storage[0].peer_id, [entry])
    on_our_stream = b""
    with trio.move_on_after(0.3):
        try:
            on_our_stream = await stream.read(65536)
        except Exception:
            pass
    await stream.close()
    assert on_our_stream == b""
    assert storage[0].store.get_block(head) in answer  # the page, in the answer's blocks


async def test_a_storage_peer_answers_at_most_max_answer_blocks_entries_of_a_wantlist(swarm):
    from libp2p.bitswap.pb.bitswap_pb2 import Message
    from libp2p.utils.varint import decode_varint_with_size

    from rlp2p.p2p.bitswap import MAX_ANSWER_BLOCKS

    (storage,) = await swarm.add_storage(1)
    asker = await swarm.start_node("asker", bootstrap=(storage.addrs[0],))
    wanted = [address_of(b"absent %d" % i) for i in range(MAX_ANSWER_BLOCKS + 50)]
    entries = [Message.Wantlist.Entry(block=a, priority=1, wantType=1, sendDontHave=True) for a in wanted]
    stream, received = await ask_wantlist(asker, storage.peer_id, entries)
    await stream.close()
    length, size = decode_varint_with_size(received)
    answer = Message()
    answer.ParseFromString(received[size : size + length])
    assert len(answer.blockPresences) == MAX_ANSWER_BLOCKS  # DONT_HAVE for the first entries only
