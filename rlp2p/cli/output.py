"""Lines to stdout, and which of them a person can have seen: the printed cursor of ``rlp2p sync``.

A message the reader delivered is not yet a message the user saw. Written to a terminal or a
file, a line is shown once ``write`` returns. Written into a pipe, it is only in the kernel's
buffer: if the program at the other end quits (``head -3``) or the command is interrupted, the
lines still in the pipe are never read. Linux tells how many bytes sit unread in a pipe
(``FIONREAD`` on the write end), so :class:`Output` counts a line as consumed once the reader
took it out of the pipe.

Consumed is not yet shown either: ``head`` reads a whole buffer and prints three lines of it.
So a line counts as **shown** only when the reader came back for more after taking it (a program
that reads on has dealt with what it read before), or when the command ends with the reader still
there after taking everything. When the pipe breaks, whatever the reader took in its last read
counts as not shown. The rule errs on the side of showing a line twice, never zero times.

Writes to a pipe go through trio (non-blocking), so SIGINT or SIGTERM cancels a write blocked on a
full pipe instead of waiting for a reader that may never read again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import struct
import termios
from collections import deque

import trio

#: after everything was written into a pipe: how long to wait for the reader to take it
DRAIN_WAIT = 5.0
#: after the pipe drained: how long a reader that is about to quit gets to do so (``head``)
QUIT_GRACE = 0.1


class OutputClosed(Exception):
    """The reader at the other end of stdout went away (a broken pipe)."""


class Output:
    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            mode = 0
        self.is_pipe = stat.S_ISFIFO(mode)
        self._stream: trio.lowlevel.FdStream | None = None
        #: bytes written so far
        self.written = 0
        #: (end offset of a line, its seq), oldest first, for lines not yet counted as shown
        self._marks: deque[tuple[int, int]] = deque()
        #: bytes consumed as of the reader's latest read, and as of the read before it
        self._consumed = 0
        self._confirmed = 0
        self.shown_seq = 0
        self.closed = False

    # --- writing -----------------------------------------------------------------------------

    async def write_line(self, seq: int, line: bytes) -> None:
        """Write one line (ending in a newline) for message ``seq``; OutputClosed if the pipe broke."""
        if self.closed:
            raise OutputClosed
        try:
            if self.is_pipe:
                if self._stream is None:
                    # a duplicate, so closing the stream leaves fd 1 to Python
                    self._stream = trio.lowlevel.FdStream(os.dup(self.fd))
                await self._stream.send_all(line)
            else:
                view = memoryview(line)
                while view:
                    view = view[os.write(self.fd, view) :]
        except (trio.BrokenResourceError, trio.ClosedResourceError, BrokenPipeError) as exc:
            self.closed = True
            raise OutputClosed from exc
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                self.closed = True
                raise OutputClosed from exc
            raise
        self.written += len(line)
        self._marks.append((self.written, seq))
        self._sample()

    def _unread(self) -> int:
        if not self.is_pipe:
            return 0
        try:
            buf = fcntl.ioctl(self.fd, termios.FIONREAD, struct.pack("i", 0))
            return int(struct.unpack("i", buf)[0])
        except OSError:
            return self.written - self._consumed  # cannot tell: nothing more counts as read

    def _sample(self) -> None:
        consumed = self.written - self._unread()
        if consumed > self._consumed:
            # the reader took more: what it took before this read is dealt with
            self._confirmed, self._consumed = self._consumed, consumed
        self._advance(self._confirmed if self.is_pipe else self.written)

    def _advance(self, shown_bytes: int) -> None:
        while self._marks and self._marks[0][0] <= shown_bytes:
            self.shown_seq = self._marks.popleft()[1]

    def _reader_gone(self) -> bool:
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))

    async def finish(self, *, interrupted: bool = False) -> int:
        """The last seq shown, once the command ends (normally, or ``interrupted``)."""
        if self.is_pipe and not self.closed and not interrupted and self._marks:
            with trio.move_on_after(DRAIN_WAIT):
                while self._unread() > 0 and not self._reader_gone():
                    await trio.sleep(0.005)
            if self._unread() == 0:
                await trio.sleep(QUIT_GRACE)
                if not self._reader_gone():
                    self._consumed = self._confirmed = self.written  # the reader is still there
        if self.is_pipe and not self.closed:
            # (a broken pipe's buffer is gone: nothing more to learn, and its last read stays unseen)
            self._sample()
        return self.shown_seq

    async def aclose(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with trio.CancelScope(shield=True):
                try:
                    await stream.aclose()
                except OSError:
                    pass
