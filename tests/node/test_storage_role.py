"""A storage peer in an open swarm: admission of writers, retention, metrics (real hosts on 127.0.0.1)."""

from __future__ import annotations

import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import trio

from rlp2p.core.address import address_of
from rlp2p.core.admission import AdmissionConfig
from rlp2p.core.keys import generate_log_key, log_name, save_key
from rlp2p.core.page import LogMode
from rlp2p.core.record import create_record
from rlp2p.core.retention import RetentionConfig
from rlp2p.errors import PublishError, RemoteError
from tests.store.helpers import peer_usage


def bodies(n: int, start: int = 0) -> list[bytes]:
    return [f"message {i}".encode() for i in range(start, start + n)]


def node_identity(swarm, name: str) -> str:
    """Give the node ``name`` its key before it starts; returns its peer id."""
    key = generate_log_key()
    (swarm.root / name).mkdir(parents=True)
    save_key(swarm.root / name / "node.key", key)
    return log_name(key.public_key)


async def test_a_strangers_writes_stop_at_its_quota_and_an_allow_listed_publisher_still_publishes(swarm):
    alice_id = node_identity(swarm, "alice")
    policy = AdmissionConfig(quota_bytes_per_peer=20_000, quota_names_per_peer=2, allow=frozenset({alice_id}))
    storage = await swarm.start_node("storage0", storage=True, bootstrap=(), admission=policy)
    stranger = await swarm.start_node("stranger", bootstrap=(storage.addrs[0],))

    # names: two logs, then a typed refusal (their head block is stored first, as a publisher does)
    head = address_of(b"any head")
    async with stranger.cas(storage.peer_id) as cas:
        await cas.add_many([b"any head"])
    async with stranger.ns(storage.peer_id) as ns:
        for _ in range(2):
            key = generate_log_key()
            await ns.update(log_name(key.public_key), create_record(key, head, 1))
        key = generate_log_key()
        with pytest.raises(RemoteError) as refused:
            await ns.update(log_name(key.public_key), create_record(key, head, 1))
    assert refused.value.code == "QUOTA"

    # blocks: accepted up to the byte quota, then a typed refusal
    stored = len(b"any head")
    with pytest.raises(RemoteError) as refused:
        for i in range(100):
            async with stranger.cas(storage.peer_id) as cas:
                await cas.add_many([bytes([i]) * 1000])
            stored += 1000
    assert refused.value.code == "QUOTA"
    assert 19_000 < stored <= 20_000
    assert peer_usage(storage.store, stranger.peer_id.to_base58()) == (stored, 2)
    # what it already stored is still served, and a block held already costs nothing
    async with stranger.cas(storage.peer_id) as cas:
        assert await cas.get(address_of(bytes([0]) * 1000)) == bytes([0]) * 1000
        await cas.add_many([bytes([0]) * 1000])

    # Alice's node is allow-listed: her publish is not held to the strangers' quotas
    alice = await swarm.start_node("alice", bootstrap=(storage.addrs[0],))
    assert alice.peer_id.to_base58() == alice_id
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(8, embed=0), replicas=1, replica_peers=[storage.peer_id])
    await publisher.append([bytes([i]) * 900 for i in range(40)])  # 36 KB: over a stranger's quota
    report = await publisher.publish()
    assert report.stored_on == [storage.peer_id.to_string()]
    assert storage.admission.refusals.by_reason == {"quota_bytes": 1, "quota_names": 1}


async def test_allowlist_refuses_other_logs_and_the_publisher_falls_over_to_another_replica(swarm):
    key = generate_log_key()
    other = generate_log_key()
    closed = AdmissionConfig(mode="allowlist", allow=frozenset({log_name(other.public_key)}))
    storage = [await swarm.start_node("storage0", storage=True, bootstrap=(), admission=closed)]
    for i in (1, 2, 3):
        storage.append(await swarm.start_node(f"storage{i}", storage=True, bootstrap=(storage[0].addrs[0],)))
    alice = await swarm.start_node("alice", bootstrap=(storage[0].addrs[0],))
    # the closed peer first: it takes Alice's blocks (within a stranger's quota) but not her record
    order = [s.peer_id for s in storage]
    publisher = alice.publisher(key, mode=LogMode.paged(8, embed=0), replicas=3, replica_peers=order)
    await publisher.append(bodies(20))
    report = await publisher.publish()
    assert set(report.stored_on) == {s.peer_id.to_string() for s in storage[1:]}
    [failed] = [r for r in report.replicas if not r.ok]
    assert failed.peer == storage[0].peer_id.to_string() and "NOT_ALLOWED" in failed.error
    assert storage[0].store.get_record(publisher.name) is None
    assert storage[0].admission.refusals.by_reason == {"not_allowed": 1}

    # with only the closed peer to write to, the publish fails with that reason
    lonely = alice.publisher(generate_log_key(), replicas=1, replica_peers=[storage[0].peer_id])
    await lonely.append(bodies(1))
    with pytest.raises(PublishError, match="NOT_ALLOWED"):
        await lonely.publish()


async def test_writes_over_the_rate_are_refused(swarm):
    policy = AdmissionConfig(write_rate=1, write_burst=10)
    storage = await swarm.start_node("storage0", storage=True, bootstrap=(), admission=policy)
    client = await swarm.start_node("client", bootstrap=(storage.addrs[0],))
    async with client.cas(storage.peer_id) as cas:
        await cas.add_many([b"%d" % i for i in range(10)])
        with pytest.raises(RemoteError) as refused:
            await cas.add_many([b"one too many"])
    assert refused.value.code == "QUOTA" and "rate" in refused.value.remote_message


