"""A real ``rlp2p serve`` process and a hostile client in the test process.

The client is its own py-libp2p host speaking the project's protobufs and framing; the server's
memory is read from /proc/<pid>/status (VmRSS) while it is attacked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.network.config import ConnectionConfig
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from rlp2p.core.address import address_of
from rlp2p.store import open_store
from rlp2p.wire.cas import CAS_PROTOCOL, CasClient
from rlp2p.wire.rpc import RpcStream
from rlp2p.limits import DEFAULT_LIMITS

MiB = 1024 * 1024
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def rss_bytes(pid: int) -> int:
    """The process's resident set size (VmRSS) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def seed_blocks(data_dir: Path, blocks: Sequence[bytes]) -> list[bytes]:
    """Store blocks in a storage peer's data folder before it starts; returns their addresses."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(data_dir)
    try:
        items = [(address_of(b), b) for b in blocks]
        store.put_blocks(items)
    finally:
        store.close()
    return [a for a, _ in items]


class ServeProcess:
    """``rlp2p serve`` on 127.0.0.1 in its own process group; stop() ends it."""

    def __init__(self, data_dir: Path, extra: Sequence[str] = ()) -> None:
        self.stderr_path = data_dir.parent / f"{data_dir.name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rlp2p.cli.main", "serve", "--data", str(data_dir), "--listen", "/ip4/127.0.0.1/tcp/0", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
            start_new_session=True,
        )
        self.addr = ""

    async def start(self) -> None:
        assert self.proc.stdout is not None
        with trio.fail_after(START_TIMEOUT):
            line = await trio.to_thread.run_sync(self.proc.stdout.readline)
        if not line.startswith("/ip4/"):
            self.stop()
            raise AssertionError(f"serve did not start: {line!r}\n{self.stderr()}")
        self.addr = line.strip()

    @property
    def peer(self) -> PeerInfo:
        return info_from_p2p_addr(multiaddr.Multiaddr(self.addr))

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text("utf-8", "replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        return self.proc.returncode


@asynccontextmanager
async def serve(data_dir: Path, extra: Sequence[str] = ()) -> AsyncIterator[ServeProcess]:
    proc = ServeProcess(data_dir, extra)
    try:
        await proc.start()
        yield proc
    finally:
        proc.stop()


@asynccontextmanager
async def client_host(key_pair: Any = None) -> AsyncIterator[IHost]:
    """A plain py-libp2p host on 127.0.0.1 (not rlp2p's make_host: the attacker is a stranger)."""
    config = ConnectionConfig(max_connections_per_peer=1, min_connections=0, low_watermark=0)
    host = new_host(key_pair=key_pair or create_new_key_pair(), connection_config=config)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        try:
            yield host
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await host.get_network().close()


class RssWatch:
    """Samples a process's RSS in the background; ``growth`` is the peak over the baseline."""

    def __init__(self, proc: ServeProcess, interval: float = 0.02) -> None:
        self.proc = proc
        self.interval = interval
        self.baseline = proc.rss()
        self.peak = self.baseline

    async def run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self.proc.rss())
            except (OSError, AssertionError):
                return
            await trio.sleep(self.interval)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def legit_get(host: IHost, proc: ServeProcess, addresses: Sequence[bytes], timeout: float = 20.0) -> dict[bytes, bytes]:
    """A well-behaved reader's pipelined Gets on a new stream; every block verified."""
    with trio.fail_after(timeout):
        await host.connect(proc.peer)
        stream = await host.new_stream(proc.peer.peer_id, [CAS_PROTOCOL])
        rpc = RpcStream(stream, DEFAULT_LIMITS, timeout=timeout)
        try:
            results = await CasClient(rpc).get_many(list(addresses))
        finally:
            await rpc.aclose()
    out = {}
    for address, result in results.items():
        assert isinstance(result, bytes), f"legitimate read refused: {result!r}"
        out[address] = result
    return out


RLP2P = [sys.executable, "-m", "rlp2p.cli.main"]


async def _run(args: Sequence[str], stdin: bytes = b"", timeout: float = 60.0) -> str:
    with trio.fail_after(timeout):
        done = await trio.run_process(
            [*RLP2P, *args], stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
        )
    out = done.stdout.decode()
    assert done.returncode == 0, f"rlp2p {' '.join(args)} -> {done.returncode}\n{out}\n{done.stderr.decode()}"
    return out


async def publish_log(tmp: Path, addr: str, bodies: Sequence[bytes]) -> str:
    """Alice publishes ``bodies`` to the one storage peer at ``addr`` (rlp2p publish); the log's name."""
    key = tmp / "alice.key"
    name = (await _run(["keygen", "--out", str(key)])).strip()
    await _run(
        ["publish", "--key", str(key), "--data", str(tmp / "alice"), "--bootstrap", addr, "--replicas", "1", "--quorum", "1"],
        stdin=b"".join(b + b"\n" for b in bodies),
    )
    return name


async def sync_log(data: Path, addr: str, name: str) -> list[bytes]:
    """A reader syncs the log from the storage peer (rlp2p sync --json); the bodies it got."""
    import base64
    import json

    out = await _run(["sync", name, "--data", str(data), "--bootstrap", addr, "--json"])
    bodies = []
    for line in out.splitlines():
        event = json.loads(line)
        if "body" in event:
            bodies.append(base64.b64decode(event["body"]))
    return bodies
