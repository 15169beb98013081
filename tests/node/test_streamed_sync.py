"""A sync by reference streams its Gets: round trips are the record, the pages walked and one more."""

from __future__ import annotations

import pytest

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode


@pytest.mark.parametrize(
    ("n", "mode", "window"),
    [
        (3000, LogMode.paged(256, embed=0), 2048),  # replay: more missing than the window holds
        (600, LogMode.paged(64, embed=0), 2048),  # direct: blocks fetched during the walk
        (1500, LogMode.paged(100, embed=0), 300),  # replay, many pages opened again
    ],
)
async def test_a_sync_by_reference_drains_its_pipeline_only_for_pages(swarm, n, mode, window):
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=mode, replicas=1)
    bodies = [f"message {i}".encode() for i in range(n)]
    await publisher.append(bodies)
    await publisher.publish()

    bob = await swarm.start_node("bob")
    got: list = []
    reader = bob.reader(storage_peers=[storage[0].peer_id], window=window)
    report = await reader.sync(publisher.name, on_message=got.append)
    assert [d.message.body for d in got] == bodies
    assert report.blocks == n and report.pages == -(-n // mode.page_size)
    # a replay holds at most `window` messages: each window's worth may drain the pipeline once
    # (whether it does depends on how the answers arrive), so it may cost a round trip
    stalls = n // window if n > window else 0
    assert report.round_trips <= 2 + report.pages + 1 + stalls, report
    assert report.requests == 1 + report.pages + n  # the record, then each block once
    # everything is in the inbox, in order, and a second sync has nothing to do
    again = await reader.sync(publisher.name)
    assert again.up_to_date and again.round_trips == 1


async def test_streamed_gets_on_a_kept_stream_the_server_closed_go_again_on_a_new_one(swarm):
    import trio

    (storage,) = await swarm.add_storage(1)
    storage.cas_server.idle_timeout = 0.2  # servers close idle streams; this one soon
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(8, embed=0), replicas=1)
    await publisher.append([f"first {i}".encode() for i in range(20)])
    await publisher.publish()
    bob = await swarm.start_node("bob")
    reader = bob.reader(storage_peers=[storage.peer_id])
    await reader.sync(publisher.name)
    await publisher.append([f"second {i}".encode() for i in range(20)])
    await publisher.publish()
    await trio.sleep(1.0)  # well past the idle timeout: Bob's kept CAS stream is closed
    storage.cas_server.idle_timeout = 30.0  # the stream replacing it gets the usual one
    got: list = []
    report = await reader.sync(publisher.name, on_message=got.append)
    assert [d.message.body for d in got] == [f"second {i}".encode() for i in range(20)]
    assert not report.peers_bypassed  # the closed stream was replaced, the replica kept
    assert report.streams >= 1
