"""Network failures reach callers as rlp2p errors, typed where they happen (rlp2p/p2p/network.py)."""

import socket

import pytest
import trio
from libp2p.peer.id import ID

from rlp2p import DialFailure, Rlp2pError, Timeout, generate_log_key


def stranger() -> ID:
    return ID.from_pubkey(generate_log_key().public_key)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_dial_to_a_closed_port_is_a_dial_failure(swarm):
    bob = await swarm.start_node("bob")
    peer = stranger()
    with pytest.raises(DialFailure):
        await bob.connect(f"/ip4/127.0.0.1/tcp/{closed_port()}/p2p/{peer.to_string()}")
    with pytest.raises(DialFailure) as caught:
        async with bob.cas(peer):
            pass
    assert isinstance(caught.value, Rlp2pError)


async def test_a_peer_that_accepts_and_never_answers_is_a_timeout(swarm, nursery):
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    held: list[trio.SocketStream] = []

    async def hold(stream: trio.SocketStream) -> None:
        held.append(stream)  # accepted, never a byte back: the handshake waits
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, [listener])
    port = listener.socket.getsockname()[1]
    bob = await swarm.start_node("bob")
    bob.network.timeout = bob.discovery.timeout = 0.5
    peer = stranger()
    with pytest.raises(Timeout):
        await bob.connect(f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer.to_string()}")
    assert held  # it was reached: a timeout, not a refusal
