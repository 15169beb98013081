"""The DHT server's policy for records under the standard IPNS key (rlp2p/core/ipns.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.ipns import accept_offered, is_standard_key, name_of_key
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import create_record, ipns_dht_key
from rlp2p.errors import DecodeError, ExpiredRecord, InvalidRecord, StaleRecord, WrongName

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_keys():
    name = log_name(generate_log_key().public_key)
    key = ipns_dht_key(name)
    assert is_standard_key(key) and name_of_key(key) == name
    assert not is_standard_key(f"/ipns/{name}".encode())
    for bad in (f"/ipns/{name}".encode(), b"/ipns/\x00\x24" + bytes(36), b"/pk/" + key[6:], key + b"x"):
        with pytest.raises(DecodeError):
            name_of_key(bad)


def test_the_better_record_wins_and_the_held_one_wins_ties():
    key = generate_log_key()
    dht_key = ipns_dht_key(log_name(key.public_key))
    one = create_record(key, address_of(b"1"), 1, now=NOW)
    two = create_record(key, address_of(b"2"), 2, now=NOW)
    assert accept_offered(dht_key, one, None, NOW).sequence == 1
    assert accept_offered(dht_key, two, one, NOW).sequence == 2
    with pytest.raises(StaleRecord):
        accept_offered(dht_key, one, two, NOW)
    with pytest.raises(StaleRecord):
        accept_offered(dht_key, two, two, NOW)
    # a held record that no longer verifies is replaced
    assert accept_offered(dht_key, one, b"junk", NOW).sequence == 1


def test_invalid_offers_are_refused():
    key, other = generate_log_key(), generate_log_key()
    dht_key = ipns_dht_key(log_name(key.public_key))
    # a compact record (no pubKey) signed by another key is InvalidRecord; with its key, WrongName
    with pytest.raises(WrongName):
        accept_offered(dht_key, create_record(other, address_of(b"x"), 1, now=NOW, pub_key=True), None, NOW)
    short = create_record(key, address_of(b"x"), 5, now=NOW, validity=timedelta(seconds=1))
    with pytest.raises(ExpiredRecord):
        accept_offered(dht_key, short, None, NOW + timedelta(seconds=2))
    with pytest.raises(InvalidRecord):
        accept_offered(dht_key, b"\x00garbage", None, NOW)
