"""Reader.poll and sync_many over real hosts: the NS Poll extension (rlp2p.wire.ns_poll)."""

from __future__ import annotations

from collections import Counter

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.page import LogMode
from rlp2p.core.record import create_record
from rlp2p.node.polling import PollReport
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.ns import encode_error
from rlp2p.wire.rpc import Reply


def count_requests(node) -> Counter:
    """Counts the NS requests ``node`` serves, by method (wraps its server's frame handler)."""
    counts: Counter = Counter()
    server = node.ns_server
    inner = server.handle_frame

    async def counted(frame: bytes, *, writer=None) -> Reply:
        request = ns_pb2.NsRequest.FromString(frame)
        counts[request.WhichOneof("method")] += 1
        if request.WhichOneof("method") == "poll":
            counts["polled logs"] += len(request.poll.logs)
        return await inner(frame, writer=writer)

    server.handle_frame = counted
    return counts


def count_records(node) -> Counter:
    """Counts what ``node``'s answers to Polls carry: whole records, and sequences only."""
    counts: Counter = Counter()
    server = node.ns_server
    inner = server.handle_frame

    async def counted(frame: bytes, *, writer=None) -> Reply:
        reply = await inner(frame, writer=writer)
        response = ns_pb2.NsResponse.FromString(reply.frame)
        if response.WhichOneof("result") == "polled":
            for result in response.polled.results:
                counts["records"] += bool(result.record or result.compact)  # whole or compact
                counts["sequences"] += result.HasField("sequence")
        return reply

    server.handle_frame = counted
    return counts


def ignoring_sequence_only(node) -> None:
    """``node``'s NS server as before the pollrecord extension: it does not know PollLog field
    10 (it parses as an unknown field and is ignored), so it sends records."""
    server = node.ns_server
    inner = server.handle_frame

    async def old(frame: bytes, *, writer=None) -> Reply:
        request = ns_pb2.NsRequest.FromString(frame)
        if request.WhichOneof("method") == "poll":
            for entry in request.poll.logs:
                entry.ClearField("sequence_only")
            frame = request.SerializeToString()
        return await inner(frame, writer=writer)

    server.handle_frame = old


def claiming(node, sequence: int, serve: bytes | None = None) -> None:
    """``node`` lies: asked for a sequence only, it says it holds ``sequence``; asked for the
    record, it serves ``serve`` (None: the record it really holds)."""
    server = node.ns_server
    inner = server.handle_frame

    async def liar(frame: bytes, *, writer=None) -> Reply:
        request = ns_pb2.NsRequest.FromString(frame)
        if request.WhichOneof("method") != "poll":
            return await inner(frame, writer=writer)
        results = []
        for entry in request.poll.logs:
            if entry.sequence_only:
                results.append(ns_pb2.PollResult(state=ns_pb2.PollResult.CHANGED, sequence=sequence))
            elif serve is not None:
                results.append(ns_pb2.PollResult(state=ns_pb2.PollResult.CHANGED, record=serve))
            else:
                single = ns_pb2.NsRequest(poll=ns_pb2.PollQuery(logs=[entry])).SerializeToString()
                results.extend(ns_pb2.NsResponse.FromString((await inner(single)).frame).polled.results)
        return Reply(ns_pb2.NsResponse(polled=ns_pb2.PollAnswer(results=results)).SerializeToString())

    server.handle_frame = liar


async def published_once(swarm, replicas: int = 3):
    """Storage peers holding a log of one publish; Bob synced it (he holds its record)."""
    storage = await swarm.add_storage(replicas)
    peers = [s.peer_id for s in storage]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replica_peers=peers)
    await publisher.append([b"one"])
    await publisher.publish()
    bob = await swarm.start_node("bob")
    await bob.reader(storage_peers=peers).sync(publisher.name)
    return storage, peers, publisher, bob


async def published_twice(swarm, replicas: int = 3):
    """Storage peers holding a log of two publishes; Bob holds the first's record."""
    storage, peers, publisher, bob = await published_once(swarm, replicas)
    await publisher.append([b"two"])
    await publisher.publish()
    return storage, peers, publisher, bob


def without_poll(node) -> None:
    """``node``'s NS server as before the extension: a Poll is an unknown method (BAD_REQUEST)."""
    server = node.ns_server
    inner = server.handle_frame

    async def old(frame: bytes, *, writer=None) -> Reply:
        if ns_pb2.NsRequest.FromString(frame).WhichOneof("method") == "poll":
            return Reply(encode_error(ns_pb2.Error.Code.BAD_REQUEST, "unknown or missing method"))
        return await inner(frame, writer=writer)

    server.handle_frame = old


def seed_logs(storage, bob, count: int) -> list[str]:
    """``count`` logs whose record every storage peer holds and Bob has already accepted."""
    names = []
    for i in range(count):
        key = generate_log_key()
        name = log_name(key.public_key)
        head = address_of(b"page %d" % i)
        record = create_record(key, head, 3)
        for node in storage:
            node.store.put_record(name, record, 3)
        bob.store.set_reader_record(name, record, 3, head)
        names.append(name)
    return names


