"""The printed cursor over a real pipe: what counts as shown (rlp2p/cli/output.py)."""

from __future__ import annotations

import os

import pytest
import trio

from rlp2p.cli import output
from rlp2p.cli.output import Output, OutputClosed


def _line(seq: int) -> bytes:
    return f"message {seq:04d}\n".encode()  # 13 bytes


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


async def test_a_line_still_in_the_pipe_is_not_shown(pipe) -> None:
    read_fd, write_fd = pipe
    out = Output(write_fd)
    assert out.is_pipe
    for seq in range(1, 6):
        await out.write_line(seq, _line(seq))
    assert out.shown_seq == 0  # all five sit in the pipe
    os.read(read_fd, 2 * 13)  # the reader takes two lines...
    await out.write_line(6, _line(6))
    assert out.shown_seq == 0  # ...but has not come back for more: not yet dealt with
    os.read(read_fd, 13)  # it reads on: the first two were dealt with
    await out.write_line(7, _line(7))
    assert out.shown_seq == 2
    await out.aclose()


async def test_a_broken_pipe_counts_the_last_read_as_unseen(pipe) -> None:
    read_fd, write_fd = pipe
    out = Output(write_fd)
    for seq in range(1, 4):
        await out.write_line(seq, _line(seq))
    os.read(read_fd, 13)
    await out.write_line(4, _line(4))
    os.read(read_fd, 2 * 13)  # like head: reads two more lines, prints some, quits
    await out.write_line(5, _line(5))
    os.close(read_fd)
    with pytest.raises(OutputClosed):
        await out.write_line(6, _line(6))
    assert await out.finish() == 1  # the last read (lines 2 and 3) may never have been shown
    await out.aclose()


async def test_at_the_end_a_reader_still_there_after_taking_everything_saw_it(pipe, monkeypatch) -> None:
    read_fd, write_fd = pipe
    monkeypatch.setattr(output, "QUIT_GRACE", 0.01)
    out = Output(write_fd)
    for seq in range(1, 4):
        await out.write_line(seq, _line(seq))

    async def reader() -> None:
        await trio.sleep(0.05)
        os.read(read_fd, 3 * 13)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        assert await out.finish() == 3
    await out.aclose()


async def test_interrupted_with_lines_in_the_pipe_keeps_them_unseen(pipe) -> None:
    read_fd, write_fd = pipe
    out = Output(write_fd)
    for seq in range(1, 4):
        await out.write_line(seq, _line(seq))
    os.read(read_fd, 13)
    await out.write_line(4, _line(4))
    os.read(read_fd, 13)
    assert await out.finish(interrupted=True) == 1
    await out.aclose()


async def test_a_write_blocked_on_a_full_pipe_can_be_cancelled(pipe) -> None:
    read_fd, write_fd = pipe
    out = Output(write_fd)
    seq = 0
    with trio.move_on_after(1) as scope:
        while True:  # nobody reads: the pipe fills and the write blocks, without blocking trio
            seq += 1
            await out.write_line(seq, _line(seq))
    assert scope.cancelled_caught and seq > 1000
    assert out.shown_seq == 0
    await out.aclose()
    assert os.get_blocking(write_fd)  # the descriptor is left as it was found


async def test_a_file_is_shown_once_written(tmp_path) -> None:
    with open(tmp_path / "out", "wb") as f:
        out = Output(f.fileno())
        assert not out.is_pipe
        await out.write_line(1, _line(1))
        await out.write_line(2, _line(2))
        assert out.shown_seq == 2 and await out.finish() == 2
    assert (tmp_path / "out").read_bytes() == _line(1) + _line(2)
