"""Log names and key files without importing py-libp2p, for the command's start-up time.

``import libp2p`` costs over a second (its package ``__init__`` loads every transport), so the
commands that need only a key's name (``keygen``, ``name``, ``status``) and the checks of a usage
error (a malformed name or multiaddr) use these few lines over PyNaCl, base58 and multiaddr
instead. The formats are libp2p's: a key file is ``PrivateKey{Type=Ed25519, Data}`` (data: 64
bytes, seed then public key, or the 32-byte seed); a log name is the base58btc identity multihash
of ``PublicKey{Type=Ed25519, Data}``. ``tests/cli/test_light.py`` checks them against
:mod:`rlp2p.core.keys`, which stays the reference.
"""

from __future__ import annotations

import os
from pathlib import Path

from rlp2p.core.keyfile import read_key_file, write_key_file
from rlp2p.errors import DecodeError, KeyFileError
from rlp2p.limits import DEFAULT_LIMITS

#: the protobuf bytes before an Ed25519 key's 32 bytes: field 1 (type) = 1, field 2 (data), length
_PUBLIC_PREFIX = b"\x08\x01\x12\x20"
#: identity multihash (code 0x00) of the 36-byte serialized public key
_NAME_PREFIX = b"\x00\x24" + _PUBLIC_PREFIX
_KEY_SIZE = 32
#: as core.keys: anything bigger is not a key file


def name_of_public(public: bytes) -> str:
    import base58

    return base58.b58encode(_NAME_PREFIX + public).decode("ascii")


def check_name(name: str) -> str:
    """``name`` if it is a log name in its canonical form; DecodeError saying why not."""
    import base58

    if len(name) > DEFAULT_LIMITS.max_name:
        raise DecodeError(f"not a log name: {len(name)} characters, over the limit of {DEFAULT_LIMITS.max_name}")
    try:
        raw = base58.b58decode(name.encode("ascii"))
    except Exception as exc:  # base58 raises ValueError or UnicodeError
        raise DecodeError(f"not a log name (the 12D3KooW... name that `rlp2p keygen` prints): {name[:80]!r}") from exc
    if len(raw) != len(_NAME_PREFIX) + _KEY_SIZE or not raw.startswith(_NAME_PREFIX) or name_of_public(raw[len(_NAME_PREFIX) :]) != name:
        raise DecodeError(f"not a log name (the 12D3KooW... name that `rlp2p keygen` prints): {name[:80]!r}")
    return name


def _parse_private(data: bytes, where: Path) -> bytes:
    """The 32-byte seed of a libp2p ``PrivateKey`` protobuf holding an Ed25519 key."""
    fields: dict[int, int | bytes] = {}
    i = 0
    try:
        while i < len(data):
            tag = data[i]
            i += 1
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                value = 0
                for shift in range(0, 64, 7):
                    byte = data[i]
                    i += 1
                    value |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                fields[number] = value
            elif wire == 2:
                length = data[i]
                i += 1
                if length & 0x80 or i + length > len(data):
                    raise IndexError
                fields[number] = data[i : i + length]
                i += length
            else:
                raise IndexError
    except IndexError:
        raise KeyFileError(f"{where}: not a libp2p private key") from None
    if fields.get(1) != 1:
        raise KeyFileError(f"{where}: not an Ed25519 private key")
    key = fields.get(2)
    if not isinstance(key, bytes) or len(key) not in (_KEY_SIZE, 2 * _KEY_SIZE):
        raise KeyFileError(f"{where}: an Ed25519 private key is 32 or 64 bytes")
    return key


def key_file_name(path: str | os.PathLike[str]) -> str:
    """The name of the log the key file at ``path`` signs. KeyFileError if it is not a key file."""
    from nacl.signing import SigningKey

    target = Path(path)
    data = read_key_file(target)
    key = _parse_private(data, target)
    public = bytes(SigningKey(key[:_KEY_SIZE]).verify_key)
    if len(key) == 2 * _KEY_SIZE and key[_KEY_SIZE:] != public:
        raise KeyFileError(f"{target}: the public half does not match the private key")
    return name_of_public(public)


def new_key_file(path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
    """Write a new Ed25519 log key to ``path`` (mode 0600, atomically, as core.keys.save_key)."""
    from nacl.signing import SigningKey

    signing = SigningKey.generate()
    public = bytes(signing.verify_key)
    data = b"\x08\x01\x12\x40" + bytes(signing) + public
    write_key_file(path, data, overwrite=overwrite, hint=" (--force does)")
    return name_of_public(public)


def check_peer_addr(text: str) -> str:
    """``text`` if it parses as a multiaddr with a /p2p/ peer id; DecodeError otherwise."""
    import multiaddr

    try:
        addr = multiaddr.Multiaddr(text)
        peer = addr.value_for_protocol("p2p")
    except Exception as exc:  # multiaddr raises several unrelated types
        raise DecodeError(f"not a multiaddr with /p2p/<peer id>: {text[:200]!r}") from exc
    if not peer:
        raise DecodeError(f"not a multiaddr with /p2p/<peer id>: {text[:200]!r}")
    return text


def check_listen_addr(text: str) -> str:
    import multiaddr

    try:
        multiaddr.Multiaddr(text)
    except Exception as exc:
        raise DecodeError(f"not a multiaddr: {text[:200]!r}") from exc
    return text
