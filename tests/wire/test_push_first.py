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


async def test_nothing_queued_waits_for_nothing():
    server = PushServer(DEFAULT_LIMITS)
    server.push(record())  # nobody watches this log
    assert await waited(server) < PUSH_FIRST / 2


async def test_a_queued_record_is_waited_for_until_written_or_the_bound():
    server = PushServer(DEFAULT_LIMITS)
    info = record()
    send, receive = trio.open_memory_channel(4)
    server._watchers[info.name] = {send}
    server.push(info)
    # nobody writes it: the wait ends at the bound, and the backlog stays
    assert PUSH_FIRST * 0.9 <= await waited(server) < PUSH_FIRST * 4
    server._wrote(id(send))  # the stream wrote it
    assert await waited(server) < PUSH_FIRST / 2
    server.push(info)
    server.push(info)
    server._wrote(id(send), ended=True)  # the stream ended with two queued: nothing left to wait for
    assert await waited(server) < PUSH_FIRST / 2 and server._backlog == {}


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
