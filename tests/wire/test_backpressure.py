"""Bounded server memory, without a network: answers built a chunk at a time, the budget, and
answer bytes that are the same as protobuf's."""

from __future__ import annotations

import os

import pytest
import trio

from rlp2p.core.address import address_of
from rlp2p.errors import ServerBusy
from rlp2p.limits import Limits
from rlp2p.pb.vac import cas_pb2
from rlp2p.wire.cas import CasServer, encode_content, encode_get
from rlp2p.wire.framing import FramedStream, encode_frame
from rlp2p.wire.rpc import MemoryBudget


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 70_000, 1 << 20])
def test_content_answer_bytes_are_protobufs(size: int) -> None:
    data = os.urandom(size)
    assert encode_content(data) == cas_pb2.CasResponse(content=cas_pb2.Content(data=data)).SerializeToString()


class Blocks:
    """A BlockBackend that records the most bytes it handed out in one call."""

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = {address_of(b): b for b in blocks}
        self.largest_load = 0

    async def get_blocks(self, addresses):
        found = {a: self.blocks[a] for a in addresses if a in self.blocks}
        self.largest_load = max(self.largest_load, sum(len(d) for d in found.values()))
        return found

    async def get_blocks_within(self, addresses, max_bytes):
        from rlp2p.node.backend import AsyncStore

        class Sync:  # the AsyncStore logic over this dict
            def block_sizes(_, wanted):
                return {a: len(self.blocks[a]) for a in wanted if a in self.blocks}

            def get_blocks(_, wanted):
                found = {a: self.blocks[a] for a in wanted if a in self.blocks}
                self.largest_load = max(self.largest_load, sum(len(d) for d in found.values()))
                return found

        return await AsyncStore(Sync()).get_blocks_within(addresses, max_bytes)

    async def put_blocks(self, items):
        self.blocks.update(items)


async def test_gets_of_many_large_blocks_are_loaded_a_chunk_at_a_time() -> None:
    limits = Limits(max_answer_bytes_per_stream=1 << 20)
    blocks = [os.urandom(300_000) for _ in range(10)]
    backend = Blocks(blocks)
    server = CasServer(backend, limits)
    frames = [encode_get(address_of(b)) for b in blocks] * 3
    answers = []
    async for reply in server.handle_frames(frames, peer="p"):
        # what the server holds while the stream has not taken this answer: at most one chunk
        assert server.budget.used <= limits.max_answer_bytes_per_stream
        answers.append(cas_pb2.CasResponse.FromString(reply.frame).content.data)
    assert answers == blocks * 3
    assert backend.largest_load <= limits.max_answer_bytes_per_stream
    assert server.budget.used == 0


async def test_a_block_over_the_stream_cap_is_answered_alone() -> None:
    limits = Limits(max_answer_bytes_per_stream=100_000)
    big = os.urandom(300_000)
    server = CasServer(Blocks([big]), limits)
    replies = [r async for r in server.handle_frames([encode_get(address_of(big))] * 2, peer="p")]
    assert [cas_pb2.CasResponse.FromString(r.frame).content.data for r in replies] == [big, big]


async def test_budget_waits_per_peer_and_in_all_then_gives_up() -> None:
    budget = MemoryBudget(per_peer=100, total=150, max_streams_per_peer=2)
    await budget.acquire("a", 80, timeout=1)
    await budget.acquire("b", 60, timeout=1)
    with pytest.raises(ServerBusy):
        await budget.acquire("a", 30, timeout=0.05)  # over a's share
    with pytest.raises(ServerBusy):
        await budget.acquire("c", 20, timeout=0.05)  # over the total

    async def later() -> None:
        await trio.sleep(0.05)
        budget.release("a", 80)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        await budget.acquire("c", 20, timeout=1)  # waits for a's bytes to come back
    assert budget.used == 80 and budget.used_by("a") == 0
    budget.release("b", 60)
    budget.release("c", 20)
    # one holder alone may take more than a share: slow, never stuck
    await budget.acquire("d", 1000, timeout=0.05)
    assert budget.used == 1000
    assert budget.open_stream("a") and budget.open_stream("a") and not budget.open_stream("a")
    budget.close_stream("a")
    assert budget.open_stream("a")


class Pipe:
    """A stream that records what is written and gives back what it is fed."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.written: list[bytes] = []

    async def read(self, n: int) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        if not chunk:
            await trio.sleep_forever()
        return chunk

    async def write(self, data: bytes) -> None:
        self.written.append(data)


async def test_frames_written_are_the_same_bytes_with_fewer_copies() -> None:
    payloads = [b"a" * 10, os.urandom(2 << 20), b"b" * 5, b"c" * 700_000, os.urandom(600_000), b""]
    pipe = Pipe()
    await FramedStream(pipe, 1 << 20).write_frames(payloads)
    assert b"".join(pipe.written) == b"".join(encode_frame(p) for p in payloads)
    assert pipe.written[1] is payloads[1]  # a large frame is written as it is, not copied


async def test_a_large_frame_is_read_only_once_reserved() -> None:
    body = os.urandom(200_000)
    pipe = Pipe(encode_frame(body) + encode_frame(b"small"))
    reserved: list[int] = []
    gate = trio.Event()

    async def reserve(size: int) -> None:
        reserved.append(size)
        await gate.wait()

    framed = FramedStream(pipe, 1 << 20, large_frame=64 * 1024, reserve=reserve)
    async with trio.open_nursery() as nursery:
        got: list[bytes] = []

        async def read() -> None:
            got.append(await framed.read_frame())
            got.append(await framed.read_frame())

        nursery.start_soon(read)
        await trio.sleep(0.05)
        assert reserved == [len(body)] and framed.decoder.buffered <= 64 * 1024 + 8  # waiting
        gate.set()
    assert got == [body, b"small"] and framed.reserved == len(body)


async def test_get_blocks_within_on_a_real_store(tmp_path) -> None:
    from rlp2p.node.backend import AsyncStore
    from rlp2p.store import open_store

    store = open_store(tmp_path)
    try:
        blocks = [os.urandom(n) for n in (100, 200, 300, 5000)]
        store.put_blocks([(address_of(b), b) for b in blocks])
        addresses = [address_of(b) for b in blocks]
        missing = address_of(b"not stored")
        assert store.block_sizes(addresses + [missing]) == {address_of(b): len(b) for b in blocks}
        backend = AsyncStore(store)
        found, taken, next_size = await backend.get_blocks_within([addresses[0], missing, *addresses[1:]], 600)
        assert (taken, next_size) == (4, 5000) and set(found) == set(addresses[:3])
        found, taken, next_size = await backend.get_blocks_within(addresses[3:], 600)
        assert (found, taken, next_size) == ({}, 0, 5000)  # alone over the cap: the caller decides
        found, taken, next_size = await backend.get_blocks_within(addresses, 10_000)
        assert (len(found), taken, next_size) == (4, 4, 0)
    finally:
        store.close()
