"""History truncation over real hosts: Alice truncates, readers get what is left and a report of
what is gone, the storage peer's retention collects the dropped blocks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogEntry, LogMode, build_log
from rlp2p.core.retention import RetentionConfig


def bodies(start: int, count: int) -> list[bytes]:
    return [f"message {i}".encode() for i in range(start, start + count)]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def test_truncation_end_to_end(swarm):
    clock = Clock()
    retention = RetentionConfig(grace=60, interval=10**6)
    storage = await swarm.start_node("storage0", storage=True, bootstrap=(), clock=clock, retention=retention)
    boot = (storage.addrs[0],)
    alice = await swarm.start_node("alice", bootstrap=boot, clock=clock)
    mode = LogMode.paged(8, embed=0)
    publisher = alice.publisher(generate_log_key(), mode=mode, replicas=1, replica_peers=[storage.peer_id])
    name = publisher.name

    await publisher.append(bodies(1, 10))
    await publisher.publish()
    early = await swarm.start_node("early", bootstrap=boot, clock=clock)
    early_got: list = []
    await early.reader(storage_peers=[storage.peer_id]).sync(name, on_message=early_got.append, auto_ack=False)
    assert [d.seq for d in early_got] == list(range(1, 11))

    await publisher.append(bodies(11, 20))
    await publisher.publish()
    mid = await swarm.start_node("mid", bootstrap=boot, clock=clock)
    await mid.reader(storage_peers=[storage.peer_id]).sync(name)
    old_entries = [LogEntry(s, d) for s, d in alice.store.log_entries(name)]
    old = build_log(old_entries, mode, alice.peers.hints_for([storage.peer_id]))
    assert old.head == (await mid.reader().state(name)).head

    await publisher.append(bodies(31, 10))
    report = await publisher.truncate(before=25)
    assert report.stored_on == [storage.peer_id.to_string()]
    # the new messages 31..40 and the two rewritten pages (25..32, 33..40): the replica holds
    # the kept messages' blocks from before
    assert report.replicas[0].blocks_sent == 10 + 2
    assert await publisher.first_seq() == 25
    assert [s for s, _ in alice.store.log_entries(name)] == list(range(25, 41))  # Alice forgot 1..24

    # a reader at 10 (nothing acknowledged): its inbox again, then what is left, and a report
    again: list = []
    early_report = await early.reader(storage_peers=[storage.peer_id]).sync(name, on_message=again.append)
    assert [d.seq for d in again] == list(range(1, 11)) + list(range(25, 41))
    assert early_report.gone == (11, 24) and early_report.new_messages == 16
    assert (early_report.delivered_seq, early_report.acked_seq) == (40, 40)
    assert [s for s, _, _ in early.store.delivered(name)] == list(range(1, 11)) + list(range(25, 41))
    # a reader at 30: the new ones, nothing it lacked is gone
    mid_report = await mid.reader(storage_peers=[storage.peer_id]).sync(name)
    assert (mid_report.first_seq, mid_report.last_seq, mid_report.gone) == (31, 40, None)
    # a new reader
    fresh = await swarm.start_node("fresh", bootstrap=boot, clock=clock)
    got: list = []
    fresh_report = await fresh.reader(storage_peers=[storage.peer_id]).sync(name, on_message=got.append)
    assert [d.message.body for d in got] == bodies(25, 16) and fresh_report.gone == (1, 24)

    # past the grace period the storage peer collects the dropped messages and the old pages
    clock.now += timedelta(minutes=5)
    swept = await storage.retention.run_pass()
    dropped_messages = [e.remote_hash for e in old_entries if e.seq < 25]
    assert storage.store.has_blocks(dropped_messages) == set()
    assert storage.store.has_blocks([a for a, _ in old.pages]) == set()
    assert swept.swept_blocks == 24 + len(old.pages) + 1  # and the head page of seq 1..30 (before the truncation)
    kept = build_log([LogEntry(s, d) for s, d in alice.store.log_entries(name)], mode, (), first_seq=25)
    assert storage.store.has_blocks(list(kept.blocks)) >= set(kept.blocks) - {a for a, _ in kept.pages}

    # appending goes on from seq 41, sending only what changed
    await publisher.append(bodies(41, 2))
    more = await publisher.publish()
    assert more.replicas[0].blocks_sent <= 2 + 2  # two messages, the old head page and a new one
    late = await swarm.start_node("late", bootstrap=boot, clock=clock)
    got = []
    late_report = await late.reader(storage_peers=[storage.peer_id]).sync(name, on_message=got.append)
    assert [d.seq for d in got] == list(range(25, 43)) and late_report.gone == (1, 24)
    got = []
    await early.reader(storage_peers=[storage.peer_id]).sync(name, on_message=got.append)
    assert [d.seq for d in got] == [41, 42]


async def test_a_truncation_uploaded_once_sends_no_kept_message_again(swarm):
    storage = await swarm.add_storage(3)
    peers = [node.peer_id for node in storage]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(8, embed=0), replicas=3, replica_peers=peers)
    assert publisher.upload == "once"  # the default with more than one replica
    await publisher.append([body * 100 for body in bodies(1, 40)])  # about 1 KiB each
    await publisher.publish()
    report = await publisher.truncate(before=25)
    assert len(report.stored_on) == 3
    # to the forwarder: the two rewritten pages (25..32, 33..40), not the kept messages 25..40
    # again (they were all sent before the fix: 16 + 2 blocks)
    assert report.replicas[0].blocks_sent == 2
    assert report.bytes_sent < 16 * 1000  # less than the kept messages alone
    for i, peer in enumerate(peers):  # and every replica serves what is left
        reader = await swarm.start_node(f"reader{i}")
        got: list = []
        synced = await reader.reader(storage_peers=[peer], fanout=1).sync(publisher.name, on_message=got.append)
        assert [d.message.body for d in got] == [body * 100 for body in bodies(25, 16)] and synced.gone == (1, 24)
