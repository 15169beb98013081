import os
import stat

import base58
import multihash
import pytest
from libp2p.crypto import secp256k1
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.pb import crypto_pb2
from libp2p.peer.id import ID

from rlp2p.core.keys import (
    generate_log_key,
    load_key,
    log_name,
    name_to_peer_id,
    save_key,
)
from rlp2p.errors import DecodeError, KeyFileError, LimitExceeded
from rlp2p.limits import Limits


def test_log_name_is_an_ed25519_peer_id_that_holds_the_key():
    keypair = generate_log_key()
    assert keypair.private_key.get_type() is KeyType.Ed25519
    name = log_name(keypair.public_key)
    assert name.startswith("12D3KooW")
    peer_id = name_to_peer_id(name)
    assert peer_id == ID.from_pubkey(keypair.public_key)
    assert peer_id.extract_public_key() == keypair.public_key


def test_two_keys_two_names():
    assert log_name(generate_log_key().public_key) != log_name(generate_log_key().public_key)


def test_log_name_refuses_other_key_types():
    with pytest.raises(ValueError):
        log_name(secp256k1.create_new_key_pair().public_key)


def _b58(raw: bytes) -> str:
    return base58.b58encode(raw).decode()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-a-peer-id",
        "12D3KooW" + "0" * 44,  # "0" is not in the base58 alphabet
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # a sha2-256 peer id: key not inlined
        "12D3KooWé",
        _b58(multihash.encode(b"\x08\x01\x12\x02ab", 0x00)),  # identity, Ed25519 tag, 2-byte key
        _b58(multihash.encode(b"\xff\xff", 0x00)),  # identity, not a key protobuf
    ],
)
def test_bad_names_are_decode_errors(bad):
    with pytest.raises(DecodeError):
        name_to_peer_id(bad)


def test_secp256k1_peer_id_is_not_a_log_name():
    other = ID.from_pubkey(secp256k1.create_new_key_pair().public_key).to_base58()
    with pytest.raises(DecodeError, match="not an Ed25519 peer id"):
        name_to_peer_id(other)


def test_non_canonical_spelling_is_refused():
    keypair = generate_log_key()
    raw = ID.from_pubkey(keypair.public_key).to_bytes()
    with pytest.raises(DecodeError):
        name_to_peer_id(_b58(raw + b"\x00"))  # trailing byte after the multihash
    # the same key with its protobuf fields in the other order: a second name for one key
    key = keypair.public_key.to_bytes()
    reordered = b"\x12\x20" + key + b"\x08\x01"
    with pytest.raises(DecodeError, match="canonical"):
        name_to_peer_id(_b58(multihash.encode(reordered, 0x00)))


def test_name_is_not_a_str():
    with pytest.raises(DecodeError):
        name_to_peer_id(b"12D3KooW")  # type: ignore[arg-type]


def test_name_length_is_limited_before_decoding():
    with pytest.raises(LimitExceeded):
        name_to_peer_id("1" * 257)
    name = log_name(generate_log_key().public_key)
    with pytest.raises(LimitExceeded):
        name_to_peer_id(name, limits=Limits(max_name=len(name) - 1))
    assert name_to_peer_id(name) == ID.from_pubkey(ID.from_base58(name).extract_public_key())
    with pytest.raises(LimitExceeded):  # parsed once already: the limit still comes first
        name_to_peer_id(name, limits=Limits(max_name=len(name) - 1))


def test_a_name_parsed_lately_is_not_decoded_again_and_a_bad_one_always_is(monkeypatch):
    from rlp2p.core import keys

    name = log_name(generate_log_key().public_key)
    decoded: list[bytes] = []
    real = keys.base58.b58decode
    monkeypatch.setattr(keys.base58, "b58decode", lambda data: decoded.append(data) or real(data))
    first = name_to_peer_id(name)
    assert name_to_peer_id(name) is first and len(decoded) == 1
    for _ in range(2):  # a refused name is never remembered
        with pytest.raises(DecodeError):
            name_to_peer_id("12D3KooW0OIl")  # not base58
    assert len(decoded) == 3
    assert keys._parsed_name.cache_info().maxsize == keys.PARSED_NAMES  # bounded


