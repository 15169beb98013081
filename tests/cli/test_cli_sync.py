"""Issue 13, problem 1: nothing lost at the terminal.

``rlp2p sync`` writes into a pipe whose reader may quit (``| head -3``) or stop reading while the
user presses Ctrl-C. Before the fix, the batch was acknowledged before it was printed, and the
next sync printed nothing: thousands of messages never shown. Each test here reads the first
output as a user would, then runs sync again and checks that the union of what was read covers
every message, in order, with no gap (a message may be shown twice, never zero times).
"""

from __future__ import annotations

import fcntl
import json
import re
import signal
import struct
import subprocess
import termios
import time

import pytest

from rlp2p.core.keys import generate_log_key, log_name

#: enough JSON lines (about 150 bytes each) to fill a pipe's 64 KiB buffer several times over
MESSAGES = 3000


@pytest.fixture(scope="module")
def published(module_cli, storage_peers: list[str]) -> str:
    """One log of MESSAGES messages on the session's storage peers; its name."""
    key, name = module_cli.keygen()
    stdin = b"".join(f"message {i}\n".encode() for i in range(1, MESSAGES + 1))
    done = module_cli.run("publish", "--key", str(key), "--data", "alice", "--bootstrap", storage_peers[0], "--layout", "paged:256", "--embed", "none", stdin=stdin)
    assert done.returncode == 0, done.describe()
    return name


def _seqs(stdout: bytes) -> list[int]:
    return [json.loads(line)["seq"] for line in stdout.decode().splitlines()]


def _sync_args(name: str, data: str, peers: list[str]) -> list[str]:
    return ["sync", name, "--data", data, "--bootstrap", peers[1], "--json"]


def _assert_rest(cli, name: str, data: str, peers: list[str], seen: list[int]) -> list[int]:
    """The next sync prints from at most one past what was seen, through the end, no gap."""
    rest = cli.run(*_sync_args(name, data, peers))
    assert rest.returncode == 0, rest.describe()
    again = _seqs(rest.stdout.encode())
    assert again, f"the next sync printed nothing after {len(seen)} of {MESSAGES} were seen"
    assert again == list(range(again[0], MESSAGES + 1)), "not consecutive to the end"
    assert seen == list(range(1, len(seen) + 1))
    assert again[0] <= len(seen) + 1, f"messages {len(seen) + 1}..{again[0] - 1} were never shown"
    return again


def test_a_pipe_closed_by_head_loses_nothing_and_ends_quietly(module_cli, storage_peers, published) -> None:
    cli = module_cli
    sync = cli.popen(_sync_args(published, "bob-head", storage_peers), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-3"], stdin=sync.stdout, stdout=subprocess.PIPE)
    assert sync.stdout is not None
    sync.stdout.close()  # head is the only reader of the pipe
    try:
        out, _ = head.communicate(timeout=60)
        _, err = sync.communicate(timeout=60)
    finally:
        for proc in (head, sync):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    # exit 0 as `head` users expect, and not a word on stderr (no BrokenPipeError traceback)
    assert sync.returncode == 0, err.decode()
    assert err == b"", err.decode()
    seen = _seqs(out)
    assert seen == [1, 2, 3]
    again = _assert_rest(cli, published, "bob-head", storage_peers, seen)
    # and the run after that has nothing left to show
    last = cli.run(*_sync_args(published, "bob-head", storage_peers))
    assert last.returncode == 0 and last.stdout == "", last.describe()
    assert again[0] <= 4


def _unread(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0)))[0]


def test_ctrl_c_while_output_is_blocked_loses_nothing(module_cli, storage_peers, published) -> None:
    cli = module_cli
    sync = cli.popen(_sync_args(published, "bob-sigint", storage_peers), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sync.stdout is not None and sync.stderr is not None
    try:
        # a user reads a thousand lines, then stops reading (a pager left waiting)
        seen = [json.loads(sync.stdout.readline())["seq"] for _ in range(1000)]
        # the sync fills the pipe and blocks on its next write: wait until the pipe is full
        deadline = time.monotonic() + 60
        full = 0
        while time.monotonic() < deadline:
            full = _unread(sync.stdout.fileno())
            if full >= 60_000 or sync.poll() is not None:
                break
            time.sleep(0.05)
        assert sync.poll() is None, "the sync ended without ever blocking on output"
        assert full >= 60_000, f"the pipe never filled ({full} bytes)"
        time.sleep(0.2)
        sync.send_signal(signal.SIGINT)
        status = sync.wait(timeout=30)
        err = sync.stderr.read()
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait(10)
    assert status == 130, err.decode()
    assert b"Traceback" not in err, err.decode()
    # what sat unread in the pipe was never shown: it comes again in the next run
    again = _assert_rest(cli, published, "bob-sigint", storage_peers, seen)
    assert again[0] > 1, "the progress that was shown was not kept"


def test_a_log_nobody_published_is_said_plainly(cli, storage_peers) -> None:
    unknown = log_name(generate_log_key().public_key)
    done = cli.run("sync", unknown, "--data", "dave", "--bootstrap", storage_peers[0], "--timeout", "3")
    done.clean_failure(1, unknown, "never published")
    assert "{" not in done.stderr, done.describe()  # not a dict of per-peer errors
    assert len(done.stderr.strip().splitlines()) == 1, done.describe()


def test_the_progress_bar_moves_per_batch_on_a_terminal_and_is_off_otherwise(module_cli, storage_peers, published) -> None:
    import os
    import pty

    cli = module_cli
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size
    try:
        sync = cli.popen(_sync_args(published, "bob-tty", storage_peers)[:-1], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        follower = -1
        chunks = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert sync.wait(timeout=30) == 0
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    screen = b"".join(chunks).decode("utf-8", "replace")
    counts = {int(m) for m in re.findall(r"syncing:.*?\| ?(\d+)/3000", screen)}
    # it moves with each delivered batch (during a page walk the reader delivers nothing yet)
    assert len(counts) >= 2 and max(counts) == MESSAGES, repr(screen[-3000:])
    # without a terminal (the other tests), stderr holds no bar: checked by their empty stderr
