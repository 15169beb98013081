"""Memory attacks on a real ``rlp2p serve`` (issue 10): each keeps the server's RSS growth under
64 MB while a legitimate reader is served.

Sizes are smaller than the issue's runs where the bound is what matters: each attack still asks
the server for several times 64 MB (the unfixed server grows by hundreds of MB here).
"""

from __future__ import annotations

import os

import trio
from libp2p.utils.varint import encode_uvarint

from rlp2p.limits import DEFAULT_LIMITS
from rlp2p.wire.cas import CAS_PROTOCOL, encode_add, encode_get
from rlp2p.wire.framing import encode_frame

from attack_util import MiB, RssWatch, client_host, legit_get, publish_log, seed_blocks, serve, sync_log

#: the issue's target: no attack moves a storage peer's RSS by more than this
RSS_BOUND = 64 * MiB


def _report(name: str, watch: RssWatch) -> None:
    print(f"{name}: server RSS {watch.baseline / MiB:.0f} MB -> peak {watch.peak / MiB:.0f} MB, growth {watch.growth / MiB:.1f} MB")


async def _attack(tmp_path, blocks, attack, name: str) -> RssWatch:
    """Start a server holding ``blocks`` and Alice's log, run ``attack`` while Bob syncs the log
    (``rlp2p sync``) and a client reads blocks, and return the RSS watch."""
    addresses = seed_blocks(tmp_path / "server", blocks)
    small = seed_blocks(tmp_path / "server", [os.urandom(300) for _ in range(20)])
    bodies = [f"message {i}".encode() for i in range(30)]
    async with serve(tmp_path / "server") as proc, client_host() as reader, client_host() as attacker:
        # warm up: the server has taken a publish and served a reader (imports, caches) before
        # the baseline
        log = await publish_log(tmp_path, proc.addr, bodies)
        await legit_get(reader, proc, small + addresses[:1])
        watch = RssWatch(proc)
        reader_done = trio.Event()

        async def hold() -> None:
            """The attacker keeps up the attack until the reader is done (30 s at most)."""
            with trio.move_on_after(30):
                await reader_done.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch.run)
            attack_done = trio.Event()

            async def run_attack() -> None:
                try:
                    await attack(attacker, proc, addresses, hold)
                finally:
                    attack_done.set()

            nursery.start_soon(run_attack)
            await trio.sleep(1.0)  # the attack is under way
            got = await legit_get(reader, proc, small + addresses[:2])
            assert got.keys() == set(small + addresses[:2])
            assert await sync_log(tmp_path / "bob", proc.addr, log) == bodies
            assert not attack_done.is_set(), "the attack ended before the reader was served"
            await trio.sleep(0.5)  # the attack goes on a little past the reader
            reader_done.set()
            with trio.fail_after(60):
                await attack_done.wait()
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
        assert proc.proc.poll() is None, proc.stderr()
    _report(name, watch)
    return watch


async def _open_cas(attacker, proc):
    await attacker.connect(proc.peer)
    return await attacker.new_stream(proc.peer.peer_id, [CAS_PROTOCOL])


async def test_pipelined_gets_never_read(tmp_path) -> None:
    """10,000 pipelined Gets of a 1 MiB block whose answers are never read."""

    async def attack(attacker, proc, addresses, hold):
        stream = await _open_cas(attacker, proc)
        data = b"".join(encode_frame(encode_get(addresses[0])) for _ in range(10_000))
        # 400 KB of requests, as fast as yamux lets them through: once the server stops reading
        # (its answers pile up unread), no credit comes back and the rest waits
        for at in range(0, len(data), 16 * 1024):
            with trio.move_on_after(2) as stalled:
                await stream.write(data[at : at + 16 * 1024])
            if stalled.cancelled_caught:
                break
        await hold()  # never read: the answers pile up on the server's side, if anywhere
        with trio.CancelScope(shield=True):
            await stream.reset()

    watch = await _attack(tmp_path, [os.urandom(1 * MiB)], attack, "pipelined Gets")
    assert watch.growth < RSS_BOUND


async def test_one_write_naming_many_large_blocks(tmp_path) -> None:
    """One 30 KiB write of Gets naming 8 distinct 2 MiB blocks over and over (about 750 Gets)."""

    async def attack(attacker, proc, addresses, hold):
        stream = await _open_cas(attacker, proc)
        frames = []
        size = 0
        i = 0
        while size < 30 * 1024:
            frame = encode_frame(encode_get(addresses[i % len(addresses)]))
            frames.append(frame)
            size += len(frame)
            i += 1
        await stream.write(b"".join(frames))
        await hold()
        with trio.CancelScope(shield=True):
            await stream.reset()

    watch = await _attack(tmp_path, [os.urandom(2 * MiB) for _ in range(8)], attack, "many large blocks")
    assert watch.growth < RSS_BOUND


async def test_stalled_partial_frames(tmp_path) -> None:
    """32 streams each declaring a frame of max_frame (an Add of 8 MiB), sending 3 MiB of it, then
    stalling. (3 MiB rather than "most of 8 MiB" keeps the test quick: 96 MiB is already over the
    bound; the unfixed server holds all of it.)"""
    body_sent = 3 * MiB

    async def attack(attacker, proc, addresses, hold):
        await attacker.connect(proc.peer)
        prefix = encode_uvarint(DEFAULT_LIMITS.max_frame)
        payload = encode_add(os.urandom(DEFAULT_LIMITS.max_frame - 16))[: body_sent]

        async def one() -> None:
            try:
                stream = await attacker.new_stream(proc.peer.peer_id, [CAS_PROTOCOL])
                async with trio.open_nursery() as both:
                    # a server that does not read holds our write back: stall until the end
                    both.start_soon(stream.write, prefix + payload)
                    await hold()
                    both.cancel_scope.cancel()
            except Exception:  # the server may reset streams past its per-peer limit
                return
            with trio.CancelScope(shield=True):
                try:
                    await stream.reset()
                except Exception:
                    pass

        async with trio.open_nursery() as n:
            for _ in range(32):
                n.start_soon(one)

    watch = await _attack(tmp_path, [os.urandom(64 * 1024)], attack, "stalled partial frames")
    assert watch.growth < RSS_BOUND
