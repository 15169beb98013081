"""/rlp2p/push/1.2.0 with real hosts: compact records on a follower's push stream."""

from __future__ import annotations

from functools import partial

import pytest
import trio

from rlp2p.core.compact import compact_record
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.rebuild import rebuild_head
from rlp2p.core.record import verify_record
from rlp2p.errors import InvalidRecord
from rlp2p.pb.vac.compact_pb2 import CompactPush
from rlp2p.testing import until
from rlp2p.wire.framing import FramedStream, encode_frame
from rlp2p.wire.push import (
    PUSH_COMPACT_PROTOCOL,
    embedded_messages,
    encode_messages,
    pick_messages,
    pushed_records,
)
from tests.node import test_follow_phone as phone

MODE = LogMode.paged(16, embed=1)
BODY = 256


async def follow(swarm, nursery, *, push_1_1_only: bool = False):
    """A follower outside the mesh of a log of one message (tests/node/test_follow_phone.py),
    once the storage peer pushed it the record it holds."""
    storage, publisher, _, follower, scope, seen, watching = await phone.setup(
        swarm, nursery, mesh=False, bob_announce=False, push_1_1_only=push_1_1_only
    )
    await until(lambda: watching() == 1)
    await until(lambda: follower.stats.pushed == 1)  # the held record, whole
    return storage, publisher, follower, scope, seen


async def publish_one_by_one(storage, publisher, follower, seen, count: int) -> tuple[int, int]:
    """Publish ``count`` messages, each once the last arrived; the push bytes they cost, and the
    bytes of one whole record."""
    before = follower.stats.push_bytes
    for n in range(2, 2 + count):
        await publisher.append([f"m{n}".encode().ljust(BODY, b".")])
        await publisher.publish()
        await until(lambda n=n: len(seen) >= n)
    await until(lambda: follower.stats.pushed >= 1 + count)
    record = len(storage[0].store.get_record(publisher.name).record)
    return follower.stats.push_bytes - before, record


async def test_a_follower_on_push_1_2_gets_each_message_once_with_compact_records(swarm, nursery):
    storage, publisher, follower, scope, seen = await follow(swarm, nursery)
    spent, record = await publish_one_by_one(storage, publisher, follower, seen, 20)
    assert seen == list(range(1, 22))
    assert follower.stats.pushed == 21
    # all but the first one or two (the head page's CAS hint may change) rebuilt, no fetch
    assert follower.stats.rebuilt >= 18
    # per message: the message (256 B body, ~50 B of MVDS around it) and a compact record, below
    # a whole record (221 B) + the message
    assert spent / 20 < BODY + 60 + 100 < BODY + record
    scope.cancel()


async def test_a_storage_peer_that_speaks_only_push_1_1_still_pushes(swarm, nursery):
    storage, publisher, follower, scope, seen = await follow(swarm, nursery, push_1_1_only=True)
    spent, record = await publish_one_by_one(storage, publisher, follower, seen, 3)
    assert seen == [1, 2, 3, 4] and follower.stats.rebuilt >= 2
    assert spent / 3 > BODY + record  # whole records, with their names
    scope.cancel()


@pytest.mark.parametrize("case", ["genuine", "forged", "no page"])
async def test_a_forged_compact_record_ends_the_stream(swarm, nursery, case):
    """Mallory speaks 1.2 with real records of Alice's log: the held one, then the next one
    compact without Value; forged, it must not come out; genuine, it does, with its page."""
    storage = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), replica_peers=[node.peer_id for node in storage], mode=MODE)
    records, pages = [], []
    for n in (1, 2, 3):
        await publisher.append([f"m{n}".encode()])
        await publisher.publish()
        raw = storage[0].store.get_record(publisher.name).record
        info = verify_record(publisher.name, raw)
        records.append(info)
        pages.append(storage[0].store.get_blocks([info.head])[info.head])
    del records[0], pages[0]  # the first publish's head page may name fewer replicas
    compact = compact_record(records[0].raw, records[1].raw, with_value=False)
    assert compact is not None
    if case == "forged":
        compact = compact[:5] + bytes([compact[5] ^ 1]) + compact[6:]  # inside the signature
    picked = pick_messages(*embedded_messages(pages[1], storage[0].config.limits), 2)
    assert [seq for seq, _ in picked] == [3]
    assert rebuild_head(pages[0], picked, records[1].head) == pages[1]  # an honest peer sends it so

    mallory = await swarm.start_node("mallory")

    async def handler(stream) -> None:
        framed = FramedStream(stream, 1 << 16)
        await framed.read_frame()
        push = CompactPush(log=0, whole=records[0].raw)
        await stream.write(encode_frame(push.SerializeToString()) + encode_frame(b""))
        push = CompactPush(log=0)
        push.compact.MergeFromString(compact)
        await stream.write(encode_frame(push.SerializeToString()) + encode_frame(encode_messages(picked)))
        await framed.read_frame()  # until the reader goes

    mallory.host.set_stream_handler(PUSH_COMPACT_PROTOCOL, handler)
    bob = await swarm.start_node("bob")
    await bob.connect(mallory.addrs[0])

    async def held_pages(name, head):
        return [pages[0]] if case != "no page" and head == records[0].head else []

    got = []
    stream = pushed_records(
        partial(bob.peers.network.open_stream, mallory.peer_id),
        [publisher.name],
        clock=bob.config.clock,
        limits=bob.config.limits,
        pages=held_pages,
    )
    with trio.fail_after(10):
        if case == "forged":
            with pytest.raises(InvalidRecord):
                async for pushed in stream:
                    got.append(pushed)
            assert [p.info.sequence for p in got] == [2]  # the forged one never came out
            return
        async for pushed in stream:
            got.append(pushed)
            if len(got) == 2:
                break
    assert got[0].info.sequence == 2 and got[0].page is None
    if case == "genuine":
        assert got[1].info.raw == records[1].raw and got[1].page == pages[1]
    else:  # without the previous page nothing is verified: a reason to sync, no more
        assert got[1].info is None and got[1].name == publisher.name
    assert got[1].size < len(records[1].raw) + 2 + len(encode_frame(encode_messages(picked)))


async def test_a_1_2_frame_out_of_order_or_of_a_log_not_asked_for_is_refused():
    from datetime import datetime, timezone

    from rlp2p.core.address import address_of
    from rlp2p.core.keys import log_name
    from rlp2p.core.record import create_record
    from rlp2p.errors import DecodeError
    from rlp2p.limits import DEFAULT_LIMITS
    from rlp2p.wire.push import _Expander

    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    key = generate_log_key()
    name = log_name(key.public_key)
    one, two = (create_record(key, address_of(b"%d" % i), i, now=now) for i in (1, 2))
    compact = CompactPush(log=0)
    compact.compact.MergeFromString(compact_record(one, two, with_value=True) or b"")
    for frame in (
        compact.SerializeToString(),  # a compact record before any whole one
        CompactPush(log=1, whole=one).SerializeToString(),  # one log asked for: index 0 only
        CompactPush(log=0).SerializeToString(),  # no record
        b"\xff\xff",
    ):
        with pytest.raises(DecodeError):
            await _Expander([name], None, lambda: now, DEFAULT_LIMITS).record(frame, [])
    expander = _Expander([name], None, lambda: now, DEFAULT_LIMITS)
    assert (await expander.record(CompactPush(log=0, whole=one).SerializeToString(), []))[1].sequence == 1
    got = await expander.record(compact.SerializeToString(), [])
    assert got[1].raw == two and got[2] is None  # with Value: no page needed
