"""Expiry means "maybe stale", not "unreadable": a log read long after its publisher's last publish.

Every node of a test reads one clock (``NodeConfig.clock``): the real clock plus an offset the test
moves, so nothing depends on the calendar, and records the publisher signs at the real clock are
the ones py-libp2p's DHT validators (which read the real clock) see.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import trio
from libp2p.records.pb.ipns_pb2 import IpnsEntry

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.record import DEFAULT_VALIDITY, create_record, verify_record
from rlp2p.errors import NoReplicas, RemoteError, StaleRecord

LATER = timedelta(days=60)


class MovedClock:
    """The real clock plus ``offset``: what every node of a test reads."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def bodies(start: int, count: int) -> list[bytes]:
    return [f"holiday {i}".encode() for i in range(start, start + count)]


@pytest.fixture
def clock(swarm):
    moved = MovedClock()
    swarm.config["clock"] = moved  # every node this swarm starts reads it
    return moved


async def test_a_log_is_read_60_days_after_its_last_publish_from_a_restarted_storage_peer(swarm, clock):
    storage = await swarm.start_node("storage", storage=True)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(5, embed=0), replicas=1)
    name = publisher.name
    await publisher.append(bodies(0, 12))
    published_at = clock()
    await publisher.publish()
    await swarm.stop(alice)  # Alice goes on holiday
    held = verify_record(name, storage.store.get_record(name).record, now=clock())
    assert published_at + DEFAULT_VALIDITY <= held.validity <= clock() + DEFAULT_VALIDITY

    # the storage peer is restarted, 60 days later: its record has long expired
    await swarm.stop(storage)
    clock.offset = LATER
    storage = await swarm.start_node("storage", storage=True, bootstrap=())
    assert held.is_expired(clock())

    # it announces the log again at start, expired record and all: Bob finds it through the DHT
    bob = await swarm.start_node("bob", bootstrap=(storage.addrs[0],))
    with trio.fail_after(5):
        while storage.peer_id not in [p.peer_id for p in await bob.discovery.find_log_peers(name)]:
            await trio.sleep(0.05)

    got: list[bytes] = []
    report = await bob.reader().sync(name, on_message=lambda d: got.append(d.message.body))
    assert got == bodies(0, 12)
    assert report.record_seq == 1 and report.head == held.head
    assert report.maybe_stale and report.expired_at == held.validity
    assert bob.store.get_reader_state(name).record_seq == 1

    # polling again: nothing new, still flagged
    again = await bob.reader().sync(name)
    assert again.up_to_date and again.maybe_stale and again.expired_at == held.validity

    # strict mode keeps IPNS's refusal: nothing is read, nothing recorded
    carol = await swarm.start_node("carol", bootstrap=(storage.addrs[0],))
    with pytest.raises(NoReplicas, match="ExpiredRecord"):
        await carol.reader(storage_peers=[storage.peer_id], require_fresh=True).sync(name)
    assert carol.store.get_reader_state(name).delivered_seq == 0
    with pytest.raises(NoReplicas, match="ExpiredRecord"):
        await bob.reader(storage_peers=[storage.peer_id], require_fresh=True).sync(name)


async def test_a_fresh_record_is_not_flagged_and_a_later_reader_prefers_a_renewed_replica(swarm, clock, fixed_record):
    storage = [await swarm.start_node(f"storage{i}", storage=True) for i in range(2)]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(5, embed=0), replicas=2)
    name = publisher.name
    await publisher.append(bodies(0, 3))
    await publisher.publish()
    bob = await swarm.start_node("bob")
    fresh = await bob.reader().sync(name)
    assert not fresh.maybe_stale and fresh.expired_at is None

    # 60 days later one replica holds a renewal of the same head (signed by Alice's key, as her
    # refresh-only publish does), the other the old record: the renewal wins, not flagged
    first = storage[0].store.get_record(name).record
    clock.offset = LATER
    renewed = create_record(publisher.key_pair, fresh.head, 2, now=clock())
    storage[1].ns_server.backend = fixed_record(storage[1].ns_server.backend, renewed)
    storage[0].ns_server.backend = fixed_record(storage[0].ns_server.backend, first)
    report = await bob.reader(storage_peers=[s.peer_id for s in storage], fanout=1).sync(name)
    assert report.record_seq == 2 and not report.maybe_stale and report.up_to_date
    # asked one at a time: the expired answer of storage0 made Bob ask storage1 too
    assert report.round_trips == 2


