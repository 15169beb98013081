"""A js-libp2p peer dials every CAS hint a Python publisher wrote into a head page."""

from __future__ import annotations

import multiaddr
import pytest

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode, Page
from rlp2p.core.record import verify_record

pytestmark = pytest.mark.interop


async def test_js_dials_each_cas_hint(swarm, js_node):
    storage = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4), replicas=2)
    await publisher.append([b"one", b"two"])
    await publisher.publish()
    held = storage[0].store.get_record(publisher.name)
    head = verify_record(publisher.name, held.record).head
    hints = Page.decode(storage[0].store.get_block(head)).cas
    assert len(hints) == 2
    dialled = set()
    for raw in hints:
        reply = await js_node.call("dial", addr=str(multiaddr.Multiaddr(raw)))
        dialled.add(reply["peerId"])
    assert dialled == {s.peer_id.to_string() for s in storage}
