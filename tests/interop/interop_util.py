"""py-libp2p side helpers of the interop tests: the echo protocol, frames, addresses.

The echo protocol ``/rlp2p/echo/1.0.0`` is the trivial custom protocol of the transport tests:
unsigned-varint length-prefixed frames (as kad-dht and identify frame their messages, and as
js-libp2p's ``lpStream`` writes them); the server sends every frame back as it came, until the
client closes its side. Several frames may be in flight at once.
"""

from __future__ import annotations

import logging
from typing import Any

import multiaddr
import trio
from libp2p.io.exceptions import IOException
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.utils.varint import decode_uvarint, encode_uvarint

ECHO_PROTOCOL = "/rlp2p/echo/1.0.0"
#: largest echo frame either side accepts (node.mjs uses the same default)
MAX_FRAME = 4 * 1024 * 1024
#: a uint64 varint is at most 10 bytes
MAX_VARINT = 10
#: most frames one echo stream serves, and how long it waits for the next one
MAX_ECHO_FRAMES = 10_000
ECHO_IDLE = 30.0
READ_CHUNK = 65536

logger = logging.getLogger(__name__)


class FrameError(Exception):
    pass


def encode_frame(payload: bytes) -> bytes:
    return encode_uvarint(len(payload)) + payload


class FrameReader:
    """Reads length-prefixed frames from a py-libp2p stream with our own loop.

    (py-libp2p's ``read_varint_prefixed_bytes`` gives up on large messages: see the notes.)
    Each ``read`` returns at least one byte or raises, so the loop ends within
    ``MAX_VARINT + max_frame`` reads.
    """

    def __init__(self, stream: Any, max_frame: int = MAX_FRAME) -> None:
        self.stream = stream
        self.max_frame = max_frame
        self.buffer = bytearray()

    async def _fill(self) -> bool:
        """Read more bytes into the buffer; False at the end of the stream."""
        try:
            chunk = await self.stream.read(READ_CHUNK)
        except EOFError:  # py-libp2p's StreamEOF
            return False
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _length(self) -> tuple[int, int] | None:
        """(body length, prefix length) once the varint prefix is complete."""
        for i, byte in enumerate(self.buffer[:MAX_VARINT]):
            if byte < 0x80:
                length = decode_uvarint(bytes(self.buffer[: i + 1]))
                if length > self.max_frame:
                    raise FrameError(f"frame of {length} bytes is over the {self.max_frame} byte limit")
                return length, i + 1
        if len(self.buffer) >= MAX_VARINT:
            raise FrameError("frame length prefix is not a valid varint")
        return None

    async def read_frame(self) -> bytes | None:
        """The next frame, or None when the stream ends cleanly between frames."""
        for _ in range(MAX_VARINT + self.max_frame + 1):
            header = self._length()
            if header is not None:
                length, prefix = header
                if len(self.buffer) >= prefix + length:
                    frame = bytes(self.buffer[prefix : prefix + length])
                    del self.buffer[: prefix + length]
                    return frame
            if not await self._fill():
                if not self.buffer:
                    return None
                raise FrameError(f"stream ended inside a frame ({len(self.buffer)} bytes buffered)")
        raise FrameError("frame reader made no progress")


async def echo_handler(stream: Any) -> None:
    """Serve /rlp2p/echo/1.0.0 on one stream: every frame goes back as it came."""
    reader = FrameReader(stream)
    try:
        for _ in range(MAX_ECHO_FRAMES):
            with trio.fail_after(ECHO_IDLE):
                frame = await reader.read_frame()
                if frame is None:
                    break
                await stream.write(encode_frame(frame))
        await stream.close()
    except (FrameError, IOException, trio.TooSlowError) as exc:
        logger.warning("echo stream failed: %r", exc)
        await stream.reset()


async def echo_call(host: Any, peer_id: ID, payloads: list[bytes]) -> list[bytes]:
    """Open an echo stream, send every payload (pipelined), read as many frames back."""
    stream = await host.new_stream(peer_id, [ECHO_PROTOCOL])
    try:
        await stream.write(b"".join(encode_frame(p) for p in payloads))
        reader = FrameReader(stream)
        answers = []
        for _ in payloads:
            frame = await reader.read_frame()
            if frame is None:
                raise FrameError(f"echo stream ended after {len(answers)} of {len(payloads)} frames")
            answers.append(frame)
        await stream.close()
        return answers
    except BaseException:
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            await stream.reset()
        raise


def host_addr(host: Any) -> str:
    """The host's loopback TCP listen address with its /p2p/ peer id."""
    addrs = [str(a) for a in host.get_addrs() if str(a).startswith("/ip4/127.0.0.1/tcp/")]
    assert addrs, f"py host listens on no loopback TCP address: {host.get_addrs()}"
    return addrs[0]


def peer_info(addr: str) -> PeerInfo:
    return info_from_p2p_addr(multiaddr.Multiaddr(addr))
