"""Crash safety: a writer process killed with SIGKILL at any moment leaves a consistent store.

A real subprocess (crash_writer.py) writes batches of blocks, log messages and deliveries; we kill
it right after it reports a commit (it is then inside the next batch), reopen the store and check
that every reported batch is whole, that no batch is partly there, and that SQLite finds the file
intact. Several rounds on the same folder also check that a killed store resumes correctly.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from rlp2p.store import open_store
from rlp2p.store.sqlite import DB_FILENAME

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL and select on pipes")

WRITER = Path(__file__).with_name("crash_writer.py")
REPO = Path(__file__).resolve().parents[2]
BATCH = 50
#: bounds on the writer, so nothing here can run away
MAX_BATCHES = 10_000
WRITER_SECONDS = 30.0
#: kills in the main crash test, spread over one batch
KILL_ROUNDS = 16
#: how long to wait for any one line from the writer before failing
LINE_TIMEOUT = 15.0


def _load_writer() -> ModuleType:
    # tests are not a package (pytest's importlib mode): load the helper by path
    spec = importlib.util.spec_from_file_location("crash_writer", WRITER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writer = _load_writer()


class Lines:
    """Lines from a pipe, each wait bounded by a deadline (readline() could block forever)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def next(self, timeout: float) -> str | None:
        """The next whole line, or None at end of file (a cut-off last line is dropped)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line from the writer in {timeout} s")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                chunk = os.read(self.fd, 65536)
                self.eof = not chunk
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def start_writer(data_dir: Path, stderr_path: Path) -> subprocess.Popen[bytes]:
    # the rlp2p under test, whether installed or not
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    args = [str(WRITER), str(data_dir), str(BATCH), str(MAX_BATCHES), str(WRITER_SECONDS)]
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO,
            env=env,
        )


def run_and_kill(
    data_dir: Path, stderr_path: Path, *, commits: int | None, delay: float, per_batch: bool = False
) -> int:
    """Run the writer, SIGKILL it; return the highest batch it reported committed (0 if none).

    With ``commits``, kill ``delay`` seconds after the writer reports that many new commits (with
    ``per_batch``, ``delay`` is a fraction of the time one batch took, as seen from here);
    without, kill ``delay`` seconds after starting it, whatever it is doing (even opening).
    """
    proc = start_writer(data_dir, stderr_path)
    assert proc.stdout is not None
    lines = Lines(proc.stdout.fileno())
    committed = 0

    def take(line: str) -> None:
        nonlocal committed
        word, _, number = line.partition(" ")
        if word == "committed":
            committed = max(committed, int(number))

    try:
        try:
            if commits is not None:
                ready = lines.next(LINE_TIMEOUT)
                assert ready and ready.startswith("ready "), (ready, stderr_path.read_text())
                target = int(ready.split()[1]) + commits
                seen: list[float] = []
                for _ in range(MAX_BATCHES):
                    line = lines.next(LINE_TIMEOUT)
                    assert line is not None, f"the writer stopped early: {stderr_path.read_text()}"
                    seen.append(time.monotonic())
                    take(line)
                    if committed >= target:
                        break
                if per_batch and len(seen) >= 2:
                    delay *= seen[-1] - seen[-2]
            if delay:
                time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        finally:
            # reaped whatever happened above
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        # whatever it printed before it died counts as reported
        for _ in range(MAX_BATCHES):
            line = lines.next(LINE_TIMEOUT)
            if line is None:
                break
            take(line)
    finally:
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the writer ended itself: {stderr_path.read_text()}"
    return committed


def check_store(data_dir: Path, committed: int) -> tuple[int, int, int]:
    """Reopen and check consistency; return how many batches of blocks, messages, deliveries."""
    with open_store(data_dir) as store:
        count, total = store.block_stats()
        length = store.log_length(writer.LOG)
        state = store.get_reader_state(writer.LOG)
        entries = store.log_entries(writer.LOG)
        inbox = store.delivered(writer.LOG)

        # no call is partly there: each count is whole batches
        assert count % BATCH == 0 and length % BATCH == 0 and state.delivered_seq % BATCH == 0
        assert total == count * writer.BLOCK_BYTES
        assert [seq for seq, _ in entries] == list(range(1, length + 1))
        assert [seq for seq, _, _ in inbox] == list(range(1, state.delivered_seq + 1))
        blocks, messages, delivered = count // BATCH, length // BATCH, state.delivered_seq // BATCH

        # every reported batch is there; beyond it, only the batch the kill interrupted began
        assert committed <= delivered <= messages <= blocks <= delivered + 1
        assert delivered <= committed + 1

        # and holds exactly what was written
        expected_blocks = dict(
            writer.block(b, i) for b in range(1, blocks + 1) for i in range(BATCH)
        )
        assert store.get_blocks(expected_blocks) == expected_blocks
        assert [data for _, data in entries] == [
            writer.message(b, i) for b in range(1, messages + 1) for i in range(BATCH)
        ]
        assert [(mid, data) for _, mid, data in inbox] == [
            (writer.message_id(b, i), writer.message(b, i))
            for b in range(1, delivered + 1)
            for i in range(BATCH)
        ]

    conn = sqlite3.connect(data_dir / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    return blocks, messages, delivered


@pytest.mark.long
def test_killed_mid_batch_reopens_consistent(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    committed = 0
    # the writer starts the next batch the moment it prints; delays of 0, 1/16, 2/16... of a
    # batch's time move the kill across that batch (building it, writing pages, the fsync at
    # each commit, between two calls). Where it lands is not asserted: every outcome must pass.
    for round_number in range(KILL_ROUNDS):
        stderr = tmp_path / f"stderr-{round_number}.txt"
        fraction = round_number / KILL_ROUNDS
        reported = run_and_kill(data_dir, stderr, commits=3, delay=fraction, per_batch=True)
        assert reported >= committed + 3
        committed = reported
        check_store(data_dir, committed)

    # the store that survived all that still takes writes where it stopped
    with open_store(data_dir) as store:
        next_batch = store.get_reader_state(writer.LOG).delivered_seq // BATCH + 1
        writer.run_batch(store, next_batch, BATCH)
    blocks, messages, delivered = check_store(data_dir, next_batch)
    assert blocks == messages == delivered == next_batch


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.1, 0.2])
def test_killed_at_any_moment_from_start(tmp_path: Path, delay: float) -> None:
    # a kill while the interpreter starts, the schema is created or the first batches are written
    data_dir = tmp_path / "node"
    committed = run_and_kill(data_dir, tmp_path / "stderr.txt", commits=None, delay=delay)
    check_store(data_dir, committed)  # (an empty new store if it died before creating one)
    # whatever state it was left in, a new run opens it and goes on
    again = run_and_kill(data_dir, tmp_path / "stderr2.txt", commits=2, delay=0.0)
    committed = max(committed, again)
    check_store(data_dir, committed)
