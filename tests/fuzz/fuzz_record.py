"""Records: verify_record and the parsers of what a signed record says.

Input: one byte choosing what the rest is:

0. a whole serialized IpnsEntry, verified for the seed log's name;
1. the record's signed CBOR ``data``, which the harness signs with the log's key: anyone can
   make a log of their own, so what a valid signature covers is as hostile as the rest;
2. an RFC 3339 ``Validity`` (parse_validity);
3. an IPNS value (parse_head_value);
4. a log name (UTF-8, as a protobuf string carries it), a seed record verified for it.
"""

from __future__ import annotations

from datetime import timedelta

import cbor2

from rlp2p.core.record import (
    SIGNATURE_V2_PREFIX,
    _IpnsEntry,
    parse_head_value,
    parse_validity,
    verify_record,
)
from rlp2p.errors import DecodeError, RecordError
from tests.fuzz import seeds
from tests.fuzz.validator import VALIDATOR_STEPS
from tests.fuzz._common import Target

WHEN = seeds.NOW + timedelta(seconds=1)


def _signed(data: bytes) -> bytes:
    key = seeds.KEY.private_key
    entry = _IpnsEntry(
        pubKey=key.get_public_key().serialize(), signatureV2=key.sign(SIGNATURE_V2_PREFIX + data), data=data
    )
    return entry.SerializeToString()


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 5, data[1:]
    if mode in (0, 1):
        record = rest if mode == 0 else _signed(rest)
        try:
            info = verify_record(seeds.NAME, record, now=WHEN)
        except RecordError:
            return
        assert info.raw == record and info.name == seeds.NAME
        assert isinstance(info.sequence, int) and isinstance(info.ttl_ns, int) and len(info.head) == 36
    elif mode == 2:
        try:
            parse_validity(rest)
        except DecodeError:
            pass
    elif mode == 3:
        try:
            parse_head_value(rest)
        except DecodeError:
            pass
    else:
        try:
            name = rest.decode("utf-8")
        except UnicodeDecodeError:
            return  # protobuf refuses a string that is not UTF-8 before we see it
        try:
            verify_record(name, seeds.records()[0], now=WHEN)
        except (DecodeError, RecordError):
            pass


def _seeds() -> list[bytes]:
    out = []
    for record in seeds.records():
        out.append(b"\x00" + record)
        out.append(b"\x01" + _IpnsEntry.FromString(record).data)
        entry = _IpnsEntry.FromString(record)
        if entry.HasField("validity"):
            out.append(b"\x02" + entry.validity)
        if entry.HasField("value"):
            out.append(b"\x03" + entry.value)
    out += [b"\x02" + b"2026-01-02T03:04:05.123456789+01:30", b"\x04" + seeds.NAME.encode()]
    # signed data the validator takes but we read more strictly: text, booleans, no TTL, extra keys
    data = cbor2.loads(_IpnsEntry.FromString(seeds.records()[0]).data)
    for change in ({"Value": data["Value"].decode()}, {"Sequence": True}, {"TTL": None}, {"Extra": [1, {}]}):
        variant = {k: v for k, v in {**data, **change}.items() if v is not None}
        out.append(b"\x01" + cbor2.dumps(variant))
    return out


TARGET = Target("record", one_input, allowed=(), seeds=_seeds, instrument=VALIDATOR_STEPS, max_len=11 * 1024)
