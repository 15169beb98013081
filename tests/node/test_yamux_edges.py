"""py-libp2p 0.8.1's yamux as rlp2p.p2p.host patches it (docs/upstream.md has each case), with
real hosts on 127.0.0.1.

A write cancelled by its caller leaves the connection usable. py-libp2p encrypts a yamux frame (taking the next Noise nonce) and then sends it; a cancel that
lands between the two (trio checks for one before each socket send) leaves the peer a nonce
behind, so it fails to authenticate every later frame and drops the connection. A test caught it
as a publish failing with "Failed to create stream" under load (1 run in about 20 with the
machine busy): some task's deadline had passed while it wrote.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import libp2p.stream_muxer.yamux.yamux as yamux
import multiaddr
import pytest
import trio

from rlp2p.p2p.host import full_addrs, make_host, parse_peer_addr

ECHO = "/rlp2p-test/echo/1.0.0"


async def echo(stream) -> None:
    try:
        while True:
            data = await stream.read(65536)
            if not data:
                break
            await stream.write(data)
    except Exception:  # the client resets its streams
        pass
    finally:
        await stream.close()


async def round_trip(client, peer, payload: bytes) -> bytes:
    stream = await client.new_stream(peer, [ECHO])
    try:
        await stream.write(payload)
        got = b""
        with trio.fail_after(10):
            while len(got) < len(payload):
                got += await stream.read(len(payload) - len(got))
        return got
    finally:
        await stream.close()


@asynccontextmanager
async def two_hosts():
    server, client = make_host(), make_host()
    server.set_stream_handler(ECHO, echo)
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    async with server.run(listen_addrs=listen), client.run(listen_addrs=listen):
        info = parse_peer_addr(full_addrs(server)[0])
        await client.connect(info)
        yield client, info.peer_id
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await client.get_network().close()
            await server.get_network().close()


@pytest.fixture
def window_updates(monkeypatch):
    """Every WINDOW_UPDATE frame either side sends, by size."""
    sent: list[int] = []
    upstream = yamux.YamuxStream.send_window_update

    async def counted(self, increment: int, skip_lock: bool = False) -> None:
        if increment > 0:
            sent.append(increment)
        await upstream(self, increment, skip_lock)

    monkeypatch.setattr(yamux.YamuxStream, "send_window_update", counted)
    return sent


async def test_small_requests_and_answers_send_no_window_updates(window_updates) -> None:
    """500 requests of 200 B answered one by one: 100 kB each way, under half a window, so no
    credit has to go back (py-libp2p sent one update per read: about 1,000 frames here)."""
    async with two_hosts() as (client, peer):
        stream = await client.new_stream(peer, [ECHO])
        with trio.fail_after(30):
            for n in range(500):
                await stream.write(b"%05d" % n + b"." * 195)
                got = b""
                while len(got) < 200:
                    got += await stream.read(200 - len(got))
                assert got.startswith(b"%05d" % n)
        await stream.close()
    assert window_updates == []


async def test_a_bulk_transfer_gets_credit_back_in_large_steps(window_updates) -> None:
    """8 MB echoed on one stream: the sender never stalls for good, and credit goes back in steps
    of at least half the default window, not per read."""
    total = 8 * 1024 * 1024
    async with two_hosts() as (client, peer):
        stream = await client.new_stream(peer, [ECHO])
        received = 0

        async def send() -> None:
            chunk = b"z" * 65536
            for _ in range(total // len(chunk)):
                await stream.write(chunk)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                while received < total:
                    received += len(await stream.read(65536))
        await stream.close()
    assert received == total
    assert window_updates and min(window_updates) >= yamux.DEFAULT_WINDOW_SIZE // 2
    assert len(window_updates) <= 2 * total // (yamux.DEFAULT_WINDOW_SIZE // 2)


async def test_a_write_cancelled_before_it_is_sent_leaves_the_connection_usable() -> None:
    async with two_hosts() as (client, peer):
        assert await round_trip(client, peer, b"before") == b"before"

        # the cancel lands after the victim got yamux's write lock and before it sent: hold the
        # lock, let the victim queue for it, then hand it over and cancel in one step
        stream = await client.new_stream(peer, [ECHO])
        muxed = client.get_network().get_connections(peer)[0].muxed_conn
        outcome: list[str] = []

        async def victim(task_status=trio.TASK_STATUS_IGNORED) -> None:
            with trio.CancelScope() as scope:
                task_status.started(scope)
                try:
                    await stream.write(b"x" * 1000)
                    outcome.append("written")
                except trio.Cancelled:
                    outcome.append("cancelled")
                    raise

        async with trio.open_nursery() as nursery:
            await muxed._write_lock.acquire()
            scope = await nursery.start(victim)
            with trio.fail_after(5):
                while not muxed._write_lock.statistics().tasks_waiting:
                    await trio.sleep(0)
            muxed._write_lock.release()
            scope.cancel()
        assert outcome  # written (then the cancel shows at its next checkpoint) or cancelled
        await stream.reset()

        # later frames on the same connection still authenticate: a new stream works
        for n in range(3):
            assert await round_trip(client, peer, b"after %d" % n) == b"after %d" % n
        assert len(client.get_network().get_connections(peer)) == 1
