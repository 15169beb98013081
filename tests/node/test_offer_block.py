"""Reader.offer_block: a page handed to the next sync in memory (a follower's rebuilt head page)."""

from __future__ import annotations

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.node.reader import MAX_OFFERED
from rlp2p.node.storage import head_of


class CountingGets:
    """A CAS backend that notes every address asked of it."""

    def __init__(self, inner):
        self.inner = inner
        self.asked: list[bytes] = []

    async def get_blocks(self, addresses):
        self.asked += addresses
        return await self.inner.get_blocks(addresses)

    async def put_blocks(self, items):
        await self.inner.put_blocks(items)


async def one_new_message(swarm):
    """Bob synced m1; Alice published m2 since: (storage, publisher, bob, the new head, its page)."""
    (storage,) = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(16, embed=1), replicas=1)
    await publisher.append([b"m1"])
    await publisher.publish()
    bob = await swarm.start_node("bob")
    await bob.reader().sync(publisher.name)
    await publisher.append([b"m2"])
    await publisher.publish()
    head = head_of(storage.store.get_record(publisher.name).record)
    assert head is not None
    page = storage.store.get_blocks([head])[head]
    storage.cas_server.backend = CountingGets(storage.cas_server.backend)
    return storage, publisher, bob, head, page


async def test_an_offered_head_page_is_not_fetched_and_is_cached_with_the_delivery(swarm):
    storage, publisher, bob, head, page = await one_new_message(swarm)
    assert bob.store.get_blocks([head]) == {}
    reader = bob.reader()
    reader.offer_block(head, page)
    seen = []
    report = await reader.sync(publisher.name, on_message=lambda d: seen.append(d.message.body))
    assert seen == [b"m2"]
    # the record asked for (NS), no CAS stream opened
    assert storage.cas_server.backend.asked == [] and report.peers_used == []
    # cached as a fetched page would be: the next rebuild starts from it
    assert bob.store.get_blocks([head]) == {head: page}
    assert reader._offered == {}


async def test_a_wrong_offered_page_is_fetched_instead(swarm):
    storage, publisher, bob, head, page = await one_new_message(swarm)
    reader = bob.reader()
    reader.offer_block(head, page + b"\x00")
    seen = []
    await reader.sync(publisher.name, on_message=lambda d: seen.append(d.message.body))
    assert seen == [b"m2"]
    assert storage.cas_server.backend.asked.count(head) == 1  # (a DeltaGet reads the base named too)
    assert bob.store.get_blocks([head]) == {head: page}


def test_offered_blocks_are_bounded():
    from rlp2p.node.reader import Reader

    reader = Reader.__new__(Reader)
    reader._offered = {}
    for i in range(3 * MAX_OFFERED):
        reader.offer_block(i.to_bytes(4, "big"), b"x")
        assert len(reader._offered) <= MAX_OFFERED
