"""Each py-libp2p sharp edge rlp2p handles (rlp2p/p2p/host.py, rlp2p/p2p/dht.py), pinned by a
test that fails if the workaround regresses."""

from __future__ import annotations

import logging

import trio

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name, name_to_peer_id
from rlp2p.core.placement import provider_key
from rlp2p.core.record import create_record, verify_record
from rlp2p.p2p.dht import KAD_PROTOCOL, binary_record_key
from rlp2p.p2p.host import make_host, quiet_libp2p_logs


def test_hosts_dial_without_the_happy_eyeballs_delay():
    host = make_host()
    assert host.get_network().connection_config.max_connections_per_peer == 1


def test_libp2p_logs_are_set_after_libp2p_resets_them():
    logging.getLogger("libp2p").setLevel(logging.WARNING)
    logging.getLogger("libp2p.network.auto_connector").setLevel(logging.INFO)
    quiet_libp2p_logs(logging.ERROR)
    assert logging.getLogger("libp2p").level == logging.ERROR
    assert logging.getLogger("libp2p.network.auto_connector").level == logging.ERROR
    quiet_libp2p_logs(logging.CRITICAL)


async def test_dht_exists_before_connecting_so_peers_learn_kad(swarm):
    storage, other = await swarm.add_storage(2)
    # identify told each side the other serves kad, so each ends up in the other's routing table
    # (the second at the latest when the background refresh queries it)
    assert storage.peer_id in other.discovery.dht.routing_table.get_peer_ids()
    with trio.fail_after(5):
        # the listener's identify of the dialer runs in the background (behind gossipsub's
        # stream on the same new connection)
        while not storage.serves(other.peer_id, KAD_PROTOCOL):
            await trio.sleep(0.02)
        while other.peer_id not in storage.discovery.dht.routing_table.get_peer_ids():
            await trio.sleep(0.02)


async def test_bootstrap_fills_the_routing_table_through_one_peer(swarm):
    await swarm.add_storage(4)
    late = await swarm.start_node("late", storage=True)
    # it bootstrapped through storage0 only, and the refresh (in the background) finds the others
    with trio.fail_after(5):
        while late.discovery.dht.get_routing_table_size() < 3:
            await trio.sleep(0.02)


async def test_a_dead_bootstrap_peer_does_not_stop_the_others(swarm):
    (storage,) = await swarm.add_storage(1)
    # a peer that exists nowhere: its own id (an edited copy of the live peer's id could be that id)
    dead = "/ip4/127.0.0.1/tcp/1/p2p/" + log_name(generate_log_key().public_key)
    node = await swarm.start_node("n", bootstrap=(dead, storage.addrs[0]), timeout=2.0)
    assert storage.peer_id in node.host.get_connected_peers()


async def test_find_providers_is_deduplicated(swarm):
    storage = await swarm.add_storage(3)
    name = log_name(generate_log_key().public_key)
    for _ in range(3):  # the same peer announcing again must still be one provider
        assert await storage[0].discovery.announce_log(name)
    reader = await swarm.start_node("reader")
    found = await reader.discovery.find_log_peers(name)
    assert [info.peer_id for info in found] == [storage[0].peer_id]


async def test_one_provider_record_per_log_not_per_block(swarm):
    storage = await swarm.add_storage(3)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key())
    await publisher.append([f"m{i}".encode() for i in range(100)])
    await publisher.publish()
    with trio.fail_after(5):  # announcements run in the background, off the request path
        while True:
            keys = {k for s in storage for k in s.discovery.dht.provider_store.providers}
            if len(keys) >= 2:
                break
            await trio.sleep(0.05)
    await trio.sleep(0.3)
    keys = {k for s in storage for k in s.discovery.dht.provider_store.providers}
    # the log's, and its head page's for IPFS nodes (rlp2p/p2p/bitswap.py): never one per block
    assert len(keys) == 2


async def test_get_record_asks_the_network_not_only_the_local_copy(swarm):
    storage = await swarm.add_storage(3)
    key = generate_log_key()
    name = log_name(key.public_key)
    head = address_of(b"head page")
    first = verify_record(name, create_record(key, head, 1))
    second = verify_record(name, create_record(key, head, 2))
    # storage0 holds seq 1 locally; seq 2 reaches only the others
    storage[0].discovery.dht.value_store.put(binary_record_key(name), first.raw)
    for node in storage[1:]:
        node.discovery.dht.value_store.put(binary_record_key(name), second.raw)
    best = await storage[0].discovery.get_record(name)
    assert best is not None and best.sequence == 2


async def test_storage_peers_put_records_they_accept_into_the_dht(swarm):
    storage = await swarm.add_storage(2)
    bystander = storage[1]
    key = generate_log_key()
    name = log_name(key.public_key)
    record = verify_record(name, create_record(key, address_of(b"p"), 1))
    # the record reaches storage0 through NS only, as if its publisher put it there and left
    await storage[0].astore.put_record(record)
    with trio.fail_after(5):
        while bystander.discovery.dht.value_store.get(binary_record_key(name)) is None:
            await trio.sleep(0.05)
    assert bystander.discovery.dht.value_store.get(binary_record_key(name)).value == record.raw


def test_record_and_provider_keys():
    name = log_name(generate_log_key().public_key)
    assert binary_record_key(name) == b"/ipns/" + name_to_peer_id(name).to_bytes()
    assert len(binary_record_key(name)) <= 50  # py-libp2p's FIND_NODE limit for a non-multihash key
    # the provider key is a CID, so py-libp2p sends its multihash (a valid FIND_NODE key)
    assert provider_key(name).startswith("bafkrei")


async def test_the_republish_loop_puts_records_back_after_servers_drop_them(swarm):
    holder = await swarm.start_node("holder", storage=True, republish_interval=0.3)
    bystander = await swarm.start_node("bystander", storage=True)
    key = generate_log_key()
    name = log_name(key.public_key)
    record = verify_record(name, create_record(key, address_of(b"p"), 1))
    await holder.astore.put_record(record)
    dht_key = binary_record_key(name)
    with trio.fail_after(5):
        while bystander.discovery.dht.value_store.get(dht_key) is None:
            await trio.sleep(0.05)
    bystander.discovery.dht.value_store.remove(dht_key)  # as a server does after 24 h
    with trio.fail_after(5):
        while bystander.discovery.dht.value_store.get(dht_key) is None:
            await trio.sleep(0.05)


async def test_dht_clients_stay_out_of_servers_routing_tables(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client")
    # the client opens KAD streams to the server (a lookup); the server must not keep it
    await client.discovery.find_log_peers(log_name(generate_log_key().public_key))
    assert client.peer_id not in storage.discovery.dht.routing_table.get_peer_ids()
