"""Compact records in Alice's upload (UploadNameUpdate field 11) with real hosts: the storage peer
rebuilds the exact record; a peer from before gets the whole record; a bad one stores nothing."""

from __future__ import annotations

from collections import Counter

from rlp2p.core.compact import compact_record
from rlp2p.core.keys import generate_log_key
from rlp2p.core.record import verify_record
from rlp2p.pb.vac import cas_pb2, ns_pb2
from rlp2p.wire.cas import decode_response


def count_updates(node, *, before_compact: bool = False) -> Counter:
    """Counts the Updates ``node``'s CAS server receives, by writer, whole or compact (a
    forwarder's copies to the other replicas send whole records: not Alice's); ``before_compact``
    makes it a server from before the extension (field 11 is an unknown field it ignores)."""
    counts: Counter = Counter()
    server = node.cas_server
    inner = server.handle_frames

    def handle(frames, peer=None, *, writer=None):
        out = []
        for frame in frames:
            request = cas_pb2.CasRequest.FromString(frame)
            if request.WhichOneof("method") == "update":
                counts[writer, "compact" if request.update.compact else "whole"] += 1
                if before_compact:
                    request.update.ClearField("compact")
                    frame = request.SerializeToString()
            out.append(frame)
        return inner(out, peer, writer=writer)

    server.handle_frames = handle
    return counts


async def test_alice_uploads_compact_records_and_the_storage_peer_holds_the_exact_record(swarm):
    storage = await swarm.add_storage(3)
    counts = [count_updates(node) for node in storage]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replica_peers=[s.peer_id for s in storage])
    for n in (1, 2):
        await publisher.append([b"m%d" % n])
        await publisher.publish()
        records = {node.store.get_record(publisher.name).record for node in storage}
        (record,) = records  # the same bytes everywhere: Alice's own record, rebuilt exactly
        assert len(record) == 221 and verify_record(publisher.name, record).sequence == n
    mine = alice.peer_id.to_base58()
    assert sum(c[mine, "compact"] for c in counts) >= 2 and sum(c[mine, "whole"] for c in counts) == 0


async def test_a_storage_peer_from_before_gets_the_whole_record(swarm):
    storage = await swarm.add_storage(3)
    counts = [count_updates(node, before_compact=True) for node in storage]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replica_peers=[s.peer_id for s in storage])
    for n in (1, 2):
        await publisher.append([b"m%d" % n])
        await publisher.publish()
        assert all(node.store.get_record(publisher.name).sequence == n for node in storage)
    mine = alice.peer_id.to_base58()
    uploaded = [c for c in counts if c[mine, "compact"] or c[mine, "whole"]]
    assert uploaded
    # one compact try, refused (an empty record to it), the whole record then and from then on
    assert all(c[mine, "compact"] == 1 and c[mine, "whole"] == 2 for c in uploaded)


async def test_a_bad_compact_record_is_refused_and_stores_nothing(swarm):
    (storage,) = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    key = generate_log_key()
    publisher = alice.publisher(key, replica_peers=[storage.peer_id], replicas=1)
    await publisher.append([b"m1"])
    await publisher.publish()
    held = storage.store.get_record(publisher.name).record
    good = compact_record(None, held, with_value=True)
    assert good is not None
    forged = bytearray(good)
    forged[5] ^= 1  # inside the signature
    client = await swarm.start_node("mallory")
    async with client.cas(storage.peer_id) as cas:
        frames = await cas.rpc.call_many(
            [
                cas_pb2.CasRequest(update=cas_pb2.UploadNameUpdate(name=publisher.name, compact=c)).SerializeToString()
                for c in (bytes(forged), b"\xff\xff")
            ]
        )
    for frame in frames:
        assert decode_response(frame).updated.status == ns_pb2.Response.INVALID_RECORD
    assert storage.store.get_record(publisher.name).record == held
