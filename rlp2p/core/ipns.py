"""What a DHT server does with an IPNS record offered under the standard key: pure policy.

The standard IPNS DHT key is ``b"/ipns/" + binary multihash`` of the name's peer id
(:func:`~rlp2p.core.record.ipns_dht_key`), as go and js use it. A server keeps an offered record
only if it is valid now (IPNS's DHT refuses expired records) and beats the one it holds by
:func:`~rlp2p.core.record.best_record` (the held one wins ties, so a replay changes nothing).
The DHT module (:mod:`rlp2p.p2p.dht`) applies this to PUT_VALUE requests that py-libp2p's own
handler cannot take.
"""

from __future__ import annotations

from datetime import datetime

import base58

from rlp2p.core.keys import name_to_peer_id
from rlp2p.core.record import IPNS_PREFIX, RecordInfo, best_record, verify_record
from rlp2p.errors import DecodeError, InvalidRecord, StaleRecord
from rlp2p.limits import DEFAULT_LIMITS, Limits

#: longest standard key: the prefix and an identity multihash of an Ed25519 key (38 bytes)
MAX_DHT_KEY = len(IPNS_PREFIX) + 38


def is_standard_key(key: bytes) -> bool:
    """Whether ``key`` has the shape of a standard IPNS key (not the text ``/ipns/<base58>``).

    Cheap: it only looks at the prefix and the multihash header, so a caller can route a request
    before parsing anything.
    """
    # an identity multihash of a 36-byte protobuf public key: 0x00 0x24
    return key.startswith(IPNS_PREFIX) and key[len(IPNS_PREFIX) : len(IPNS_PREFIX) + 2] == b"\x00\x24"


def name_of_key(key: bytes, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """The log name a standard IPNS key stands for. Raises :class:`DecodeError`."""
    if not isinstance(key, bytes) or not key.startswith(IPNS_PREFIX):
        raise DecodeError(f"not an /ipns/ key: {key[:60]!r}")
    if len(key) > MAX_DHT_KEY:
        raise DecodeError(f"/ipns/ key of {len(key)} bytes, over {MAX_DHT_KEY}")
    name = base58.b58encode(key[len(IPNS_PREFIX) :]).decode("ascii")
    name_to_peer_id(name, limits=limits)  # canonical Ed25519 peer id, or DecodeError
    return name


def accept_offered(
    key: bytes,
    offered: bytes,
    held: bytes | None,
    now: datetime,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> RecordInfo:
    """The record to keep under ``key`` when ``offered`` arrives and ``held`` is stored (or None).

    Returns the verified offered record when it is to replace ``held``. Raises
    :class:`DecodeError` for a key that is not a standard IPNS key, :class:`InvalidRecord` (or a
    subclass: expired, wrong name, too large) for a record that is not valid now, and
    :class:`StaleRecord` when the held record is at least as good. A held record that no longer
    verifies (even allowing expiry) is replaced.
    """
    name = name_of_key(key, limits=limits)
    info = verify_record(name, offered, now=now, limits=limits)
    if held is None:
        return info
    try:
        kept = verify_record(name, held, now=now, limits=limits, allow_expired=True)
    except InvalidRecord:
        return info
    if best_record([kept, info]) is kept:
        raise StaleRecord(
            f"held record of {name} (sequence {kept.sequence}) is at least as good",
            have=kept.sequence,
            got=info.sequence,
        )
    return info
