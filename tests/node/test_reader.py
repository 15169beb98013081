"""Bob's sync: resuming after a cut, and what a caught-up poll costs."""

from __future__ import annotations

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.errors import StoreError, SyncError


class ServesOnly:
    """A CAS backend that stops serving after `budget` gets: a replica going away mid-sync."""

    def __init__(self, inner, budget: int):
        self.inner = inner
        self.budget = budget

    async def get_blocks(self, addresses):
        served = addresses[: max(0, self.budget)]
        self.budget -= len(addresses)
        return await self.inner.get_blocks(served)

    async def put_blocks(self, items):
        await self.inner.put_blocks(items)


async def test_a_sync_cut_off_halfway_resumes_where_it_stopped(swarm):
    (storage,) = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(10, embed=0), replicas=1)
    bodies = [f"m{i}".encode() for i in range(50)]
    await publisher.append(bodies)
    await publisher.publish()
    await swarm.stop(alice)

    honest = storage.cas_server.backend
    storage.cas_server.backend = ServesOnly(honest, budget=40)
    bob = await swarm.start_node("bob")
    seen: list[int] = []
    with pytest.raises(SyncError):
        await bob.reader(batch=8).sync(publisher.name, on_message=lambda d: seen.append(d.seq))
    cut_at = bob.store.get_reader_state(publisher.name).delivered_seq
    assert 0 < cut_at < 50 and seen == list(range(1, cut_at + 1))

    storage.cas_server.backend = honest
    rest_got: list = []
    rest = await bob.reader(batch=8).sync(publisher.name, on_message=rest_got.append)
    assert seen + [d.seq for d in rest_got] == list(range(1, 51))
    assert [d.message.body for d in rest_got] == bodies[cut_at:]
    assert rest.redelivered == 0 and (rest.first_seq, rest.last_seq) == (cut_at + 1, 50)
    # every page and every block fetched before the cut came from Bob's own store this time
    assert rest.requests <= 50 - cut_at


async def alice_and_bob(swarm, first_body: bytes, *, ns_idle_timeout: float | None = None):
    """Three storage peers, a log Alice published with one message, and Bob, synced."""
    storage = await swarm.add_storage(3)
    for node in storage:
        if ns_idle_timeout is not None:  # servers close idle streams; these do it soon
            node.ns_server.idle_timeout = ns_idle_timeout
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key())
    await publisher.append([first_body])
    await publisher.publish()
    bob = await swarm.start_node("bob")
    # Bob finds the replicas through provider records the storage peers announce in the
    # background; on a loaded machine a sync right away may find only the bootstrap peer
    await wait_until_found(bob, publisher.name, len(storage))
    first = await bob.reader().sync(publisher.name)
    return storage, publisher, bob, first


async def wait_until_found(node, name: str, count: int, timeout: float = 20.0) -> None:
    import trio

    with trio.fail_after(timeout):
        while len(await node.reader().find_peers(name)) < count:
            await trio.sleep(0.1)


async def test_a_caught_up_poll_is_one_round_trip_on_kept_streams(swarm):
    _, publisher, bob, first = await alice_and_bob(swarm, b"one")
    assert first.streams >= 3  # the record from each replica, then blocks: new streams
    poll = await bob.reader().sync(publisher.name)
    assert poll.up_to_date and poll.round_trips == 1 and poll.blocks == 0
    assert poll.requests == 3  # the record from each replica, in parallel
    assert poll.streams == 0  # all kept from before


async def test_a_kept_stream_the_server_closed_is_replaced(swarm):
    import trio

    storage, publisher, bob, _ = await alice_and_bob(swarm, b"one", ns_idle_timeout=0.2)
    await publisher.append([b"two"])
    await publisher.publish()
    await trio.sleep(1.0)  # well past the servers' idle timeout: Bob's kept NS streams are closed
    for node in storage:
        # the streams that replace them get the usual timeout: on a busy machine a new stream
        # can sit longer than 0.2 s between its negotiation and its first request
        node.ns_server.idle_timeout = 30.0
    again_got: list = []
    again = await bob.reader().sync(publisher.name, on_message=again_got.append)
    assert [d.message.body for d in again_got] == [b"two"]
    assert not again.peers_bypassed  # no replica was taken for dead
    assert again.streams >= 3  # each kept NS stream was replaced on its first call


# --- at-least-once delivery with the inbox ------------------------------------------------------


async def ten_messages(swarm):
    """One storage peer and a log of 10 messages (pages of 4, blocks by reference), Alice gone."""
    await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=0), replicas=1)
    await publisher.append([f"m{i}".encode() for i in range(1, 11)])
    await publisher.publish()
    await swarm.stop(alice)
    return publisher.name


class Boom(Exception):
    pass