async def test_forged_wrong_name_and_older_records_are_refused_as_before_when_expired_ones_are_accepted(
    swarm, clock, fixed_record
):
    storage = [await swarm.start_node(f"storage{i}", storage=True) for i in range(4)]
    key = generate_log_key()
    alice = await swarm.start_node("alice")
    for node in storage[1:]:
        await alice.connect(node.addrs[0])
    peers = [s.peer_id for s in storage]
    publisher = alice.publisher(key, mode=LogMode.paged(5, embed=0), replicas=4, write_quorum=4, replica_peers=peers)
    name = publisher.name
    await publisher.append(bodies(0, 6))
    await publisher.publish()
    old = storage[0].store.get_record(name).record
    await publisher.append(bodies(6, 4))
    await publisher.publish()
    newest = storage[0].store.get_record(name).record
    clock.offset = LATER

    # Alice's record, signed by someone else
    entry = IpnsEntry.FromString(newest)
    entry.signatureV2 = generate_log_key().private_key.sign(b"ipns-signature:" + entry.data)
    forged = entry.SerializeToString()
    head = verify_record(name, newest, allow_expired=True, now=clock()).head
    other = create_record(generate_log_key(), head, 9, now=clock(), pub_key=True)  # its key: WrongName
    forger, impostor, laggard, honest = storage
    forger.ns_server.backend = fixed_record(forger.ns_server.backend, forged)
    impostor.ns_server.backend = fixed_record(impostor.ns_server.backend, other)  # fresh, but another key's
    laggard.ns_server.backend = fixed_record(laggard.ns_server.backend, old)

    bob = await swarm.start_node("bob")
    for node in storage[1:]:
        await bob.connect(node.addrs[0])
    reader = bob.reader(storage_peers=peers, fanout=4)
    got: list = []
    report = await reader.sync(name, on_message=got.append)
    assert [d.message.body for d in got] == bodies(0, 10)
    assert report.record_seq == 2 and report.maybe_stale
    bypassed = report.peers_bypassed
    assert "InvalidRecord" in bypassed[forger.peer_id.to_string()]
    assert "WrongName" in bypassed[impostor.peer_id.to_string()]
    assert "older" in bypassed[laggard.peer_id.to_string()]
    assert honest.peer_id.to_string() not in bypassed

    # having accepted seq 2, Bob refuses to go back to the laggard's expired seq 1
    with pytest.raises(StaleRecord):
        await bob.reader(storage_peers=[laggard.peer_id]).sync(name)
    # and the forger and impostor alone give him nothing
    with pytest.raises(NoReplicas):
        await bob.reader(storage_peers=[forger.peer_id, impostor.peer_id]).sync(name)
    assert bob.store.get_reader_state(name).record_seq == 2


async def test_a_storage_peer_refuses_an_update_with_an_expired_record_and_keeps_serving_its_own(swarm, clock):
    storage = await swarm.start_node("storage", storage=True)
    key = generate_log_key()
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(key, mode=LogMode.paged(5, embed=0), replicas=1)
    await publisher.append(bodies(0, 2))
    await publisher.publish()
    head = storage.store.get_record(publisher.name)
    clock.offset = LATER
    # a newer record, but born expired (a publisher whose clock is 60 days behind, or a replay)
    late = create_record(key, verify_record(publisher.name, head.record, now=clock(), allow_expired=True).head, 5)
    async with alice.ns(storage.peer_id) as ns:
        with pytest.raises(RemoteError) as refused:
            await ns.update(publisher.name, late)
        assert refused.value.code == "INVALID_RECORD" and "expired" in str(refused.value)
        # what it held is still served, expired as it is
        served = await ns.fetch(publisher.name, allow_expired=True)
    assert served.raw == head.record and served.is_expired(clock())
    assert storage.store.get_record(publisher.name).sequence == 1



async def test_the_dht_wrapper_judges_expiry_by_the_node_clock(swarm, clock):
    from rlp2p.core.address import address_of
    from rlp2p.core.keys import log_name
    from rlp2p.p2p.dht import binary_record_key

    node = await swarm.start_node("storage", storage=True)
    key = generate_log_key()
    name = log_name(key.public_key)
    raw = create_record(key, address_of(b"head"), 1, now=clock())  # at the real clock: py-libp2p keeps it
    node.discovery.dht.value_store.put(binary_record_key(name), raw)
    assert (await node.discovery.get_record(name)).raw == raw
    clock.offset = LATER
    assert await node.discovery.get_record(name) is None
    found = await node.discovery.get_record(name, allow_expired=True)
    assert found.raw == raw and found.is_expired(clock())


async def test_a_storage_peer_announces_an_expired_log_but_does_not_put_its_record_into_the_dht(swarm, clock):
    from rlp2p.core.address import address_of
    from rlp2p.core.keys import log_name
    from rlp2p.p2p.dht import binary_record_key

    holder = await swarm.start_node("holder", storage=True)
    bystander = await swarm.start_node("bystander", storage=True)
    key = generate_log_key()
    name = log_name(key.public_key)
    raw = create_record(key, address_of(b"head"), 1, now=clock())
    holder.store.put_record(name, raw, 1)  # held since before; no announcement queued
    dht_key = binary_record_key(name)

    clock.offset = LATER
    await holder._announce(name)  # what the republish loop does for each log held
    assert holder.peer_id in [p.peer_id for p in await bystander.discovery.find_log_peers(name)]
    assert bystander.discovery.dht.value_store.get(dht_key) is None

    clock.offset = timedelta(0)  # the same record, fresh: it goes into the DHT
    await holder._announce(name)
    assert bystander.discovery.dht.value_store.get(dht_key).value == raw
