"""A follower syncs an announced record straight from one replica: no record fan-out."""

from __future__ import annotations

import pytest

from rlp2p.testing import follow_in, until
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.record import verify_record
from rlp2p.errors import Rlp2pError
from rlp2p.node.follow import Follower

NO_POLL = 3600.0
#: the newest message inside the head page: one new message is one CAS round trip
MODE = LogMode.paged(16, embed=1)


async def test_an_announced_record_is_synced_in_one_round_trip_from_one_replica(swarm, nursery):
    storage = await swarm.add_storage(3)
    peers = [node.peer_id for node in storage]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replica_peers=peers, mode=MODE)
    await publisher.append([b"m1"])
    await publisher.publish()

    bob = await swarm.start_node("bob")
    seen: list[int] = []
    reports = []
    follower = Follower(
        bob.reader(storage_peers=peers),
        [publisher.name],
        on_message=lambda d: seen.append(d.seq),
        on_report=reports.append,
        poll_interval=NO_POLL,
    )
    scope = await follow_in(nursery, follower)
    assert seen == [1]

    for n in (2, 3):
        await publisher.append([f"m{n}".encode()])
        await publisher.publish()
        await until(lambda n=n: len(seen) >= n)
    assert seen == [1, 2, 3]
    direct = [r for r in reports[1:] if r.new_messages]
    assert direct and follower.stats.direct >= 2 and follower.stats.direct_failures == 0
    for report in direct:
        # no NS request, one CAS request for the head page, from one replica
        assert report.round_trips == 1 and report.requests == 1 and len(report.peers_used) == 1
    scope.cancel()


async def test_an_announced_record_nobody_serves_raises_and_delivers_nothing(swarm):
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replicas=1, replica_peers=[storage[0].peer_id], mode=MODE)
    await publisher.append([b"m1"])
    await publisher.publish()
    stored = storage[0].store.get_record(publisher.name)
    assert stored is not None
    info = verify_record(publisher.name, stored.record)

    bob = await swarm.start_node("bob")
    reader = bob.reader(storage_peers=[storage[0].peer_id])
    seen: list[int] = []
    with pytest.raises(Rlp2pError):
        # Alice serves no CAS: the direct sync fails with a typed error, delivering nothing
        await reader.sync(publisher.name, on_message=lambda d: seen.append(d.seq), announced=info, via=[alice.peer_id])
    assert seen == [] and (await reader.state(publisher.name)).record_seq == 0
    report = await reader.sync(publisher.name, on_message=lambda d: seen.append(d.seq))
    assert seen == [1] and report.record_seq == info.sequence
