"""IPNS records between rlp2p and js `ipns` 10.1.6, and through js-libp2p DHT servers.

- Every kind of record rlp2p makes (sequences, validities, TTLs, with and without V1 fields) is
  accepted by js `ipns`'s validators; altered, expired and wrong-name ones are refused by them.
- Records js `ipns` makes for an rlp2p log key (the same key on both sides, passed as libp2p's
  protobuf private key) are accepted by rlp2p's ``verify_record``.
- Records travel through js DHT servers under the standard binary key ``/ipns/`` + multihash,
  both ways, through rlp2p's workaround for py-libp2p's text-only DHT keys
  (``Discovery.put_record_to_peers`` / ``get_record_from_peers``, rlp2p/p2p/dht.py edge 9), and
  rlp2p's py-libp2p servers keep what js puts under it (edge 10).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from libp2p.records.ipns import IPNSValidator

from interop.jsnode import JsNode, b64, unb64
from rl_util import assert_stopped, js_id

from rlp2p.core.address import address_of, address_to_text
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import (
    create_record,
    format_validity,
    head_value,
    ipns_dht_key,
    ipns_validator_key,
    verify_record,
)
from rlp2p.errors import ExpiredRecord, InvalidRecord, WrongName
from rlp2p.p2p.dht import binary_record_key

pytestmark = pytest.mark.interop

MAX_UINT64 = 2**64 - 1
NS = 1_000_000_000

# (sequence, validity, ttl, v1_compatible)
RLP2P_RECORDS = [
    (0, timedelta(minutes=1), timedelta(0), True),
    (1, timedelta(days=7), timedelta(minutes=1), True),  # rlp2p's defaults
    (2, timedelta(days=7), timedelta(minutes=1), False),  # V2 only
    (17, timedelta(hours=48), timedelta(minutes=5), True),  # the IPNS spec's suggestions
    (2**32 + 5, timedelta(days=365), timedelta(hours=1), True),
    (2**53 + 1, timedelta(seconds=30), timedelta(seconds=1), False),  # past JavaScript's safe integers
    (2**63 - 1, timedelta(days=3650), timedelta(microseconds=1), True),
    (MAX_UINT64, timedelta(days=2), timedelta(days=1), True),
]


async def test_js_ipns_accepts_every_record_rlp2p_makes(js_node):
    key = generate_log_key()
    name = log_name(key.public_key)
    head = address_of(b"a head page")
    for sequence, validity, ttl, v1 in RLP2P_RECORDS:
        case = f"seq {sequence}, validity {validity}, ttl {ttl}, v1 {v1}"
        now = datetime.now(timezone.utc)
        record = create_record(key, head, sequence, validity=validity, ttl=ttl, now=now, v1_compatible=v1)
        seen = await js_node.call("ipns_validate", name=name, record_b64=b64(record))
        assert seen["valid"] is True, f"{case}: {seen.get('error')}"
        assert seen["record"]["value"] == head_value(head).decode(), case
        assert seen["record"]["sequence"] == str(sequence), case
        assert seen["record"]["ttl_ns"] == str(ttl // timedelta(microseconds=1) * 1000), case
        assert seen["record"]["validity"] == format_validity(now + validity).decode(), case
        assert seen["record"]["v1"] is v1, case
        assert seen["head"] == address_to_text(head), case


async def test_js_ipns_accepts_the_compact_default_record(js_node):
    """rlp2p's default record: V2 only, no pubKey (js takes the key from the name), 221 B."""
    from rlp2p.core.record import _IpnsEntry

    key = generate_log_key()
    name = log_name(key.public_key)
    head = address_of(b"a head page")
    record = create_record(key, head, 9)
    entry = _IpnsEntry.FromString(record)
    assert len(record) == 221 and not entry.HasField("pubKey") and not entry.HasField("signatureV1")
    seen = await js_node.call("ipns_validate", name=name, record_b64=b64(record))
    assert seen["valid"] is True, seen.get("error")
    assert seen["record"]["v1"] is False and seen["record"]["sequence"] == "9"
    assert seen["head"] == address_to_text(head)
    # and the V1 option too, pubKey included
    legacy = create_record(key, head, 10, v1_compatible=True)
    assert _IpnsEntry.FromString(legacy).HasField("pubKey")
    seen = await js_node.call("ipns_validate", name=name, record_b64=b64(legacy))
    assert seen["valid"] is True and seen["record"]["v1"] is True, seen.get("error")


