"""Signed name records: IPNS records that point a log's name at its head page.

A record is a serialized ``IpnsEntry`` as the IPNS record spec defines it
(https://specs.ipfs.tech/ipns/ipns-record/): ``data`` is a DAG-CBOR map of ``Value``,
``Validity``, ``ValidityType``, ``Sequence`` and ``TTL``; ``signatureV2`` is the key's Ed25519
signature over ``b"ipns-signature:" + data``. ``Value`` is ``/ipfs/<base32 CIDv1>`` of the head.

Creating records is ours; verifying is py-libp2p's :class:`~libp2p.records.ipns.IPNSValidator`
(the same code a py-libp2p DHT node runs), wrapped so that every refusal is a typed
:class:`~rlp2p.errors.RecordError` and nothing raw from protobuf, cbor2 or libp2p escapes.

Choices worth knowing:

* Expiry means "maybe stale", not "forged". An expired record is still the key's signature over
  that head, so the history it names is authentic; what expiry takes away is the promise that no
  newer head exists. :func:`verify_record` refuses an expired record with
  :class:`~rlp2p.errors.ExpiredRecord` unless ``allow_expired=True``; then it returns it and the
  caller asks :meth:`RecordInfo.is_expired`. Readers take the best record whether or not it expired
  and report when it did (``SyncReport.expired_at``); ``Reader(require_fresh=True)`` refuses it as
  IPNS does. Storage peers keep serving and announcing what they hold after expiry; they do not
  put expired records into the DHT (its IPNS validators refuse them), nor accept one in an NS
  Update (see :mod:`rlp2p.wire.ns`).
* One rule chooses among records offered (:func:`best_record`, :func:`select_best`; the reader
  and the DHT wrapper use it): IPNS's, higher sequence wins, then the later validity, then the
  first offered. Against a record already held, sequences alone decide: a storage peer keeps a
  new record only if its sequence beats the held one's (the store checks it in one transaction),
  a reader refuses one below the sequence it accepted. Expiry does not enter the order: a valid record beats an
  expired one only when its sequence is at least as high (at an equal sequence the valid one has
  the later validity, so it wins by the rule itself). An expired record with a higher sequence
  proves that a newer head existed; a lower valid one (a publisher that chose a long validity,
  then a short one) would deliver less and, for a reader that already accepted the higher
  sequence, would be a roll-back it must refuse anyway. Strict callers drop expired records
  before choosing, which is IPNS's rule exactly.
* ``DEFAULT_VALIDITY`` is 7 days, not the 48 hours IPNS suggests for the DHT. Storage peers keep
  a publisher's best record and serve and republish it without her key; the validity is how long
  readers take her head as current. The price of reading past it: a storage peer that withholds
  newer records can serve an old head for as long as it likes, flagged as possibly stale, which
  readers only notice by comparing sequences across replicas.
* ``DEFAULT_TTL`` is 1 minute (IPNS suggests 5): a reader caches a resolved record at most that
  long, so a new message is seen within about a minute; the cost is one small NS round trip.
* Records are compact by default: V2 only (``data`` and ``signatureV2``, about 221 B), without
  V1 fields, ``signatureV1`` or ``pubKey``, all optional in the IPNS spec for an Ed25519 name (the
  key is inlined in the name). py-libp2p's validator and js ``ipns`` accept them. ``v1_compatible``
  adds the V1 fields and ``signatureV1`` (and ``pubKey``) for older resolvers (435 B).
* ``pubKey`` (``pub_key``, default: with the V1 fields) lets us report a record signed by another
  log's key as :class:`~rlp2p.errors.WrongName` rather than an invalid one; without it no one can
  tell who signed, so such a record is :class:`~rlp2p.errors.InvalidRecord`. Either way it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import cbor2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as _PbDecodeError
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.pb import crypto_pb2
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.peer.id import ID
from libp2p.records.ipns import IPNSValidator
from libp2p.records.pb.ipns_pb2 import IpnsEntry as _Proto3IpnsEntry

from rlp2p.core.address import address_from_text, address_to_text
from rlp2p.core.keys import ED25519_KEY_SIZE, name_to_peer_id
from rlp2p.errors import DecodeError, ExpiredRecord, InvalidRecord, RecordTooLarge, WrongName
from rlp2p.limits import DEFAULT_LIMITS, Limits

#: how long a record stays valid after it is signed (see the module docstring)
DEFAULT_VALIDITY = timedelta(days=7)
#: how long a reader may cache a resolved record before asking again (see the module docstring)
DEFAULT_TTL = timedelta(minutes=1)

IPFS_PREFIX = b"/ipfs/"
IPNS_PREFIX = b"/ipns/"
SIGNATURE_V2_PREFIX = b"ipns-signature:"
#: V1 signs value + validity + the *name* of the validity type, as go's ``fmt.Sprint`` prints it
VALIDITY_TYPE_EOL = 0
VALIDITY_TYPE_EOL_NAME = b"EOL"
MAX_UINT64 = 2**64 - 1

_NS_PER_US = 1000


def _presence_entry_class() -> Any:
    """``IpnsEntry`` with explicit field presence, built from py-libp2p's own schema.

    py-libp2p compiles ``ipns.proto`` as proto3 without ``optional``, so zero values
    (``validityType = EOL = 0``, ``sequence = 0``, ``ttl = 0``) are dropped on the wire. The spec's
    schema has ``optional`` fields, and js ``ipns`` checks V1 fields against the CBOR data with
    strict equality: an absent ``validityType`` reads as undefined, not EOL, and the record is
    refused. The same schema compiled as proto2 keeps every field we set.
    """
    proto = descriptor_pb2.FileDescriptorProto()
    _Proto3IpnsEntry.DESCRIPTOR.file.CopyToProto(proto)
    proto.syntax = "proto2"
    pool = descriptor_pool.DescriptorPool()  # a private pool: no clash with libp2p's descriptor
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(_Proto3IpnsEntry.DESCRIPTOR.full_name))


_IpnsEntry = _presence_entry_class()

# Expiry is checked here, against the caller's clock, so the validator must not do it too.
_VALIDATOR = IPNSValidator(check_expiration=False)

_RFC3339 = re.compile(rb"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """A verified record: what it says, and the exact bytes that say it."""

    #: the log name (base58btc peer id) the record was verified against
    name: str
    #: the signed IPNS value, ``b"/ipfs/<base32 CID>"``
    value: bytes
    #: the head page's binary CID
    head: bytes
    sequence: int
    #: end of validity, timezone-aware UTC (truncated to microseconds)
    validity: datetime
    #: caching hint in nanoseconds (0 when the record carries none)
    ttl_ns: int
    #: the serialized record, to store and pass on unchanged
    raw: bytes

    def is_expired(self, now: datetime) -> bool:
        """Whether the record's validity has ended at ``now`` (the spec: valid while later than now)."""
        return _aware(now) >= self.validity


