"""Alice uploads the new head page as a delta against the one the replica holds (real hosts)."""

from __future__ import annotations

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.pb.vac import cas_pb2
from rlp2p.wire.cas import encode_error
from rlp2p.wire.rpc import Reply

MODE = LogMode.paged(64, embed=None)


async def setup(swarm, n: int, replicas: int = 1):
    storage = await swarm.add_storage(replicas)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=replicas)
    await publisher.append([f"message {i} ".encode() * 8 for i in range(n)])
    first = await publisher.publish()
    return storage, publisher, first


async def read_all(swarm, storage, name, who: str = "bob") -> list[bytes]:
    bob = await swarm.start_node(who)
    got: list = []
    await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(name, on_message=got.append)
    return [d.message.body for d in got]


async def publish_one(publisher, body: bytes):
    await publisher.append([body])
    return await publisher.publish()


async def test_later_publishes_send_the_head_page_as_a_delta(swarm):
    storage, publisher, first = await setup(swarm, 40)
    page = first.bytes_sent  # the 40-message page and the record, whole
    probe = await publish_one(publisher, b"one")  # the delta Add alone, then the record over NS
    piped = await publish_one(publisher, b"two")  # the delta Add pipelined with the record
    assert probe.stored_on and piped.stored_on
    assert probe.bytes_sent < page / 2, (probe.bytes_sent, page)
    assert piped.bytes_sent < page / 3, (piped.bytes_sent, page)
    bodies = await read_all(swarm, storage, publisher.name)
    assert bodies[-2:] == [b"one", b"two"] and len(bodies) == 42


async def test_upload_once_sends_the_delta_to_the_forwarder(swarm):
    storage, publisher, first = await setup(swarm, 40, replicas=3)
    await publish_one(publisher, b"one")
    report = await publish_one(publisher, b"two")
    assert len(report.stored_on) == 3
    # Alice's bytes: a delta and the record to the forwarder, the forward request; no page
    assert report.bytes_sent < first.bytes_sent / 3, (report.bytes_sent, first.bytes_sent)
    for i, s in enumerate(storage):
        assert len(await read_all(swarm, [s], publisher.name, f"bob{i}")) == 42


async def test_an_old_server_gets_the_page_whole(swarm, monkeypatch):
    storage, publisher, first = await setup(swarm, 40)

    async def refuse(self, address, base, delta, writer):  # a server without the extension
        return Reply(encode_error(cas_pb2.Error.BAD_REQUEST, "unknown or missing method"))

    monkeypatch.setattr(type(storage[0].cas_server), "_store_delta", refuse)
    for body in (b"one", b"two"):
        report = await publish_one(publisher, body)
        assert report.stored_on and report.bytes_sent > first.bytes_sent  # the whole page each time
    assert len(await read_all(swarm, storage, publisher.name)) == 42


async def test_a_lost_base_after_the_probe_is_sent_whole(swarm, monkeypatch):
    storage, publisher, _ = await setup(swarm, 40)
    await publish_one(publisher, b"one")  # the peer took a delta: pipelined from now on

    async def lost(self, address, base, delta, writer):  # its retention dropped the base meanwhile
        return Reply(encode_error(cas_pb2.Error.NOT_FOUND, "no base block"))

    monkeypatch.setattr(type(storage[0].cas_server), "_store_delta", lost)
    report = await publish_one(publisher, b"two")
    assert report.stored_on
    assert (await read_all(swarm, storage, publisher.name))[-1] == b"two"
