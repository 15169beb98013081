"""Upload once (issue 11.3): Alice sends each new block once, a storage peer forwards it."""

from __future__ import annotations

import trio

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.p2p.host import parse_peer_addr

MODE = LogMode.paged(8, embed=0)


def bodies(start: int, count: int) -> list[bytes]:
    return [f"message {i} ".encode() * 20 for i in range(start, start + count)]


async def read_all(swarm, name: str, peer) -> list[bytes]:
    """What a fresh reader gets from ``peer`` alone."""
    readers = sum(1 for p in swarm.root.iterdir() if p.name.startswith("bob"))
    bob = await swarm.start_node(f"bob{readers}", bootstrap=(peer.addrs[0],))
    got: list = []
    await bob.reader(storage_peers=[peer.peer_id]).sync(name, on_message=got.append)
    await swarm.stop(bob)
    return [d.message.body for d in got]


async def test_upload_once_stores_everything_on_three_for_about_the_bytes_of_one(swarm):
    storage = await swarm.add_storage(4)
    alice = await swarm.start_node("alice")
    peers = [n.peer_id for n in storage]
    # the baseline: the same log to one replica
    single = alice.publisher(generate_log_key(), mode=MODE, replicas=1, replica_peers=peers[3:])
    await single.append(bodies(0, 40))
    one = (await single.publish()).bytes_sent

    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=3, replica_peers=peers[:3])
    assert publisher.upload == "once"
    await publisher.append(bodies(0, 40))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    assert report.bytes_sent <= 1.1 * one, (report.bytes_sent, one)
    # the forwarder got the blocks; the others only Alice's confirmation fetch
    assert [r.blocks_sent > 0 for r in report.replicas] == [True, False, False]

    await publisher.append(bodies(40, 5))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    for node in storage[:3]:
        assert await read_all(swarm, publisher.name, node) == bodies(0, 45)


async def test_upload_each_sends_to_every_replica(swarm):
    storage = await swarm.add_storage(3)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(
        generate_log_key(), mode=MODE, replicas=3, replica_peers=[n.peer_id for n in storage], upload="each"
    )
    await publisher.append(bodies(0, 20))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    assert all(r.blocks_sent > 0 for r in report.replicas)
    for node in storage:
        assert await read_all(swarm, publisher.name, node) == bodies(0, 20)


async def test_a_forwarder_dying_mid_forward_costs_a_second_upload_not_the_quorum(swarm, nursery):
    storage = await swarm.add_storage(3)
    a, b, c = storage
    addr_a = a.addrs[0].split("/p2p/")[0]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=3, replica_peers=[n.peer_id for n in storage])
    await publisher.append(bodies(0, 30))

    async def die() -> None:
        # A took Alice's upload and her record; it goes down before forwarding anything
        nursery.start_soon(swarm.stop, a)
        await trio.sleep_forever()

    a.forwarder.before_targets = die
    report = await publisher.publish()
    assert len(report.stored_on) >= publisher.write_quorum
    assert {r.peer for r in report.replicas if r.ok} >= {b.peer_id.to_string(), c.peer_id.to_string()}
    for node in (b, c):
        assert await read_all(swarm, publisher.name, node) == bodies(0, 30)

    # A stays down for the next publish: B forwards to C
    await publisher.append(bodies(30, 10))
    report = await publisher.publish()
    assert sorted(report.stored_on) == sorted([b.peer_id.to_string(), c.peer_id.to_string()])

    # A comes back, lagging a publish: the next one catches it up
    a = await swarm.start_node("storage0", storage=True, listen=(addr_a,))
    info = parse_peer_addr(a.addrs[0])
    alice.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
    alice.host.get_network().unblock_peer(info.peer_id)
    await publisher.append(bodies(40, 3))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    for node in (a, b, c):
        assert await read_all(swarm, publisher.name, node) == bodies(0, 43)


async def test_the_record_rides_the_cas_stream_after_its_blocks_and_falls_back_to_ns(swarm):
    new, old = await swarm.add_storage(2)
    old.cas_server.name_update = None  # a peer without the extension: answers BAD_REQUEST
    alice = await swarm.start_node("alice")
    for peer in (new, old):
        publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=1, replica_peers=[peer.peer_id])
        await publisher.append(bodies(0, 12))
        report = await publisher.publish()
        assert report.stored_on == [peer.peer_id.to_string()]
        assert peer.store.get_record(publisher.name).sequence == 1
        # one kept CAS stream carried the blocks and the record; NS only where the peer lacks it
        ns_streams = [key for key in alice.peers.pooled() if key == (peer.peer_id, "/vac/ns/1.0.0")]
        assert bool(ns_streams) == (peer is old)
        assert await read_all(swarm, publisher.name, peer) == bodies(0, 12)


