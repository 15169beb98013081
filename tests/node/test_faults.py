"""Replicas that are down, restarted, or lying: Bob still ends with the right log."""

from __future__ import annotations

import multiaddr
import pytest

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode, Page
from rlp2p.core.record import verify_record
from rlp2p.errors import NoReplicas, PublishError, StaleRecord, SyncError


def bodies(start: int, count: int) -> list[bytes]:
    return [f"message {i}".encode() for i in range(start, start + count)]


PAGED_8 = LogMode.paged(8, embed=0)


async def publish(swarm, key, messages, mode=PAGED_8, **kwargs):
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(key, mode=mode, **kwargs)
    await publisher.append(messages)
    report = await publisher.publish()
    await swarm.stop(alice)
    return publisher.name, report


async def test_bob_syncs_with_two_of_three_replicas_down(swarm):
    storage = await swarm.add_storage(3)
    name, report = await publish(swarm, generate_log_key(), bodies(0, 30))
    assert len(report.stored_on) == 3
    survivor = storage[1]
    await swarm.stop(storage[0])
    await swarm.stop(storage[2])

    bob = await swarm.start_node("bob", bootstrap=(survivor.addrs[0],))
    result_got: list = []
    result = await bob.reader().sync(name, on_message=result_got.append)
    assert [d.message.body for d in result_got] == bodies(0, 30)
    assert result.peers_used == [survivor.peer_id.to_string()]


async def test_restarted_storage_peer_serves_everything_it_acknowledged(swarm):
    storage = await swarm.add_storage(3)
    name, report = await publish(swarm, generate_log_key(), bodies(0, 25), mode=LogMode.linked_list(embed=0))
    peer_ids = {s.peer_id.to_string() for s in storage}
    assert set(report.stored_on) == peer_ids
    for node in list(storage):
        await swarm.stop(node)

    # one storage peer comes back from its data folder, alone: same identity, same data
    restarted = await swarm.start_node("storage1", storage=True, bootstrap=())
    assert restarted.peer_id.to_string() in peer_ids
    bob = await swarm.start_node("bob", bootstrap=(restarted.addrs[0],))
    result_got: list = []
    await bob.reader().sync(name, on_message=result_got.append)
    assert [d.message.body for d in result_got] == bodies(0, 25)


async def test_publish_fails_over_to_another_replica_and_needs_its_quorum(swarm):
    storage = await swarm.add_storage(4)
    key = generate_log_key()
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(key, replicas=3)
    candidates = await publisher.candidates()
    # the nearest candidate dies before the upload: the fourth peer takes its place
    await swarm.stop(next(s for s in storage if s.peer_id == candidates[0]))
    await publisher.append(bodies(0, 5))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    assert candidates[0].to_string() not in report.stored_on
    assert [r.ok for r in report.replicas].count(False) == 1

    # with too few storage peers left, nothing is acknowledged
    for node in list(swarm.storage)[:2]:
        await swarm.stop(node)
    await publisher.append(bodies(5, 1))
    with pytest.raises(PublishError):
        await publisher.publish()


async def test_publisher_restart_does_not_upload_again(swarm):
    await swarm.add_storage(3)
    key = generate_log_key()
    # counts what Alice sends each replica herself (upload once is tests/node/test_upload_once.py)
    _, first = await publish(swarm, key, bodies(0, 40), mode=LogMode.paged(10, embed=0), upload="each")
    assert sum(r.blocks_sent for r in first.replicas) == 3 * (40 + 4)

    alice = await swarm.start_node("alice")  # same data folder: a restart
    publisher = alice.publisher(key, mode=LogMode.paged(10, embed=0), upload="each")
    await publisher.append(bodies(40, 1))
    second = await publisher.publish()
    # on each replica: the new message block, the new head page, and the old head page, which
    # loses the CAS hint only heads carry; nothing else again
    assert [r.blocks_sent for r in second.replicas] == [3, 3, 3]
    assert second.sequence == first.sequence + 1


async def test_no_storage_peer_is_a_typed_error(swarm):
    lonely = await swarm.start_node("bob", bootstrap=())
    with pytest.raises(NoReplicas):
        await lonely.reader().sync(generate_log_key_name())


def generate_log_key_name() -> str:
    from rlp2p.core.keys import log_name

    return log_name(generate_log_key().public_key)


# --- lying storage peers ---------------------------------------------------------------------


class WrongBytes:
    """A CAS backend that serves other bytes than it stored (but for the `spare` addresses)."""

    def __init__(self, inner, spare=frozenset()):
        self.inner = inner
        self.spare = spare

    async def get_blocks(self, addresses):
        found = await self.inner.get_blocks(addresses)
        return {a: d if a in self.spare else d + b"!" for a, d in found.items()}

    async def put_blocks(self, items):
        await self.inner.put_blocks(items)


