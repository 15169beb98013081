"""Request/response over one libp2p stream, shared by the CAS and NS protocols.

A client may send many requests before reading (pipelining); the server answers each in order.
The server side is :func:`serve_stream`, which owns the read loop and the error policy; the
protocol modules only turn one request frame into one response frame.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
from google.protobuf.message import DecodeError as _PbDecodeError
from google.protobuf.message import Message as _PbMessage

from rlp2p.errors import LimitExceeded, ProtocolError, Rlp2pError, ServerBusy, StreamClosed, Timeout, leaves
from rlp2p.limits import Limits
from rlp2p.wire.framing import FramedStream

log = logging.getLogger(__name__)

M = TypeVar("M", bound=_PbMessage)

#: requests a client keeps in flight on one stream before it waits for answers: twice what a
#: server takes as one batch (``Limits.max_pipeline``), so the next batch is there while the
#: last one is answered and the stream never drains
DEFAULT_WINDOW = 512


@dataclass
class Reply:
    """What a request handler returns: the response frame, and whether to keep serving."""

    frame: bytes
    keep_open: bool = True


RequestHandler = Callable[[bytes], Awaitable[Reply]]
#: answers a batch of pipelined requests, in order, one reply at a time as the stream takes them
#: (it may stop early at a reply that closes); ``serve_stream`` closes it if the stream fails
BatchHandler = Callable[[list[bytes]], AsyncIterator[Reply]]
ErrorFrame = Callable[[Rlp2pError], bytes]
#: most frames a client writes at once while pipelining: what the window allows, joined in one
#: write (a yamux write costs far more than a small frame's bytes)
WRITE_BATCH = 256
#: answer bytes ``serve_stream`` joins into one write before it asks the handler for more
WRITE_COALESCE = 1024 * 1024


def one_at_a_time(handle: RequestHandler) -> BatchHandler:
    """A batch handler that answers each request in turn, for protocols with nothing to batch."""

    async def batch(frames: list[bytes]) -> AsyncIterator[Reply]:
        for frame in frames:
            reply = await handle(frame)
            yield reply
            if not reply.keep_open:
                break

    return batch


class MemoryBudget:
    """Bytes a server sets aside, per peer and in all, for what it buffers on peers' behalf:
    large request frames being received and answers the client has not read yet. Also counts
    each peer's open streams.

    ``acquire`` waits (back-pressure: the stream is not read or answered meanwhile) and raises
    ServerBusy after ``timeout``. One holder alone may always take what it asks for, so a request
    larger than a share is slow, never stuck. py-libp2p's ``rcmgr`` has memory accounting, but
    nothing in py-libp2p 0.8.1 charges it, it is global only and it cannot wait (docs/upstream.md).
    """

    def __init__(self, per_peer: int, total: int, max_streams_per_peer: int) -> None:
        self.per_peer = per_peer
        self.total = total
        self.max_streams_per_peer = max_streams_per_peer
        self.used = 0
        self._used: dict[Any, int] = {}
        self._streams: dict[Any, int] = {}
        self._changed = trio.Event()

    def used_by(self, peer: Any) -> int:
        return self._used.get(peer, 0)

    def _fits(self, peer: Any, size: int) -> bool:
        mine = self._used.get(peer, 0)
        return (mine == 0 or mine + size <= self.per_peer) and (self.used == 0 or self.used + size <= self.total)

    async def acquire(self, peer: Any, size: int, timeout: float) -> None:
        if not self._fits(peer, size):  # the common case takes no timer (nor a trio checkpoint)
            with trio.move_on_after(timeout):
                while not self._fits(peer, size):
                    await self._changed.wait()
            if not self._fits(peer, size):
                raise ServerBusy(f"no memory for {size} bytes within {timeout:.0f} s; try later or another replica")
        self.used += size
        self._used[peer] = self._used.get(peer, 0) + size

    def release(self, peer: Any, size: int) -> None:
        if size <= 0:
            return
        self.used -= size
        left = self._used.get(peer, 0) - size
        if left > 0:
            self._used[peer] = left
        else:
            self._used.pop(peer, None)
        self._changed.set()
        self._changed = trio.Event()

    def open_stream(self, peer: Any) -> bool:
        count = self._streams.get(peer, 0)
        if count >= self.max_streams_per_peer:
            return False
        self._streams[peer] = count + 1
        return True

    def close_stream(self, peer: Any) -> None:
        count = self._streams.get(peer, 0) - 1
        if count > 0:
            self._streams[peer] = count
        else:
            self._streams.pop(peer, None)


def budget_for(limits: Limits) -> MemoryBudget:
    return MemoryBudget(limits.max_server_bytes_per_peer, limits.max_server_bytes, limits.max_streams_per_peer)


def stream_peer(stream: Any) -> Any:
    """The remote peer id of a libp2p stream (None for a stream that has no connection)."""
    conn = getattr(stream, "muxed_conn", None)
    return getattr(conn, "peer_id", None)


#: after a refusal's error frame: how long the peer has to read it before the reset, and the most
#: bytes read (and dropped) from it meanwhile
ERROR_GRACE = 1.0
ERROR_DRAIN = 64 * 1024


async def _close_after_refusal(stream: Any) -> None:
    """Half-close, let the peer read the error frame, then reset. A reset sent right after the
    frame can overtake it: py-libp2p's yamux drops a stream's unread data once its RST arrives,
    so a loaded client lost the error (docs/upstream.md)."""
    try:
        await stream.close()
        with trio.move_on_after(ERROR_GRACE):
            drained = 0
            while drained < ERROR_DRAIN:
                chunk = await stream.read(ERROR_DRAIN - drained)
                if not chunk:
                    break
                drained += len(chunk)
    except Exception:  # the peer reset or left: nothing more to wait for
        log.debug("waiting for a refused peer failed", exc_info=True)
    await _close_quietly(stream, reset=True)


async def _close_quietly(stream: Any, *, reset: bool) -> None:
    try:
        if reset:
            await stream.reset()
        else:
            await stream.close()
    except Exception:  # the peer may be gone already; nothing is left to do
        log.debug("closing stream failed", exc_info=True)


async def serve_stream(
    stream: Any,
    handle: BatchHandler,
    error_frame: ErrorFrame,
    limits: Limits,
    *,
    idle_timeout: float,
    name: str,
    budget: MemoryBudget | None = None,
    max_frame: int | None = None,
) -> int:
    """Answer requests on ``stream`` until the peer closes it; returns how many were served.

    Requests a client pipelined arrive together: every whole frame already read (up to
    ``limits.max_pipeline``) goes to ``handle`` as one batch, so a store can serve them in one
    transaction. Answers are written as the handler produces them, small ones joined into one
    write, so the handler builds the next ones only once the stream took the previous ones
    (yamux's flow control holds a write until the client reads).

    Memory: ``budget`` (per peer and in all) covers large request frames before their bodies
    are read; the peer's streams past ``limits.max_streams_per_peer`` are reset at once.
    ``max_frame`` (default ``limits.max_frame``) is the largest request this protocol accepts.

    Policy: a malformed request gets a typed error and the stream is closed by the handler's
    Reply; an oversize or broken length prefix gets a typed error and a reset (the stream can no
    longer be framed); a stream cut mid-frame or idle for ``idle_timeout`` is reset; a large
    request the budget cannot take within ``idle_timeout`` gets a typed error and a reset.
    Nothing a peer sends escapes as an exception: the node keeps serving everyone else.
    """
    peer = stream_peer(stream)
    if budget is not None and not budget.open_stream(peer):
        log.info("%s: more than %d streams from %s; resetting", name, budget.max_streams_per_peer, peer)
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await _close_quietly(stream, reset=True)
        return 0

    async def reserve(size: int) -> None:
        assert budget is not None
        # shorter than the idle timeout around the read, so the peer hears why
        await budget.acquire(peer, size, idle_timeout / 2)

    framed = FramedStream(
        stream,
        max_frame or limits.max_frame,
        large_frame=limits.large_frame,
        reserve=reserve if budget is not None else None,
    )
    served = 0
    reset = refused = False
    try:
        while served < limits.max_requests_per_stream:
            with trio.move_on_after(idle_timeout) as idle:
                frame = await framed.read_frame()
            if idle.cancelled_caught:
                log.debug("%s: idle stream closed after %.0f s", name, idle_timeout)
                reset = True
                break
            if frame is None:
                break
            frames = [frame]
            bad_prefix: ProtocolError | None = None
            try:
                while len(frames) < limits.max_pipeline and (more := framed.decoder.next_frame()) is not None:
                    frames.append(more)
            except ProtocolError as exc:  # answer what came before it, then refuse it
                bad_prefix = exc
            keep_open = True
            pending: list[bytes] = []
            pending_bytes = 0
            async with aclosing(handle(frames)) as replies:  # type: ignore[type-var]  # an async generator
                async for reply in replies:
                    if len(frames) == 1:
                        frames.clear()  # the request's bytes are not needed while it is answered
                    if budget is not None and framed.reserved:
                        budget.release(peer, framed.reserved)  # the large request is handled
                        framed.reserved = 0
                    pending.append(reply.frame)
                    pending_bytes += len(reply.frame)
                    served += 1
                    keep_open = reply.keep_open
                    if pending_bytes >= WRITE_COALESCE:
                        await framed.write_frames(pending)
                        pending, pending_bytes = [], 0
                    if not keep_open:
                        break
            if pending:
                await framed.write_frames(pending)
            if bad_prefix is not None:
                raise bad_prefix
            if not keep_open:
                break
    except ProtocolError as exc:
        if isinstance(exc, StreamClosed):
            log.debug("%s: %s", name, exc)
        else:
            log.info("%s: refusing peer input: %s", name, exc)
            with trio.move_on_after(idle_timeout):
                try:
                    await framed.write_frame(error_frame(exc))
                    refused = True
                except StreamClosed:
                    pass
        reset = True
    finally:
        if budget is not None:
            budget.release(peer, framed.reserved)
            budget.close_stream(peer)
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            if refused:
                await _close_after_refusal(stream)
            else:
                await _close_quietly(stream, reset=reset)
    return served


@contextmanager
def _unwrap_group() -> Iterator[None]:
    """Raise the first real error of a nursery's exception group, so callers catch our types."""
    try:
        yield
    except BaseExceptionGroup as group:
        real = [e for e in leaves(group) if not isinstance(e, trio.Cancelled)]
        if not real:
            raise
        raise real[0] from group


def parse_frame(message_type: type[M], frame: bytes, error: type[Rlp2pError]) -> M:
    """Parse one protobuf frame; a malformed one raises ``error`` (never protobuf's own)."""
    message = message_type()
    try:
        message.ParseFromString(frame)
    except _PbDecodeError as exc:
        raise error(f"malformed {message_type.DESCRIPTOR.name}: {exc}") from exc
    return message


def refusal(encode_error: Callable[[int, str], bytes], too_large: int, bad_request: int, unavailable: int) -> ErrorFrame:
    """The error frame for input refused before it could be parsed (see :func:`serve_stream`)."""

    def frame(exc: Rlp2pError) -> bytes:
        if isinstance(exc, ServerBusy):
            return encode_error(unavailable, str(exc))
        return encode_error(too_large if isinstance(exc, LimitExceeded) else bad_request, str(exc))

    return frame


def enum_name(enum: Any, value: int) -> str:
    """A protobuf enum value's name, or its number when this version does not know it."""
    return enum.Name(value) if value in enum.values() else str(value)


Opener = Callable[[], Awaitable[Any]]


class RpcStream:
    """The client end: pipelined requests on one stream, answers matched by order.

    A stream may be kept open and used again for later calls (see ``Node.rpc``). If the server
    closed it meanwhile (servers close idle streams), the first call on it fails before any
    answer; with a ``reopen`` function the call is then made once more on a new stream. Every
    request of the CAS and NS protocols is idempotent, so sending one twice is harmless.
    """

    def __init__(
        self,
        stream: Any,
        limits: Limits,
        *,
        timeout: float,
        window: int = DEFAULT_WINDOW,
        reopen: Opener | None = None,
    ) -> None:
        self.limits = limits
        self.timeout = timeout
        self.window = window
        self.reopen = reopen
        self._use(stream)
        self.reused = False  # set by a pool that hands this stream out again
        self.broken = False  # a call failed: the stream must not be used again
        self.reset_counters()
        self.new_streams = 1
        self._unanswered: deque[bytes] = deque()  # for send / receive

    def _use(self, stream: Any) -> None:
        self.stream = stream
        self.framed = FramedStream(stream, self.limits.max_frame)

    def reset_counters(self) -> None:
        """Start counting afresh (a pooled stream handed to a new user)."""
        self._in_base = -self.framed.bytes_in
        self._out_base = -self.framed.bytes_out
        self.round_trips = 0  # sequential waits for answers, for reports
        self.new_streams = 0  # streams opened for this user (protocol negotiations)

    @property
    def bytes_in(self) -> int:
        return self._in_base + self.framed.bytes_in

    @property
    def bytes_out(self) -> int:
        return self._out_base + self.framed.bytes_out

    async def call_many(self, requests: Sequence[bytes]) -> list[bytes]:
        """Send every request, at most ``window`` ahead of the answers; answers in order.

        ``timeout`` bounds the whole batch; on a timeout or a broken stream the stream is unusable
        (``broken``) and the caller should close it.
        """
        if not requests:
            return []
        try:
            answers = await self._call_many(requests)
        except StreamClosed as exc:
            if not (self.reused and self.reopen is not None and exc.answers == 0):
                self.broken = True
                raise
        else:
            self.reused = False  # it works: later failures on it are real ones
            return answers
        # the kept stream had been closed by the server: once more on a new one
        self.reused = False
        old = self.framed
        await _close_quietly(self.stream, reset=True)
        self._use(await self.reopen())  # type: ignore[misc]
        self._in_base += old.bytes_in
        self._out_base += old.bytes_out
        self.new_streams += 1
        try:
            return await self._call_many(requests)
        except BaseException:
            self.broken = True
            raise

    async def _call_many(self, requests: Sequence[bytes]) -> list[bytes]:
        answers: list[bytes] = []
        total = len(requests)
        # the sender writes only once a quarter of the window is free (or all that is left fits):
        # refilling one request per answer would settle into one request, one answer and one
        # yamux write each
        refill = max(1, self.window // 4)
        sent = 0
        room: trio.Event | None = None

        def free() -> int:
            return self.window - (sent - len(answers))

        try:
            with trio.fail_after(self.timeout), _unwrap_group():
                async with trio.open_nursery() as nursery:

                    async def send_all() -> None:
                        nonlocal sent, room
                        while sent < total:
                            if free() < min(refill, total - sent):
                                room = trio.Event()
                                await room.wait()
                                continue
                            end = sent + min(free(), WRITE_BATCH, total - sent)
                            await self.framed.write_frames(list(requests[sent:end]))
                            sent = end

                    nursery.start_soon(send_all)
                    decoder = self.framed.decoder
                    while len(answers) < total:
                        frame = await self.framed.read_frame()
                        if frame is None:
                            raise StreamClosed(
                                f"peer closed the stream after {len(answers)} of {total} answers"
                            )
                        answers.append(frame)
                        # the answers already read, without a trip through read_frame each
                        while len(answers) < total and (more := decoder.next_frame()) is not None:
                            answers.append(more)
                        if room is not None and free() >= min(refill, total - sent):
                            room.set()
                            room = None
        except StreamClosed as exc:
            exc.answers = len(answers)
            raise
        except trio.TooSlowError as exc:
            self.broken = True
            raise Timeout(f"{len(answers)} of {len(requests)} answers within {self.timeout:g} s") from exc
        except BaseException:
            self.broken = True
            raise
        self.round_trips += 1
        return answers

    async def call(self, request: bytes) -> bytes:
        return (await self.call_many([request]))[0]

    # --- streaming: a caller that decides what to ask next from the answers it reads ---------

    @property
    def unanswered(self) -> int:
        """Requests :meth:`send` wrote whose answers :meth:`receive` has not returned yet."""
        return len(self._unanswered)

    async def send(self, requests: Sequence[bytes]) -> None:
        """Write ``requests`` in one go; their answers come from :meth:`receive`, in order. The
        caller keeps at most ``window`` of them unanswered (the requests are kept until answered,
        so they can be sent again on a new stream)."""
        if not requests:
            return
        self._unanswered.extend(requests)
        try:
            try:
                with trio.fail_after(self.timeout):
                    await self.framed.write_frames(list(requests))
            except StreamClosed:
                if not (self.reused and self.reopen is not None):
                    raise
                await self._replace()  # a kept stream the server had closed
        except BaseException:
            self.broken = True
            raise

    async def receive(self) -> list[bytes]:
        """The answers that have arrived, in request order: at least one (waiting up to ``timeout``
        for it), at most all unanswered. On a timeout or a broken stream the stream is unusable
        (``broken``); a kept stream the server had closed is replaced once, as in :meth:`call_many`."""
        if not self._unanswered:
            raise ValueError("nothing was sent that is not answered")
        try:
            try:
                frames = await self._receive()
            except StreamClosed as exc:
                if not (self.reused and self.reopen is not None and exc.answers == 0):
                    raise
                await self._replace()
                frames = await self._receive()
        except BaseException:
            self.broken = True
            raise
        self.reused = False
        for _ in frames:
            self._unanswered.popleft()
        return frames

    async def _replace(self) -> None:
        """Once more on a new stream: every request not answered yet."""
        assert self.reopen is not None
        self.reused = False
        old = self.framed
        await _close_quietly(self.stream, reset=True)
        self._use(await self.reopen())
        self._in_base += old.bytes_in
        self._out_base += old.bytes_out
        self.new_streams += 1
        with trio.fail_after(self.timeout):
            await self.framed.write_frames(list(self._unanswered))

    async def _receive(self) -> list[bytes]:
        with trio.fail_after(self.timeout):
            frame = await self.framed.read_frame()
        if frame is None:
            exc = StreamClosed(f"peer closed the stream with {len(self._unanswered)} requests unanswered")
            exc.answers = 0
            raise exc
        frames = [frame]
        decoder = self.framed.decoder
        while len(frames) < len(self._unanswered) and (more := decoder.next_frame()) is not None:
            frames.append(more)
        return frames

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await _close_quietly(self.stream, reset=False)