async def test_a_poll_of_100_logs_is_one_request_per_storage_peer_and_only_the_changed_ones_are_fetched(swarm):
    storage = await swarm.add_storage(3)
    peers = [s.peer_id for s in storage]
    alice = await swarm.start_node("alice")
    bob = await swarm.start_node("bob")
    publishers = [alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=1), replica_peers=peers) for _ in range(2)]
    for p in publishers:
        await p.append([b"first of " + p.name.encode()])
        await p.publish()
    reader = bob.reader(storage_peers=peers, fanout=3)
    await reader.sync_many([p.name for p in publishers])
    names = seed_logs(storage, bob, 98) + [p.name for p in publishers]
    stored = {}
    for p in publishers:  # two logs change; the other 98 do not
        await p.append([b"second"])
        stored[p.name] = set((await p.publish()).stored_on)  # a quorum, all three unless one was slow

    counts = [count_requests(s) for s in storage]
    report = PollReport()
    polls = await reader.poll(names, report)
    assert sorted(n for n, r in polls.items() if r.changed) == sorted(p.name for p in publishers)
    for p in publishers:
        assert polls[p.name].best.sequence == 2 and {h.to_string() for h in polls[p.name].holders} == stored[p.name]
    # one round, one request, one round trip per storage peer, for all 100 logs
    assert report.rounds == 1 and report.round_trips == {s.peer_id.to_string(): 1 for s in storage}
    assert all(c == Counter({"poll": 1, "polled logs": 100}) for c in counts)
    # an unchanged log costs 2 bytes of answer: the two records are nearly all of it
    assert report.bytes_in < 3 * (2 * 300 + 100 * 2 + 64)
    assert report.bytes_out < 3 * 100 * 48

    got: list = []
    reports = await reader.sync_many(names, on_message=got.append)
    assert sorted(d.message.body for d in got) == [b"second", b"second"]
    assert sum(not r.up_to_date for r in reports.values()) == 2
    # the sync polled once more and fetched records of no unchanged log
    assert all(c["poll"] == 2 and c["fetch"] == 0 for c in counts)


async def test_a_withholding_replica_answering_unchanged_is_caught_by_the_fanout(swarm, fixed_record):
    storage, peers, publisher, bob = await published_twice(swarm)
    old = (await bob.reader().state(publisher.name)).record  # the first publish's, as Bob holds it
    withholder = storage[0]
    withholder.ns_server.backend = fixed_record(withholder.ns_server.backend, old)

    # asked alone, the withholder hides the new message: "nothing newer"
    alone = await bob.reader(storage_peers=peers, fanout=1).poll([publisher.name])
    assert not alone[publisher.name].changed

    polls = await bob.reader(storage_peers=peers, fanout=3).poll([publisher.name])
    result = polls[publisher.name]
    assert result.changed and result.best.sequence == 2
    assert result.behind == [withholder.peer_id] and withholder.peer_id not in result.holders
    got: list = []
    reports = await bob.reader(storage_peers=peers, fanout=3).sync_many([publisher.name], on_message=got.append)
    assert [d.message.body for d in got] == [b"two"]
    assert "nothing newer" in reports[publisher.name].peers_bypassed[withholder.peer_id.to_string()]


async def test_a_storage_peer_without_poll_is_asked_with_fetch(swarm):
    storage = await swarm.add_storage(2)
    peers = [s.peer_id for s in storage]
    without_poll(storage[0])
    counts = count_requests(storage[0])
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replicas=2, replica_peers=peers)
    await publisher.append([b"one"])
    await publisher.publish()
    bob = await swarm.start_node("bob")
    names = [publisher.name, *seed_logs([storage[1]], bob, 3)]

    report = PollReport()
    polls = await bob.reader(storage_peers=peers).poll(names, report)
    assert polls[publisher.name].changed and polls[publisher.name].holders == peers
    assert not any(polls[n].changed for n in names[1:])
    assert report.fell_back == [storage[0].peer_id.to_string()]
    assert report.round_trips[storage[0].peer_id.to_string()] == 2  # the poll refused, then fetches
    assert counts["poll"] == 1 and counts["fetch"] == 4
    assert not report.failed


async def test_compact_records_by_default_and_v1_on_request(swarm):
    (storage,) = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    compact = alice.publisher(generate_log_key(), replicas=1)
    legacy = alice.publisher(generate_log_key(), replicas=1, record_v1=True)
    for p in (compact, legacy):
        await p.append([b"x"])
        await p.publish()
    assert len(storage.store.get_record(compact.name).record) == 221
    assert len(storage.store.get_record(legacy.name).record) == 435


