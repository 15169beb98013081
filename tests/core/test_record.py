from datetime import datetime, timedelta, timezone

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from libp2p.crypto import secp256k1
from libp2p.records.ipns import IPNSValidator
from libp2p.records.pb.ipns_pb2 import IpnsEntry

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name, name_to_peer_id
from rlp2p.core.record import (
    DEFAULT_TTL,
    DEFAULT_VALIDITY,
    RecordInfo,
    _IpnsEntry,
    create_record,
    format_validity,
    head_value,
    ipns_dht_key,
    ipns_validator_key,
    parse_head_value,
    parse_validity,
    best_record,
    record_order,
    select_best,
    verify_record,
)
from rlp2p.errors import (
    AddressError,
    DecodeError,
    ExpiredRecord,
    InvalidRecord,
    RecordTooLarge,
    Rlp2pError,
    WrongName,
)
from rlp2p.limits import Limits

KEY_A = generate_log_key()
KEY_B = generate_log_key()
NAME_A = log_name(KEY_A.public_key)
NAME_B = log_name(KEY_B.public_key)
HEAD = address_of(b"head page")
# A fixed instant for everything judged against an injected clock. py-libp2p's IPNSValidator reads
# the real clock, so records handed to it are made at the real clock (fresh()), never at NOW.
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)
EOL_TEXT = b"2026-11-28T09:00:00.000000000Z"  # NOW + DEFAULT_VALIDITY


def record(sequence=1, *, key=KEY_A, head=HEAD, now=NOW, **kwargs) -> bytes:
    return create_record(key, head, sequence, now=now, **kwargs)


def fresh(sequence=1, **kwargs) -> bytes:
    """A record valid at the real clock, for code that reads it (py-libp2p's validator)."""
    return record(sequence, now=datetime.now(timezone.utc), **kwargs)


def parse(raw: bytes) -> IpnsEntry:
    return IpnsEntry.FromString(raw)


def signed(fields: dict, *, key=KEY_A, pubkey=True, canonical=True) -> bytes:
    """A V2-only record over arbitrary data fields, validly signed by ``key``."""
    data = cbor2.dumps(fields, canonical=canonical)
    entry = IpnsEntry(data=data, signatureV2=key.private_key.sign(b"ipns-signature:" + data))
    if pubkey:
        entry.pubKey = key.public_key.serialize()
    return entry.SerializeToString()


def fields(**changes) -> dict:
    base = {
        "Value": head_value(HEAD),
        "Validity": EOL_TEXT,
        "ValidityType": 0,
        "Sequence": 1,
        "TTL": 60 * 10**9,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


# --- values and keys -----------------------------------------------------------------------------


def test_head_value_is_the_base32_ipfs_path():
    assert head_value(address_of(b"hello")) == b"/ipfs/bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    assert parse_head_value(head_value(HEAD)) == HEAD


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"/ipns/" + head_value(HEAD)[6:],
        head_value(HEAD) + b"/sub/path",
        b"/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # CIDv0, not a CAS address
        b"/ipfs/\xff\xfe",
        "/ipfs/bafkrei...",  # text, not bytes
    ],
)
def test_bad_head_values(bad):
    with pytest.raises(DecodeError):
        parse_head_value(bad)


def test_dht_and_validator_keys():
    peer_id = name_to_peer_id(NAME_A)
    assert ipns_dht_key(NAME_A) == b"/ipns/" + peer_id.to_bytes()
    # identity multihash (0x00, 36 bytes) of the protobuf Ed25519 key (08 01 12 20 + 32 bytes)
    assert ipns_dht_key(NAME_A).startswith(b"/ipns/\x00\x24\x08\x01\x12\x20")
    assert ipns_validator_key(NAME_A) == "/ipns/" + NAME_A
    IPNSValidator().validate(ipns_validator_key(NAME_A), fresh())
    with pytest.raises(DecodeError):
        ipns_dht_key("nope")


