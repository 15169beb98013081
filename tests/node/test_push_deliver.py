"""A pushed record whose rebuilt head page is the whole next state is delivered without a sync
(``Reader.deliver_pushed``, one store transaction); anything else falls back to the sync."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import trio

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.record import verify_record
from rlp2p.pb.vac.compact_pb2 import CompactPush
from rlp2p.testing import until
from rlp2p.wire.framing import FrameDecoder, encode_frame
from tests.node import test_follow_phone as phone
from tests.node.test_push_path import publish

MODE = LogMode.paged(4, embed=1)  # small pages: a new head page every 4 messages
NUMBERS = itertools.count(100)


async def test_pushed_messages_are_delivered_once_in_order_without_a_sync_and_after_a_restart(swarm, nursery):
    storage, publisher, bob, follower, scope, seen, watching = await phone.setup(swarm, nursery, mesh=False, bob_announce=False)
    await until(lambda: watching() == 1)
    await publish(publisher, seen, *range(2, 12))  # pages fill and a new head page starts (16 pairs)
    assert seen == list(range(1, 12))
    # m2's page may not rebuild (the first publish's CAS hint); the others are their own next state
    # on_message runs before a delivery's acknowledgement and its count: wait for the last one's
    await until(lambda: bob.store.get_reader_state(publisher.name).acked_seq == 11)
    await until(lambda: follower.stats.pushed_delivered >= 9)
    state = bob.store.get_reader_state(publisher.name)
    assert state.delivered_seq == state.acked_seq == 11
    assert [seq for seq, _, _ in bob.store.delivered(publisher.name)] == seen
    # the record and its head page are the reader's, as a sync leaves them
    held = verify_record(publisher.name, storage[0].store.get_record(publisher.name).record)
    assert (state.record, state.head) == (held.raw, held.head)
    assert bob.store.get_blocks([held.head]) == storage[0].store.get_blocks([held.head])

    # a missed push (m12's record reaches no stream): m13's page lacks m12, so a sync delivers
    # both, and from m14 on pushes are delivered again
    missed = state.record_seq + 1  # m12's record
    for node in storage:
        push = node.announcements.push

        def dropping(info, original=push.push):
            if info.sequence != missed:
                original(info)

        push.push = dropping
    synced, direct = follower.stats.syncs - follower.stats.pushed_delivered, follower.stats.pushed_delivered
    await publisher.append([b"m12"])
    await publisher.publish()
    await trio.sleep(0.3)  # it would have been delivered by now
    assert seen == list(range(1, 12))
    await publish(publisher, seen, 13, 14, 15)
    assert seen == list(range(1, 16))
    await until(lambda: bob.store.get_reader_state(publisher.name).acked_seq == 15)  # m15's counted
    await until(lambda: follower.stats.pushed_delivered >= direct + 2)  # m14, m15
    assert follower.stats.syncs - follower.stats.pushed_delivered > synced  # m12 and m13 by a sync
    assert [seq for seq, _, _ in bob.store.delivered(publisher.name)] == seen
    scope.cancel()


async def reader_at(swarm, count: int):
    """Bob's reader synced to a log of ``count`` messages; the publisher, and the storage peer."""
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replicas=1, replica_peers=[storage[0].peer_id], mode=MODE)
    for n in range(1, count + 1):
        await publisher.append([f"m{n}".encode()])
        await publisher.publish()
    bob = await swarm.start_node("bob", announce=False)
    reader = bob.reader(storage_peers=[storage[0].peer_id])
    await reader.sync(publisher.name)
    return storage[0], publisher, bob, reader


async def publish_and_take(storage, publisher):
    """One more message; the storage peer's record and head page of it (as a push rebuilds it)."""
    await publisher.append([f"m{next(NUMBERS)}".encode()])  # distinct: no message shared by seqs
    await publisher.publish()
    info = verify_record(publisher.name, storage.store.get_record(publisher.name).record)
    return info, storage.store.get_blocks([info.head])[info.head]


async def test_what_is_not_the_whole_next_state_changes_nothing_and_the_sync_delivers_it(swarm, nursery):
    storage, publisher, bob, reader = await reader_at(swarm, 2)
    name = publisher.name
    before = bob.store.get_reader_state(name)
    info3, page3 = await publish_and_take(storage, publisher)
    info4, page4 = await publish_and_take(storage, publisher)
    seen: list[int] = []

    async def refused(info, page, after):
        reader.offer_block(info.head, page)
        assert await reader.deliver_pushed(info, after, on_message=lambda d: seen.append(d.seq)) is None
        assert bob.store.get_reader_state(name) == before and seen == []
        assert [seq for seq, _, _ in bob.store.delivered(name)] == [1, 2]

    # a gap: m3 was never pushed, and m4's page embeds only m4
    await refused(info4, page4, before)
    # a forged page: its bytes are not the record's head
    await refused(info3, page3[:-1] + bytes([page3[-1] ^ 1]), before)
    # a state the store no longer holds (another head, or messages not acknowledged yet)
    await refused(info3, page3, replace(before, head=info4.head))
    await refused(info3, page3, replace(before, acked_seq=1))
    # a record no newer than the one held
    await refused(replace(info3, sequence=before.record_seq), page3, before)

    # the sync delivers what was refused, each once
    report = await reader.sync(name, on_message=lambda d: seen.append(d.seq))
    assert seen == [3, 4] and report.new_messages == 2