async def test_js_ipns_refuses_altered_expired_and_misnamed_rlp2p_records(js_node):
    key = generate_log_key()
    name = log_name(key.public_key)
    head = address_of(b"a head page")
    good = create_record(key, head, 3)
    assert (await js_node.call("ipns_validate", name=name, record_b64=b64(good)))["valid"] is True

    # one bit of the V2 signature flipped, everything else as rlp2p wrote it (rlp2p's own
    # IpnsEntry schema, which keeps zero-valued V1 fields: py-libp2p's proto3 one drops them)
    from rlp2p.core.record import _IpnsEntry

    entry = _IpnsEntry.FromString(good)
    entry.signatureV2 = bytes([entry.signatureV2[0] ^ 1]) + entry.signatureV2[1:]
    forged = entry.SerializeToString()
    seen = await js_node.call("ipns_validate", name=name, record_b64=b64(forged))
    assert seen["valid"] is False and "SignatureVerificationError" in seen["error"]

    expired = create_record(key, head, 4, validity=timedelta(days=1), now=datetime.now(timezone.utc) - timedelta(days=2))
    seen = await js_node.call("ipns_validate", name=name, record_b64=b64(expired))
    assert seen["valid"] is False and "RecordExpiredError" in seen["error"]

    other = log_name(generate_log_key().public_key)
    seen = await js_node.call("ipns_validate", name=other, record_b64=b64(good))
    # a compact record names no key: under another name its signature just does not verify
    assert seen["valid"] is False and "SignatureVerificationError" in seen["error"]
    with_key = create_record(key, head, 3, pub_key=True)
    seen = await js_node.call("ipns_validate", name=other, record_b64=b64(with_key))
    assert seen["valid"] is False and "InvalidEmbeddedPublicKeyError" in seen["error"]

    # and rlp2p agrees on each
    with pytest.raises(InvalidRecord):
        verify_record(name, forged)
    with pytest.raises(ExpiredRecord):
        verify_record(name, expired)
    with pytest.raises(InvalidRecord):
        verify_record(other, good)
    with pytest.raises(WrongName):
        verify_record(other, with_key)


# (sequence, lifetime or validity, ttl ns, v1_compatible)
JS_RECORDS = [
    (0, {"lifetime_ms": 60_000}, None, True),  # js's defaults: TTL 5 minutes, V1 + V2
    (1, {"lifetime_ms": 7 * 24 * 3600 * 1000}, 60 * NS, True),
    (5, {"lifetime_ms": 3_600_000}, 0, False),  # V2 only, TTL 0
    (2**53 + 1, {"lifetime_ms": 3_600_000}, 3600 * NS, True),
    (MAX_UINT64, {"validity": "2099-01-02T03:04:05.123456789Z"}, 1, False),
]


def ed25519_private_key_64(key) -> bytes:
    """The log key as go and js write a libp2p-protobuf Ed25519 private key: Data is the seed then
    the public key (64 bytes). py-libp2p's ``serialize()``, which rlp2p's key files hold, writes
    the 32-byte seed alone."""
    from libp2p.crypto.pb import crypto_pb2

    data = key.private_key.to_bytes() + key.public_key.to_bytes()
    return crypto_pb2.PrivateKey(key_type=crypto_pb2.KeyType.Ed25519, data=data).SerializeToString()


async def test_rlp2p_accepts_records_js_ipns_makes_for_a_log_key(js_node):
    key = generate_log_key()
    name = log_name(key.public_key)
    head = address_of(b"the head page js points at")
    as_go_and_js_write_it = b64(ed25519_private_key_64(key))
    for sequence, when, ttl_ns, v1 in JS_RECORDS:
        case = f"seq {sequence}, {when}, ttl {ttl_ns}, v1 {v1}"
        args = {"private_key_b64": as_go_and_js_write_it, "value": f"/ipfs/{address_to_text(head)}", "seq": str(sequence)}
        if ttl_ns is not None:
            args["ttl_ns"] = str(ttl_ns)
        made = await js_node.call("ipns_create", v1_compatible=v1, **args, **when)
        assert made["protobuf_import"] == "ok", case  # js's own privateKeyFromProtobuf took the key
        assert made["name"] == name, case  # the same key on both sides
        assert unb64(made["routing_key_b64"]) == ipns_dht_key(name), case
        raw = unb64(made["record_b64"])
        info = verify_record(name, raw)
        assert info.head == head, case
        assert info.sequence == sequence, case
        assert info.ttl_ns == (300 * NS if ttl_ns is None else ttl_ns), case
        # the same instant, to the microsecond rlp2p keeps
        assert format_validity(info.validity).decode()[:26] == made["record"]["validity"][:26], case
        # py-libp2p's own IPNS validator (what a py-libp2p DHT server runs) takes it too
        IPNSValidator().validate(ipns_validator_key(name), raw)


