"""Connections over a storage peer's lifetime (issue 10): py-libp2p 0.8.1 gives each inbound
connection a slot that comes back only when the whole swarm stops, so after 250 connections in
its life a storage peer refused everyone. rlp2p's host gives the slot back when the connection
closes (rlp2p/node/host.py, docs/upstream.md)."""

from __future__ import annotations

import os

import pytest
import trio

from attack_util import client_host, legit_get, seed_blocks, serve

#: connections opened and closed in the server's life (the issue's figure; the old limit was 250)
CONNECTIONS = 1000
#: attackers at once, each opening and closing its connections one after another: it keeps the
#: test at tens of seconds (a close takes py-libp2p about 0.1 s), and each stays under
#: py-libp2p's resource manager's rate limit of new connections per peer (10 a second)
ATTACKERS = 10


@pytest.mark.slow
async def test_a_thousand_connections_then_a_reader(tmp_path) -> None:
    addresses = seed_blocks(tmp_path / "server", [os.urandom(1000) for _ in range(5)])
    async with serve(tmp_path / "server") as proc:
        opened = 0

        async def attack() -> None:
            nonlocal opened
            async with client_host() as attacker, trio.open_nursery() as closing:
                network = attacker.get_network()
                for _ in range(CONNECTIONS // ATTACKERS):
                    try:
                        await attacker.connect(proc.peer)
                    except Exception as exc:
                        pytest.fail(f"connection {opened + 1} refused: {exc}")
                    opened += 1
                    closing.start_soon(network.close_peer, proc.peer.peer_id)
                    while network.get_connections(proc.peer.peer_id):  # gone before the next dial
                        await trio.sleep(0.002)

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for _ in range(ATTACKERS):
                    nursery.start_soon(attack)
        assert opened == CONNECTIONS
        async with client_host() as reader:
            got = await legit_get(reader, proc, addresses, timeout=10)
        assert set(got) == set(addresses)
        assert proc.proc.poll() is None, proc.stderr()
