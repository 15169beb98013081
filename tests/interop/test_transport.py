"""py-libp2p 0.8.1 <-> js-libp2p 3.3.11 over TCP: noise + yamux, identify, ping, a custom protocol.

Each check runs in both directions. The js peer is interop/node.mjs, driven by jsnode.JsNode; the
py peer is a plain py-libp2p host (conftest.py). No assertion depends on how long anything took;
every wait is bounded by trio.fail_after.
"""

from __future__ import annotations

import os
import secrets
import time

import multiaddr
import pytest
import trio
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.host.ping import PING_LENGTH, PingService
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.identity.identify.identify import ID as IDENTIFY_PROTOCOL
from libp2p.identity.identify.identify import parse_identify_response
from libp2p.peer.id import ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from interop_util import ECHO_PROTOCOL, echo_call, host_addr, peer_info
from interop.jsnode import b64, unb64

pytestmark = pytest.mark.interop

KAD_PROTOCOL = "/ipfs/kad/1.0.0"
NOISE = "/noise"
YAMUX = "/yamux/1.0.0"
#: a bound on every wait for the other side to notice something
WAIT = 10.0
POLL = 0.05
MAX_IDENTIFY_BYTES = 64 * 1024


def without_p2p(addr: str) -> str:
    return str(multiaddr.Multiaddr(addr).decapsulate_code(multiaddr.protocols.P_P2P))


async def wait_for_js_connection(js, peer_id: str) -> dict:
    """The js node's view of its connection to ``peer_id``, once it has one."""
    with trio.fail_after(WAIT):
        for _ in range(int(WAIT / POLL) + 1):
            peers = (await js.call("peers"))["peers"]
            for peer in peers:
                if peer["peerId"] == peer_id and peer["connections"]:
                    return peer["connections"][0]
            await trio.sleep(POLL)
    raise AssertionError(f"js node never saw a connection from {peer_id}")


async def wait_for_py_connection(host, peer_id: ID):
    with trio.fail_after(WAIT):
        for _ in range(int(WAIT / POLL) + 1):
            conns = host.get_network().get_connections(peer_id)
            if conns:
                return conns[0]
            await trio.sleep(POLL)
    raise AssertionError(f"py host never saw a connection from {peer_id}")


def assert_py_conn_is_noise_yamux(conn, remote: ID) -> None:
    assert conn.get_negotiated_security_protocol() == NOISE
    assert conn.get_negotiated_muxer_protocol() == YAMUX
    assert isinstance(conn.muxed_conn, Yamux)
    # the noise handshake authenticated the remote's libp2p identity key
    assert conn.muxed_conn.secured_conn.get_remote_peer() == remote
    assert conn.muxed_conn.peer_id == remote


# ---- noise + yamux handshake ----


async def test_py_dials_js_noise_yamux(py_host, js_node):
    info = peer_info(js_node.addrs[0])
    assert str(info.peer_id) == js_node.peer_id
    with trio.fail_after(WAIT):
        await py_host.connect(info)

    conns = py_host.get_network().get_connections(info.peer_id)
    assert len(conns) == 1
    assert_py_conn_is_noise_yamux(conns[0], info.peer_id)

    js_view = await wait_for_js_connection(js_node, str(py_host.get_id()))
    assert js_view["direction"] == "inbound"
    assert js_view["encryption"] == NOISE
    assert js_view["multiplexer"] == YAMUX
    assert js_view["status"] == "open"


async def test_js_dials_py_noise_yamux(py_host, js_node):
    py_id = str(py_host.get_id())
    dialed = await js_node.call("dial", addr=host_addr(py_host))
    assert dialed["peerId"] == py_id
    assert dialed["direction"] == "outbound"
    assert dialed["encryption"] == NOISE
    assert dialed["multiplexer"] == YAMUX
    assert without_p2p(dialed["remoteAddr"]) == without_p2p(host_addr(py_host))

    js_id = ID.from_base58(js_node.peer_id)
    conn = await wait_for_py_connection(py_host, js_id)
    assert_py_conn_is_noise_yamux(conn, js_id)


# ---- identify ----


