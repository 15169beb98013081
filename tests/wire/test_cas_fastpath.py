"""The bulk Get's hand-built frames: byte for byte what the generated classes write, and read back
only when they are exactly that shape (anything else goes through protobuf)."""

from __future__ import annotations

import os

import pytest
from libp2p.utils.varint import encode_uvarint

from rlp2p.core.address import address_of
from rlp2p.errors import HashMismatch, RemoteError
from rlp2p.pb.vac import cas_pb2
from rlp2p.wire.cas import _get_result, _unwrap, encode_content, encode_get
from rlp2p.wire.framing import FrameDecoder, encode_frame, uvarint

SIZES = [0, 1, 2, 127, 128, 129, 4096, 16_383, 16_384, 70_000, (1 << 21) - 10, 1 << 21]


@pytest.mark.parametrize("size", SIZES)
def test_get_request_bytes_are_protobufs(size: int) -> None:
    address = os.urandom(size)
    expected = cas_pb2.CasRequest(get=cas_pb2.Address(id=address)).SerializeToString()
    assert encode_get(address) == expected


@pytest.mark.parametrize("size", SIZES)
def test_unwrap_reads_what_protobuf_reads(size: int) -> None:
    data = os.urandom(size)
    frame = cas_pb2.CasResponse(content=cas_pb2.Content(data=data)).SerializeToString()
    got = _unwrap(0x12, frame)
    # a frame the shortcut does not take (None) is parsed by protobuf: never a different answer
    assert got is None or got == cas_pb2.CasResponse.FromString(frame).content.data
    if 3 <= size < (1 << 21) - 8:
        assert got == data


def _content_frame(data: bytes, inner_extra: bytes = b"", outer_extra: bytes = b"") -> bytes:
    inner = b"\x0a" + encode_uvarint(len(data)) + data + inner_extra
    return b"\x12" + encode_uvarint(len(inner)) + inner + outer_extra


@pytest.mark.parametrize(
    "frame",
    [
        _content_frame(b"x" * 100, inner_extra=b"\x0a\x01y"),  # a repeated field 1: the last wins
        _content_frame(b"x" * 100, outer_extra=b"\x1a\x00"),  # another field after content
        _content_frame(b"x" * 100, outer_extra=b"\x12\x00"),  # content given twice: merged
        b"\x1a\x02\x08\x03",  # an error answer
        b"\x12\x80\x01" + b"\x0a" * 3,  # an envelope length that does not span the frame
        b"\x12\x05\x0a\x80\x80\x80\x01",  # a length past the frame
        b"\x12\x04\x0b\x02ab",  # not field 1 inside
        b"",
        b"\x12",
    ],
)
def test_unwrap_leaves_every_other_shape_to_protobuf(frame: bytes) -> None:
    assert _unwrap(0x12, frame) is None


def test_get_result_takes_either_path_and_verifies() -> None:
    data = os.urandom(4096)
    address = address_of(data)
    assert _get_result(address, encode_content(data)) == data
    # content given twice (protobuf merges them: the last data wins): the slow path, same answer
    twice = _content_frame(b"other") + encode_content(data)
    assert _unwrap(0x12, twice) is None
    assert _get_result(address, twice) == data
    wrong = bytearray(encode_content(data))
    wrong[-1] ^= 1
    assert isinstance(_get_result(address, bytes(wrong)), HashMismatch)
    assert _get_result(address, bytes(wrong), verify=False) == bytes(wrong[-4096:])
    error = cas_pb2.CasResponse(error=cas_pb2.Error(code=cas_pb2.Error.NOT_FOUND, message="no")).SerializeToString()
    assert isinstance(_get_result(address, error), RemoteError)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 16_383, 16_384, 1 << 30])
def test_uvarint_is_libp2ps(value: int) -> None:
    assert uvarint(value) == encode_uvarint(value)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 4103, 16_383, 16_384, 70_000])
def test_short_prefixes_decode_as_long_ones(size: int) -> None:
    payload = os.urandom(size)
    decoder = FrameDecoder(1 << 20)
    stream = encode_frame(payload) * 3
    for i in range(len(stream)):  # fed a byte at a time: every partial prefix is waited for
        decoder.feed(stream[i : i + 1])
    assert [decoder.next_frame() for _ in range(3)] == [payload] * 3
    assert decoder.next_frame() is None and decoder.at_boundary()


def test_get_blocks_upto_on_a_real_store(tmp_path) -> None:
    from rlp2p.store import open_store

    store = open_store(tmp_path)
    try:
        blocks = [os.urandom(n) for n in (100, 200, 300)]
        addresses = [address_of(b) for b in blocks]
        store.put_blocks(list(zip(addresses, blocks, strict=True)))
        missing = address_of(b"not stored")
        assert store.get_blocks_upto([*addresses, missing], 600) == (dict(zip(addresses, blocks, strict=True)), True)
        found, whole = store.get_blocks_upto(addresses, 599)
        assert not whole and sum(map(len, found.values())) <= 599
        assert all(store.get_block(a) == d for a, d in found.items())
        assert store.get_blocks_upto([], 0) == ({}, True)
    finally:
        store.close()


async def test_get_blocks_within_counts_an_address_asked_twice(tmp_path) -> None:
    from rlp2p.node.backend import AsyncStore
    from rlp2p.store import open_store

    store = open_store(tmp_path)
    try:
        blocks = [os.urandom(n) for n in (100, 200)]
        a, b = (address_of(x) for x in blocks)
        store.put_blocks([(a, blocks[0]), (b, blocks[1])])
        # both fit once (300 bytes), but the answers hold a's bytes twice: the prefix stops before b
        found, taken, next_size = await AsyncStore(store).get_blocks_within([a, a, b], 300)
        assert (found, taken, next_size) == ({a: blocks[0]}, 2, 200)
    finally:
        store.close()


class Held:
    """A BlockBackend over a dict."""

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = {address_of(b): b for b in blocks}

    async def get_blocks(self, addresses):
        return {a: self.blocks[a] for a in addresses if a in self.blocks}

    async def put_blocks(self, items):
        self.blocks.update(items)


async def test_the_server_answers_gets_in_any_shape_alike() -> None:
    from rlp2p.wire.cas import CasServer

    block = os.urandom(4096)
    address = address_of(block)
    server = CasServer(Held([block]))
    plain = encode_get(address)
    # the same Get as another writer may send it: an unknown field after, or the id given twice
    # (protobuf keeps the last): both go the protobuf way and get the same answer
    unknown = plain + b"\x80\x05\x00"  # field 80, varint 0
    twice = cas_pb2.CasRequest(get=cas_pb2.Address(id=b"x" * 36)).SerializeToString() + plain
    short = encode_get(address[:-1])  # the shortcut's shape, not an address: BAD_ADDRESS
    replies = [r async for r in server.handle_frames([plain, unknown, twice, short], peer="p")]
    answers = [cas_pb2.CasResponse.FromString(r.frame) for r in replies]
    assert [a.content.data for a in answers[:3]] == [block] * 3
    assert answers[3].error.code == cas_pb2.Error.BAD_ADDRESS and replies[3].keep_open