async def test_storage_peers_found_in_the_dht_serve_the_next_publishes_without_a_lookup(swarm):
    await swarm.add_storage(3)
    alice = await swarm.start_node("alice")
    lookups = []
    find = alice.peers.storage_candidates

    async def counting(*args, **kwargs):
        lookups.append(args)
        return await find(*args, **kwargs)

    alice.peers.storage_candidates = counting
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=3)
    for i in range(3):
        await publisher.append(bodies(i, 1))
        assert len((await publisher.publish()).stored_on) == 3
    assert len(lookups) == 1


async def test_a_forwarder_refuses_what_it_must_not_forward(swarm):
    import pytest

    from rlp2p.core.forward import MAX_FORWARD_TARGETS, Lacks, TargetPlan
    from rlp2p.errors import RemoteError
    from rlp2p.wire.forward import ForwardRequest, ForwardTarget, forward

    a, b = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=1, replica_peers=[a.peer_id])
    for i in range(2):
        await publisher.append(bodies(i, 1))
        await publisher.publish()
    target = ForwardTarget(b.peer_id.to_bytes(), [], TargetPlan(Lacks.WHOLE))
    async with alice.ns(a.peer_id) as ns:
        # an old sequence: not the record it holds (it never waits for one it has passed)
        with pytest.raises(RemoteError) as old:
            await forward(ns.rpc, ForwardRequest(publisher.name, 1, [target], []))
        assert old.value.code == "NOT_FOUND"
        with pytest.raises(RemoteError) as many:
            await forward(ns.rpc, ForwardRequest(publisher.name, 2, [target] * (MAX_FORWARD_TARGETS + 1), []))
        assert many.value.code == "TOO_LARGE"
        # and the request it may serve: the whole log to B, which then serves it alone
        [outcome] = await forward(ns.rpc, ForwardRequest(publisher.name, 2, [target], []))
    assert outcome.status == "OK" and outcome.blocks_sent > 0
    assert await read_all(swarm, publisher.name, b) == bodies(0, 2)


async def test_a_storage_peer_without_forwarding_gets_the_targets_uploaded_directly(swarm):
    storage = await swarm.add_storage(3)
    a, b, c = storage
    a.ns_server.forward = None  # an older peer: answers the forward request BAD_REQUEST
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=3, replica_peers=[n.peer_id for n in storage])
    await publisher.append(bodies(0, 20))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    # A took Alice's upload; B, next, took it too and forwarded to C
    assert [r.blocks_sent > 0 for r in report.replicas] == [True, True, False]
    for node in storage:
        assert await read_all(swarm, publisher.name, node) == bodies(0, 20)


async def test_a_forward_request_that_comes_before_its_record_waits_for_it(swarm, nursery):
    from rlp2p.core.forward import Lacks, TargetPlan
    from rlp2p.core.record import create_record
    from rlp2p.wire.forward import ForwardRequest, ForwardTarget, forward

    a, b = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    key = generate_log_key()
    publisher = alice.publisher(key, mode=MODE, replicas=1, replica_peers=[a.peer_id])
    await publisher.append(bodies(0, 3))
    first = await publisher.publish()
    answers: list = []

    async def ask() -> None:
        target = ForwardTarget(b.peer_id.to_bytes(), [], TargetPlan(Lacks.WHOLE))
        async with alice.ns(a.peer_id) as ns:
            answers.extend(await forward(ns.rpc, ForwardRequest(publisher.name, 2, [target], [])))

    nursery.start_soon(ask)
    for _ in range(500):  # until A waits for sequence 2 (bounded)
        if publisher.name in a.forwarder._waiting:
            break
        await trio.sleep(0.01)
    assert publisher.name in a.forwarder._waiting
    record = create_record(key, first.head, 2)
    async with alice.ns(a.peer_id) as ns:
        await ns.update(publisher.name, record)
    for _ in range(500):
        if answers:
            break
        await trio.sleep(0.01)
    assert [o.status for o in answers] == ["OK"]
    assert b.store.get_record(publisher.name).record == record
    assert not a.forwarder._waiting


