"""CAS addresses (H2 in 3/REMOTE-LOG): CIDv1, raw codec, sha2-256 multihash.

``Address.id`` on the wire is the CID's binary form. CIDs and multihashes come from py-cid and
py-multihash; nothing here encodes them by hand.
"""

from __future__ import annotations

import base64
import hashlib

import cid
import multihash

from rlp2p.errors import AddressError, HashMismatch

RAW_CODEC = "raw"
HASH_NAME = "sha2-256"
DIGEST_SIZE = 32
#: binary CIDv1 size: version, codec, multihash code, digest length, digest
ADDRESS_SIZE = 4 + DIGEST_SIZE


def _library_address(data: bytes) -> bytes:
    mh = multihash.encode(hashlib.sha256(data).digest(), HASH_NAME)
    return cid.CIDv1(RAW_CODEC, mh).buffer


# Every address we make or accept is one prefix (version, codec, hash code, digest length) and a
# sha2-256 digest. The prefix is computed once by py-cid and py-multihash; per block we only hash
# and compare, because parsing a CID with py-cid costs tens of microseconds (measured: 15 us per
# verified block, most of a 4 KiB block's CAS cost).
_PREFIX = _library_address(b"")[:-DIGEST_SIZE]


def address_of(data: bytes) -> bytes:
    """The binary CID under which ``data`` is stored."""
    return _PREFIX + hashlib.sha256(data).digest()


def check_address(address: bytes) -> None:
    """Raise :class:`AddressError` unless ``address`` is a CID we accept (fast path first)."""
    if not (isinstance(address, bytes) and len(address) == ADDRESS_SIZE and address.startswith(_PREFIX)):
        parse_address(address)  # raises with the exact reason


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
    if len(address) == ADDRESS_SIZE and address.startswith(_PREFIX):
        # multibase "b": RFC 4648 base32, lower case, no padding (the stdlib's, 20x py-multibase's
        # speed; tests/core/test_address.py checks it against py-cid)
        return "b" + base64.b32encode(address).decode("ascii").rstrip("=").lower()
    return parse_address(address).encode("base32").decode("ascii")


#: the longest text form of an address: a multibase prefix, then base2 (8 characters a byte)
MAX_ADDRESS_TEXT = 1 + 8 * ADDRESS_SIZE
#: the base32 text form's size (multibase prefix, 8 characters for 5 bytes, unpadded) and the
#: padding the stdlib's decoder wants back
_TEXT_SIZE = 1 + (8 * ADDRESS_SIZE + 4) // 5
_TEXT_PADDING = "=" * (-(_TEXT_SIZE - 1) % 8)


def address_from_text(text: str) -> bytes:
    # checked before decoding: py-multibase decodes base58, base36 and base10 in quadratic time
    # (10 KiB of base58, which a signed record's value can carry, took 3 s)
    if not isinstance(text, str) or len(text) > MAX_ADDRESS_TEXT:
        size = len(text) if isinstance(text, str) else type(text).__name__
        raise AddressError(f"a CAS address is at most {MAX_ADDRESS_TEXT} characters of text, got {size}")
    if len(text) == _TEXT_SIZE and text[0] == "b" and text.islower():
        try:  # our own spelling (address_to_text): the stdlib's base32
            address = base64.b32decode(text[1:].upper() + _TEXT_PADDING)
        except ValueError:
            address = b""
        if address.startswith(_PREFIX):
            return address
    try:
        parsed = cid.from_string(text)
    except Exception as exc:
        raise AddressError(f"not a CID: {text[:80]!r}: {exc}") from exc
    buffer = parsed.buffer
    parse_address(buffer)
    return buffer


def verify_block(address: bytes, data: bytes) -> None:
    """Raise :class:`HashMismatch` unless ``data`` is what ``address`` names."""
    check_address(address)
    verify_checked_block(address, data)


def verify_checked_block(address: bytes, data: bytes) -> None:
    """:func:`verify_block` for an address already checked: hash and compare."""
    if address_of(data) != address:
        raise HashMismatch(f"block does not hash to {address_to_text(address)}")
