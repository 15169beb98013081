"""Who verifies what on the read path: each fetched block is hashed once, by the sync's plan."""

from collections import Counter

import rlp2p.core.address as address_module
from rlp2p import LogMode, generate_log_key


async def test_a_sync_hashes_each_fetched_block_once(swarm, monkeypatch):
    await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=0), replicas=1)
    bodies = [f"m{i}".encode() for i in range(1, 11)]
    await publisher.append(bodies)
    await publisher.publish()
    await swarm.stop(alice)
    bob = await swarm.start_node("bob")

    hashed: Counter[bytes] = Counter()
    real = address_module.address_of

    def counting(data: bytes) -> bytes:
        hashed[data] += 1
        return real(data)

    # every block check (the CAS client's and the plan's) goes through rlp2p.core.address
    monkeypatch.setattr(address_module, "address_of", counting)
    got: list = []
    report = await bob.reader().sync(publisher.name, on_message=got.append)
    assert [d.message.body for d in got] == bodies
    assert report.pages == 3 and report.blocks == 10
    assert sum(hashed.values()) == report.pages + report.blocks
    assert max(hashed.values()) == 1