# --- key files -------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    keypair = generate_log_key()
    path = tmp_path / "log.key"
    save_key(path, keypair)
    loaded = load_key(path)
    assert loaded.private_key == keypair.private_key
    assert loaded.public_key == keypair.public_key
    assert log_name(loaded.public_key) == log_name(keypair.public_key)
    message = b"signed by the same key"
    assert keypair.public_key.verify(message, loaded.private_key.sign(message))
    # libp2p's protobuf PrivateKey with the 64-byte Ed25519 data go and js use; no temp file left
    from libp2p.crypto.pb import crypto_pb2

    envelope = crypto_pb2.PrivateKey.FromString(path.read_bytes())
    assert envelope.key_type == crypto_pb2.KeyType.Ed25519
    assert envelope.data == keypair.private_key.to_bytes() + keypair.public_key.to_bytes()
    assert os.listdir(tmp_path) == ["log.key"]


def test_py_libp2p_seed_only_key_files_still_load(tmp_path):
    keypair = generate_log_key()
    path = tmp_path / "old.key"
    path.write_bytes(keypair.private_key.serialize())  # py-libp2p's 32-byte form
    assert load_key(path).public_key == keypair.public_key


def test_key_file_mode_is_0600(tmp_path):
    path = tmp_path / "log.key"
    old_umask = os.umask(0)  # a permissive umask must not widen the mode
    try:
        save_key(path, generate_log_key())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_existing_key_is_not_replaced_unless_asked(tmp_path):
    path = tmp_path / "log.key"
    first, second = generate_log_key(), generate_log_key()
    save_key(path, first)
    with pytest.raises(KeyFileError, match="already there"):
        save_key(path, second)
    assert load_key(path).private_key == first.private_key
    assert os.listdir(tmp_path) == ["log.key"]
    save_key(path, second, overwrite=True)
    assert load_key(path).private_key == second.private_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["log.key"]


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(KeyFileError):
        save_key(tmp_path / "no" / "such" / "dir" / "log.key", generate_log_key())


def test_save_refuses_non_ed25519_and_mismatched_pairs(tmp_path):
    with pytest.raises(KeyFileError):
        save_key(tmp_path / "k", secp256k1.create_new_key_pair())
    a, b = generate_log_key(), generate_log_key()
    with pytest.raises(KeyFileError):
        save_key(tmp_path / "k", KeyPair(a.private_key, b.public_key))
    assert os.listdir(tmp_path) == []


def test_missing_file(tmp_path):
    with pytest.raises(KeyFileError):
        load_key(tmp_path / "missing.key")


def test_directory_is_not_a_key_file(tmp_path):
    with pytest.raises(KeyFileError):
        load_key(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage, not a protobuf \xff\xff\xff",
        b"\x08\x01",  # Ed25519 type, no key bytes
        crypto_pb2.PrivateKey(key_type=crypto_pb2.KeyType.Ed25519, data=b"x" * 31).SerializeToString(),
        b"\x00" * 5000,  # too big to be a key
    ],
)
def test_garbage_files(tmp_path, content):
    path = tmp_path / "log.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError):
        load_key(path)


def test_secp256k1_key_file_is_refused(tmp_path):
    path = tmp_path / "log.key"
    path.write_bytes(secp256k1.create_new_key_pair().private_key.serialize())
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        load_key(path)


def test_go_style_64_byte_key_is_accepted(tmp_path):
    keypair = generate_log_key()
    seed, public = keypair.private_key.to_bytes(), keypair.public_key.to_bytes()
    path = tmp_path / "go.key"
    path.write_bytes(
        crypto_pb2.PrivateKey(key_type=crypto_pb2.KeyType.Ed25519, data=seed + public).SerializeToString()
    )
    assert load_key(path).public_key == keypair.public_key
    # a public half that does not belong to the seed is refused
    other = generate_log_key().public_key.to_bytes()
    path.write_bytes(
        crypto_pb2.PrivateKey(key_type=crypto_pb2.KeyType.Ed25519, data=seed + other).SerializeToString()
    )
    with pytest.raises(KeyFileError, match="does not match"):
        load_key(path)
