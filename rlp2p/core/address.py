"""CAS addresses (H2 in 3/REMOTE-LOG): CIDv1, raw codec, sha2-256 multihash.

``Address.id`` on the wire is the CID's binary form. CIDs and multihashes come from py-cid and
py-multihash; nothing here encodes them by hand.
"""

from __future__ import annotations

import hashlib

import cid
import multihash

from rlp2p.errors import AddressError, HashMismatch

RAW_CODEC = "raw"
HASH_NAME = "sha2-256"
DIGEST_SIZE = 32
#: binary CIDv1 size: version, codec, multihash code, digest length, digest
ADDRESS_SIZE = 4 + DIGEST_SIZE


def address_of(data: bytes) -> bytes:
    """The binary CID under which ``data`` is stored."""
    mh = multihash.encode(hashlib.sha256(data).digest(), HASH_NAME)
    return cid.CIDv1(RAW_CODEC, mh).buffer


def parse_address(address: bytes) -> cid.CIDv1:
    """Parse a binary CID, refusing anything but CIDv1 / raw / sha2-256."""
    if not isinstance(address, (bytes, bytearray)) or len(address) != ADDRESS_SIZE:
        size = len(address) if isinstance(address, (bytes, bytearray)) else "?"
        raise AddressError(f"a CAS address is {ADDRESS_SIZE} bytes, got {size}")
    try:
        parsed = cid.from_bytes(bytes(address))
        mh = multihash.decode(parsed.multihash)
    except Exception as exc:  # the libraries raise several unrelated types
        raise AddressError(f"not a CID: {exc}") from exc
    if parsed.version != 1 or parsed.codec != RAW_CODEC:
        raise AddressError(f"expected a CIDv1 with the raw codec, got v{parsed.version} {parsed.codec}")
    if multihash.coerce_code(mh.code) != multihash.coerce_code(HASH_NAME):
        raise AddressError(f"expected a sha2-256 multihash, got {mh.name}")
    return parsed


def address_to_text(address: bytes) -> str:
    """The base32 text form (``bafkrei...``), for logs, records and people."""
    return parse_address(address).encode("base32").decode("ascii")


def address_from_text(text: str) -> bytes:
    try:
        parsed = cid.from_string(text)
    except Exception as exc:
        raise AddressError(f"not a CID: {text[:80]!r}: {exc}") from exc
    buffer = parsed.buffer
    parse_address(buffer)
    return buffer


def verify_block(address: bytes, data: bytes) -> None:
    """Raise :class:`HashMismatch` unless ``data`` is what ``address`` names."""
    parsed = parse_address(address)
    digest = multihash.decode(parsed.multihash).digest
    if hashlib.sha256(data).digest() != digest:
        raise HashMismatch(f"block does not hash to {address_to_text(address)}")
