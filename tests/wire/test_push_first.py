"""A storage peer writes the records queued to its push streams before other work on them
(PushServer.written, which the forward and the gossip announcement wait on, bounded)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import trio

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.record import create_record, verify_record
from rlp2p.limits import DEFAULT_LIMITS
from rlp2p.wire.push import PUSH_FIRST, RECENT_BLOCK_BYTES, RECENT_BLOCKS, PushServer

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def record():
    key = generate_log_key()
    name = log_name(key.public_key)
    return verify_record(name, create_record(key, address_of(b"page"), 3, now=NOW, validity=timedelta(days=1)), now=NOW)


async def waited(server: PushServer) -> float:
    start = trio.current_time()
    await server.written()
    return trio.current_time() - start


# the waits below run on trio's autojump clock: virtual time, exact, whatever the machine's load


async def test_nothing_queued_waits_for_nothing(autojump_clock):
    server = PushServer(DEFAULT_LIMITS)
    server.push(record())  # nobody watches this log
    assert await waited(server) == 0


async def test_a_queued_record_is_waited_for_until_written_or_the_bound(autojump_clock):
    server = PushServer(DEFAULT_LIMITS)
    info = record()
    send, receive = trio.open_memory_channel(4)
    server._watchers[info.name] = {send}
    server.push(info)
    # nobody writes it: the wait ends at the bound, and the backlog stays
    assert await waited(server) == PUSH_FIRST
    server._wrote(id(send))  # the stream wrote it
    assert await waited(server) == 0
    server.push(info)
    server.push(info)
    server._wrote(id(send), ended=True)  # the stream ended with two queued: nothing left to wait for
    assert await waited(server) == 0 and server._backlog == {}


async def test_a_stream_that_falls_behind_is_not_waited_for(autojump_clock):
    """A reader that stops reading costs the storage peer's other work one bound, not one per
    record: once it has two records queued, nothing waits for it; a stream keeping up still is."""
    server = PushServer(DEFAULT_LIMITS)
    info = record()
    slow, _ = trio.open_memory_channel(16)
    fast, _ = trio.open_memory_channel(16)
    server._watchers[info.name] = {slow}
    server.push(info)
    assert await waited(server) == PUSH_FIRST  # the first record: it may just be slow
    for _ in range(5):
        server.push(info)  # never written: it falls further behind
        assert await waited(server) == 0
    server._watchers[info.name] = {slow, fast}
    server.push(info)
    assert await waited(server) == PUSH_FIRST  # the stream keeping up is waited for
    server._wrote(id(fast))
    assert await waited(server) == 0


def test_recent_blocks_are_kept_only_while_someone_watches_and_bounded():
    server = PushServer(DEFAULT_LIMITS)
    blocks = [(address_of(bytes([i])), bytes([i])) for i in range(3 * RECENT_BLOCKS)]
    server.saw_blocks(blocks)
    assert server._recent == {}
    server._watchers["log"] = {object()}  # type: ignore[arg-type]
    server.saw_blocks(blocks)
    assert list(server._recent.items()) == blocks[-RECENT_BLOCKS:]
    server.saw_blocks([(b"big", bytes(RECENT_BLOCK_BYTES + 1))])  # too large to keep
    assert b"big" not in server._recent