@pytest.mark.parametrize("inline", [True, False], ids=["on-the-loop", "in-a-thread"])
async def test_a_cancel_between_the_commit_and_on_message_loses_nothing(swarm, nursery, inline):
    storage, publisher, bob, reader = await reader_at(swarm, 2)
    if not inline:  # the store busy: the delivery takes a worker thread
        bob.store.run_inline = lambda *args, **kwargs: (False, None)
    name = publisher.name
    info, page = await publish_and_take(storage, publisher)
    reader.offer_block(info.head, page)
    seen: list[int] = []

    def on_message(delivery):
        seen.append(delivery.seq)

    with trio.CancelScope() as cancelled:
        committed = bob.store.deliver_head

        def then_cancel(*args, **kwargs):  # the transaction commits, then the follower is cancelled
            out = committed(*args, **kwargs)
            if inline:
                assert trio.lowlevel.current_task()  # (on the event loop)
                cancelled.cancel()
            else:
                trio.from_thread.run_sync(cancelled.cancel)
            return out

        bob.store.deliver_head = then_cancel
        await reader.deliver_pushed(info, bob.store.get_reader_state(name), on_message=on_message)
    assert cancelled.cancelled_caught and seen == []
    state = bob.store.get_reader_state(name)
    assert (state.delivered_seq, state.acked_seq, state.head) == (3, 2, info.head)
    # the next sync hands it over, once
    report = await reader.sync(name, on_message=on_message)
    assert seen == [3] and report.redelivered == 1 and report.new_messages == 0
    assert bob.store.get_reader_state(name).acked_seq == 3

    # and a delivered one is acknowledged: the next sync hands over nothing again
    info, page = await publish_and_take(storage, publisher)
    reader.offer_block(info.head, page)
    report = await reader.deliver_pushed(info, bob.store.get_reader_state(name), on_message=on_message)
    assert report is not None and report.new_messages == 1 and seen == [3, 4]
    assert (await reader.sync(name, on_message=on_message)).redelivered == 0 and seen == [3, 4]


async def test_a_forged_push_delivers_nothing_and_the_next_stream_brings_the_record(swarm, nursery):
    storage, publisher, bob, follower, scope, seen, watching = await phone.setup(swarm, nursery, mesh=False, bob_announce=False)
    await until(lambda: watching() == 1)
    await publish(publisher, seen, 2)  # a page rebuilt and kept: the next record comes without Value
    pusher = next(node for node in storage if node.announcements.push.watching(publisher.name)).announcements.push
    honest = pusher._record_frame
    forged: list[int] = []

    async def forging(index, info, previous, picked):
        frame = await honest(index, info, previous, picked)
        decoder = FrameDecoder(1 << 16)
        decoder.feed(frame)
        push = CompactPush.FromString(decoder.next_frame() or b"")
        if not forged and push.WhichOneof("record") == "compact":
            forged.append(info.sequence)
            push.compact.signature = bytes([push.compact.signature[0] ^ 1]) + push.compact.signature[1:]
            frame = encode_frame(push.SerializeToString())
        return frame

    pusher._record_frame = forging
    delivered = follower.stats.pushed_delivered
    await publisher.append([b"m3"])
    await publisher.publish()
    # the forged frame ends the stream and delivers nothing; the next stream (the other storage
    # peer) opens with the record it holds, whole, and m3 comes by a sync
    await until(lambda: len(seen) >= 3)
    assert forged and seen == [1, 2, 3] and follower.stats.pushed_delivered == delivered
    assert [seq for seq, _, _ in bob.store.delivered(publisher.name)] == [1, 2, 3]

    def held() -> int:
        record = bob.store.get_reader_state(publisher.name).record
        return 0 if record is None else verify_record(publisher.name, record).sequence

    # the sync that handed m3 over stores m3's record when it ends, after on_message
    await until(lambda: held() == forged[0])
    # the genuine record of m3, as its storage peers hold it
    state = bob.store.get_reader_state(publisher.name)
    assert state.record in {node.store.get_record(publisher.name).record for node in storage}
    scope.cancel()
