"""Connections over a storage peer's lifetime (issue 10): py-libp2p 0.8.1 gave each inbound
connection a slot that came back only when the whole swarm stopped, so after 250 connections in
its life a storage peer refused everyone. rlp2p's host gives the slot back when the connection
closes (rlp2p/node/host.py, docs/upstream.md)."""

from __future__ import annotations

import os

import pytest
import trio

from attack_util import client_host, legit_get, seed_blocks, serve

#: connections opened and closed one after another (the issue's figure; the old limit was 250)
CONNECTIONS = 1000
#: the attacker spreads them over a few identities: py-libp2p's resource manager rate-limits
#: connections per peer id (10 a second, bursts of 50), which is not what this test is about
IDENTITIES = 20


@pytest.mark.slow
async def test_a_thousand_connections_then_a_reader(tmp_path) -> None:
    addresses = seed_blocks(tmp_path / "server", [os.urandom(1000) for _ in range(5)])
    async with serve(tmp_path / "server") as proc:
        opened = 0
        with trio.fail_after(240):
            for _ in range(IDENTITIES):
                async with client_host() as attacker:
                    for _ in range(CONNECTIONS // IDENTITIES):
                        try:
                            await attacker.connect(proc.peer)
                        except Exception as exc:
                            pytest.fail(f"connection {opened + 1} refused: {exc}")
                        opened += 1
                        await attacker.get_network().close_peer(proc.peer.peer_id)
        assert opened == CONNECTIONS
        async with client_host() as reader:
            got = await legit_get(reader, proc, addresses, timeout=10)
        assert set(got) == set(addresses)
        assert proc.proc.poll() is None, proc.stderr()
