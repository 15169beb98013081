"""The CAS and NS servers on a real storage peer, fed bad input by a raw client."""

from __future__ import annotations

import pytest
import trio

from libp2p.utils.varint import encode_uvarint

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import create_record
from rlp2p.errors import RemoteError, StreamClosed
from rlp2p.pb.vac import cas_pb2, ns_pb2
from rlp2p.wire.cas import CAS_PROTOCOL, encode_add, encode_get
from rlp2p.wire.framing import FramedStream, encode_frame
from rlp2p.wire.ns import NS_PROTOCOL


@pytest.fixture
async def peers(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client", bootstrap=(storage.addrs[0],))
    return storage, client


async def raw_stream(client, storage, protocol):
    return await client.host.new_stream(storage.peer_id, [protocol])


async def read_all(stream) -> bytes:
    out = b""
    with trio.fail_after(5):
        while True:
            try:
                chunk = await stream.read(65536)
            except Exception:  # EOF or reset: the server closed
                return out
            if not chunk:
                return out
            out += chunk


async def assert_still_serves(client, storage):
    async with client.cas(storage.peer_id) as cas:
        [address] = await cas.add_many([b"still here"])
        assert await cas.get(address) == b"still here"


def cas_error(frame: bytes) -> cas_pb2.Error:
    response = cas_pb2.CasResponse.FromString(frame)
    assert response.WhichOneof("result") == "error"
    return response.error


async def test_malformed_protobuf_gets_a_typed_error_and_a_close(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    await stream.write(encode_frame(b"\xff\xff\xff\xff"))
    framed = FramedStream(stream, 1 << 20)
    assert cas_error(await framed.read_frame()).code == cas_pb2.Error.BAD_REQUEST
    assert await read_all(stream) == b""  # then the server closed the stream
    await assert_still_serves(client, storage)


async def test_oversize_length_prefix_gets_too_large_and_a_reset(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    limit = storage.config.limits.max_frame
    await stream.write(encode_uvarint(limit + 1))
    framed = FramedStream(stream, 1 << 20)
    assert cas_error(await framed.read_frame()).code == cas_pb2.Error.TOO_LARGE
    await assert_still_serves(client, storage)


async def test_unknown_method_is_answered_and_the_stream_keeps_serving(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    framed = FramedStream(stream, 1 << 20)
    await framed.write_frame(b"\x2a\x00")  # field 5, empty: a method this server does not know
    assert cas_error(await framed.read_frame()).code == cas_pb2.Error.BAD_REQUEST
    await framed.write_frame(encode_add(b"after"))
    response = cas_pb2.CasResponse.FromString(await framed.read_frame())
    assert response.address.id == address_of(b"after")
    await stream.close()


async def test_stream_cut_mid_frame_then_next_client_is_served(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    await stream.write(encode_frame(encode_add(b"x" * 1000))[:200])
    await stream.close()
    await assert_still_serves(client, storage)


async def test_get_of_missing_and_bad_addresses(peers):
    storage, client = peers
    async with client.cas(storage.peer_id) as cas:
        results = await cas.get_many([address_of(b"never stored"), b"\x01\x02"])
    missing, bad = results.values()
    assert isinstance(missing, RemoteError) and missing.code == "NOT_FOUND"
    assert isinstance(bad, RemoteError) and bad.code == "BAD_ADDRESS"


async def test_add_recomputes_the_address_and_too_large_is_refused(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    framed = FramedStream(stream, 1 << 24)
    await framed.write_frame(encode_add(b"data"))
    assert cas_pb2.CasResponse.FromString(await framed.read_frame()).address.id == address_of(b"data")
    big = b"x" * (storage.config.limits.max_block + 1)
    await framed.write_frame(encode_add(big))
    assert cas_error(await framed.read_frame()).code == cas_pb2.Error.TOO_LARGE
    await stream.close()
    assert storage.store.get_block(address_of(b"data")) == b"data"


async def test_pipelined_gets_on_one_stream(peers):
    storage, client = peers
    blocks = [f"block {i}".encode() * 10 for i in range(300)]
    async with client.cas(storage.peer_id) as cas:
        addresses = await cas.add_many(blocks)
        got = await cas.get_many(addresses)
        assert cas.rpc.round_trips == 2
    assert [got[a] for a in addresses] == blocks


async def test_ns_refuses_invalid_stale_and_oversize_records_with_reasons(peers):
    storage, client = peers
    key = generate_log_key()
    name = log_name(key.public_key)
    head = address_of(b"page")
    async with client.cas(storage.peer_id) as cas:
        await cas.add_many([b"page"])  # a storage peer takes a record only for a head it holds
    async with client.ns(storage.peer_id) as ns:
        await ns.update(name, create_record(key, head, 2))
        with pytest.raises(RemoteError) as stale:
            await ns.update(name, create_record(key, head, 1))
        assert stale.value.code == "STALE"
        other = generate_log_key()
        with pytest.raises(RemoteError) as wrong:
            await ns.update(name, create_record(other, head, 3))
        assert wrong.value.code == "INVALID_RECORD"
        with pytest.raises(RemoteError) as big:
            await ns.update(name, b"x" * 20_000)
        assert big.value.code == "TOO_LARGE"
        with pytest.raises(RemoteError) as missing:
            await ns.fetch(log_name(other.public_key))
        assert missing.value.code == "NOT_FOUND"
        held = await ns.fetch(name)
    assert held.sequence == 2


async def test_ns_malformed_request_then_next_client(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, NS_PROTOCOL)
    framed = FramedStream(stream, 1 << 20)
    await framed.write_frame(b"\x0a\x05\x0a")  # truncated nested message
    response = ns_pb2.NsResponse.FromString(await framed.read_frame())
    assert response.error.code == ns_pb2.Error.BAD_REQUEST
    async with client.ns(storage.peer_id) as ns:
        with pytest.raises(RemoteError):
            await ns.fetch(log_name(generate_log_key().public_key))


async def test_client_sees_a_server_that_hangs_up(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    from rlp2p.wire.rpc import RpcStream

    rpc = RpcStream(stream, storage.config.limits, timeout=5)
    with pytest.raises(StreamClosed):
        # a malformed request makes the server answer then close: the second answer never comes
        await rpc.call_many([b"\xff\xff", encode_get(address_of(b"x"))])


class CountingBackend:
    def __init__(self, inner):
        self.inner = inner
        self.put_calls = 0
        self.get_calls = 0

    async def get_blocks(self, addresses):
        self.get_calls += 1
        return await self.inner.get_blocks(addresses)

    async def put_blocks(self, items):
        self.put_calls += 1
        await self.inner.put_blocks(items)


async def test_pipelined_requests_are_served_as_batches(peers):
    storage, client = peers
    counting = storage.cas_server.backend = CountingBackend(storage.cas_server.backend)
    if storage.cas_server.gate is not None:  # a storage peer's gate stores Adds: count its store calls
        store_many = storage.store.put_blocks_as

        def put_blocks_as(*args, **kwargs):
            counting.put_calls += 1
            return store_many(*args, **kwargs)

        storage.store.put_blocks_as = put_blocks_as
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    framed = FramedStream(stream, 1 << 20)
    blocks = [f"b{i}".encode() for i in range(50)]
    await stream.write(b"".join(encode_frame(encode_add(b)) for b in blocks))  # one write: one batch
    answers = [cas_pb2.CasResponse.FromString(await framed.read_frame()) for _ in blocks]
    assert [a.address.id for a in answers] == [address_of(b) for b in blocks]
    assert 1 <= counting.put_calls < len(blocks)  # batched: one transaction per arriving batch
    await stream.close()


async def test_requests_before_a_malformed_one_are_answered_and_none_after(peers):
    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    framed = FramedStream(stream, 1 << 20)
    await stream.write(encode_frame(encode_add(b"first")) + encode_frame(b"\xff\xff") + encode_frame(encode_add(b"never")))
    assert cas_pb2.CasResponse.FromString(await framed.read_frame()).address.id == address_of(b"first")
    assert cas_error(await framed.read_frame()).code == cas_pb2.Error.BAD_REQUEST
    assert await read_all(stream) == b""
    assert storage.store.get_blocks([address_of(b"never")]) == {}


async def test_requests_before_an_oversize_prefix_are_answered(peers):
    from libp2p.utils.varint import encode_uvarint

    storage, client = peers
    stream = await raw_stream(client, storage, CAS_PROTOCOL)
    framed = FramedStream(stream, 1 << 20)
    await stream.write(encode_frame(encode_add(b"kept")) + encode_uvarint(storage.config.limits.max_frame + 1))
    # a client slow to read (a loaded machine) still gets the refusal: the server's reset
    # waits for it instead of overtaking the error frame
    await trio.sleep(0.5)
    assert cas_pb2.CasResponse.FromString(await framed.read_frame()).address.id == address_of(b"kept")
    assert cas_error(await framed.read_frame()).code == cas_pb2.Error.TOO_LARGE


async def test_large_adds_pass_through_the_memory_budget_on_several_streams(peers):
    """Adds over ``large_frame`` are read only once budgeted (one 8 MiB frame per peer at a
    time); pipelined and on parallel streams they all get stored and read back."""
    import os

    storage, client = peers
    blocks = [[os.urandom(3 * 1024 * 1024 + i) for i in range(3)] for _ in range(3)]
    stored: list[list[bytes]] = []

    async def upload(mine: list[bytes]) -> None:
        async with client.cas(storage.peer_id, fresh=True) as cas:
            stored.append(await cas.add_many(mine))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for mine in blocks:
                nursery.start_soon(upload, mine)
        async with client.cas(storage.peer_id) as cas:
            everything = [b for mine in blocks for b in mine]
            got = await cas.get_many([address_of(b) for b in everything])
    assert [got[address_of(b)] for b in everything] == everything
    assert storage.cas_server.budget.used == 0
