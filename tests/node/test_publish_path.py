"""The publish path's background work (issue 11.4): DHT announcements off it and not repeated."""

from __future__ import annotations

import trio

import rlp2p.node.node as node_module
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode


async def test_a_storage_peer_provides_a_log_once_and_puts_its_newest_record_once_a_spacing(swarm, monkeypatch):
    monkeypatch.setattr(node_module, "ANNOUNCE_SPACING", 0.5)
    [storage] = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    assert storage.discovery is not None
    provided: list[str] = []
    put: list[int] = []
    announce_log, put_record = storage.discovery.announce_log, storage.discovery.put_record

    async def counting_provide(name: str) -> None:
        provided.append(name)
        await announce_log(name)

    async def counting_put(info) -> None:
        put.append(info.sequence)
        await put_record(info)

    storage.discovery.announce_log = counting_provide
    storage.discovery.put_record = counting_put
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(8, embed=0), replicas=1, replica_peers=[storage.peer_id])
    for i in range(6):  # six publishes well within one spacing
        await publisher.append([f"message {i}".encode()])
        await publisher.publish()
    with trio.fail_after(10):
        while not put or put[-1] != 6:  # the newest record reaches the DHT after the spacing
            await trio.sleep(0.05)
    assert provided == [publisher.name]  # the provider record names the log: once
    assert len(put) <= 3, put  # the first record at once, the newest after the spacing