async def test_py_identifies_js(py_host, js_node):
    info = peer_info(js_node.addrs[0])
    with trio.fail_after(WAIT):
        await py_host.connect(info)
        stream = await py_host.new_stream(info.peer_id, [IDENTIFY_PROTOCOL])
        data = bytearray()
        # the responder sends one message and closes its side
        for _ in range(MAX_IDENTIFY_BYTES):
            try:
                chunk = await stream.read(MAX_IDENTIFY_BYTES)
            except EOFError:
                break
            if not chunk:
                break
            data += chunk
            assert len(data) <= MAX_IDENTIFY_BYTES
        await stream.close()

    msg = parse_identify_response(bytes(data))
    assert ID.from_pubkey(deserialize_public_key(msg.public_key)) == info.peer_id
    protocols = set(msg.protocols)
    assert {KAD_PROTOCOL, PING_PROTOCOL, IDENTIFY_PROTOCOL, ECHO_PROTOCOL} <= protocols
    assert protocols == set((await js_node.call("protocols"))["protocols"])
    assert msg.agent_version.startswith("js-libp2p/")
    listen = {str(multiaddr.Multiaddr(a)) for a in msg.listen_addrs}
    assert without_p2p(js_node.addrs[0]) in listen

    # py-libp2p also runs identify by itself on connect: its peerstore learns the same protocols
    # (its DHT depends on that to treat the js node as a server)
    with trio.fail_after(WAIT):
        for _ in range(int(WAIT / POLL) + 1):
            known = set(py_host.get_peerstore().get_protocols(info.peer_id))
            if KAD_PROTOCOL in known:
                break
            await trio.sleep(POLL)
    assert {KAD_PROTOCOL, PING_PROTOCOL} <= known


async def test_js_identifies_py(py_host, js_node):
    py_id = str(py_host.get_id())
    await js_node.call("dial", addr=host_addr(py_host))
    seen = await js_node.call("identify", peerId=py_id)

    assert seen["peerId"] == py_id
    assert {IDENTIFY_PROTOCOL, PING_PROTOCOL, ECHO_PROTOCOL} <= set(seen["protocols"])
    assert set(seen["protocols"]) == {str(p) for p in py_host.get_mux().get_protocols()}
    assert seen["agentVersion"].startswith("py-libp2p/")
    assert without_p2p(host_addr(py_host)) in {without_p2p(a) for a in seen["listenAddrs"]}


# ---- ping ----


async def test_py_pings_js(py_host, js_node):
    info = peer_info(js_node.addrs[0])
    with trio.fail_after(WAIT):
        await py_host.connect(info)

        # the protocol by hand: 32 random bytes out, the same 32 back, several times on one stream
        stream = await py_host.new_stream(info.peer_id, [PING_PROTOCOL])
        assert stream.get_protocol() == PING_PROTOCOL
        for _ in range(3):
            payload = secrets.token_bytes(PING_LENGTH)
            start = time.perf_counter()
            await stream.write(payload)
            echoed = bytearray()
            for _ in range(PING_LENGTH):
                if len(echoed) == PING_LENGTH:
                    break
                echoed += await stream.read(PING_LENGTH - len(echoed))
            rtt = time.perf_counter() - start
            assert bytes(echoed) == payload
            assert rtt > 0
        await stream.close()

        # and py-libp2p's own ping service (whole milliseconds: 0 is possible on loopback)
        rtts = await PingService(py_host).ping(info.peer_id, ping_amt=3)
    assert len(rtts) == 3
    assert all(isinstance(r, int) and r >= 0 for r in rtts)


async def test_js_pings_py(py_host, js_node):
    py_id = str(py_host.get_id())
    # by address (js dials), then by peer id over the open connection
    by_addr = await js_node.call("ping", addr=host_addr(py_host))
    by_id = await js_node.call("ping", peerId=py_id)
    for result in (by_addr, by_id):
        assert result["rtt_ms"] > 0  # monotonic high-resolution clock
        assert result["rtt"] >= 0  # js-libp2p's own value, whole milliseconds
    conn = await wait_for_py_connection(py_host, ID.from_base58(js_node.peer_id))
    assert conn.get_negotiated_muxer_protocol() == YAMUX


# ---- a custom length-prefixed protocol ----

PAYLOADS = [
    b"hello from the other side",
    b"",
    bytes(range(256)),
    os.urandom(200 * 1024),  # spans many yamux frames and noise messages
]


async def test_js_echo_via_py(py_host, js_node):
    result = await js_node.call(
        "echo_call", addr=host_addr(py_host), frames_b64=[b64(p) for p in PAYLOADS]
    )
    assert result["protocol"] == ECHO_PROTOCOL
    assert [unb64(f) for f in result["frames_b64"]] == PAYLOADS
    single = await js_node.call("echo_call", addr=str(py_host.get_id()), data_b64=b64(b"once"))
    assert unb64(single["data_b64"]) == b"once"


async def test_py_echo_via_js(py_host, js_node):
    info = peer_info(js_node.addrs[0])
    with trio.fail_after(WAIT):
        await py_host.connect(info)
        answers = await echo_call(py_host, info.peer_id, PAYLOADS)
        again = await echo_call(py_host, info.peer_id, [b"once"])
    assert answers == PAYLOADS
    assert again == [b"once"]