def test_validity_text_round_trip():
    assert format_validity(datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)) == EOL_TEXT
    odd = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert format_validity(odd) == b"2026-01-02T01:04:05.678901000Z"
    assert parse_validity(format_validity(odd)) == odd
    assert parse_validity(b"2026-01-02T03:04:05.123456789+02:00") == datetime(
        2026, 1, 2, 1, 4, 5, 123456, tzinfo=timezone.utc
    )
    assert parse_validity(b"2026-01-02T03:04:05-01:30") == datetime(2026, 1, 2, 4, 34, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "bad",
    [b"", b"2026-11-28", b"2026-13-28T09:00:00Z", b"2026-11-28T09:00:00", b"2026-11-28T09:00:00+01:75", "x"],
)
def test_bad_validity_text(bad):
    with pytest.raises(DecodeError):
        parse_validity(bad)


# --- creating and verifying ----------------------------------------------------------------------


def test_created_record_passes_libp2p_validator_with_both_key_forms():
    raw = fresh(5, v1_compatible=True)
    hex_key = "/ipns/" + name_to_peer_id(NAME_A).to_bytes().hex()
    IPNSValidator().validate("/ipns/" + NAME_A, raw)
    IPNSValidator().validate(hex_key, raw)
    details = IPNSValidator().validate_with_details(hex_key, raw)
    assert details.sequence == 5 and details.has_v1_fields and details.public_key_inlined


def test_round_trip_of_every_field():
    raw = record(42, ttl=timedelta(seconds=90))
    info = verify_record(NAME_A, raw, now=NOW)
    assert info == RecordInfo(
        name=NAME_A,
        value=head_value(HEAD),
        head=HEAD,
        sequence=42,
        validity=NOW + DEFAULT_VALIDITY,
        ttl_ns=90 * 10**9,
        raw=raw,
    )
    entry = parse(raw)
    assert not entry.pubKey  # compact: the key is in the name
    assert KEY_A.public_key.verify(b"ipns-signature:" + entry.data, entry.signatureV2)
    assert cbor2.loads(entry.data) == {
        "Value": head_value(HEAD),
        "Validity": EOL_TEXT,
        "ValidityType": 0,
        "Sequence": 42,
        "TTL": 90 * 10**9,
    }


def test_defaults():
    assert DEFAULT_VALIDITY == timedelta(days=7) and DEFAULT_TTL == timedelta(minutes=1)
    data = cbor2.loads(parse(record()).data)
    assert data["TTL"] == 60 * 10**9 and data["Validity"] == EOL_TEXT


def test_record_is_small():
    assert len(record(2**64 - 1)) < 1024


def test_v1_fields_match_the_signed_data():
    raw = record(0, ttl=timedelta(0), v1_compatible=True)
    entry = parse(raw)
    data = cbor2.loads(entry.data)
    assert entry.value == data["Value"]
    assert entry.validity == data["Validity"]
    assert entry.validityType == data["ValidityType"] == 0
    assert entry.sequence == data["Sequence"] == 0
    assert entry.ttl == data["TTL"] == 0
    assert KEY_A.public_key.verify(entry.value + entry.validity + b"EOL", entry.signatureV1)
    # zero values are on the wire, not left to proto3 defaults: js ipns compares V1 fields with
    # strict equality and reads an absent validityType as undefined
    presence = _IpnsEntry.FromString(raw)
    for field in ("value", "validity", "validityType", "sequence", "ttl", "signatureV1"):
        assert presence.HasField(field), field


def test_compact_record_by_default():
    """V2 only and no pubKey (both optional in the IPNS spec for an Ed25519 name): 221 B, and
    py-libp2p's validator takes the key from the name."""
    raw = fresh(3)
    assert len(raw) == 221
    presence = _IpnsEntry.FromString(raw)
    for field in ("value", "validity", "validityType", "sequence", "ttl", "signatureV1", "pubKey"):
        assert not presence.HasField(field), field
    IPNSValidator().validate("/ipns/" + NAME_A, raw)
    hex_key = "/ipns/" + name_to_peer_id(NAME_A).to_bytes().hex()
    details = IPNSValidator().validate_with_details(hex_key, raw)
    assert not details.has_v1_fields and details.public_key_inlined
    assert verify_record(NAME_A, raw).sequence == 3
    # the V1 option is today's full record; pub_key alone adds 38 B
    assert len(fresh(3, v1_compatible=True)) == 435
    assert len(fresh(3, pub_key=True)) == 221 + 38
    assert _IpnsEntry.FromString(fresh(3, pub_key=True)).HasField("pubKey")


