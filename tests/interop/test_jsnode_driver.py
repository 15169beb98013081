"""The js peer and its driver themselves: errors, timeouts, clean stops, and the DHT commands
(between two js nodes) that later py <-> js DHT tests build on."""

from __future__ import annotations

import pytest
import trio

from interop.jsnode import JsNode, JsNodeError, b64, unb64

pytestmark = pytest.mark.interop

NS = "rlp2p-test"
#: the CIDv1 (raw, sha2-256) of b"hello"
CID_HELLO = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


async def test_ready_line_and_own_protocols(js_node):
    assert js_node.peer_id.startswith("12D3KooW")  # an Ed25519 peer id
    assert js_node.addrs
    for addr in js_node.addrs:
        assert addr.startswith("/ip4/127.0.0.1/tcp/")
        assert addr.endswith(f"/p2p/{js_node.peer_id}")
    protocols = (await js_node.call("protocols"))["protocols"]
    assert {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/ipfs/kad/1.0.0", "/rlp2p/echo/1.0.0"} <= set(protocols)
    assert (await js_node.call("peers"))["peers"] == []


async def test_bad_commands_get_error_replies(js_node):
    reply = await js_node.call_raw("no_such_command")
    assert reply["ok"] is False
    assert "unknown command" in reply["error"]

    with pytest.raises(JsNodeError, match='"addr"') as caught:
        await js_node.call("dial")
    assert caught.value.reply is not None and caught.value.reply["ok"] is False

    with pytest.raises(JsNodeError, match="key_b64"):
        await js_node.call("dht_put", value_b64=b64(b"v"))

    # the node keeps serving after errors
    assert "/ipfs/ping/1.0.0" in (await js_node.call("protocols"))["protocols"]


async def test_a_command_that_hangs_times_out(js_node):
    """A dial to a TCP port that accepts but never speaks: the node answers with an error
    when the command's timeout runs out, and keeps serving."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    held = []

    async def accept_and_hold():
        for _ in range(10):
            held.append(await listeners[0].accept())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_and_hold)
        with pytest.raises(JsNodeError) as caught:
            await js_node.call("dial", addr=f"/ip4/127.0.0.1/tcp/{port}", timeout=1.0)
        reply = caught.value.reply
        assert reply is not None and reply["ok"] is False
        # the command's own timer, or libp2p giving up when that timer aborted its signal
        assert "timed out" in reply["error"] or "Abort" in reply["error"], reply["error"]
        assert held, "the dial never reached the silent listener"
        nursery.cancel_scope.cancel()
    for stream in held:
        await stream.aclose()
    for listener in listeners:
        await listener.aclose()
    assert (await js_node.call("peers"))["peers"] == []


async def test_stop_command_exits_cleanly(js_deps):
    async with JsNode() as js:
        assert await js.call("stop") == {}
        with trio.fail_after(10):
            await js._proc.wait()
    assert js.returncode == 0


async def test_closing_stdin_stops_the_node(js_deps):
    async with JsNode() as js:
        await js._proc.stdin.aclose()
        with trio.fail_after(10):
            await js._proc.wait()
        with pytest.raises(JsNodeError, match="not running"):
            await js.call("protocols")
    assert js.returncode == 0


async def test_dht_commands_between_two_js_nodes(js_deps):
    async with JsNode("--ns", NS) as a, JsNode("--ns", NS) as b:
        added = await a.call("add_peer", addr=b.addrs[0])
        assert added["peerId"] == b.peer_id
        assert added["routingTableSize"] >= 1
        assert (await b.call("add_peer", addr=a.addrs[0]))["peerId"] == a.peer_id

        key = f"/{NS}/".encode() + bytes([0, 1, 2, 255])  # keys are raw bytes
        put = await a.call("dht_put", key_b64=b64(key), value_b64=b64(b"value-1"))
        assert put["stored_at"] == [b.peer_id]
        assert put["errors"] == []
        got = await b.call("dht_get", key_b64=b64(key))
        assert unb64(got["value_b64"]) == b"value-1"

        with pytest.raises(JsNodeError, match="NotFound"):
            await b.call("dht_get", key_b64=b64(f"/{NS}/absent".encode()))

        # a namespace b has no validator for: b refuses the record
        refused = await a.call("dht_put", key_b64=b64(b"/unregistered/k"), value_b64=b64(b"v"))
        assert refused["stored_at"] == []
        assert [e["from"] for e in refused["errors"]] == [b.peer_id]

        provided = await a.call("provide", cid=CID_HELLO)
        assert provided["sent_to"] == [b.peer_id]
        found = await b.call("find_providers", cid=CID_HELLO, limit=1)
        assert [p["peerId"] for p in found["providers"]] == [a.peer_id]
        assert any(addr in a.addrs[0] for addr in found["providers"][0]["addrs"])
    assert a.returncode == 0 and b.returncode == 0
