"""The live push's hot path does no store I/O it can avoid (issue 12, latency): the storage peer
pushes a record's head page from memory, the follower rebuilds the next page from the one it
rebuilt last, and hands it to its sync in memory."""

from __future__ import annotations

from rlp2p.testing import until
from tests.node import test_follow_phone as phone


async def publish(publisher, seen, *numbers):
    for n in numbers:
        await publisher.append([f"m{n}".encode()])
        await publisher.publish()
        await until(lambda n=n: len(seen) >= n)


async def test_the_storage_peer_pushes_the_new_message_without_reading_its_store(swarm, nursery):
    storage, publisher, bob, follower, scope, seen, watching = await phone.setup(swarm, nursery, mesh=False, bob_announce=False)
    await until(lambda: watching() == 1)
    reads = []
    for node in storage:
        push = node.announcements.push
        block = push.block

        async def counted(address, block=block):
            reads.append(address)
            return await block(address)

        push.block = counted
    await publish(publisher, seen, 2, 3)
    assert seen == [1, 2, 3]
    # the head pages came from the blocks just stored; one read at most: the page of the record
    # the stream opened with (push 1.2 compacts the next record against it)
    assert len(reads) <= 1
    assert follower.stats.rebuilt >= 1  # and the messages beside the records were there
    scope.cancel()


async def test_the_follower_rebuilds_from_the_page_it_rebuilt_last_without_a_store_read(swarm, nursery):
    storage, publisher, bob, follower, scope, seen, watching = await phone.setup(swarm, nursery, mesh=False, bob_announce=False)
    await until(lambda: watching() == 1)
    await publish(publisher, seen, 2, 3, 4)
    assert seen == [1, 2, 3, 4]
    # m2's page may not rebuild (its CAS hint can change with the first publish's confirmations)
    assert follower.stats.rebuilt >= 2
    # the page handed to the sync is in the store once delivered, and kept in memory
    state = await follower.reader.state(publisher.name)
    kept = follower._pages[publisher.name]
    assert bob.store.get_blocks([state.head]) == {state.head: kept[1]} and kept[0] == state.head

    async def no_store(*args, **kwargs):
        raise AssertionError("a store call on the push path")

    # the next compact record's previous page comes from memory
    follower.reader.astore.call = no_store
    assert await follower._previous_pages(publisher.name, state.head) == [kept[1]]
    scope.cancel()
