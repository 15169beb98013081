"""A second implementation of rlp2p's storage peer, in JavaScript (interop/rlp2p-storage.mjs, from
proto/ only: CAS and NS servers keeping blocks and records in memory, behind ``node.mjs
--storage``). A Python Alice publishes to it, a Python Bob and the JavaScript reader sync from
it, and it answers bad input with the same typed errors as rlp2p's own storage peer.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import cid
import multihash
import pytest
import trio
from libp2p.utils.varint import encode_uvarint

from interop.jsnode import JsNode, b64, unb64
from rl_util import assert_stopped, js_id, js_messages, py_messages, wait_for

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.page import LogMode
from rlp2p.core.placement import provider_key
from rlp2p.core.record import create_record
from rlp2p.errors import RemoteError, Rlp2pError
from rlp2p.pb.vac import cas_pb2, ns_pb2
from rlp2p.wire.cas import CAS_PROTOCOL, decode_response
from rlp2p.wire.ns import NS_PROTOCOL

pytestmark = pytest.mark.interop


def bodies(start: int, count: int) -> list[bytes]:
    return [f"note {i}".encode() * (1 + i % 3) for i in range(start, start + count)]


async def test_py_alice_publishes_to_a_js_storage_peer_and_readers_sync_from_it(swarm, js_deps):
    key = generate_log_key()
    mode = LogMode.paged(5, embed=0)
    async with JsNode("--storage") as store, JsNode() as js_reader:
        store_id = js_id(store)
        assert {CAS_PROTOCOL, NS_PROTOCOL} <= set((await store.call("protocols"))["protocols"])

        alice = await swarm.start_node("alice", bootstrap=())
        await alice.connect(store.addrs[0])
        publisher = alice.publisher(key, mode=mode, replica_peers=[store_id], replicas=1)
        name = publisher.name
        await publisher.append(bodies(0, 12))
        first = await publisher.publish()
        assert first.stored_on == [store.peer_id]
        held = await store.call("storage_info")
        assert held["records"] == {name: "1"}
        assert held["blocks"] == 12 + 3  # every message block and the 3 pages
        await swarm.stop(alice)  # Alice is offline from here

        bob = await swarm.start_node("bob", bootstrap=())
        await bob.connect(store.addrs[0])
        synced_got: list = []
        synced = await bob.reader(storage_peers=[store_id]).sync(name, on_message=synced_got.append)
        assert [d.message.body for d in synced_got] == bodies(0, 12)
        assert synced.record_seq == 1 and synced.peers_used == [store.peer_id]

        # the JavaScript reader, from the JavaScript storage peer: rlp2p's wire on both ends
        got = await js_reader.call("rl_sync", name=name, peers=[store.addrs[0]])
        assert js_messages(got) == py_messages(synced_got)

        # Alice comes back with more: only what the js peer lacks is uploaded, sequence 2
        alice = await swarm.start_node("alice", bootstrap=())
        await alice.connect(store.addrs[0])
        publisher = alice.publisher(key, mode=mode, replica_peers=[store_id], replicas=1)
        await publisher.append(bodies(12, 4))
        second = await publisher.publish()
        assert second.sequence == 2 and second.stored_on == [store.peer_id]
        # 4 message blocks, the page of seq 11..15 (it grew) and the new head page (seq 16)
        assert second.replicas[0].blocks_sent == 4 + 2
        assert (await store.call("storage_info"))["records"] == {name: "2"}
        await swarm.stop(alice)

        more_got: list = []
        await bob.reader(storage_peers=[store_id]).sync(name, on_message=more_got.append)
        assert [d.seq for d in more_got] == [13, 14, 15, 16]
        assert [d.message.body for d in more_got] == bodies(12, 4)
        got = await js_reader.call("rl_sync", name=name, peers=[store.addrs[0]], delivered_seq=12)
        assert js_messages(got) == py_messages(more_got)
    assert_stopped(store, js_reader)


async def test_py_bob_finds_a_js_storage_peer_through_its_provider_record(swarm, js_deps):
    """The js storage peer announces each log it accepts under rlp2p's provider key (computed in
    JavaScript from its definition); a py reader that knows only the log's name finds it in the
    DHT and syncs."""
    key = generate_log_key()
    name = log_name(key.public_key)
    async with JsNode("--storage") as store:
        assert (await store.call("provider_key", name=name))["cid"] == provider_key(name)
        alice = await swarm.start_node("alice", bootstrap=(store.addrs[0],))
        publisher = alice.publisher(key, mode=LogMode.linked_list(embed=None), replica_peers=[js_id(store)], replicas=1)
        await publisher.append(bodies(0, 5))
        await publisher.publish()
        await swarm.stop(alice)
        await wait_for(lambda: _announced(store, name), "the js storage peer's announcement")

        bob = await swarm.start_node("bob", bootstrap=(store.addrs[0],))
        found = await bob.discovery.find_log_peers(name)
        assert [info.peer_id for info in found] == [js_id(store)]
        synced_got: list = []
        synced = await bob.reader().sync(name, on_message=synced_got.append)  # storage peers from the DHT
        assert [d.message.body for d in synced_got] == bodies(0, 5)
        assert synced.peers_used == [store.peer_id]
    assert_stopped(store)


async def _announced(store: JsNode, name: str) -> bool:
    """The js storage peer holds its own provider record for the log, with its addresses.

    js-libp2p writes its own addresses into its peer store about a second after it starts (a
    1000 ms debounce in its address manager); until then its GET_PROVIDERS answers leave itself
    out, since providers without addresses are filtered, so a reader would find nothing.
    """
    info = await store.call("storage_info")
    if name not in info["announced"]:
        return False
    # limit 1: its own provider record answers at once (with an empty routing table, a js
    # lookup waits for peers until it times out)
    found = await store.call("find_providers", cid=provider_key(name), limit=1)
    return any(p["peerId"] == store.peer_id and p["addrs"] for p in found["providers"])


# ---- bad input: the js storage peer and rlp2p's own answer alike ----


def _cid_dag_pb(data: bytes) -> cid.CIDv1:
    import hashlib

    return cid.CIDv1("dag-pb", multihash.encode(hashlib.sha256(data).digest(), "sha2-256"))


async def _outcome(coro) -> str:
    """"OK", the remote's typed error code, or the local exception's type name."""
    try:
        await coro
    except RemoteError as exc:
        return exc.code
    except Rlp2pError as exc:
        return type(exc).__name__
    return "OK"


async def probe(node, peer, js_helper: JsNode) -> dict[str, str]:
    """Send one storage peer every kind of request and bad input; what it answered to each."""
    out: dict[str, str] = {}
    key, other = generate_log_key(), generate_log_key()
    name = log_name(key.public_key)
    blocks = [b"block one", b"", b"\x00" * 100_000]
    never = address_of(b"never stored")

    async with node.cas(peer) as cas:
        addresses = await cas.add_many(blocks)  # raises unless the server names our addresses
        out["add"] = "OK" if addresses == [address_of(b) for b in blocks] else "WRONG ADDRESS"
        got = await cas.get_many([addresses[0], addresses[1], never, b"\x01\x02\x03", _cid_dag_pb(b"x").buffer])
        out["get"] = "OK" if (got[addresses[0]], got[addresses[1]]) == (blocks[0], b"") else "WRONG DATA"
        out["get missing"] = getattr(got[never], "code", "no error")
        out["get short address"] = getattr(got[b"\x01\x02\x03"], "code", "no error")
        out["get dag-pb address"] = getattr(got[_cid_dag_pb(b"x").buffer], "code", "no error")

    async with node.rpc(peer, CAS_PROTOCOL) as rpc:
        # a request with no method: an error, and the stream keeps serving
        empty, content = [decode_response(f) for f in await rpc.call_many([b"", _get(addresses[0])])]
        out["no method"] = cas_pb2.Error.Code.Name(empty.error.code)
        out["after no method"] = "OK" if content.content.data == blocks[0] else "WRONG"
        # a malformed request: an error, and the stream is closed
        out["malformed"] = cas_pb2.Error.Code.Name(decode_response(await rpc.call(b"\xff\xff\xff")).error.code)
        out["after malformed"] = await _outcome(rpc.call(_get(addresses[0])))

    async with node.rpc(peer, CAS_PROTOCOL) as rpc:
        # a frame longer than the limit: refused from its length prefix, then the stream is reset
        await rpc.stream.write(encode_uvarint(node.config.limits.max_frame + 1) + b"\x12")
        frame = None
        with trio.move_on_after(5):
            try:
                frame = await rpc.framed.read_frame()
            except Rlp2pError as exc:
                out["oversize frame"] = type(exc).__name__
        if frame is not None:
            out["oversize frame"] = cas_pb2.Error.Code.Name(decode_response(frame).error.code)

    now = datetime.now(timezone.utc)
    async with node.ns(peer) as ns:
        out["fetch unknown"] = await _outcome(ns.fetch(name))
        out["update seq 2"] = await _outcome(ns.update(name, create_record(key, addresses[0], 2)))
        out["update seq 1"] = await _outcome(ns.update(name, create_record(key, addresses[0], 1)))
        out["update seq 2 again"] = await _outcome(ns.update(name, create_record(key, addresses[1], 2)))
        out["update other key"] = await _outcome(ns.update(name, create_record(other, addresses[0], 3)))
        expired = create_record(key, addresses[0], 4, validity=timedelta(hours=1), now=now - timedelta(hours=2))
        out["update expired"] = await _outcome(ns.update(name, expired))
        out["update junk"] = await _outcome(ns.update(name, b"\x0a\x03abc"))
        out["update too large"] = await _outcome(ns.update(name, b"\x00" * (10 * 1024 + 1)))
        out["update long name"] = await _outcome(ns.update("x" * 300, create_record(key, addresses[0], 5)))
        # an IPNS record valid for js ipns whose value is not /ipfs/<CAS address>
        made = await js_helper.call(
            "ipns_create", private_key_b64=b64(key.private_key.serialize()),
            value=f"/ipfs/{_cid_dag_pb(b'x').encode('base32').decode()}", seq="6", lifetime_ms=60_000,
        )
        out["update not a CAS head"] = await _outcome(ns.update(name, unb64(made["record_b64"])))
        held = await ns.fetch(name)
        out["fetch"] = "OK" if held.sequence == 2 and held.head == addresses[0] else f"seq {held.sequence}"
    return out


def _get(address: bytes) -> bytes:
    return cas_pb2.CasRequest(get=cas_pb2.Address(id=address)).SerializeToString()


EXPECTED = {
    "add": "OK",
    "get": "OK",
    "get missing": "NOT_FOUND",
    "get short address": "BAD_ADDRESS",
    "get dag-pb address": "BAD_ADDRESS",
    "no method": "BAD_REQUEST",
    "after no method": "OK",
    "malformed": "BAD_REQUEST",
    "after malformed": "StreamClosed",
    "oversize frame": "TOO_LARGE",
    "fetch unknown": "NOT_FOUND",
    "update seq 2": "OK",
    "update seq 1": "STALE",
    "update seq 2 again": "STALE",
    "update other key": "INVALID_RECORD",
    "update expired": "INVALID_RECORD",
    "update junk": "INVALID_RECORD",
    "update too large": "TOO_LARGE",
    "update long name": "BAD_REQUEST",
    "update not a CAS head": "INVALID_RECORD",
    "fetch": "OK",
}


async def test_js_and_py_storage_peers_answer_bad_input_alike(swarm, js_deps):
    (py_store,) = await swarm.add_storage(1)
    async with JsNode("--storage") as store:
        client = await swarm.start_node("client")
        await client.connect(store.addrs[0])
        from_py = await probe(client, py_store.peer_id, store)
        from_js = await probe(client, js_id(store), store)
        assert from_py == EXPECTED
        assert from_js == EXPECTED
        # and both keep serving everyone after all that
        assert (await store.call("storage_info"))["blocks"] == 3
        async with client.cas(js_id(store)) as cas:
            assert await cas.get(address_of(b"block one")) == b"block one"
    assert_stopped(store)


def test_the_probe_covers_every_ns_status_and_cas_error_code():
    """Every typed refusal the protocols define (but server-side failures) is exercised above."""
    # a storage peer's admission refusals (QUOTA, NOT_ALLOWED, INCOMPLETE) are rlp2p's policy, not
    # the protocol's: tests/node/test_storage_role.py exercises them
    policy = {"QUOTA", "NOT_ALLOWED", "INCOMPLETE"}
    cas_codes = set(cas_pb2.Error.Code.keys()) - {"UNKNOWN", "UNAVAILABLE"} - policy
    ns_statuses = set(ns_pb2.Response.Status.keys()) - {"OK", "UNAVAILABLE"} - policy
    ns_codes = {"NOT_FOUND"}  # a fetch's refusals; BAD_REQUEST and TOO_LARGE are the framing's
    assert cas_codes <= set(EXPECTED.values())
    assert ns_statuses <= set(EXPECTED.values())
    assert ns_codes <= set(EXPECTED.values())
