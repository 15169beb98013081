"""Log keys and log names.

Every log has its own Ed25519 key pair. The log's *name* is the libp2p peer id of the public key
in base58btc text (``12D3KooW...``): an identity multihash of the libp2p-protobuf public key, so
the key can be read back out of the name. That same string is the log's IPNS name.

Key files hold the libp2p-protobuf private key (``PrivateKey{Type, Data}``) exactly as
py-libp2p's ``PrivateKey.serialize`` writes it; encoding and decoding are left to py-libp2p.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import base58
import multihash
from google.protobuf.message import DecodeError as _PbDecodeError
from libp2p.crypto.ed25519 import Ed25519PrivateKey, create_new_key_pair
from libp2p.crypto.pb import crypto_pb2
from libp2p.crypto.keys import KeyPair, KeyType, PrivateKey, PublicKey
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.peer.id import ID

from rlp2p.core.keyfile import read_key_file, write_key_file
from rlp2p.errors import DecodeError, KeyFileError, LimitExceeded
from rlp2p.limits import DEFAULT_LIMITS, Limits

#: multihash code of ``identity``: an Ed25519 peer id carries the key itself
IDENTITY_CODE = 0x00
ED25519_KEY_SIZE = 32


def generate_log_key() -> KeyPair:
    """A fresh Ed25519 key pair for a new log."""
    return create_new_key_pair()


def log_name(public_key: PublicKey) -> str:
    """The log's name (and IPNS name): the base58btc peer id of its Ed25519 public key."""
    if public_key.get_type() is not KeyType.Ed25519:
        raise ValueError(f"log keys are Ed25519, got {public_key.get_type().name}")
    return ID.from_pubkey(public_key).to_base58()


def name_to_peer_id(name: str, *, limits: Limits = DEFAULT_LIMITS) -> ID:
    """Parse a log name, refusing anything but the base58btc peer id of an Ed25519 key.

    Raises :class:`DecodeError` (:class:`LimitExceeded` for an over-long name). The name must be
    in its one canonical form, so two different strings never name the same log.
    """
    if not isinstance(name, str):
        raise DecodeError(f"a log name is a str, got {type(name).__name__}")
    # checked before decoding: base58 decoding is quadratic in the length
    if len(name) > limits.max_name:
        raise LimitExceeded("log name length", len(name), limits.max_name)
    return _parsed_name(name)


#: log names parsed lately: every record verified parses its log's name (about 0.1 ms each)
PARSED_NAMES = 1024


@functools.lru_cache(maxsize=PARSED_NAMES)  # (a name refused raises: never cached)
def _parsed_name(name: str) -> ID:
    try:
        raw = base58.b58decode(name.encode("ascii"))
        decoded = multihash.decode(raw)
    except Exception as exc:  # base58 and multihash raise several unrelated types
        raise DecodeError(f"not a peer id: {name[:80]!r}: {exc}") from exc
    if decoded.code != IDENTITY_CODE:
        raise DecodeError(f"not an Ed25519 peer id (multihash {decoded.name}, not identity): {name!r}")
    try:
        public_key = deserialize_public_key(decoded.digest)
    except Exception as exc:
        raise DecodeError(f"peer id does not hold a public key: {name!r}: {exc}") from exc
    if public_key.get_type() is not KeyType.Ed25519 or len(public_key.to_bytes()) != ED25519_KEY_SIZE:
        raise DecodeError(f"not an Ed25519 peer id ({public_key.get_type().name} key): {name!r}")
    peer_id = ID.from_pubkey(public_key)
    # re-encoding must give back the same text: refuses padded protobufs and other spellings
    if peer_id.to_bytes() != raw or peer_id.to_base58() != name:
        raise DecodeError(f"not a canonical peer id: {name!r}")
    return peer_id


def save_key(path: str | os.PathLike[str], keypair: KeyPair, *, overwrite: bool = False) -> None:
    """Write a log's private key to ``path``, mode 0600, atomically.

    The bytes go to a temporary file in the same directory first, which is then renamed into
    place, so a crash leaves either the old file or the new one, never half a key. A log key is
    the log's identity and cannot be recovered, so an existing file is only replaced when
    ``overwrite`` is true (without it the rename is a hard link, which refuses an existing path
    atomically). Raises :class:`KeyFileError`.
    """
    private_key = keypair.private_key
    if private_key.get_type() is not KeyType.Ed25519:
        raise KeyFileError(f"log keys are Ed25519, got {private_key.get_type().name}")
    if keypair.public_key != private_key.get_public_key():
        raise KeyFileError("key pair's public key does not belong to its private key")
    # the 64-byte Ed25519 form (seed then public key) that go and js write and read; py-libp2p's
    # own serialize() writes the seed alone, which go and js refuse
    data = crypto_pb2.PrivateKey(
        key_type=crypto_pb2.KeyType.Ed25519,
        data=private_key.to_bytes() + keypair.public_key.to_bytes(),
    ).SerializeToString()
    write_key_file(path, data, overwrite=overwrite)


def load_key(path: str | os.PathLike[str]) -> KeyPair:
    """Read a log key written by :func:`save_key` (or by go-libp2p or js-libp2p).

    Takes the 64-byte Ed25519 form (seed then public key) that save_key, go and js write, and
    the 32-byte seed that py-libp2p's ``serialize()`` writes. Raises :class:`KeyFileError` for a file
    that is missing, unreadable, too big or not an Ed25519 private key.
    """
    target = Path(path)
    data = read_key_file(target)
    try:
        envelope = PrivateKey.deserialize_from_protobuf(data)
    except _PbDecodeError as exc:
        raise KeyFileError(f"{target}: not a libp2p private key: {exc}") from exc
    if not envelope.HasField("key_type") or envelope.key_type != KeyType.Ed25519.value:
        raise KeyFileError(f"{target}: not an Ed25519 private key")
    private_key = _ed25519_private_key(envelope.data, target)
    return KeyPair(private_key, private_key.get_public_key())


def _ed25519_private_key(data: bytes, target: Path) -> Ed25519PrivateKey:
    if len(data) == 2 * ED25519_KEY_SIZE:
        seed, public = data[:ED25519_KEY_SIZE], data[ED25519_KEY_SIZE:]
    elif len(data) == ED25519_KEY_SIZE:
        seed, public = data, None
    else:
        raise KeyFileError(f"{target}: an Ed25519 private key is 32 or 64 bytes, got {len(data)}")
    private_key = Ed25519PrivateKey.from_bytes(seed)  # any 32 bytes are a valid seed
    if public is not None and private_key.get_public_key().to_bytes() != public:
        raise KeyFileError(f"{target}: the public half does not match the private key")
    return private_key
