"""Page deltas on /vac/cas/1.0.0 between real hosts: DeltaGet, DeltaAdd and their fallbacks."""

from __future__ import annotations

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, build_log
from rlp2p.core.pagedelta import MAX_DELTA_BASES, page_delta
from rlp2p.pb.vac import cas_pb2
from rlp2p.wire.cas import encode_add_delta, encode_delta, encode_error, encode_get_delta
from rlp2p.wire.rpc import Reply

MODE = LogMode.paged(64, embed=None)


def head_page(n: int) -> bytes:
    entries = [
        LogEntry.from_message(i, Message(b"g" * 32, 1_700_000_000 + i, f"message {i} ".encode() * 20))
        for i in range(1, n + 1)
    ]
    return build_log(entries, MODE, (b"/hint",)).pages[-1][1]


@pytest.fixture
async def peers(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client", bootstrap=(storage.addrs[0],))
    return storage, client


async def fetch(client, storage, base: bytes, page: bytes):
    """One Get of ``page`` naming ``base``: (what came, bytes in, the client)."""
    async with client.cas(storage.peer_id, fresh=True) as cas:
        cas.offer_bases({address_of(base): base})
        before = cas.rpc.bytes_in
        want = address_of(page)
        await cas.send_gets([want], pages={want})
        got = []
        while cas.in_flight:
            got += await cas.receive_gets()
        return got, cas.rpc.bytes_in - before, cas


async def test_a_get_naming_the_old_head_receives_a_delta(peers):
    storage, client = peers
    old, new = head_page(40), head_page(41)
    async with client.cas(storage.peer_id) as cas:
        await cas.add_many([old, new])
    got, bytes_in, cas = await fetch(client, storage, old, new)
    assert got == [(address_of(new), new)]
    assert cas.delta_answers == 1 and cas.deltas
    assert bytes_in < len(new) / 4  # one new pair, not 41


async def test_a_base_the_server_lacks_gets_the_page_whole(peers):
    storage, client = peers
    old, new = head_page(40), head_page(41)
    async with client.cas(storage.peer_id) as cas:
        await cas.add_many([new])
    got, bytes_in, cas = await fetch(client, storage, old, new)
    assert got == [(address_of(new), new)]
    assert cas.delta_answers == 0 and bytes_in > len(new)


async def test_an_old_server_is_asked_again_with_a_plain_get(peers, monkeypatch):
    storage, client = peers
    old, new = head_page(40), head_page(41)
    async with client.cas(storage.peer_id) as cas:
        await cas.add_many([old, new])

    async def refuse(self, address, bases, peer):  # a server without the extension
        yield Reply(encode_error(cas_pb2.Error.BAD_REQUEST, "unknown or missing method"))

    monkeypatch.setattr(type(storage.cas_server), "_load_delta", refuse)
    got, _, cas = await fetch(client, storage, old, new)
    assert got == [(address_of(new), new)]
    assert not cas.deltas  # no more delta asks to this server


async def test_a_wrong_delta_is_caught_and_the_page_fetched_whole(peers, monkeypatch):
    storage, client = peers
    old, new, other = head_page(40), head_page(41), head_page(42)
    async with client.cas(storage.peer_id) as cas:
        await cas.add_many([old, new])
    wrong = page_delta(old, other)  # a valid delta against our base, for another page
    assert wrong is not None

    async def lie(self, address, bases, peer):  # a hostile server
        yield Reply(encode_delta(wrong))

    monkeypatch.setattr(type(storage.cas_server), "_load_delta", lie)
    got, _, cas = await fetch(client, storage, old, new)
    assert got == [(address_of(new), new)]  # the CID check caught it; the page came whole
    assert cas.delta_answers == 0 and not cas.deltas


async def test_add_as_a_delta_stores_the_page(peers):
    storage, client = peers
    old, new, other = head_page(40), head_page(41), head_page(42)
    delta = page_delta(old, new)
    assert delta is not None
    async with client.cas(storage.peer_id) as cas:
        # the base is missing: NOT_FOUND, nothing stored
        (frame,) = await cas.rpc.call_many([encode_add_delta(address_of(new), delta)])
        assert cas_pb2.CasResponse.FromString(frame).error.code == cas_pb2.Error.NOT_FOUND
        await cas.add_many([old])
        # a delta naming another page's CID is refused, nothing stored
        (frame,) = await cas.rpc.call_many([encode_add_delta(address_of(other), delta)])
        assert cas_pb2.CasResponse.FromString(frame).error.code == cas_pb2.Error.BAD_REQUEST
        assert isinstance((await cas.get_many([address_of(other)]))[address_of(other)], Exception)
        (frame,) = await cas.rpc.call_many([encode_add_delta(address_of(new), delta)])
        assert cas_pb2.CasResponse.FromString(frame).address.id == address_of(new)
        assert await cas.get(address_of(new)) == new




async def test_too_many_bases_or_a_bad_one_is_refused_and_the_stream_serves_on(peers):
    storage, client = peers
    old, new = head_page(40), head_page(41)
    async with client.cas(storage.peer_id, fresh=True) as cas:
        await cas.add_many([old, new])
        bases = [address_of(b"%d" % i) for i in range(MAX_DELTA_BASES + 1)]
        frames = await cas.rpc.call_many(
            [encode_get_delta(address_of(new), bases), encode_get_delta(address_of(new), [b"\x01junk"])]
        )
        assert [cas_pb2.CasResponse.FromString(f).error.code for f in frames] == [cas_pb2.Error.BAD_ADDRESS] * 2
        # bases the server lacks, then the one it holds: the delta against that one
        (frame,) = await cas.rpc.call_many([encode_get_delta(address_of(new), [*bases[:3], address_of(old)])])
        assert cas_pb2.CasResponse.FromString(frame).delta.base == address_of(old)
        assert await cas.get(address_of(new)) == new