async def test_on_message_raising_leaves_that_message_for_the_next_sync(swarm):
    name = await ten_messages(swarm)
    bob = await swarm.start_node("bob")
    seen: list[int] = []

    def fail_at_3(d):
        if d.seq == 3:
            raise Boom
        seen.append(d.seq)

    with pytest.raises(Boom):
        await bob.reader().sync(name, on_message=fail_at_3)
    state = bob.store.get_reader_state(name)
    assert seen == [1, 2] and state.acked_seq == 2 and state.delivered_seq >= 3

    again = await bob.reader().sync(name, on_message=lambda d: seen.append(d.seq))
    assert seen == [1, 2, *range(3, 11)]  # 3..10, none lost, none twice
    assert again.redelivered == state.delivered_seq - 2
    assert (again.acked_seq, again.delivered_seq) == (10, 10)
    assert again.new_messages == 10 - state.delivered_seq
    # a third sync hands over nothing
    third = await bob.reader().sync(name, on_message=lambda d: seen.append(d.seq))
    assert third.up_to_date and third.redelivered == 0 and len(seen) == 10


async def test_without_auto_ack_the_application_acks_and_gets_the_rest_again(swarm):
    name = await ten_messages(swarm)
    bob = await swarm.start_node("bob")
    reader = bob.reader()
    first: list[int] = []
    report = await reader.sync(name, on_message=lambda d: first.append(d.seq), auto_ack=False)
    assert first == list(range(1, 11)) and (report.first_seq, report.last_seq) == (1, 10)
    assert report.acked_seq == 0 and report.delivered_seq == 10
    assert await reader.ack(name, 5) == 5
    assert await reader.ack(name, 3) == 5  # never backwards
    with pytest.raises(StoreError, match="never delivered"):
        await reader.ack(name, 11)

    second: list[int] = []
    report = await reader.sync(name, on_message=lambda d: second.append(d.seq), auto_ack=False)
    assert second == list(range(6, 11)) and report.redelivered == 5 and report.up_to_date
    assert (await reader.state(name)).acked_seq == 5
    # with auto_ack they are confirmed once handed over
    await reader.sync(name, on_message=lambda d: None)
    assert (await reader.state(name)).acked_seq == 10


async def test_the_inbox_rereads_what_the_reader_holds(swarm):
    name = await ten_messages(swarm)
    bob = await swarm.start_node("bob")
    reader = bob.reader()
    report = await reader.sync(name)  # no on_message: the inbox is the delivery
    assert report.new_messages == 10 and report.acked_seq == 10
    held = await reader.inbox(name, after=7)
    assert [d.seq for d in held] == [8, 9, 10]
    assert [d.message.body for d in held] == [b"m8", b"m9", b"m10"]
    assert [d.seq for d in await reader.inbox(name, after=2, limit=2)] == [3, 4]
    assert str(held[0]) == f"#8 {held[0].id.hex()[:8]} m8"
    with pytest.raises(ValueError):
        await reader.inbox(name, limit=0)


# --- a long sync holds a window of messages, not the log ---------------------------------------


async def test_a_long_sync_takes_walked_pages_from_its_cache_not_the_network(swarm):
    (storage,) = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=0), replicas=1)
    bodies = [f"m{i}".encode() for i in range(1, 51)]
    await publisher.append(bodies)
    await publisher.publish()
    await swarm.stop(alice)

    bob = await swarm.start_node("bob")
    got: list = []
    report = await bob.reader(window=8, batch=8).sync(publisher.name, on_message=got.append)
    assert [d.message.body for d in got] == bodies
    assert report.pages == 13 and report.blocks == 50
    assert report.requests == 1 + 13 + 50  # the record, each page once, each block once
    # message blocks delivered in the round they came are not kept: the inbox has them
    held = bob.store.get_blocks([address_of(d.data) for d in got])
    assert len(held) < 8


async def test_a_long_sync_cut_off_resumes_without_fetching_again(swarm):
    (storage,) = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=0), replicas=1)
    bodies = [f"m{i}".encode() for i in range(1, 51)]
    await publisher.append(bodies)
    await publisher.publish()
    await swarm.stop(alice)

    honest = storage.cas_server.backend
    storage.cas_server.backend = ServesOnly(honest, budget=13 + 20)  # the walk and 20 blocks
    bob = await swarm.start_node("bob")
    seen: list[int] = []
    with pytest.raises(SyncError):
        await bob.reader(window=8, batch=8).sync(publisher.name, on_message=lambda d: seen.append(d.seq))
    cut_at = bob.store.get_reader_state(publisher.name).delivered_seq
    assert 0 < cut_at < 50 and seen == list(range(1, cut_at + 1))

    storage.cas_server.backend = honest
    rest = await bob.reader(window=8, batch=8).sync(publisher.name, on_message=lambda d: seen.append(d.seq))
    assert seen == list(range(1, 51))
    # no page again (they are in Bob's store), and only the blocks not delivered before the cut
    assert rest.requests <= 1 + 50 - cut_at


async def test_a_cancelled_sync_keeps_the_acknowledgements_it_made(swarm):
    import trio

    name = await ten_messages(swarm)
    bob = await swarm.start_node("bob")
    seen: list[int] = []

    with trio.CancelScope() as scope:

        def cancel_after_3(d):
            seen.append(d.seq)
            if d.seq == 3:
                scope.cancel()  # e.g. the application shutting down; on_message returned for 3

        await bob.reader().sync(name, on_message=cancel_after_3)
    assert scope.cancelled_caught and seen == [1, 2, 3]
    assert bob.store.get_reader_state(name).acked_seq == 3  # committed although cancelled

    await bob.reader().sync(name, on_message=lambda d: seen.append(d.seq))
    assert seen == list(range(1, 11))
