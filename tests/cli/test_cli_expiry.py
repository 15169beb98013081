"""``rlp2p sync`` 60 days after the last publish, as separate OS processes under a moved clock.

Alice publishes at the real clock; the storage peer is then restarted, and Bob syncs, under
libfaketime's ``+60d`` (monotonic time is moved too: ``FAKETIME_DONT_FAKE_MONOTONIC`` would make
Python's ``time.sleep`` raise EINVAL). Nothing depends on the calendar: every clock is the real
one or the real one moved. Every process the test starts, it stops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RLP2P = [sys.executable, "-m", "rlp2p.cli.main"]
LATER = ["faketime", "-f", "+60d"]
#: bound on one short-lived command, and on a storage peer printing its address or stopping
TIMEOUT = 60.0
SERVE_ADDR = re.compile(r"/ip4/127\.0\.0\.1/tcp/\d+/p2p/12D3KooW[1-9A-HJ-NP-Za-km-z]+")

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None, reason="needs libfaketime's faketime")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("FAKETIME_DONT_FAKE_MONOTONIC", None)
    return env


def run(args: list[str], cwd: Path, *, stdin: bytes = b"", prefix: list[str] = ()) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*prefix, *RLP2P, *args], input=stdin.decode(), capture_output=True, text=True, cwd=cwd, env=_env(),
        timeout=TIMEOUT,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


class Serve:
    """``rlp2p serve`` in its own process group (faketime does not forward signals to its child)."""

    def __init__(self, tmp: Path, prefix: list[str] = ()) -> None:
        self.proc = subprocess.Popen(
            [*prefix, *RLP2P, "serve", "--data", str(tmp / "storage"), "--listen", "/ip4/127.0.0.1/tcp/0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp, env=_env(),
            text=True, start_new_session=True,
        )

    def addr(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # bounded: the test's own timeout kills us otherwise
        assert SERVE_ADDR.fullmatch(line), f"not an address: {line!r}"
        return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def serves() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    try:
        yield started
    finally:
        for serve in started:
            serve.stop()


def test_sync_60_days_later_warns_and_summarises_and_require_fresh_refuses(tmp_path: Path, serves: list[Serve]) -> None:
    first = Serve(tmp_path)
    serves.append(first)
    addr = first.addr()
    name = run(["keygen", "--out", str(tmp_path / "alice.key")], tmp_path).stdout.strip()
    published = run(
        ["publish", "--key", str(tmp_path / "alice.key"), "--data", str(tmp_path / "alice"), "--bootstrap", addr,
         "--replicas", "1"],
        tmp_path, stdin=b"before the holiday\nsee you\n",
    )
    assert published.returncode == 0, published.stderr
    first.stop()

    # 60 days later the storage peer comes back from its data folder (same identity, new port)
    later = Serve(tmp_path, LATER)
    serves.append(later)
    addr = later.addr()

    synced = run(["sync", name, "--data", str(tmp_path / "bob"), "--bootstrap", addr, "--json"], tmp_path, prefix=LATER)
    assert synced.returncode == 0, synced.stderr
    bodies = [json.loads(line)["body"] for line in synced.stdout.splitlines()]
    assert bodies == ["YmVmb3JlIHRoZSBob2xpZGF5", "c2VlIHlvdQ=="]  # base64 of the two lines, stdout unchanged
    lines = synced.stderr.strip().splitlines()
    warning = [line for line in lines if line.startswith("warning: ")]
    assert len(warning) == 1, synced.stderr
    assert re.fullmatch(
        rf"warning: the newest record of {name} expired at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(5[23] days ago\); "
        r"newer messages may exist that no storage peer has",
        warning[0],
    ), warning[0]
    summary = json.loads(lines[-1])["summary"]
    assert summary["record_seq"] == 1 and summary["delivered"] == 2 and not summary["up_to_date"]
    assert summary["expired_at"] in warning[0]

    # a poll in human mode: nothing new, the same warning, no JSON
    poll = run(["sync", name, "--data", str(tmp_path / "bob"), "--bootstrap", addr], tmp_path, prefix=LATER)
    assert poll.returncode == 0 and poll.stdout == "", poll.stderr
    assert warning[0] in poll.stderr.splitlines() and "up to date" in poll.stderr
    assert "summary" not in poll.stderr

    # strict: the same log is refused, as before
    strict = run(
        ["sync", name, "--data", str(tmp_path / "carol"), "--bootstrap", addr, "--require-fresh"], tmp_path, prefix=LATER
    )
    assert strict.returncode == 1 and strict.stdout == "", strict.stderr
    assert "rlp2p: error:" in strict.stderr and "ExpiredRecord" in strict.stderr