def test_cbor_key_order_is_canonical():
    data = parse(record(7)).data
    decoded = cbor2.loads(data)  # cbor2 keeps the order of the bytes
    keys = list(decoded)
    assert keys == sorted(keys, key=lambda k: (len(k.encode()), k.encode()))
    assert keys == ["TTL", "Value", "Sequence", "Validity", "ValidityType"]
    assert cbor2.dumps(decoded, canonical=True) == data
    # and not what a plain (insertion-order) encoder gives
    assert cbor2.dumps(dict(sorted(decoded.items()))) != data


def test_pubkey_may_be_omitted():
    entry = parse(record(2))
    entry.ClearField("pubKey")
    assert verify_record(NAME_A, entry.SerializeToString(), now=NOW).sequence == 2


def test_record_without_ttl_reads_as_zero():
    raw = signed(fields(TTL=None))
    assert verify_record(NAME_A, raw, now=NOW).ttl_ns == 0


def test_broken_v1_signature_is_ignored_as_the_spec_says():
    entry = parse(record(2))
    entry.signatureV1 = bytes(64)
    assert verify_record(NAME_A, entry.SerializeToString(), now=NOW).sequence == 2


@settings(max_examples=40, deadline=None)
@given(
    sequence=st.integers(min_value=0, max_value=2**64 - 1),
    block=st.binary(max_size=64),
    ttl_s=st.integers(min_value=0, max_value=10**6),
    v1=st.booleans(),
)
def test_create_then_verify_round_trips(sequence, block, ttl_s, v1):
    head = address_of(block)
    raw = create_record(KEY_A, head, sequence, ttl=timedelta(seconds=ttl_s), now=NOW, v1_compatible=v1)
    info = verify_record(NAME_A, raw, now=NOW)
    assert (info.head, info.sequence, info.ttl_ns, info.raw) == (head, sequence, ttl_s * 10**9, raw)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sequence": -1},
        {"sequence": 2**64},
        {"sequence": True},
        {"validity": timedelta(0)},
        {"ttl": timedelta(seconds=-1)},
        {"ttl": timedelta(days=999_999_999)},
        {"validity": timedelta(days=999_999_999)},
        {"now": datetime(2026, 1, 1)},  # naive
    ],
)
def test_create_refuses_bad_arguments(kwargs):
    sequence = kwargs.pop("sequence", 1)
    with pytest.raises(ValueError):
        create_record(KEY_A, HEAD, sequence, **({"now": NOW} | kwargs))


def test_create_refuses_bad_head_and_key():
    with pytest.raises(AddressError):
        create_record(KEY_A, b"not a cid", 1, now=NOW)
    with pytest.raises(ValueError):
        create_record(secp256k1.create_new_key_pair(), HEAD, 1, now=NOW)


def test_create_checks_the_size_limit():
    with pytest.raises(RecordTooLarge):
        record(limits=Limits(max_record=200))


# --- typed refusals ------------------------------------------------------------------------------


def test_forged_signature():
    entry = parse(record(2))
    signature = bytearray(entry.signatureV2)
    signature[10] ^= 0x01
    entry.signatureV2 = bytes(signature)
    with pytest.raises(InvalidRecord) as caught:
        verify_record(NAME_A, entry.SerializeToString(), now=NOW)
    assert type(caught.value) is InvalidRecord


def test_altered_data():
    entry = parse(record(2, v1_compatible=False))
    data = cbor2.loads(entry.data)
    data["Sequence"] = 3
    entry.data = cbor2.dumps(data, canonical=True)
    with pytest.raises(InvalidRecord) as caught:
        verify_record(NAME_A, entry.SerializeToString(), now=NOW)
    assert type(caught.value) is InvalidRecord


def test_altered_v1_copy():
    entry = parse(record(2, v1_compatible=True))
    entry.value = head_value(address_of(b"another head"))
    with pytest.raises(InvalidRecord):
        verify_record(NAME_A, entry.SerializeToString(), now=NOW)


def test_expired():
    raw = record(2)
    eol = NOW + DEFAULT_VALIDITY
    assert verify_record(NAME_A, raw, now=eol - timedelta(microseconds=1)).sequence == 2
    with pytest.raises(ExpiredRecord):
        verify_record(NAME_A, raw, now=eol)
    with pytest.raises(ExpiredRecord):
        verify_record(NAME_A, raw, now=eol + timedelta(days=1))


