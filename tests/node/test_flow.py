"""The whole flow over real hosts: Alice publishes, goes offline, Bob syncs from storage peers."""

from __future__ import annotations

import pytest

from rlp2p.core.keys import generate_log_key
from rlp2p.core.message import message_id
from rlp2p.core.page import LogMode

MODES = [
    LogMode.fully_replicated(embed=None),
    LogMode.fully_replicated(embed=0),
    LogMode.paged(7, embed=0),
    LogMode.paged(7, embed=None),
    LogMode.paged(7, embed=3),
    LogMode.linked_list(embed=0),
    LogMode.linked_list(embed=None),
    LogMode.linked_list(embed=2),
]


def bodies(start: int, count: int) -> list[bytes]:
    return [f"message {i}".encode() for i in range(start, start + count)]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.describe())
async def test_flow_in_every_mode_with_alice_offline(swarm, mode):
    await swarm.add_storage(3)
    key = generate_log_key()

    alice = await swarm.start_node("alice")
    publisher = alice.publisher(key, mode=mode)
    await publisher.append(bodies(0, 20))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    await swarm.stop(alice)  # Alice's host is down before Bob looks

    bob = await swarm.start_node("bob")
    first_got: list = []
    await bob.reader().sync(publisher.name, on_message=first_got.append)
    assert [d.message.body for d in first_got] == bodies(0, 20)
    assert [d.seq for d in first_got] == list(range(1, 21))
    for d in first_got:
        assert d.id == message_id(d.message.group_id, d.message.timestamp, d.message.body)
    await swarm.stop(bob)

    # Alice publishes more while Bob is offline
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(key, mode=mode)
    await publisher.append(bodies(20, 5))
    await publisher.publish()
    await swarm.stop(alice)

    bob = await swarm.start_node("bob")
    second_got: list = []
    await bob.reader().sync(publisher.name, on_message=second_got.append)
    assert [d.message.body for d in second_got] == bodies(20, 5)
    assert [d.seq for d in second_got] == list(range(21, 26))

    poll_got: list = []
    poll = await bob.reader().sync(publisher.name, on_message=poll_got.append)
    assert poll.up_to_date and poll_got == []
    assert poll.round_trips == 1
    # what Bob holds durably is the whole log, once, in order
    delivered = bob.store.delivered(publisher.name)
    assert [seq for seq, _, _ in delivered] == list(range(1, 26))


async def test_many_readers_at_once(swarm):
    import trio

    await swarm.add_storage(3)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(10, embed=0))
    await publisher.append(bodies(0, 60))
    await publisher.publish()
    await swarm.stop(alice)

    readers = [await swarm.start_node(f"bob{i}") for i in range(5)]
    results: dict[int, list[bytes]] = {}

    async def read(i: int) -> None:
        report_got: list = []
        await readers[i].reader().sync(publisher.name, on_message=report_got.append)
        results[i] = [d.message.body for d in report_got]

    async with trio.open_nursery() as nursery:
        for i in range(len(readers)):
            nursery.start_soon(read, i)
    assert results == {i: bodies(0, 60) for i in range(5)}
