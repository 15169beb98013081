"""The host rlp2p creates gives an inbound connection's slot back when the connection closes
(py-libp2p 0.8.1 keeps it until the swarm stops: docs/upstream.md). In-process and fast: a host
with 3 inbound slots accepts 12 connections opened and closed one after another. Also the
resource manager's count of connections it refused comes back down."""

from __future__ import annotations

import multiaddr
import trio

from rlp2p.limits import HostLimits
from rlp2p.p2p.host import full_addrs, make_host, parse_peer_addr

from libp2p.crypto.ed25519 import create_new_key_pair

from attack_util import client_host


async def test_inbound_slots_come_back_when_connections_close() -> None:
    server = make_host(limits=HostLimits(max_inbound_connections=3))
    async with server.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        info = parse_peer_addr(full_addrs(server)[0])
        async with client_host() as client, trio.open_nursery() as closing:
            network = client.get_network()
            for _ in range(12):
                with trio.fail_after(10):
                    await client.connect(info)
                closing.start_soon(network.close_peer, info.peer_id)
                while network.get_connections(info.peer_id):
                    await trio.sleep(0.002)
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await server.get_network().close()


async def test_inbound_slots_still_limit_connections_open_at_once() -> None:
    server = make_host(limits=HostLimits(max_inbound_connections=2))
    async with server.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        info = parse_peer_addr(full_addrs(server)[0])
        async with client_host() as a, client_host() as b, client_host() as c:
            await a.connect(info)
            await b.connect(info)
            refused = False
            try:
                with trio.fail_after(10):
                    await c.connect(info)
                    await c.new_stream(info.peer_id, ["/ipfs/id/1.0.0"])
            except Exception:
                refused = True
            assert refused, "a third inbound connection was accepted with 2 slots"
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await server.get_network().close()


async def test_a_refused_connection_does_not_stay_counted() -> None:
    """py-libp2p's resource manager kept counting each connection ``add_conn`` refused."""
    server = make_host(limits=HostLimits(max_connections_per_peer=1))
    async with server.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        info = parse_peer_addr(full_addrs(server)[0])
        swarm = server.get_network()
        same = create_new_key_pair()  # two hosts with one identity: the second is over the limit
        async with client_host(same) as first:
            await first.connect(info)
            for _ in range(5):
                async with client_host(same) as second:
                    try:
                        with trio.fail_after(10):
                            await second.connect(info)
                            await second.new_stream(info.peer_id, ["/ipfs/id/1.0.0"])
                    except Exception:
                        pass  # refused, as it should be
            await trio.sleep(0.3)
            assert swarm._resource_manager._current_connections == len(swarm.get_connections()) == 1
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await server.get_network().close()
