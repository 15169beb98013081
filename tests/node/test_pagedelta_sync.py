"""A reader that holds the previous head page gets the new one as a page delta (real hosts)."""

from __future__ import annotations

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode, Page
from rlp2p.wire.cas import encode_delta
from rlp2p.wire.rpc import Reply

MODE = LogMode.paged(64, embed=None)


async def setup(swarm, n: int):
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=1)
    await publisher.append([f"message {i} ".encode() * 8 for i in range(n)])
    await publisher.publish()
    bob = await swarm.start_node("bob")
    reader = bob.reader(storage_peers=[storage[0].peer_id])
    first = await reader.sync(publisher.name)
    assert first.new_messages == n
    return storage[0], publisher, reader


async def test_one_new_message_of_a_40_message_log_costs_less_than_the_page(swarm):
    storage, publisher, reader = await setup(swarm, 40)
    await publisher.append([b"the new one"])
    await publisher.publish()
    got: list = []
    report = await reader.sync(publisher.name, on_message=got.append)
    assert [d.message.body for d in got] == [b"the new one"]
    head = await storage.astore.call(storage.store.get_block, report.head)
    assert report.bytes_in < len(head) / 3, (report.bytes_in, len(head))


async def test_a_wrong_delta_loses_nothing(swarm, monkeypatch):
    storage, publisher, reader = await setup(swarm, 40)
    await publisher.append([b"a", b"b"])
    await publisher.publish()

    async def lie(self, address, bases, peer):  # a hostile replica: a delta for another page
        from rlp2p.core.pagedelta import page_delta

        (base,) = bases
        data = await self._read(base)
        yield Reply(encode_delta(page_delta(data, data + b"\x20\x07")))  # base + a tail field

    monkeypatch.setattr(type(storage.cas_server), "_load_delta", lie)
    got: list = []
    await reader.sync(publisher.name, on_message=got.append)
    assert [d.message.body for d in got] == [b"a", b"b"]


async def test_the_page_the_old_head_became_comes_as_a_delta(swarm):
    storage, publisher, reader = await setup(swarm, 60)
    await publisher.append([f"later {i}".encode() for i in range(10)])  # the head fills at 64
    await publisher.publish()
    got: list = []
    report = await reader.sync(publisher.name, on_message=got.append)
    assert [d.seq for d in got] == list(range(61, 71))
    head = await storage.astore.call(storage.store.get_block, report.head)
    older = await storage.astore.call(storage.store.get_block, Page.decode(head).tail)
    # the new head (6 pairs) whole; the 64-pair page as 4 new pairs on the 60 he holds
    assert report.pages == 2
    assert report.bytes_in < len(head) + len(older) / 4, (report.bytes_in, len(head), len(older))