async def test_targets_acks_replace_alices_confirming_fetches_and_old_targets_get_one(swarm):
    storage = await swarm.add_storage(3)
    a, b, c = storage
    c.cas_server.acker = None  # a target from before acks: answers the ack request BAD_REQUEST
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=3, replica_peers=[n.peer_id for n in storage])
    await publisher.append(bodies(0, 20))
    report = await publisher.publish()
    assert len(report.stored_on) == 3
    ns = {peer for peer, protocol in alice.peers.pooled() if protocol == "/vac/ns/1.0.0"}
    # NS to A for the forward request, and a confirming Fetch to C alone: B's ack stood for it
    assert ns == {a.peer_id, c.peer_id}
    for node in storage:
        assert await read_all(swarm, publisher.name, node) == bodies(0, 20)


async def test_a_forwarder_relaying_forged_or_replayed_acks_is_caught(swarm):
    from rlp2p.core.ack import sign_ack
    from rlp2p.wire.forward import ForwardOutcome

    storage = await swarm.add_storage(3)
    a, b, c = storage
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=3, replica_peers=[n.peer_id for n in storage])
    await publisher.append(bodies(0, 10))
    assert len((await publisher.publish()).stored_on) == 3
    name = publisher.name
    # what C really signed for the first publish, kept by the forwarder
    replayed = sign_ack(c.host.get_private_key(), name, 1)
    lies = {
        b.peer_id.to_bytes(): sign_ack(a.host.get_private_key(), name, 2),  # A signing for B
        c.peer_id.to_bytes(): replayed,  # C's, of sequence 1, claimed for 2
    }

    async def lying(request, target, record, out: list[ForwardOutcome], i: int) -> None:
        # forwards nothing and claims both targets stored sequence 2
        out[i].status, out[i].error, out[i].ack_seq, out[i].ack = "OK", "", request.sequence, lies[target.peer]

    a.forwarder._one = lying
    await publisher.append(bodies(10, 5))
    report = await publisher.publish()
    assert report.sequence == 2 and len(report.stored_on) == 3
    # neither lie confirmed anything: B was uploaded to directly and forwarded to C
    assert [(r.peer, r.blocks_sent > 0) for r in report.replicas if r.ok] == [
        (a.peer_id.to_string(), True), (b.peer_id.to_string(), True), (c.peer_id.to_string(), False)
    ]
    for node in storage:
        assert node.store.get_record(name).sequence == 2
        assert await read_all(swarm, name, node) == bodies(0, 15)


async def test_a_forwarder_that_relays_acks_gets_its_targets_by_hint_position(swarm, monkeypatch):
    import rlp2p.node.forward as forward_module
    from rlp2p.pb.vac import ns_pb2

    storage = await swarm.add_storage(3)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=3, replica_peers=[n.peer_id for n in storage])
    asked: list = []
    original = forward_module.forward

    async def recording(rpc, request):
        asked.append(request)
        return await original(rpc, request)

    monkeypatch.setattr(forward_module, "forward", recording)
    for i in range(3):
        await publisher.append(bodies(i * 4, 4))
        assert len((await publisher.publish()).stored_on) == 3
    first, second, third = asked
    # the first names its targets in full; once the forwarder relayed acks, by hint position
    assert [t.hint for t in first.targets] == [0, 0] and all(t.peer for t in first.targets)
    assert [t.hint for t in second.targets] == [2, 3] and not any(t.peer for t in second.targets)

    def naming(request) -> int:  # the bytes that name its targets
        return sum(ns_pb2.ForwardTarget(peer=t.peer, addrs=t.addrs, hint=t.hint).ByteSize() for t in request.targets)

    assert naming(third) * 10 < naming(first)
    for node in storage:
        assert await read_all(swarm, publisher.name, node) == bodies(0, 12)


async def test_a_hint_position_the_head_page_lacks_is_refused_per_target(swarm):
    from rlp2p.core.forward import Lacks, TargetPlan
    from rlp2p.wire.forward import ForwardRequest, ForwardTarget, forward

    a, b = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=1, replica_peers=[a.peer_id])
    await publisher.append(bodies(0, 3))
    await publisher.publish()  # its head page's hint names A alone
    targets = [ForwardTarget(b"", [], TargetPlan(Lacks.WHOLE), hint=5), ForwardTarget(b.peer_id.to_bytes(), [], TargetPlan(Lacks.WHOLE))]
    async with alice.ns(a.peer_id) as ns:
        outcomes = await forward(ns.rpc, ForwardRequest(publisher.name, 1, targets, []))
    assert [o.status for o in outcomes] == ["BAD_REQUEST", "OK"]
    assert outcomes[1].ack_seq == 1 and outcomes[1].ack  # B's own signed ack, relayed
    assert await read_all(swarm, publisher.name, b) == bodies(0, 3)
