"""A real ``rlp2p serve`` process with quotas and an allow-list, written to from other processes.

A stranger (a node in this test's process) writes blocks until the storage peer refuses with
``QUOTA``; Alice, whose node is allow-listed, publishes past that quota with ``rlp2p publish``
(a process of its own) and Bob syncs all of it with ``rlp2p sync``; the storage peer's metrics,
scraped over HTTP, count the refusal. Every process is stopped by the test, every wait bounded.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import trio

from rlp2p.core.keys import generate_log_key, log_name, save_key
from rlp2p.errors import RemoteError
from rlp2p.p2p.host import parse_peer_addr
from rlp2p.node.node import Node, NodeConfig

RLP2P = [sys.executable, "-m", "rlp2p.cli.main"]
TIMEOUT = 60.0


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONUNBUFFERED"] = "1"
    return e


class Serve:
    def __init__(self, args: list[str], cwd: Path) -> None:
        self.stderr = open(cwd / "serve.stderr", "wb")
        self.proc = subprocess.Popen(
            [*RLP2P, "serve", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr, cwd=cwd, env=env(), text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    async def line(self) -> str:
        try:
            line = await trio.to_thread.run_sync(lambda: self.lines.get(timeout=TIMEOUT))
        except queue.Empty:
            pytest.fail("rlp2p serve printed nothing in time")
        assert line is not None, "rlp2p serve exited early"
        return line

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.pump.join(timeout=10)
        self.stderr.close()
        return self.proc.returncode


async def rlp2p(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess:
    with trio.fail_after(TIMEOUT):
        return await trio.run_process([*RLP2P, *args], stdin=stdin, capture_stdout=True, capture_stderr=True, cwd=cwd, env=env(), check=False)


async def test_a_stranger_stops_at_its_quota_while_an_allow_listed_publisher_publishes(tmp_path):
    (tmp_path / "alice").mkdir()
    alice_node = generate_log_key()
    save_key(tmp_path / "alice" / "node.key", alice_node)  # Alice's node identity, known to the operator
    alice_peer = log_name(alice_node.public_key)
    serve = Serve(
        ["--data", "storage", "--listen", "/ip4/127.0.0.1/tcp/0", "--json",
         "--quota-bytes-per-peer", "64K", "--quota-names-per-peer", "1",
         "--allow", alice_peer, "--metrics", "127.0.0.1:0"],
        tmp_path,
    )
    try:
        addr = await serve.line()
        event = json.loads(await serve.line())
        assert event["event"] == "serving" and event["metrics"].startswith("http://127.0.0.1:")

        # a stranger writes 1 KiB blocks: 64 are stored, the 65th is refused with QUOTA
        stored = 0
        async with Node.open(tmp_path / "stranger", config=NodeConfig(bootstrap=[addr], timeout=10.0)) as stranger:
            peer = parse_peer_addr(addr).peer_id
            with pytest.raises(RemoteError) as refused:
                for i in range(200):
                    async with stranger.cas(peer) as cas:
                        await cas.add_many([i.to_bytes(2, "big") * 512])
                    stored += 1024
        stranger.close_store()
        assert refused.value.code == "QUOTA"
        assert stored == 64 * 1024

        # Alice publishes 100 KB to the same peer: her node is allow-listed
        key = tmp_path / "alice.key"
        name = (await rlp2p("keygen", "--out", str(key), cwd=tmp_path)).stdout.decode().strip()
        lines = b"".join(b"%04d" % i + b"x" * 996 + b"\n" for i in range(100))
        published = await rlp2p("publish", "--key", str(key), "--data", "alice", "--bootstrap", addr, "--replicas", "1", "--json", cwd=tmp_path, stdin=lines)
        assert published.returncode == 0, published.stderr.decode()
        assert json.loads(published.stdout)["messages"] == 100

        synced = await rlp2p("sync", name, "--data", "bob", "--bootstrap", addr, "--json", cwd=tmp_path)
        assert synced.returncode == 0, synced.stderr.decode()
        assert len(synced.stdout.splitlines()) == 100

        def scrape() -> str:
            with urllib.request.urlopen(event["metrics"], timeout=5) as response:
                return response.read().decode()

        text = await trio.to_thread.run_sync(scrape)
        assert 'rlp2p_write_refusals_total{reason="quota_bytes"} 1.0' in text
        assert "rlp2p_names_held 1.0" in text
    finally:
        assert serve.stop() == 0


def test_serve_documents_its_storage_flags_and_refuses_bad_ones(tmp_path):
    shown = subprocess.run([*RLP2P, "serve", "--help"], capture_output=True, text=True, timeout=TIMEOUT, env=env())
    assert shown.returncode == 0
    for flag in ("--admission", "--allow", "--quota-bytes-per-peer", "--quota-names-per-peer", "--quota-bytes-all-peers",
                 "--quota-bytes-per-log", "--write-rate", "--drop-after", "--gc-grace", "--metrics"):
        assert flag in shown.stdout
    base = ["serve", "--data", str(tmp_path / "d"), "--listen", "/ip4/127.0.0.1/tcp/0"]
    for bad in (["--allow", "not-a-peer-id"], ["--metrics", "0.0.0.0:9100"], ["--quota-bytes-per-peer", "lots"]):
        refused = subprocess.run([*RLP2P, *base, *bad], capture_output=True, text=True, timeout=TIMEOUT, env=env())
        assert refused.returncode == 2 and bad[0] in refused.stderr, refused.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was opened


def test_sizes_read_by_serve():
    from rlp2p.cli.main import _amount

    assert [_amount(t) for t in ("0", "10", "64K", "500m", "2G", "1T", "none")] == [0, 10, 64 << 10, 500 << 20, 2 << 30, 1 << 40, None]
