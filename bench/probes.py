"""The baselines' protocols: the least a libp2p stream can do, between the very hosts measured.

- ``/rlp2p-bench/blast/1.0.0``: the client asks for N bytes written W bytes at a time (a 12-byte
  request: N as 8 bytes, W as 4, big-endian); the server writes them and closes. Throughput of
  the transport (TCP + Noise + yamux) with nothing of ours on top: the limit for bulk CAS Get.
- ``/rlp2p-bench/echo/1.0.0``: the client writes 32 bytes, the server writes them back, as many
  times as the client likes on one stream. A round trip with nothing of ours on top: the limit
  for one request/response.

Every size is bounded, every loop ends (each read returns at least one byte or raises), and a
server stream idle for :data:`IDLE_TIMEOUT` is reset.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

log = logging.getLogger(__name__)

BLAST_PROTOCOL = TProtocol("/rlp2p-bench/blast/1.0.0")
ECHO_PROTOCOL = TProtocol("/rlp2p-bench/echo/1.0.0")
PING_SIZE = 32
MAX_BLAST = 1 << 30
MAX_WRITE = 1 << 20
MAX_PINGS = 100_000
IDLE_TIMEOUT = 30.0
READ_CHUNK = 1 << 20


async def read_exactly(stream: Any, n: int) -> bytes:
    """``n`` bytes from a py-libp2p stream; EOFError if it ends first."""
    buffer = bytearray()
    while len(buffer) < n:
        chunk = await stream.read(n - len(buffer))  # py-libp2p raises StreamEOF (an EOFError) at the end
        if not chunk:
            raise EOFError(f"stream ended after {len(buffer)} of {n} bytes")
        buffer += chunk
    return bytes(buffer)


async def _reset(stream: Any) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(2):
        try:
            await stream.reset()
        except Exception:  # the peer may be gone already
            log.debug("reset failed", exc_info=True)


async def blast_handler(stream: Any) -> None:
    try:
        with trio.fail_after(IDLE_TIMEOUT):
            header = await read_exactly(stream, 12)
        total, write_size = int.from_bytes(header[:8], "big"), int.from_bytes(header[8:], "big")
        if not (0 <= total <= MAX_BLAST and 1 <= write_size <= MAX_WRITE):
            await _reset(stream)
            return
        chunk = bytes(write_size)
        sent = 0
        while sent < total:
            size = min(write_size, total - sent)
            await stream.write(chunk if size == write_size else chunk[:size])
            sent += size
        await stream.close()
    except Exception as exc:  # a broken benchmark stream must not disturb the node
        log.debug("blast stream failed: %r", exc)
        await _reset(stream)


async def echo_handler(stream: Any) -> None:
    try:
        for _ in range(MAX_PINGS):
            with trio.fail_after(IDLE_TIMEOUT):
                try:
                    ping = await read_exactly(stream, PING_SIZE)
                except EOFError:
                    break
                await stream.write(ping)
        await stream.close()
    except Exception as exc:
        log.debug("echo stream failed: %r", exc)
        await _reset(stream)


def install(host: IHost) -> None:
    """Serve both baseline protocols on ``host``."""
    host.set_stream_handler(BLAST_PROTOCOL, blast_handler)
    host.set_stream_handler(ECHO_PROTOCOL, echo_handler)


async def blast(host: IHost, peer: ID, total: int, write_size: int) -> float:
    """Seconds from asking for ``total`` bytes to holding the last of them (stream already open)."""
    stream = await host.new_stream(peer, [BLAST_PROTOCOL])
    try:
        start = time.perf_counter()
        await stream.write(total.to_bytes(8, "big") + write_size.to_bytes(4, "big"))
        got = 0
        while got < total:
            try:
                chunk = await stream.read(READ_CHUNK)
            except EOFError:
                chunk = b""
            if not chunk:
                raise EOFError(f"blast stream ended after {got} of {total} bytes")
            got += len(chunk)
        seconds = time.perf_counter() - start
        await stream.close()
        return seconds
    except BaseException:
        await _reset(stream)
        raise


class EchoStream:
    """One open echo stream: :meth:`ping` is a round trip on it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.payload = bytes(range(PING_SIZE))

    @classmethod
    async def open(cls, host: IHost, peer: ID) -> EchoStream:
        return cls(await host.new_stream(peer, [ECHO_PROTOCOL]))

    async def ping(self) -> float:
        start = time.perf_counter()
        await self.stream.write(self.payload)
        answer = await read_exactly(self.stream, PING_SIZE)
        seconds = time.perf_counter() - start
        if answer != self.payload:
            raise ValueError("echo answered other bytes")
        return seconds

    async def close(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            try:
                await self.stream.close()
            except Exception:
                await _reset(self.stream)


async def ping_new_stream(host: IHost, peer: ID) -> float:
    """Seconds to open an echo stream, do one round trip on it and close it."""
    start = time.perf_counter()
    echo = await EchoStream.open(host, peer)
    try:
        await echo.ping()
    finally:
        await echo.close()
    return time.perf_counter() - start


async def rtt_baseline(host: IHost, peer: ID, samples: int) -> list[float]:
    """``samples`` round trips on one open echo stream (seconds each), after 3 not counted."""
    echo = await EchoStream.open(host, peer)
    try:
        for _ in range(3):
            await echo.ping()
        return [await echo.ping() for _ in range(samples)]
    finally:
        await echo.close()