class Clock:
    """The storage peer's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def test_retention_drops_stale_logs_and_collects_unreachable_blocks(swarm):
    clock = Clock()
    retention = RetentionConfig(drop_after=30 * 86400, grace=3600, interval=10**6)
    storage = await swarm.start_node("storage0", storage=True, bootstrap=(), clock=clock, retention=retention)
    alice = await swarm.start_node("alice", bootstrap=(storage.addrs[0],), clock=clock)  # one clock for all
    mode = LogMode.paged(4, embed=0)

    old = alice.publisher(generate_log_key(), mode=mode, replicas=1, replica_peers=[storage.peer_id])
    await old.append(bodies(10))
    old_report = await old.publish()
    kept = alice.publisher(generate_log_key(), mode=mode, replicas=1, replica_peers=[storage.peer_id])
    await kept.append(bodies(10, 100))
    await kept.publish()
    async with alice.cas(storage.peer_id) as cas:
        await cas.add_many([b"junk 1", b"junk 2"])  # a publish that never got its record
    held = storage.store.block_stats()[0]

    # within the grace period nothing goes, and the logs are measured
    report = await storage.retention.run_pass()
    assert report.dropped == [] and report.swept_blocks == 0
    assert storage.store.log_bytes(old.name) > 0

    # past the grace: the junk goes, both logs stay whole
    clock.now += timedelta(hours=2)
    report = await storage.retention.run_pass()
    assert (report.dropped, report.swept_blocks) == ([], 2)
    assert storage.store.has_blocks([address_of(b"junk 1"), address_of(b"junk 2")]) == set()
    assert storage.store.block_stats()[0] == held - 2

    # 20 days later Alice republishes one log only; 15 days after that the other is stale
    clock.now += timedelta(days=20)
    await kept.append(bodies(1, 200))
    await kept.publish()
    clock.now += timedelta(days=15)
    report = await storage.retention.run_pass()
    assert report.dropped == [old.name]
    assert storage.store.get_record(old.name) is None
    # every block of the dropped log, and the kept log's previous head page (replaced by its
    # republish more than the grace period ago)
    assert report.swept_blocks == old_report.replicas[0].blocks_sent + 1

    # the kept log syncs whole from this peer alone
    bob = await swarm.start_node("bob", bootstrap=(storage.addrs[0],), clock=clock)
    got: list = []
    await bob.reader().sync(kept.name, on_message=got.append)
    assert [d.message.body for d in got] == bodies(10, 100) + bodies(1, 200)

    # the dropped log's publisher comes back: she remembers this peer acknowledging her old
    # blocks, which it no longer holds; it refuses her record (INCOMPLETE) rather than serve a
    # head it cannot serve whole, and she sends it everything again
    await old.append(bodies(1, 300))
    again = await old.publish()
    assert again.stored_on == [storage.peer_id.to_string()]
    assert again.replicas[0].blocks_sent > 2
    assert storage.admission.refusals.by_reason == {"incomplete": 1}
    got = []
    await bob.reader().sync(old.name, on_message=got.append)
    assert [d.message.body for d in got] == bodies(10) + bodies(1, 300)


async def test_a_sweep_stops_when_a_head_moves_under_it(swarm):
    clock = Clock()
    storage = await swarm.start_node("storage0", storage=True, bootstrap=(), clock=clock, retention=RetentionConfig(grace=0))
    alice = await swarm.start_node("alice", bootstrap=(storage.addrs[0],))
    publisher = alice.publisher(generate_log_key(), replicas=1, replica_peers=[storage.peer_id])
    await publisher.append(bodies(3))
    await publisher.publish()
    async with alice.cas(storage.peer_id) as cas:
        await cas.add_many([b"junk"])
    clock.now += timedelta(seconds=1)

    real_heads = storage.store.heads

    def moving_heads():
        # the mark sees other records than the store holds when the sweep deletes: as if a
        # record arrived between the two
        return {name: (record + b"!", at) for name, (record, at) in real_heads().items()}

    storage.store.heads = moving_heads
    report = await storage.retention.run_pass()
    assert report.heads_moved and report.swept_blocks == 0
    storage.store.heads = real_heads
    report = await storage.retention.run_pass()
    assert report.swept_blocks == 1


async def test_metrics_are_scraped_over_http_on_loopback(swarm):
    policy = AdmissionConfig(quota_bytes_per_peer=100)
    storage = await swarm.start_node("storage0", storage=True, bootstrap=(), admission=policy, metrics="127.0.0.1:0")
    client = await swarm.start_node("client", bootstrap=(storage.addrs[0],))
    async with client.cas(storage.peer_id) as cas:
        await cas.add_many([b"a" * 60])
        with pytest.raises(RemoteError):
            await cas.add_many([b"b" * 60])
    host, port = storage.metrics.address
    assert host == "127.0.0.1" and port != 0

    def scrape() -> str:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            return response.read().decode()

    text = await trio.to_thread.run_sync(scrape)
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(lines["rlp2p_blocks_held"]) == 1
    assert float(lines["rlp2p_block_bytes_held"]) == 60
    assert float(lines["rlp2p_names_held"]) == 0
    assert float(lines['rlp2p_write_refusals_total{reason="quota_bytes"}']) == 1
    assert float(lines['rlp2p_streams_total{protocol="cas"}']) >= 1
    assert float(lines["rlp2p_bytes_in_total"]) > 120
    assert float(lines["rlp2p_bytes_out_total"]) > 0
    assert float(lines["rlp2p_connections"]) >= 1
    assert float(lines['rlp2p_quota_bytes_used{peer="%s"}' % client.peer_id.to_base58()]) == 60
    assert float(lines['rlp2p_quota_limit{quota="bytes_per_peer"}']) == 100
