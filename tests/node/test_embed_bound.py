"""A message over the embedding bound goes by reference: uploaded once, never re-sent with its page."""

from __future__ import annotations

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import DEFAULT_EMBED_MAX, LogMode

MB = 1_000_000


async def test_a_1mb_message_in_a_paged_embed_all_log_is_not_resent_by_later_publishes(swarm):
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(100, embed=None), replicas=1)
    big = b"\x5a" * MB
    await publisher.append([b"before", big, b"after"])
    first = await publisher.publish()
    assert MB < first.bytes_sent < MB + 10_000  # the message once, as a block of its own

    for i in range(2):
        await publisher.append([f"later {i}".encode()])
        later = await publisher.publish()
        # the head page (which holds the large message's pair) changed and was sent again, but
        # without the message: a few hundred bytes, not a megabyte
        assert later.bytes_sent < 2 * DEFAULT_EMBED_MAX, later.bytes_sent

    bob = await swarm.start_node("bob")
    got: list = []
    report = await bob.reader(storage_peers=[storage[0].peer_id]).sync(publisher.name, on_message=got.append)
    assert [d.message.body for d in got] == [b"before", big, b"after", b"later 0", b"later 1"]
    assert report.blocks == 1  # the large message; the small ones rode in the page
