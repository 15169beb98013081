"""A plain Helia node (npm ``helia`` + ``@helia/ipns``, pinned in interop/) reads rlp2p logs
(issue 14): IPNS through the DHT under the standard key, blocks over Bitswap from rlp2p storage
peers, pages decoded from proto/ alone (interop/helia-read.mjs)."""

from __future__ import annotations

import json
import os
import sys
from base64 import b64decode
from pathlib import Path

import pytest
import trio

from interop.helia import HeliaPin, helia_read, messages_of
from rlp2p.core.keys import generate_log_key
from rlp2p.core.message import Message
from rlp2p.core.page import LogMode
from rlp2p.p2p.dht import binary_record_key

pytestmark = pytest.mark.interop

RLP2P = str(Path(sys.executable).with_name("rlp2p"))


async def published(swarm, count: int, mode: LogMode):
    storage = await swarm.add_storage(3)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=mode)
    await publisher.append([f"message {i}".encode() for i in range(count)])
    await publisher.publish()
    key = binary_record_key(publisher.name)
    with trio.fail_after(10):  # storage peers put the record into the DHT in the background
        while not all(s.discovery.dht.value_store.get(key) for s in storage):
            await trio.sleep(0.05)
    return storage, publisher.name


async def rlp2p_sync(tmp_path: Path, name: str, bootstrap: str) -> list[tuple[int, bytes]]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    done = await trio.run_process(
        [RLP2P, "sync", "--json", "--data", str(tmp_path / "reader"), "--bootstrap", bootstrap, name],
        capture_stdout=True,
        capture_stderr=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return [(line["seq"], b64decode(line["body"])) for line in lines]


@pytest.mark.parametrize(
    "mode",
    [LogMode.paged(8, embed=0), LogMode.paged(8, embed=4)],
    ids=["message-blocks", "some-embedded"],
)
async def test_a_fresh_helia_node_reads_a_log_from_rlp2p_storage_peers_only(swarm, js_deps, tmp_path, mode):
    storage, name = await published(swarm, 30, mode)
    # one rlp2p peer's address: the name resolves through the DHT, the blocks come over Bitswap
    with trio.fail_after(60):
        result = await helia_read([storage[1].addrs[0]], name)
    assert result["pages"] == 4 and result["blocks"] == 4 + (30 if mode.embed == 0 else 26)
    helia = [(seq, Message.decode(data).body) for seq, data in messages_of(result)]
    with trio.fail_after(60):
        synced = await rlp2p_sync(tmp_path, name, storage[2].addrs[0])
    assert helia == synced
    assert [body for _, body in synced] == [f"message {i}".encode() for i in range(30)]


async def test_a_reader_with_ipfs_syncs_from_a_helia_node_when_every_storage_peer_is_gone(swarm, js_deps):
    storage, name = await published(swarm, 30, LogMode.paged(8, embed=0))
    with trio.fail_after(90):
        async with HeliaPin([storage[0].addrs[0]], name) as helia:
            assert len(helia.result["messages"]) == 30
            for node in storage:
                await swarm.stop(node)
            reader = await swarm.start_node("reader", bootstrap=(helia.addr,))
            got: list[bytes] = []
            report = await reader.reader(ipfs=True).sync(name, on_message=lambda d: got.append(d.message.body))
    assert got == [f"message {i}".encode() for i in range(30)]
    assert len(report.peers_used) == 1 and report.peers_used[0].startswith("ipfs:")
    assert helia.addr.endswith(report.peers_used[0][len("ipfs:") :])
