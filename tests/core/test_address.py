import cid
import multibase
import pytest
from hypothesis import given, strategies as st

from rlp2p.core.address import (
    MAX_ADDRESS_TEXT,
    ADDRESS_SIZE,
    address_from_text,
    address_of,
    address_to_text,
    parse_address,
    verify_block,
)
from rlp2p.errors import AddressError, HashMismatch


def test_known_cid():
    # `ipfs add --raw-leaves --cid-version 1` of b"hello" gives this CID
    assert address_to_text(address_of(b"hello")) == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


@given(st.binary(max_size=1024))
def test_address_verifies_its_bytes(data):
    address = address_of(data)
    assert len(address) == ADDRESS_SIZE
    verify_block(address, data)
    assert address_from_text(address_to_text(address)) == address


@given(st.binary(max_size=512))
def test_fast_address_is_the_library_cid(data):
    from rlp2p.core.address import _library_address

    assert address_of(data) == _library_address(data)


def test_other_bytes_do_not_verify():
    with pytest.raises(HashMismatch):
        verify_block(address_of(b"a"), b"b")


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x01" * ADDRESS_SIZE, b"\x01\x70\x12\x20" + b"\x00" * 32, b"\x01\x55\x13\x20" + b"\x00" * 32, b"x" * 100],
)
def test_bad_addresses_are_typed_errors(bad):
    with pytest.raises(AddressError):
        parse_address(bad)


def test_bad_text_is_a_typed_error():
    with pytest.raises(AddressError):
        address_from_text("not-a-cid")
    with pytest.raises(AddressError):
        address_from_text("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")  # CIDv0, not ours


def test_every_text_form_of_an_address_is_within_the_text_limit():
    address = address_of(b"block")
    parsed = cid.from_bytes(address)
    for encoding in multibase.ENCODINGS:
        if encoding.encoding == "identity":
            continue  # raw bytes, not text
        text = parsed.encode(encoding.encoding).decode("utf-8")
        assert len(text) <= MAX_ADDRESS_TEXT, encoding.encoding
        assert address_from_text(text) == address, encoding.encoding


@pytest.mark.parametrize("prefix", ["z", "k", "9", "f", "b"])
def test_overlong_text_is_refused_before_decoding(prefix):
    # fuzzing regression: 10 KiB of base58 (a signed record's value may be that long) took
    # py-multibase 3 s to decode; base36 and base10 as long
    with pytest.raises(AddressError, match="at most"):
        address_from_text(prefix + "2" * 10_000)
    with pytest.raises(AddressError, match="at most"):
        address_from_text(prefix + "2" * MAX_ADDRESS_TEXT)


@given(st.binary(max_size=256))
def test_fast_text_form_is_the_library_one(data):
    # address_to_text / address_from_text spell our base32 with the stdlib: the same text as
    # py-cid, and every other spelling still goes through py-cid
    address = address_of(data)
    text = address_to_text(address)
    assert text == parse_address(address).encode("base32").decode("ascii")
    assert address_from_text(text) == cid.from_string(text).buffer == address
    for base in ("base32upper", "base58btc", "base36"):
        assert address_from_text(cid.from_bytes(address).encode(base).decode("ascii")) == address


def test_a_base32_text_of_another_cid_is_refused():
    other = cid.from_bytes(b"\x01\x70\x12\x20" + bytes(32)).encode("base32").decode("ascii")  # dag-pb
    assert len(other) == len(address_to_text(address_of(b"")))
    with pytest.raises(AddressError):
        address_from_text(other)
    with pytest.raises(AddressError):
        address_from_text("b" + "1" * (len(other) - 1))  # not base32 at all
