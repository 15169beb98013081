"""Issue 10's stuck publisher, with real processes: ``rlp2p serve`` storage peers SIGKILLed between
publishes and restarted from their data folders; every ``rlp2p publish`` is a process of its own.

Before the fix, a failed publish left records with sequence S on the replicas that took them, the
next attempt signed another record with the same S, those replicas answered STALE, and every later
publish failed. Every process a test starts is stopped by that test; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rlp2p.core.keys import generate_log_key, log_name, save_key

pytestmark = pytest.mark.long

RLP2P = [sys.executable, "-m", "rlp2p.cli.main"]
TIMEOUT = 60.0
ADDR = re.compile(r"/ip4/127\.0\.0\.1/tcp/\d+/p2p/12D3KooW\w+")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Storage:
    """``rlp2p serve`` on a fixed port, so a restart from the same folder has the same address."""

    def __init__(self, tmp: Path, name: str, bootstrap: Sequence[str]) -> None:
        self.tmp, self.name, self.bootstrap = tmp, name, list(bootstrap)
        self.port = _free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.addr = ""

    def start(self) -> str:
        args = ["serve", "--data", str(self.tmp / self.name), "--listen", f"/ip4/127.0.0.1/tcp/{self.port}"]
        for addr in self.bootstrap:
            args += ["--bootstrap", addr]
        err = open(self.tmp / f"{self.name}.stderr", "ab")
        self.proc = subprocess.Popen(
            [*RLP2P, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd=self.tmp, env=_env(), text=True
        )
        err.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # the address line; serve flushes it at once
        assert ADDR.fullmatch(line), f"{self.name}: {line!r}"
        self.addr = line
        return line

    def kill(self) -> None:
        """SIGKILL: no chance to close anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=TIMEOUT)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[list[Storage]]:
    peers: list[Storage] = []
    try:
        yield peers
    finally:
        for peer in peers:
            peer.kill()


def rlp2p(tmp: Path, args: Sequence[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*RLP2P, *args], input=stdin, capture_output=True, cwd=tmp, env=_env(), timeout=TIMEOUT)


def publish(tmp: Path, key: Path, peers: list[Storage], lines: Sequence[bytes]) -> subprocess.CompletedProcess[bytes]:
    # every replica must store it: a replica that misses a publish fails it
    args = ["publish", "--key", str(key), "--data", str(tmp / "alice"), "--json", "--replicas", "3", "--quorum", "3"]
    args += ["--layout", "paged:4", "--embed", "none", "--timeout", "5"]
    for peer in peers:
        args += ["--bootstrap", peer.addr]
    return rlp2p(tmp, args, b"".join(line + b"\n" for line in lines))


def test_publishes_recover_after_storage_peers_were_killed_around_them(tmp_path: Path, storage: list[Storage]) -> None:
    a = Storage(tmp_path, "a", [])
    storage.append(a)
    a.start()
    b, c = Storage(tmp_path, "b", [a.addr]), Storage(tmp_path, "c", [a.addr])
    storage += [b, c]
    b.start()
    c.start()
    key, log_key = tmp_path / "alice.key", generate_log_key()
    save_key(key, log_key)
    name = log_name(log_key.public_key)
    first = publish(tmp_path, key, storage, [b"m1", b"m2", b"m3"])
    assert first.returncode == 0, first.stderr.decode()
    assert json.loads(first.stdout)["sequence"] == 1

    # C dies: A and B take the next record (C is still a candidate, as a provider of the log) and
    # the publish fails
    c.kill()
    failed = publish(tmp_path, key, storage, [b"m4", b"m5"])
    assert failed.returncode == 1 and b"stored on 2 of the 3" in failed.stderr, failed.stderr.decode()
    # C is back: before the fix, A and B answered STALE to a second record with the same
    # sequence, here and at every later publish
    c.start()
    for lines in ([b"m6"], []):  # and a refresh, with nothing new
        ok = publish(tmp_path, key, storage, lines)
        assert ok.returncode == 0, ok.stderr.decode()
        assert len(json.loads(ok.stdout)["stored_on"]) == 3

    # every message, through C (which missed the failed attempt)
    for via in (c,):
        sync = rlp2p(tmp_path, ["sync", name, "--data", str(tmp_path / f"bob-{via.name}"), "--bootstrap", via.addr, "--json"])
        assert sync.returncode == 0, sync.stderr.decode()
        seqs = [json.loads(line)["seq"] for line in sync.stdout.splitlines()]
        assert seqs == list(range(1, 7))
