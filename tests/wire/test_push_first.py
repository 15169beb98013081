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


async def test_a_record_prepared_while_it_commits_is_pushed_with_the_same_frames_and_no_work(monkeypatch):
    """PushServer.prepare (run while the store commits a record) leaves each stream only the
    assembly of its frames: the same bytes as a server that did not prepare, without compacting
    or rebuilding again."""
    import rlp2p.wire.push as push_module
    from rlp2p.core.message import Message
    from rlp2p.core.page import LogEntry, LogMode, build_log

    key = generate_log_key()
    name = log_name(key.public_key)
    entries = [LogEntry.from_message(i, Message(group_id=b"g", timestamp=i, body=bytes([i]) * 200)) for i in range(1, 6)]
    logs = [build_log(entries[:n], LogMode.paged(16, embed=1)) for n in (4, 5)]
    infos = [
        verify_record(name, create_record(key, built.head, seq, now=NOW, validity=timedelta(days=1)), now=NOW)
        for seq, built in zip((4, 5), logs, strict=True)
    ]
    servers = [PushServer(DEFAULT_LIMITS), PushServer(DEFAULT_LIMITS)]
    for server in servers:
        send, _ = trio.open_memory_channel(4)
        server._watchers[name] = {send}
        server.saw_blocks([(built.head, dict(built.pages)[built.head]) for built in logs])
        server.push(infos[0])
    prepared, plain = servers

    await prepared.prepare(infos[1])
    made = {"compact": 0, "rebuild": 0}
    real_compact, real_rebuild = push_module.compact_record, push_module.rebuild_head

    def counted(what, fn):
        def run(*args, **kwargs):
            made[what] += 1
            return fn(*args, **kwargs)

        return run

    monkeypatch.setattr(push_module, "compact_record", counted("compact", real_compact))
    monkeypatch.setattr(push_module, "rebuild_head", counted("rebuild", real_rebuild))

    async def frames(server):
        sent = {name: 4}  # the stream pushed record 4 and its message
        extra, picked = await server._messages(infos[1], sent)
        return await server._record_frame(0, infos[1], infos[0], picked) + extra

    ours = await frames(prepared)
    assert made == {"compact": 0, "rebuild": 0}
    assert ours == await frames(plain) and made == {"compact": 1, "rebuild": 1}
    # without Value: the follower rebuilds the head page from the one message beside it
    assert len(ours) < len(infos[1].raw) + 2 * 200


async def test_nothing_is_prepared_for_a_log_nobody_watches_or_a_record_not_newer():
    server = PushServer(DEFAULT_LIMITS)
    info = record()
    await server.prepare(info)  # nobody watches
    assert server._compacts == {} and server._embedded == {}
    send, _ = trio.open_memory_channel(4)
    server._watchers[info.name] = {send}
    await server.prepare(info)  # no record pushed before it: nothing to compact against
    server.push(info)
    await server.prepare(info)  # not newer than the one pushed
    assert server._compacts == {} and server._embedded == {}


def test_the_records_kept_to_prepare_against_are_bounded(monkeypatch):
    import rlp2p.wire.push as push_module

    monkeypatch.setattr(push_module, "PUSH_NEWEST", 3)
    server = PushServer(DEFAULT_LIMITS)
    infos = [record() for _ in range(5)]
    for info in infos:
        send, _ = trio.open_memory_channel(4)
        server._watchers[info.name] = {send}
        server.push(info)
    server.push(infos[2])  # pushed again: the newest now
    assert list(server._newest) == [infos[3].name, infos[4].name, infos[2].name]