async def test_rlp2p_key_files_import_into_js_as_they_are(js_node, tmp_path):
    """rlp2p's key files hold the 64-byte Ed25519 form go and js write, so js's own
    privateKeyFromProtobuf takes them, and js signs for the same log."""
    from rlp2p.core.keys import save_key

    key = generate_log_key()
    name = log_name(key.public_key)
    save_key(tmp_path / "log.key", key)
    head = address_of(b"head")
    made = await js_node.call(
        "ipns_create",
        private_key_b64=b64((tmp_path / "log.key").read_bytes()),
        value=f"/ipfs/{address_to_text(head)}",
        seq="1",
        lifetime_ms=60_000,
    )
    assert made["protobuf_import"] == "ok"
    assert made["name"] == name
    assert verify_record(name, unb64(made["record_b64"])).head == head


# ---- records through js DHT servers under the binary /ipns/ key ----


async def _py_dht_node(swarm, js_nodes, name="py", *, server=True):
    """A py rlp2p node connected to every js node, each js node having it in its routing table."""
    node = await swarm.start_node(name, dht_server=server, bootstrap=())
    for js in js_nodes:
        await node.connect(js.addrs[0])
        if server:
            await js.call("add_peer", addr=node.addrs[0])
    return node


async def test_py_puts_a_record_under_the_binary_key_and_js_gets_it(swarm, js_deps):
    key = generate_log_key()
    name = log_name(key.public_key)
    info = verify_record(name, create_record(key, address_of(b"page"), 9))
    async with JsNode() as js0, JsNode() as js1:
        await js0.call("add_peer", addr=js1.addrs[0])
        node = await _py_dht_node(swarm, [js0, js1])

        stored = await node.discovery.put_record_to_peers(info)
        assert set(stored) == {js_id(js0), js_id(js1)}

        for js in (js0, js1):
            got = await js.call("dht_get", key_b64=b64(binary_record_key(name)))
            assert unb64(got["value_b64"]) == info.raw
            seen = await js.call("ipns_validate", name=name, record_b64=got["value_b64"])
            assert seen["valid"] is True and seen["record"]["sequence"] == "9"

        # put_record sends the binary key only (edge 7), and keeps its own copy
        newer = verify_record(name, create_record(key, address_of(b"page 2"), 10))
        await node.discovery.put_record(newer)
        got = await js1.call("dht_get", key_b64=b64(binary_record_key(name)))
        assert unb64(got["value_b64"]) == newer.raw
        assert node.discovery.dht.value_store.get(binary_record_key(name)).value == newer.raw
    assert_stopped(js0, js1)


async def test_js_puts_a_record_under_the_binary_key_and_py_gets_it(swarm, js_deps):
    key = generate_log_key()
    name = log_name(key.public_key)
    head = address_of(b"js head")
    async with JsNode() as js0, JsNode() as js1:
        await js0.call("add_peer", addr=js1.addrs[0])
        node = await _py_dht_node(swarm, [js0, js1])
        made = await js0.call(
            "ipns_create",
            private_key_b64=b64(key.private_key.serialize()),
            value=f"/ipfs/{address_to_text(head)}",
            seq="4",
            lifetime_ms=3_600_000,
        )

        put = await js0.call("dht_put", key_b64=made["routing_key_b64"], value_b64=made["record_b64"])
        assert js1.peer_id in put["stored_at"]
        # rlp2p's py-libp2p server keeps it under the binary key (edge 10)
        assert node.peer_id.to_base58() in put["stored_at"]
        assert node.discovery.dht.value_store.get(binary_record_key(name)).value == unb64(made["record_b64"])

        values = await node.discovery.get_record_from_peers(name)
        assert set(values) == {js_id(js0), js_id(js1)}
        for value in values.values():
            info = verify_record(name, value)
            assert (info.head, info.sequence) == (head, 4)
        # Discovery.get_record finds it (its own copy and the js servers')
        best = await node.discovery.get_record(name)
        assert best is not None and best.raw == unb64(made["record_b64"])
    assert_stopped(js0, js1)
