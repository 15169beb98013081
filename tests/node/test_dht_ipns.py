"""Records under the standard IPNS key between py-libp2p DHT servers (rlp2p/p2p/dht.py edges 7,
9 and 10): servers keep them by the IPNS rules and serve them, and multi-hop lookups work."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta, timezone

import trio
from libp2p.kad_dht import DHTMode, KadDHT
from libp2p.tools.anyio_service import background_trio_service
from libp2p.peer.peerinfo import PeerInfo

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import create_record, verify_record
from rlp2p.p2p.dht import Discovery, binary_record_key
from rlp2p.p2p.host import close_listeners, make_host, parse_listen_addr


@asynccontextmanager
async def chain(count: int):
    """``count`` DHT servers, each connected to (and in the routing table of) its neighbours only."""
    async with AsyncExitStack() as stack:
        nodes: list[Discovery] = []
        for _ in range(count):
            host = make_host()
            node = Discovery(host, server=True, timeout=5.0)
            await stack.enter_async_context(host.run(listen_addrs=[parse_listen_addr("/ip4/127.0.0.1/tcp/0")]))
            stack.push_async_callback(close_listeners, host)
            await stack.enter_async_context(node.running())
            nodes.append(node)
        for left, right in zip(nodes, nodes[1:], strict=False):
            await left.connect(PeerInfo(right.host.get_id(), right.host.get_addrs()))
            await right.connect(PeerInfo(left.host.get_id(), left.host.get_addrs()))
        yield nodes


def record(seq: int, key=None, *, validity: timedelta = timedelta(days=1)):
    key = key or generate_log_key()
    now = datetime.now(timezone.utc)  # py-libp2p's validators read the real clock
    raw = create_record(key, address_of(b"head %d" % seq), seq, now=now, validity=validity)
    return key, verify_record(log_name(key.public_key), raw)


async def test_a_record_two_hops_from_the_reader_resolves():
    async with chain(5) as nodes:
        reader, holder = nodes[0], nodes[2]
        _, info = record(1)
        assert holder.keep_record(binary_record_key(info.name), info.raw)
        # the reader knows only its neighbour; the holder is found through it
        assert holder.host.get_id() not in reader.dht.routing_table.get_peer_ids()
        with trio.fail_after(10):
            found = await reader.get_record(info.name)
        assert found is not None and found.raw == info.raw


async def test_the_binary_key_passes_find_node_where_the_text_key_did_not():
    # edge 7: py-libp2p refuses a FIND_NODE key over 50 bytes unless it is a multihash
    async with chain(3) as nodes:
        asker, middle, far = nodes
        name = log_name(generate_log_key().public_key)
        text_key = f"/ipns/{name}".encode()
        assert len(text_key) > 50
        routing = asker.dht.peer_routing
        assert await routing._query_peer_for_closest(middle.host.get_id(), text_key) == []
        closer = await routing._query_peer_for_closest(middle.host.get_id(), binary_record_key(name))
        assert far.host.get_id() in closer


async def test_a_put_reaches_servers_beyond_the_putters_neighbours():
    async with chain(5) as nodes:
        _, info = record(1)
        with trio.fail_after(10):
            await nodes[0].put_record(info)
        key = binary_record_key(info.name)
        for node in nodes:  # k = 20: every server of five is among the closest
            assert node.dht.value_store.get(key).value == info.raw
        with trio.fail_after(10):
            assert (await nodes[4].get_record(info.name)).raw == info.raw


async def test_servers_keep_the_better_record_by_the_ipns_rules():
    # edge 10: py-libp2p's handler would reset every one of these puts
    async with chain(2) as nodes:
        putter, server = nodes
        key, first = record(1)
        _, second = record(2, key)
        peer = [server.host.get_id()]
        dht_key = binary_record_key(first.name)
        assert await putter.put_record_to_peers(second, peer) == peer
        assert await putter.put_record_to_peers(first, peer) == []  # lower sequence: refused
        assert await putter.put_record_to_peers(second, peer) == []  # the same again: nothing new
        assert server.dht.value_store.get(dht_key).value == second.raw
        _, third = record(3, key)
        assert await putter.put_record_to_peers(third, peer) == peer
        assert server.dht.value_store.get(dht_key).value == third.raw
        # the server still answers every other request through py-libp2p's handler
        assert await putter.get_record_from_peers(first.name, peer) == {server.host.get_id(): third.raw}
        assert await putter.announce_log(first.name)
        assert [p.peer_id for p in await server.find_log_peers(first.name)] == [putter.host.get_id()]


async def test_servers_refuse_records_that_are_not_valid_now():
    async with chain(2) as nodes:
        putter, server = nodes
        key, good = record(1)
        other_key, other = record(1)
        dht_key = binary_record_key(good.name)
        # a record of another log offered under this log's key
        assert not server.keep_record(dht_key, other.raw)
        assert not server.keep_record(dht_key, b"\x00garbage")
        # a key that is no log name
        assert not server.keep_record(b"/ipns/\x00\x24" + bytes(36), good.raw)
        assert server.dht.value_store.get(dht_key) is None
        assert server.keep_record(dht_key, good.raw)
        # expired: verified at the server's clock, which we move past the validity
        _, late = record(2, key, validity=timedelta(seconds=30))
        server.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=1)
        assert await putter.put_record_to_peers(late, [server.host.get_id()]) == []
        assert server.dht.value_store.get(dht_key).value == good.raw


async def test_a_plain_py_libp2p_server_refuses_the_binary_key_and_is_not_asked_again():
    # edge 9: a py-libp2p server without edge 10 resets the put; the putter remembers it
    async with chain(1) as (putter,):
        host = make_host()
        plain = KadDHT(host, DHTMode.SERVER)
        async with host.run(listen_addrs=[parse_listen_addr("/ip4/127.0.0.1/tcp/0")]):
            async with background_trio_service(plain):
                await putter.connect(PeerInfo(host.get_id(), host.get_addrs()))
                _, info = record(1)
                assert await putter.put_record_to_peers(info, [host.get_id()]) == []
                assert putter._refused_binary_key(host.get_id())
                assert plain.value_store.get(binary_record_key(info.name)) is None
                with trio.fail_after(10):
                    assert await putter.put_record_to_peers(info) == []  # skipped, not asked again
            await close_listeners(host)