# --- values and keys -----------------------------------------------------------------------------


def head_value(address: bytes) -> bytes:
    """The IPNS value for a head page: ``b"/ipfs/" + base32 CIDv1 text``."""
    return IPFS_PREFIX + address_to_text(address).encode("ascii")


def parse_head_value(value: bytes) -> bytes:
    """The binary CID in an IPNS value written by :func:`head_value`.

    Any multibase spelling of an rlp2p CAS address is accepted; paths below it are not, as a head
    is one block. Raises :class:`DecodeError` (:class:`AddressError` for a bad CID).
    """
    if not isinstance(value, bytes):
        raise DecodeError(f"an IPNS value is bytes, got {type(value).__name__}")
    if not value.startswith(IPFS_PREFIX):
        raise DecodeError(f"not an /ipfs/ path: {value[:80]!r}")
    try:
        text = value[len(IPFS_PREFIX) :].decode("ascii")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not an /ipfs/ path: {value[:80]!r}") from exc
    return address_from_text(text)


def ipns_dht_key(name: str) -> bytes:
    """The standard IPNS routing key, ``b"/ipns/" + binary multihash``, as go and js use it."""
    return IPNS_PREFIX + name_to_peer_id(name).to_bytes()


def ipns_validator_key(name: str) -> str:
    """The text key py-libp2p's ``IPNSValidator`` (and its DHT's ``put_value``) accepts."""
    return _validator_key(name_to_peer_id(name))


def _validator_key(peer_id: ID) -> str:
    return "/ipns/" + peer_id.to_base58()


# --- creating ------------------------------------------------------------------------------------


