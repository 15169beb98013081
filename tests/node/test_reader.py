"""Bob's sync: resuming after a cut, and what a caught-up poll costs."""

from __future__ import annotations

import pytest

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.errors import SyncError


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
    rest = await bob.reader(batch=8).sync(publisher.name, on_message=lambda d: seen.append(d.seq))
    assert seen == list(range(1, 51))
    assert [d.message.body for d in rest.delivered] == bodies[cut_at:]
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
        # the replacement streams must outlive a loaded machine's scheduling delays (a server
        # reads the timeout when a stream opens; 0.2 s once closed even the new stream unanswered)
        node.ns_server.idle_timeout = 30.0
    again = await bob.reader().sync(publisher.name)
    assert [d.message.body for d in again.delivered] == [b"two"]
    assert not again.peers_bypassed  # no replica was taken for dead
    assert again.streams >= 3  # each kept NS stream was replaced on its first call
