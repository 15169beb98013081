"""A mixed swarm: py-libp2p storage peers and js-libp2p DHT servers in one Kademlia DHT.

Alice (py) publishes through the py storage peers; the js nodes are DHT servers connected to
them (and to each other). Bob (a py rlp2p reader) knows one peer only, a js node, and the log's
name: he must find the storage peers through provider records held by the DHT, get the record,
and sync the whole log, while Alice is offline.
"""

from __future__ import annotations

import pytest

from interop.jsnode import JsNode, JsNodeError, b64, unb64
from rl_util import assert_stopped, js_id, wait_for

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.placement import provider_key
from rlp2p.core.record import verify_record
from rlp2p.p2p.dht import KAD_PROTOCOL, binary_record_key

pytestmark = pytest.mark.interop


def bodies(count: int) -> list[bytes]:
    return [f"mixed swarm message {i}".encode() for i in range(count)]


async def test_bob_bootstraps_from_a_js_node_only_and_syncs_from_py_storage_peers(swarm, js_deps):
    async with JsNode() as js0, JsNode() as js1:
        storage = await swarm.add_storage(3)
        storage_ids = {s.peer_id for s in storage}
        # the js DHT servers join the swarm: each side puts the other in its routing table
        await js0.call("add_peer", addr=js1.addrs[0])
        for node in storage:
            for js in (js0, js1):
                await node.connect(js.addrs[0])
                assert node.serves(js_id(js), KAD_PROTOCOL)
                await js.call("add_peer", addr=node.addrs[0])
        for node in storage:
            assert {js_id(js0), js_id(js1)} <= set(node.discovery.dht.routing_table.get_peer_ids())

        alice = await swarm.start_node("alice")  # through a py storage peer
        publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=2))
        name = publisher.name
        await publisher.append(bodies(11))
        published = await publisher.publish()
        assert {str(p) for p in published.stored_on} == {s.to_base58() for s in storage_ids}
        await swarm.stop(alice)

        # the storage peers' provider records reached the js DHT servers
        async def providers_on(js):
            found = await js.call("find_providers", cid=provider_key(name), limit=3, timeout=5.0)
            return {p["peerId"] for p in found["providers"]} >= {s.to_base58() for s in storage_ids} or None

        for js in (js0, js1):
            await wait_for(lambda js=js: providers_on(js), f"the provider records on js node {js.peer_id}")
        # and the record, under the standard binary /ipns/ key (edge 9 of rlp2p/p2p/dht.py). The
        # storage peers put it after they announce the log, and Alice's own put runs in the
        # background and may have been cut short when she stopped: wait for it as for the providers
        async def record_on(js):
            try:
                got = await js.call("dht_get", key_b64=b64(binary_record_key(name)))
            except JsNodeError as exc:
                if "NotFoundError" not in str(exc):
                    raise
                return None  # not there yet
            return got

        for js in (js0, js1):
            got = await wait_for(lambda js=js: record_on(js), f"the record on js node {js.peer_id}")
            assert verify_record(name, unb64(got["value_b64"])).sequence == published.sequence

        # Bob is told of one peer, a js node; everything else he learns through the DHT
        bob = await swarm.start_node("bob", bootstrap=(js0.addrs[0],))
        assert bob.config.bootstrap == (js0.addrs[0],)
        assert js_id(js0) in bob.discovery.dht.routing_table.get_peer_ids()

        found = await bob.discovery.find_log_peers(name)
        assert found, "no storage peer found through provider records"
        assert {info.peer_id for info in found} <= storage_ids
        assert all(info.addrs for info in found)  # with addresses, learnt through the js node

        record = await bob.discovery.get_record(name)
        assert record is not None and record.sequence == published.sequence

        synced_got: list = []
        synced = await bob.reader().sync(name, on_message=synced_got.append)
        assert [d.message.body for d in synced_got] == bodies(11)
        assert [d.seq for d in synced_got] == list(range(1, 12))
        assert synced.record_seq == published.sequence
        assert set(synced.peers_used) <= {s.to_base58() for s in storage_ids}
    assert_stopped(js0, js1)