def create_record(
    keypair: KeyPair,
    head: bytes,
    sequence: int,
    *,
    validity: timedelta = DEFAULT_VALIDITY,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
    v1_compatible: bool = False,
    pub_key: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Sign a record pointing the key's name at ``head``; returns the serialized ``IpnsEntry``.

    ``sequence`` must be higher than any record published before under this key (readers and
    storage peers refuse anything else), including when only the
    validity is being extended. The record is valid until ``now + validity``.

    Compact (V2 only, no ``pubKey``) unless ``v1_compatible``; ``pub_key`` (default: as
    ``v1_compatible``) includes the public key (see the module docstring).
    """
    private_key = keypair.private_key
    if private_key.get_type() is not KeyType.Ed25519:
        raise ValueError(f"log keys are Ed25519, got {private_key.get_type().name}")
    if type(sequence) is not int or not 0 <= sequence <= MAX_UINT64:
        raise ValueError(f"sequence must be an int in [0, 2**64), got {sequence!r}")
    if validity <= timedelta(0):
        raise ValueError(f"validity must be positive, got {validity}")
    if ttl < timedelta(0):
        raise ValueError(f"ttl must not be negative, got {ttl}")
    ttl_ns = _timedelta_ns(ttl)
    if ttl_ns > MAX_UINT64:
        raise ValueError(f"ttl does not fit in uint64 nanoseconds: {ttl}")
    try:
        eol = _aware(now) + validity
    except OverflowError as exc:
        raise ValueError(f"validity {validity} runs past year 9999") from exc

    value = head_value(head)
    validity_text = format_validity(eol)
    # canonical=True sorts map keys length-first then bytewise, DAG-CBOR's order:
    # TTL, Value, Sequence, Validity, ValidityType. Byte strings for Value and Validity, as go writes.
    data = cbor2.dumps(
        {
            "Value": value,
            "Validity": validity_text,
            "ValidityType": VALIDITY_TYPE_EOL,
            "Sequence": sequence,
            "TTL": ttl_ns,
        },
        canonical=True,
    )
    entry = _IpnsEntry(signatureV2=private_key.sign(SIGNATURE_V2_PREFIX + data), data=data)
    if v1_compatible if pub_key is None else pub_key:
        # the public key derived from the private one, so pubKey and signatures always agree
        entry.pubKey = private_key.get_public_key().serialize()
    if v1_compatible:
        entry.value = value
        entry.validity = validity_text
        entry.validityType = VALIDITY_TYPE_EOL
        entry.sequence = sequence
        entry.ttl = ttl_ns
        entry.signatureV1 = private_key.sign(value + validity_text + VALIDITY_TYPE_EOL_NAME)
    raw: bytes = entry.SerializeToString(deterministic=True)
    if len(raw) > limits.max_record:
        raise RecordTooLarge("IPNS record", len(raw), limits.max_record)
    return raw


def format_validity(when: datetime) -> bytes:
    """RFC 3339 in UTC with nine fraction digits and ``Z``, as go-ipns writes it."""
    t = _aware(when).astimezone(timezone.utc)
    text = (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond * _NS_PER_US:09d}Z"
    )
    return text.encode("ascii")


def parse_validity(text: bytes) -> datetime:
    """Parse an RFC 3339 ``Validity`` into an aware UTC datetime (nanoseconds truncated)."""
    match = _RFC3339.fullmatch(text) if isinstance(text, bytes) else None
    if match is None:
        raise DecodeError(f"not an RFC 3339 time: {text[:64]!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    microsecond = int(fraction[:6].ljust(6, b"0")) if fraction else 0
    try:
        if zone == b"Z":
            tz = timezone.utc
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if minutes > 59:
                raise ValueError(f"offset minutes {minutes}")
            offset = timedelta(hours=hours, minutes=minutes)
            tz = timezone(-offset if zone[:1] == b"-" else offset)
        parsed = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise DecodeError(f"not an RFC 3339 time: {text[:64]!r}: {exc}") from exc


# --- verifying -----------------------------------------------------------------------------------


def verify_record(
    name: str,
    record: bytes,
    *,
    now: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
    allow_expired: bool = False,
) -> RecordInfo:
    """Verify ``record`` as the current record of log ``name``, as of ``now`` (default: the clock).

    With ``allow_expired`` an expired record is returned instead of refused: every other check
    still applies, and :meth:`RecordInfo.is_expired` tells whether it had expired at ``now``.

    Raises, checked in this order:

    * :class:`RecordTooLarge` over ``limits.max_record``, before anything is parsed;
    * :class:`DecodeError` when ``name`` is not a log name (the caller's input, not the record);
    * :class:`WrongName` for a valid record signed by another key (known from its ``pubKey``);
    * :class:`InvalidRecord` for anything malformed, forged or altered, and for a value that is
      not ``/ipfs/<CAS address>``;
    * :class:`ExpiredRecord` when ``now`` is at or past its validity (unless ``allow_expired``).
    """
    if not isinstance(record, (bytes, bytearray)):
        raise InvalidRecord(f"a record is bytes, got {type(record).__name__}")
    if len(record) > limits.max_record:
        raise RecordTooLarge("IPNS record", len(record), limits.max_record)
    record = bytes(record)
    peer_id = name_to_peer_id(name, limits=limits)
    when = _aware(now)
    _check_pub_key(record)

    try:
        _VALIDATOR.validate(_validator_key(peer_id), record)
    except Exception as exc:  # InvalidRecordType, and the odd ValueError its decoding lets through
        signer = _valid_signer_other_than(peer_id, record)
        if signer is not None:
            raise WrongName(f"record is signed by {signer}, not by {name}") from exc
        raise InvalidRecord(f"invalid record for {name}: {exc}") from exc

    # Signature and structure check out; now read the signed data, more strictly than the
    # validator does: it also takes text for Value and Validity and booleans for integers, where
    # the spec (and go and js) use bytes and uint64.
    data = cbor2.loads(_IpnsEntry.FromString(record).data)
    value, sequence, ttl = data["Value"], data["Sequence"], data.get("TTL", 0)
    if type(sequence) is not int:
        raise InvalidRecord(f"Sequence is not an integer: {sequence!r}")
    if type(ttl) is not int:
        raise InvalidRecord(f"TTL is not an integer: {ttl!r}")
    try:
        head = parse_head_value(value)
        validity = parse_validity(data["Validity"])
    except DecodeError as exc:
        raise InvalidRecord(f"record for {name}: {exc}") from exc

    info = RecordInfo(
        name=name, value=value, head=head, sequence=sequence, validity=validity, ttl_ns=ttl, raw=record
    )
    if not allow_expired and info.is_expired(when):
        raise ExpiredRecord(f"record for {name} (sequence {sequence}) expired at {validity.isoformat()}")
    return info


def record_order(info: RecordInfo) -> tuple[int, datetime]:
    """The sort key of the one selection rule: sequence, then validity (expiry plays no part)."""
    return (info.sequence, info.validity)


def best_record(infos: Iterable[RecordInfo]) -> RecordInfo:
    """The best of verified records of one log, as IPNS picks it: higher sequence wins, then later
    validity, then the first given (so a caller's order of peers decides real ties).

    Expired records compete like the others (see the module docstring); a caller that wants only
    fresh ones drops the expired ones first. ``ValueError`` if ``infos`` is empty.
    """
    best: RecordInfo | None = None
    for info in infos:
        if best is not None and info.name != best.name:
            raise ValueError(f"records of different logs: {best.name} and {info.name}")
        if best is None or record_order(info) > record_order(best):
            best = info
    if best is None:
        raise ValueError("no record to choose from")
    return best


def select_best(
    name: str,
    records: list[bytes],
    now: datetime | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
    allow_expired: bool = False,
) -> RecordInfo:
    """The best record among ``records`` by :func:`best_record`. Invalid and wrong-name records are
    dropped, and expired ones unless ``allow_expired``; :class:`InvalidRecord` if none is left. A
    bad ``name`` raises :class:`DecodeError`.
    """
    name_to_peer_id(name, limits=limits)
    when = _aware(now)  # one clock reading, so every record is judged at the same instant
    valid: list[RecordInfo] = []
    for raw in records:
        try:
            valid.append(verify_record(name, raw, now=when, limits=limits, allow_expired=allow_expired))
        except InvalidRecord:
            continue
    if not valid:
        raise InvalidRecord(f"none of {len(records)} records for {name} is valid")
    return best_record(valid)


# --- helpers -------------------------------------------------------------------------------------


def _check_pub_key(record: bytes) -> None:
    """Refuse a record whose ``pubKey`` is not an Ed25519 key, before anything parses that key.

    Log keys are Ed25519, so no other key signs a log's record; and parsing another can cost far
    more than the record is worth (fuzzing: a 64,000-bit RSA key in an 8 KiB record took
    pycryptodome's ASN.1 decoder 0.4 s, and the key was parsed twice).
    """
    try:
        pub_key = _IpnsEntry.FromString(record).pubKey
    except _PbDecodeError:
        return  # the validator refuses it, saying why
    if not pub_key:
        return
    try:
        key = crypto_pb2.PublicKey.FromString(pub_key)
    except _PbDecodeError as exc:
        raise InvalidRecord(f"the record's pubKey is not a key: {exc}") from exc
    if key.key_type != crypto_pb2.KeyType.Ed25519 or len(key.data) != ED25519_KEY_SIZE:
        raise InvalidRecord("the record's pubKey is not an Ed25519 key (log keys are)")


def _valid_signer_other_than(peer_id: ID, record: bytes) -> str | None:
    """The name of the key that validly signed ``record``, if it carries one and it is not ours."""
    try:
        entry = _IpnsEntry.FromString(record)
        if not entry.pubKey:
            return None
        signer = ID.from_pubkey(deserialize_public_key(entry.pubKey))
        if signer == peer_id:
            return None
        _VALIDATOR.validate(_validator_key(signer), record)
    except Exception:  # not validly signed by the key it names either
        return None
    return signer.to_base58()


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def _timedelta_ns(delta: timedelta) -> int:
    """Exact nanoseconds of a timedelta (no float rounding)."""
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * _NS_PER_US
