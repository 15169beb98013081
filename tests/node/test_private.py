"""Private logs on real hosts: storage peers hold and serve ciphertexts; a capability reads."""

from __future__ import annotations

import pytest

from rlp2p.testing import follow_in
from rlp2p.core.keys import generate_log_key
from rlp2p.core.message import Message
from rlp2p.core.page import LogMode
from rlp2p.core.private import Capability, PrivateState, new_seed
from rlp2p.errors import CapabilityOutdated, CapabilityRequired, WrongCapability

MODE = LogMode.paged(4, embed=2)


def bodies(start: int, count: int) -> list[bytes]:
    return [f"private body {i:04d} of the log".encode() for i in range(start, start + count)]


class Recording:
    """A CAS backend that keeps a copy of every block it hands to the wire."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.served: list[bytes] = []

    async def get_blocks(self, addresses):
        found = await self.inner.get_blocks(addresses)
        self.served.extend(found.values())
        return found

    async def put_blocks(self, items):
        await self.inner.put_blocks(items)


class WrongBytes(Recording):
    """A storage peer that serves other bytes than it stored: a tampered ciphertext."""

    async def get_blocks(self, addresses):
        found = await self.inner.get_blocks(addresses)
        return {a: d[:-1] + bytes([d[-1] ^ 1]) for a, d in found.items()}


async def publish_private(swarm, count: int, **kwargs):
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, private=True, **kwargs)
    await publisher.append(bodies(0, count), timestamp=1_700_000_000)
    await publisher.publish()
    return alice, publisher


def secrets_of(publisher, texts: list[bytes]) -> list[bytes]:
    """What must not leak: every body and every H1 (raw and hex)."""
    ids = [Message(publisher.group_id, 1_700_000_000, b).id for b in texts]
    return [*texts, *ids, *(i.hex().encode() for i in ids)]


def files_of(folder) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


async def test_storage_peers_disk_wire_and_dht_hold_no_plaintext_and_a_capability_reads_all(swarm):
    storage = await swarm.add_storage(3)
    recorders = []
    for node in storage:
        node.cas_server.backend = Recording(node.cas_server.backend)
        recorders.append(node.cas_server.backend)
    alice, publisher = await publish_private(swarm, 10)
    capability = str(await publisher.capability())
    bob = await swarm.start_node("bob")
    got: list = []
    report = await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(capability, on_message=got.append)
    assert [d.message.body for d in got] == bodies(0, 10)  # in order, once
    assert [d.seq for d in got] == list(range(1, 11))
    assert [d.id for d in got] == [d.message.id for d in got]  # the application gets H1
    assert report.new_messages == 10 and report.name == publisher.name
    assert [d.message.body for d in await bob.reader().inbox(publisher.name)] == bodies(0, 10)
    # a second sync delivers nothing again
    again: list = []
    assert (await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(capability, on_message=again.append)).up_to_date
    assert again == []

    secrets = secrets_of(publisher, bodies(0, 10))
    wire = b"".join(b for r in recorders for b in r.served)
    assert wire and not [s for s in secrets if s in wire]
    dht = b"".join(
        bytes(key) + record.SerializeToString()
        for node in swarm.running
        for key, (record, _) in node.discovery.dht.value_store.store.items()
    )
    assert dht and not [s for s in secrets if s in dht]
    for node in list(storage):
        await swarm.stop(node)
    for i in range(3):
        disk = files_of(swarm.root / f"storage{i}")
        assert len(disk) > 4096 and not [s for s in secrets if s in disk]
    # the search can fail: Alice's own folder holds her log in the clear
    assert bodies(0, 1)[0] in files_of(swarm.root / "alice")


async def test_a_wrong_capability_is_a_typed_error_and_delivers_nothing(swarm):
    storage = await swarm.add_storage(3)
    alice, publisher = await publish_private(swarm, 6)
    wrong = Capability(publisher.name, 0, new_seed())
    bob = await swarm.start_node("bob")
    reader = bob.reader(storage_peers=[s.peer_id for s in storage])
    with pytest.raises(WrongCapability):
        await reader.sync(publisher.name, capability=wrong)
    with pytest.raises(WrongCapability):  # a capability for another log than the one named
        await reader.sync(alice.peer_id.to_base58(), capability=await publisher.capability())
    assert bob.store.get_reader_state(publisher.name).delivered_seq == 0
    # without any capability: the pages say the log is private
    with pytest.raises(CapabilityRequired):
        await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(publisher.name)
    assert bob.store.get_reader_state(publisher.name).delivered_seq == 0


async def test_after_rotation_the_old_capability_reads_only_the_old_messages(swarm):
    storage = await swarm.add_storage(3)
    alice, publisher = await publish_private(swarm, 5)
    old = await publisher.capability()
    new = await publisher.rotate()
    assert new.epoch == old.epoch + 1 and new.secret != old.secret
    assert alice.store.private_state(publisher.name) == PrivateState(
        alice.store.private_state(publisher.name).seed, (1, 6)
    )
    await publisher.append(bodies(5, 4), timestamp=1_700_000_000)
    await publisher.publish()
    peers = [s.peer_id for s in storage]

    bob = await swarm.start_node("bob")
    got: list = []
    with pytest.raises(CapabilityOutdated) as info:
        await bob.reader(storage_peers=peers).sync(str(old), on_message=got.append)
    assert (info.value.sealed_from, info.value.epoch, info.value.capability_epoch) == (6, 1, 0)
    assert [d.message.body for d in got] == bodies(0, 5)
    assert bob.store.get_reader_state(publisher.name).delivered_seq == 5
    # once given the new capability, the same reader gets the rest, once
    more: list = []
    await bob.reader(storage_peers=peers).sync(str(new), on_message=more.append)
    assert [d.message.body for d in more] == bodies(5, 4)

    carol = await swarm.start_node("carol")
    everything: list = []
    await carol.reader(storage_peers=peers).sync(str(new), on_message=everything.append)
    assert [d.message.body for d in everything] == bodies(0, 9)


async def test_a_tampered_ciphertext_is_refused_and_the_reader_falls_over(swarm):
    storage = await swarm.add_storage(3)
    alice, publisher = await publish_private(swarm, 9)
    liar = storage[0]
    liar.cas_server.backend = WrongBytes(liar.cas_server.backend)
    bob = await swarm.start_node("bob")
    got: list = []
    report = await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(
        str(await publisher.capability()), on_message=got.append
    )
    assert [d.message.body for d in got] == bodies(0, 9)
    assert "HashMismatch" in report.peers_bypassed[liar.peer_id.to_string()]


async def test_the_mode_is_chosen_at_creation(swarm):
    await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    public = alice.publisher(generate_log_key(), replicas=1)
    await public.append([b"x"])
    with pytest.raises(ValueError):
        await public.capability()
    with pytest.raises(ValueError):
        await alice.publisher(public.key_pair, private=True).append([b"y"])
    key = generate_log_key()
    private = alice.publisher(key, private=True, replicas=1)
    await private.append([b"z"])
    # a later publisher of the same log takes the recorded mode
    again = alice.publisher(key, replicas=1)
    assert await again.capability() == await private.capability()
    with pytest.raises(ValueError):
        await alice.publisher(key, private=False).append([b"w"])


async def test_a_follower_follows_a_private_log_by_its_capability(swarm, nursery):
    import trio

    from rlp2p.node.follow import Follower

    storage = await swarm.add_storage(3)
    peers = [s.peer_id for s in storage]
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=MODE, private=True, replica_peers=peers)
    await publisher.append(bodies(0, 2), timestamp=1_700_000_000)
    await publisher.publish()
    bob = await swarm.start_node("bob")
    seen: list[bytes] = []
    follower = Follower(
        bob.reader(storage_peers=peers), [str(await publisher.capability())],
        on_message=lambda d: seen.append(d.message.body), poll_interval=3600.0,
    )
    assert list(follower.logs) == [publisher.name]
    scope = await follow_in(nursery, follower)
    assert seen == bodies(0, 2)
    await publisher.append(bodies(2, 1), timestamp=1_700_000_000)
    await publisher.publish()  # announced over gossipsub: the follower syncs with the capability
    with trio.fail_after(15):
        while len(seen) < 3:
            await trio.sleep(0.01)
    scope.cancel()
    assert seen == bodies(0, 3) and follower.stats.failures == 0