def test_expiry_uses_the_clock_by_default():
    with pytest.raises(ExpiredRecord):
        verify_record(NAME_A, record(now=datetime(2000, 1, 1, tzinfo=timezone.utc)))
    fresh = create_record(KEY_A, HEAD, 1)
    assert verify_record(NAME_A, fresh).sequence == 1


def test_now_must_be_aware():
    with pytest.raises(ValueError):
        verify_record(NAME_A, record(), now=datetime(2026, 11, 21))


def test_wrong_name():
    raw_b = record(2, key=KEY_B, pub_key=True)
    assert verify_record(NAME_B, raw_b, now=NOW).name == NAME_B
    with pytest.raises(WrongName, match=NAME_B):
        verify_record(NAME_A, raw_b, now=NOW)
    # an expired record of B is still B's
    with pytest.raises(WrongName):
        verify_record(NAME_A, raw_b, now=NOW + timedelta(days=30))


def test_wrong_key_without_pubkey_is_just_invalid():
    entry = parse(record(2, key=KEY_B))
    entry.ClearField("pubKey")
    with pytest.raises(InvalidRecord) as caught:
        verify_record(NAME_A, entry.SerializeToString(), now=NOW)
    assert type(caught.value) is InvalidRecord


def test_pubkey_of_b_with_forged_signature_is_invalid_not_wrong_name():
    entry = parse(record(2, key=KEY_B))
    entry.signatureV2 = bytes(64)
    with pytest.raises(InvalidRecord) as caught:
        verify_record(NAME_A, entry.SerializeToString(), now=NOW)
    assert type(caught.value) is InvalidRecord


def test_oversize_is_refused_before_parsing():
    garbage = b"\xff" * (10 * 1024 + 1)
    with pytest.raises(RecordTooLarge) as caught:
        verify_record(NAME_A, garbage, now=NOW)
    assert (caught.value.size, caught.value.limit) == (10 * 1024 + 1, 10 * 1024)
    # before the name is even looked at
    with pytest.raises(RecordTooLarge):
        verify_record("not a name", garbage, now=NOW)
    # at the limit it is parsed, and refused as garbage
    with pytest.raises(InvalidRecord) as at_limit:
        verify_record(NAME_A, b"\xff" * (10 * 1024), now=NOW)
    assert not isinstance(at_limit.value, RecordTooLarge)


def test_oversize_follows_limits():
    raw = record()
    with pytest.raises(RecordTooLarge):
        verify_record(NAME_A, raw, now=NOW, limits=Limits(max_record=len(raw) - 1))


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"garbage bytes", b"\x0a\xff\xff\xff\xff\x0f", bytes(300)])
def test_garbage(garbage):
    with pytest.raises(InvalidRecord):
        verify_record(NAME_A, garbage, now=NOW)


def test_not_bytes():
    with pytest.raises(InvalidRecord):
        verify_record(NAME_A, "a str", now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        b"/ipns/" + NAME_B.encode(),
        b"/ipfs/not-a-cid",
        b"/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        head_value(HEAD) + b"/path",
        b"/dnslink/example.com",
        head_value(HEAD).decode(),  # the right path, but CBOR text instead of bytes
    ],
    # NAME_B is a random key's: ids must not change between collections (pytest-xdist's workers)
    ids=lambda value: repr(value).replace(NAME_B, "NAME"),
)
def test_value_must_be_our_ipfs_path(value):
    with pytest.raises(InvalidRecord):
        verify_record(NAME_A, signed(fields(Value=value)), now=NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"Sequence": True},
        {"TTL": True},
        {"Sequence": -1},
        {"Sequence": None},
        {"ValidityType": 1},
        {"Validity": EOL_TEXT.decode()},  # text instead of bytes
        {"Validity": b"2026-11-28T09:00:00.000000000\xc3\xa9"},  # not ASCII: libp2p raises raw
        {"Validity": b"2026-02-30T09:00:00Z"},  # matches libp2p's pattern, no such day
        {"Validity": b"next week"},
    ],
)
def test_malformed_signed_data_is_invalid(changes):
    with pytest.raises(InvalidRecord) as caught:
        verify_record(NAME_A, signed(fields(**changes)), now=NOW)
    assert type(caught.value) is InvalidRecord