async def test_a_caught_up_sync_of_one_log_asks_with_poll_not_fetch(swarm):
    storage, peers, publisher, bob = await published_once(swarm)
    counts = [count_requests(s) for s in storage]

    polled = await bob.reader(storage_peers=peers).sync(publisher.name)
    assert polled.up_to_date and polled.round_trips == 1 and polled.requests == 3
    assert polled.bytes_in + polled.bytes_out < 200  # three ~50-byte questions, three 5-byte answers
    assert all(c == Counter({"poll": 1, "polled logs": 1}) for c in counts)

    fetched = await bob.reader(storage_peers=peers, conditional=False).sync(publisher.name)
    assert fetched.up_to_date and fetched.bytes_in > 3 * 221  # each peer sends the whole record
    assert all(c["fetch"] == 1 for c in counts)


async def test_a_poll_over_three_replicas_receives_one_record_when_the_log_changed(swarm):
    storage, peers, publisher, bob = await published_twice(swarm)
    counts = [count_records(s) for s in storage]
    report = PollReport()
    polls = await bob.reader(storage_peers=peers, fanout=3).poll([publisher.name], report)
    result = polls[publisher.name]
    assert result.changed and result.best.sequence == 2 and result.holders == peers and not result.failed
    # the first peer (the one a sync goes to) sends the record, the other two the sequence only
    assert [(c["records"], c["sequences"]) for c in counts] == [(1, 0), (0, 1), (0, 1)]
    assert report.rounds == 1 and report.followed_claims == 0
    assert 151 < report.bytes_in < 221 + 100  # one record (compact: 151 B), not three
    got: list = []
    reports = await bob.reader(storage_peers=peers, fanout=3).sync_many([publisher.name], on_message=got.append)
    assert [d.message.body for d in got] == [b"two"] and reports[publisher.name].record_seq == 2


async def test_a_withholding_first_replica_is_caught_and_the_record_fetched_from_another(swarm, fixed_record):
    storage, peers, publisher, bob = await published_twice(swarm)
    old = bob.store.get_reader_state(publisher.name).record
    withholder = storage[0]  # the peer asked for the record: it answers "unchanged"
    withholder.ns_server.backend = fixed_record(withholder.ns_server.backend, old)
    counts = [count_records(s) for s in storage]
    report = PollReport()
    result = (await bob.reader(storage_peers=peers, fanout=3).poll([publisher.name], report))[publisher.name]
    assert result.best.sequence == 2 and result.holders == peers[1:] and result.behind == [withholder.peer_id]
    assert not result.claims and not result.failed
    # one more ask, of the first peer that said sequence 2: still one record in all
    assert report.rounds == 2 and report.followed_claims == 1
    assert sum(c["records"] for c in counts) == 1 and counts[1]["records"] == 1
    got: list = []
    await bob.reader(storage_peers=peers, fanout=3).sync_many([publisher.name], on_message=got.append)
    assert [d.message.body for d in got] == [b"two"]


async def test_a_replica_claiming_a_sequence_it_cannot_back_is_ignored_with_a_typed_error(swarm, caplog):
    storage, peers, publisher, bob = await published_twice(swarm)
    forged = bytearray(storage[1].store.get_record(publisher.name).record)
    forged[-5] ^= 0xFF
    claiming(storage[1], 99, serve=bytes(forged))  # a record that does not verify
    claiming(storage[2], 98)  # its real record, sequence 2: not what it said
    report = PollReport()
    with caplog.at_level("WARNING", logger="rlp2p.node.polling"):
        result = (await bob.reader(storage_peers=peers, fanout=3).poll([publisher.name], report))[publisher.name]
    assert result.best.sequence == 2 and result.holders == [peers[0]] and not result.claims
    assert set(result.failed) == set(peers[1:])
    assert all(why.startswith("UnbackedSequence") for why in result.failed.values())
    assert "InvalidRecord" in result.failed[peers[1]] and "sequence 2" in result.failed[peers[2]]
    assert set(report.unbacked) == {p.to_string() for p in peers[1:]} and report.followed_claims == 2
    assert sum("UnbackedSequence" in r.getMessage() for r in caplog.records) == 2
    got: list = []
    reports = await bob.reader(storage_peers=peers, fanout=3).sync_many([publisher.name], on_message=got.append)
    assert [d.message.body for d in got] == [b"two"] and reports[publisher.name].record_seq == 2


async def test_a_storage_peer_from_before_sequence_only_sends_records_and_that_is_still_correct(swarm):
    storage, peers, publisher, bob = await published_twice(swarm)
    for node in storage[1:]:
        ignoring_sequence_only(node)
    counts = [count_records(s) for s in storage]
    report = PollReport()
    result = (await bob.reader(storage_peers=peers, fanout=3).poll([publisher.name], report))[publisher.name]
    assert result.best.sequence == 2 and result.holders == peers and not result.failed and not result.claims
    assert [c["records"] for c in counts] == [1, 1, 1] and report.followed_claims == 0 and report.rounds == 1
    assert not report.fell_back