async def _published_twice(swarm):
    storage = await swarm.add_storage(3)
    key = generate_log_key()
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(key, mode=LogMode.paged(5, embed=0))
    await publisher.append(bodies(0, 12))
    await publisher.publish()
    old_record = storage[0].store.get_record(publisher.name).record
    await publisher.append(bodies(12, 3))
    await publisher.publish()
    await swarm.stop(alice)
    return storage, publisher.name, old_record


async def test_a_peer_serving_wrong_bytes_is_bypassed(swarm):
    storage, name, _ = await _published_twice(swarm)
    liar = storage[0]
    liar.cas_server.backend = WrongBytes(liar.cas_server.backend)
    bob = await swarm.start_node("bob", bootstrap=(liar.addrs[0],))
    result_got: list = []
    result = await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(name, on_message=result_got.append)
    assert [d.message.body for d in result_got] == bodies(0, 15)
    assert "HashMismatch" in result.peers_bypassed[liar.peer_id.to_string()]


async def test_a_peer_serving_a_forged_record_is_bypassed(swarm, fixed_record):
    storage, name, _ = await _published_twice(swarm)
    liar = storage[0]
    good = bytearray(liar.store.get_record(name).record)
    good[-5] ^= 0xFF  # inside signatureV2 or pubKey: the record no longer verifies
    liar.ns_server.backend = fixed_record(liar.ns_server.backend, bytes(good))
    bob = await swarm.start_node("bob", bootstrap=(liar.addrs[0],))
    result_got: list = []
    result = await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(name, on_message=result_got.append)
    assert [d.message.body for d in result_got] == bodies(0, 15)
    assert "InvalidRecord" in result.peers_bypassed[liar.peer_id.to_string()]


async def test_a_peer_serving_an_older_record_is_bypassed(swarm, fixed_record):
    storage, name, old_record = await _published_twice(swarm)
    liar = storage[0]
    liar.ns_server.backend = fixed_record(liar.ns_server.backend, old_record)
    # the liar is asked first, alone: Bob must not settle for its older head
    bob = await swarm.start_node("bob", bootstrap=(liar.addrs[0],))
    reader = bob.reader(storage_peers=[s.peer_id for s in storage])
    result_got: list = []
    result = await reader.sync(name, on_message=result_got.append)
    assert [d.message.body for d in result_got] == bodies(0, 15)
    assert result.record_seq == 2
    assert "older" in result.peers_bypassed[liar.peer_id.to_string()]

    # a reader that accepted seq 2 refuses to go back when only the liar answers
    for node in storage[1:]:
        await swarm.stop(node)
    with pytest.raises(StaleRecord):
        await bob.reader(storage_peers=[liar.peer_id]).sync(name)
    assert bob.store.get_reader_state(name).record_seq == 2


async def test_every_replica_lying_ends_in_a_typed_error_and_keeps_progress(swarm):
    storage, name, _ = await _published_twice(swarm)
    for node in storage:
        node.cas_server.backend = WrongBytes(node.cas_server.backend)
    bob = await swarm.start_node("bob", bootstrap=(storage[0].addrs[0],))
    with pytest.raises(SyncError):
        await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(name)
    assert bob.store.get_reader_state(name).delivered_seq == 0


async def test_the_head_pages_cas_hint_leads_bob_to_other_replicas(swarm):
    storage, name, _ = await _published_twice(swarm)
    only_known = storage[0]
    head = verify_record(name, only_known.store.get_record(name).record).head
    only_known.cas_server.backend = WrongBytes(only_known.cas_server.backend, spare={head})
    bob = await swarm.start_node("bob", bootstrap=(only_known.addrs[0],))
    # Bob knows one storage peer; it serves the head page right and every other block wrong, and
    # the head page names the other replicas
    result_got: list = []
    result = await bob.reader(storage_peers=[only_known.peer_id]).sync(name, on_message=result_got.append)
    assert [d.message.body for d in result_got] == bodies(0, 15)
    assert set(result.peers_used[1:]) <= {s.peer_id.to_string() for s in storage[1:]}
    assert len(result.peers_used) >= 2


async def test_the_cas_hint_names_each_peer_once(swarm):
    storage, name, _ = await _published_twice(swarm)
    head = verify_record(name, storage[0].store.get_record(name).record).head
    hints = Page.decode(storage[0].store.get_block(head)).cas
    assert hints
    peers = {s.peer_id.to_string() for s in storage}
    for raw in hints:
        text = str(multiaddr.Multiaddr(raw))
        assert text.count("/p2p/") == 1, text  # js-libp2p refuses an address naming its peer twice
        assert text.rsplit("/p2p/", 1)[1] in peers
