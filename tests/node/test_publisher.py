"""Publishing costs what changed, refreshes a record alone, and recovers from replicas that crash."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.record import verify_record
from rlp2p.errors import LimitExceeded, PublishError, StoreError
from rlp2p.limits import Limits
from rlp2p.p2p.host import parse_peer_addr
from rlp2p.node.publisher import UPLOAD_BATCH


def bodies(start: int, count: int) -> list[bytes]:
    return [f"message {i}".encode() for i in range(start, start + count)]


def listen_addr(node) -> str:
    return node.addrs[0].split("/p2p/")[0]


async def restart(swarm, alice, name: str, addr: str):
    """Start storage peer ``name`` again from its data folder, on the same address Alice knows."""
    node = await swarm.start_node(name, storage=True, listen=(addr,))
    info = parse_peer_addr(node.addrs[0])
    alice.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
    # py-libp2p refuses to dial a peer whose addresses all failed for 60 s: let that time pass
    alice.host.get_network().unblock_peer(info.peer_id)
    return node


async def read_all(swarm, name: str, peers) -> list[bytes]:
    """What a fresh reader gets from ``peers`` alone."""
    readers = sum(1 for p in swarm.root.iterdir() if p.name.startswith("bob"))
    bob = await swarm.start_node(f"bob{readers}", bootstrap=(peers[0].addrs[0],))
    got: list = []
    await bob.reader(storage_peers=[p.peer_id for p in peers]).sync(name, on_message=got.append)
    await swarm.stop(bob)
    return [d.message.body for d in got]


async def test_a_publisher_recovers_from_replicas_that_crashed_around_its_publishes(swarm):
    # issue 10's stuck case: two failed attempts leave two replicas holding records of ours
    storage = await swarm.add_storage(3)
    a, b, c = storage
    addrs = {n: listen_addr(n) for n in storage}
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(
        generate_log_key(), mode=LogMode.paged(4, embed=0), replica_peers=[n.peer_id for n in storage]
    )

    await swarm.stop(b)
    await swarm.stop(c)
    await publisher.append(bodies(0, 5))
    with pytest.raises(PublishError):
        await publisher.publish()  # A took the record, B and C were down
    assert a.store.get_record(publisher.name).sequence == 1

    b = await restart(swarm, alice, "storage1", addrs[b])
    await swarm.stop(a)
    await publisher.append(bodies(5, 3))
    with pytest.raises(PublishError):
        await publisher.publish()  # B took another record, A and C were down
    assert b.store.get_record(publisher.name).sequence == 2

    a = await restart(swarm, alice, "storage0", addrs[a])
    c = await restart(swarm, alice, "storage2", addrs[c])
    await publisher.append(bodies(8, 1))
    report = await publisher.publish()  # before the fix: STALE from A and B, forever
    assert len(report.stored_on) == 3 and report.sequence == 3
    for node in (a, b, c):
        assert node.store.get_record(publisher.name).sequence == 3
    # and every replica serves everything that record names, alone
    for node in (a, b, c):
        assert await read_all(swarm, publisher.name, [node]) == bodies(0, 9)


async def test_a_replica_left_behind_catches_up_on_the_next_publish(swarm):
    storage = await swarm.add_storage(3)
    a, b, c = storage
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(
        generate_log_key(), mode=LogMode.paged(4, embed=2), replica_peers=[n.peer_id for n in storage]
    )
    await publisher.append(bodies(0, 10))
    await publisher.publish()
    addr_c = listen_addr(c)
    await swarm.stop(c)
    await publisher.append(bodies(10, 9))
    missed = await publisher.publish()  # a quorum without C
    assert len(missed.stored_on) == 2
    c = await restart(swarm, alice, "storage2", addr_c)
    await publisher.append(bodies(19, 1))
    caught_up = await publisher.publish()
    sent = {r.peer: r.blocks_sent for r in caught_up.replicas}
    assert sent[c.peer_id.to_string()] > sent[a.peer_id.to_string()]
    await swarm.stop(a)
    await swarm.stop(b)
    assert await read_all(swarm, publisher.name, [c]) == bodies(0, 20)


async def test_publishing_one_more_message_reads_and_sends_only_what_changed(swarm):
    await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(8, embed=0), replicas=2)
    await publisher.append(bodies(0, 200))
    first = await publisher.publish()
    assert all(r.blocks_sent == 200 + 25 for r in first.replicas)

    read: list[int] = []
    log_entries = alice.store.log_entries

    def counting(*args, **kwargs):
        rows = log_entries(*args, **kwargs)
        read.append(len(rows))
        return rows

    alice.store.log_entries = counting  # type: ignore[method-assign]
    await publisher.append(bodies(200, 1))
    second = await publisher.publish()
    # the new message and the pages it changes: its own new page and the old head page (hint)
    assert [r.blocks_sent for r in second.replicas] == [3, 3]
    assert sum(read) <= 8 + 1  # the old head page's messages and the new one, not 201
    assert second.sequence == first.sequence + 1


async def test_a_publish_with_nothing_new_refreshes_the_record_alone(swarm):
    storage = await swarm.add_storage(3)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=0), validity=timedelta(hours=1))
    with pytest.raises(PublishError, match="empty"):
        await publisher.publish()  # never appended to: nothing to refresh
    await publisher.append(bodies(0, 6))
    first = await publisher.publish()
    before = verify_record(publisher.name, storage[0].store.get_record(publisher.name).record)

    publisher.validity = timedelta(days=30)
    refresh = await publisher.publish()
    assert refresh.sequence == first.sequence + 1 and refresh.head == first.head
    assert all(r.blocks_sent == 0 for r in refresh.replicas)
    record = storage[0].store.get_record(publisher.name).record
    # bytes sent: the record (in its request frame) to each replica, nothing else
    assert all(len(record) < r.bytes_sent < len(record) + 200 for r in refresh.replicas)
    after = verify_record(publisher.name, record)
    assert after.sequence == refresh.sequence and after.head == before.head
    assert after.validity - before.validity > timedelta(days=29)


async def test_a_fully_replicated_log_over_the_block_limit_is_refused_before_sending(swarm):
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice", limits=Limits(max_block=4096))
    publisher = alice.publisher(generate_log_key(), mode=LogMode.fully_replicated(), replicas=1)
    await publisher.append([b"x" * 1000] * 5)
    with pytest.raises(LimitExceeded, match="max_block.*paged"):
        await publisher.publish()
    assert storage[0].store.get_record(publisher.name) is None
    assert storage[0].store.block_stats() == (0, 0)


async def test_a_publisher_restored_from_an_old_backup_publishes_above_what_replicas_hold(swarm):
    import shutil

    await swarm.add_storage(2)
    key = generate_log_key()
    mode = LogMode.paged(4, embed=0)
    alice = await swarm.start_node("alice")
    await alice.publisher(key, mode=mode, replicas=2).append(bodies(0, 5))
    await alice.publisher(key, mode=mode, replicas=2).publish()
    await swarm.stop(alice)
    shutil.copytree(swarm.root / "alice", swarm.root / "backup")

    alice = await swarm.start_node("alice")
    assert (await alice.publisher(key, mode=mode, replicas=2).publish()).sequence == 2  # a refresh
    await swarm.stop(alice)
    shutil.rmtree(swarm.root / "alice")
    shutil.copytree(swarm.root / "backup", swarm.root / "alice")  # the data folder of before it

    alice = await swarm.start_node("alice")
    publisher = alice.publisher(key, mode=mode, replicas=2)
    await publisher.append(bodies(5, 2))
    report = await publisher.publish()  # sequence 2 is refused as STALE: it signs 3
    assert report.sequence == 3 and len(report.stored_on) == 2
    assert alice.store.get_publish_state(publisher.name).reserved_seq == 3
    assert await read_all(swarm, publisher.name, swarm.storage) == bodies(0, 7)


class RefuseWritesAfter:
    """A storage peer's write gate that stores ``allowed`` blocks, then fails every write (a disk
    that filled up: the upload stops half-way). Counted in blocks, whatever batches the server
    writes in."""

    def __init__(self, inner, allowed: int):
        self.inner = inner
        self.allowed = allowed

    async def put_blocks(self, writer, items):
        room, self.allowed = self.allowed, max(self.allowed - len(items), 0)
        await self.inner.put_blocks(writer, items[:room])
        if room < len(items):
            raise StoreError("disk full")

    async def put_record(self, writer, info):
        await self.inner.put_record(writer, info)


async def test_an_upload_cut_short_resumes_after_the_whole_pages_it_sent(swarm):
    [storage] = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(10, embed=0), replicas=1)
    await publisher.append(bodies(0, 1000))  # 1,000 message blocks and 100 pages
    gate = storage.cas_server.gate  # storage peers store Adds through their admission gate
    storage.cas_server.gate = RefuseWritesAfter(gate, allowed=600)
    with pytest.raises(PublishError):
        await publisher.publish()
    stored, _ = storage.store.block_stats()
    assert stored == 600
    storage.cas_server.gate = gate
    report = await publisher.publish()
    # what went through before the failure, up to its last whole page in an acknowledged upload
    # batch, is not sent again: 2 batches of 256 blocks are 46 whole pages of 11 blocks; the last
    # of them goes once more (the mark's head is no real head)
    assert report.replicas[0].blocks_sent == 1100 - (2 * UPLOAD_BATCH // 11) * 11 + 1
    assert await read_all(swarm, publisher.name, [storage]) == bodies(0, 1000)