def test_signed_non_map_data_is_invalid():
    data = cbor2.dumps([1, 2, 3])
    raw = IpnsEntry(data=data, signatureV2=KEY_A.private_key.sign(b"ipns-signature:" + data)).SerializeToString()
    with pytest.raises(InvalidRecord):
        verify_record(NAME_A, raw, now=NOW)


@pytest.mark.parametrize("name", ["", "not-a-name", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "1" * 300])
def test_bad_name(name):
    with pytest.raises(DecodeError):
        verify_record(name, record(), now=NOW)
    with pytest.raises(DecodeError):
        select_best(name, [record()], now=NOW)


VALID = record(1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_records_fail_only_with_typed_errors(data):
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[position] = data.draw(st.integers(min_value=0, max_value=255))
    raw = raw[: data.draw(st.integers(min_value=0, max_value=len(raw)))]
    try:
        info = verify_record(NAME_A, bytes(raw), now=NOW)
    except Rlp2pError as exc:
        assert isinstance(exc, InvalidRecord)
    else:
        # only a change outside the signed data (the ignored V1 signature) can survive
        assert (info.head, info.sequence) == (HEAD, 1)


# --- choosing and ordering -----------------------------------------------------------------------


def _forged(raw: bytes) -> bytes:
    entry = parse(raw)
    entry.signatureV2 = bytes(64)
    return entry.SerializeToString()


def test_select_best_over_a_mix():
    old = record(1)
    newest = record(3, head=address_of(b"newest"))
    middle = record(2)
    candidates = [
        old,
        b"garbage",
        _forged(record(9)),  # a higher sequence, but forged
        newest,
        record(10, now=NOW - timedelta(days=30)),  # a higher sequence, but expired
        record(20, key=KEY_B),  # a higher sequence, but another log's
        middle,
        b"",
    ]
    best = select_best(NAME_A, candidates, now=NOW)
    assert (best.sequence, best.head, best.raw) == (3, address_of(b"newest"), newest)
    assert select_best(NAME_A, list(reversed(candidates)), now=NOW).raw == newest


def test_select_best_equal_sequence_later_validity_wins():
    short = record(4, validity=timedelta(days=1))
    long = record(4, validity=timedelta(days=2))
    assert select_best(NAME_A, [short, long], now=NOW).raw == long
    assert select_best(NAME_A, [long, short], now=NOW).raw == long


def test_select_best_single_and_none():
    only = record(1)
    assert select_best(NAME_A, [only], now=NOW).raw == only
    with pytest.raises(InvalidRecord):
        select_best(NAME_A, [b"garbage", _forged(record(2))], now=NOW)
    with pytest.raises(InvalidRecord):
        select_best(NAME_A, [], now=NOW)


# --- expired records: authentic, maybe stale ------------------------------------------------------


def test_an_expired_record_verifies_when_allowed_and_says_so():
    raw = record(2)
    eol = NOW + DEFAULT_VALIDITY
    info = verify_record(NAME_A, raw, now=eol + timedelta(days=60), allow_expired=True)
    assert (info.sequence, info.head, info.raw, info.validity) == (2, HEAD, raw, eol)
    assert info.is_expired(eol)
    assert info.is_expired(eol + timedelta(days=60))
    assert not info.is_expired(eol - timedelta(microseconds=1))
    # a fresh one comes back the same way
    assert not verify_record(NAME_A, raw, now=NOW, allow_expired=True).is_expired(NOW)
    with pytest.raises(ValueError):
        info.is_expired(datetime(2026, 11, 21))  # naive


def test_allowing_expired_records_still_refuses_forged_altered_and_wrong_name_ones():
    later = NOW + timedelta(days=60)
    with pytest.raises(InvalidRecord) as forged:
        verify_record(NAME_A, _forged(record(2)), now=later, allow_expired=True)
    assert type(forged.value) is InvalidRecord
    entry = parse(record(2))
    data = cbor2.loads(entry.data)
    data["Sequence"] = 3
    entry.data = cbor2.dumps(data, canonical=True)
    with pytest.raises(InvalidRecord) as altered:
        verify_record(NAME_A, entry.SerializeToString(), now=later, allow_expired=True)
    assert type(altered.value) is InvalidRecord
    with pytest.raises(WrongName):
        verify_record(NAME_A, record(2, key=KEY_B, pub_key=True), now=later, allow_expired=True)
    with pytest.raises(RecordTooLarge):
        verify_record(NAME_A, b"\xff" * (10 * 1024 + 1), now=later, allow_expired=True)


def test_best_record_is_ipns_order_whatever_expired():
    later = NOW + timedelta(days=3)

    def info(raw):
        return verify_record(NAME_A, raw, now=later, allow_expired=True)

    expired_high = info(record(5, validity=timedelta(days=1)))  # expired at `later`
    fresh_low = info(record(4, validity=timedelta(days=30)))
    assert expired_high.is_expired(later) and not fresh_low.is_expired(later)
    # a higher sequence wins even expired: it proves a newer head existed
    assert best_record([fresh_low, expired_high]) is expired_high
    assert best_record([expired_high, fresh_low]) is expired_high
    # at an equal sequence the later validity wins, so a fresh record beats an expired one
    same_seq_expired = info(record(6, validity=timedelta(days=1)))
    same_seq_fresh = info(record(6, validity=timedelta(days=7)))
    assert best_record([same_seq_expired, same_seq_fresh]) is same_seq_fresh
    assert best_record([same_seq_fresh, same_seq_expired]) is same_seq_fresh
    # a real tie: the first offered
    twin_a = info(record(7, head=address_of(b"a")))
    twin_b = info(record(7, head=address_of(b"b")))
    assert record_order(twin_a) == record_order(twin_b)
    assert best_record([twin_a, twin_b]) is twin_a
    assert best_record([twin_b, twin_a]) is twin_b
    assert best_record(iter([fresh_low])) is fresh_low


def test_best_record_refuses_nothing_and_mixed_logs():
    with pytest.raises(ValueError):
        best_record([])
    a = verify_record(NAME_A, record(1), now=NOW)
    b = verify_record(NAME_B, record(2, key=KEY_B), now=NOW)
    with pytest.raises(ValueError):
        best_record([a, b])


def test_a_pubkey_other_than_ed25519_is_refused_before_it_is_parsed():
    # fuzzing regression: an 8 KiB record carrying a 64,000-bit RSA pubKey cost 0.8 s of CPU in
    # pycryptodome's ASN.1 decoder (parsed by the validator, then again to look for the signer)
    from libp2p.crypto.pb import crypto_pb2

    entry = parse(record(2))
    for key_type, data in [(crypto_pb2.RSA, b"\x30" * 6000), (crypto_pb2.Secp256k1, b"\x02" * 33), (crypto_pb2.Ed25519, b"\x00" * 33)]:
        entry.pubKey = crypto_pb2.PublicKey(key_type=key_type, data=data).SerializeToString()
        with pytest.raises(InvalidRecord, match="not an Ed25519 key") as caught:
            verify_record(NAME_A, entry.SerializeToString(), now=NOW)
        assert type(caught.value) is InvalidRecord
    entry.pubKey = b"\xff junk"
    with pytest.raises(InvalidRecord, match="not a key"):
        verify_record(NAME_A, entry.SerializeToString(), now=NOW)


def test_select_best_with_expired_records_allowed():
    later = NOW + timedelta(days=60)
    old = record(1)
    newest = record(3, head=address_of(b"newest"))
    candidates = [old, b"garbage", _forged(record(9)), record(20, key=KEY_B), newest]
    # every record has expired: strict finds none, allowed finds the newest authentic one
    with pytest.raises(InvalidRecord):
        select_best(NAME_A, candidates, now=later)
    best = select_best(NAME_A, candidates, now=later, allow_expired=True)
    assert best.raw == newest and best.is_expired(later)
    # a fresh record with a higher sequence beats them; a fresh lower one does not
    renewed = record(4, now=later)
    assert select_best(NAME_A, [*candidates, renewed], now=later, allow_expired=True).raw == renewed
    low_but_fresh = record(2, now=later)
    assert select_best(NAME_A, [*candidates, low_but_fresh], now=later, allow_expired=True).raw == newest
    assert select_best(NAME_A, [*candidates, low_but_fresh], now=later).raw == low_but_fresh
