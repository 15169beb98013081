"""A publish to storage peers that run in their own processes: ``python -m bench.publish_procs``.

The bench's sections host Alice and every storage peer in one Python process, so a publish's time
there includes the replicas' CPU on the same trio loop. This script starts three ``rlp2p serve``
processes on 127.0.0.1 (the first is the others' bootstrap), publishes a log of 64 messages from
an in-process Alice, then appends and publishes one message at a time, uploading once and to each
replica; beside each publish it times one round trip on an open libp2p ping stream
(``/ipfs/ping/1.0.0``, 32 bytes, served by every py-libp2p host) to the first storage peer. It
prints the medians and their ratio (the bench's ``publish_ms_over_rtt``, measured this way).
Not part of the suite or of ``python -m bench``: a long run whose figures go in a note.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from libp2p.custom_types import TProtocol

from bench.probes import EchoStream
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.node.node import Node, NodeConfig
from rlp2p.p2p.host import parse_peer_addr

PING = TProtocol("/ipfs/ping/1.0.0")
#: seconds a storage process may take to stop
STOP_TIMEOUT = 30.0
#: seconds between publishes (the replicas' background work settles)
SETTLE = 0.2


class Storage:
    """One ``rlp2p serve`` process; its first stdout line is its address."""

    def __init__(self, data: Path, bootstrap: list[str]) -> None:
        args = [sys.executable, "-m", "rlp2p.cli.main", "serve", "--data", str(data), "--listen", "/ip4/127.0.0.1/tcp/0"]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addr = ""

    def address(self) -> str:
        assert self.proc.stdout is not None
        self.addr = self.proc.stdout.readline().strip()  # its first line, or "" once it exited
        if not self.addr:
            raise RuntimeError(f"rlp2p serve exited ({self.proc.poll()}) without an address")
        return self.addr

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


async def measure(root: Path, upload: str, publishes: int) -> tuple[float, float]:
    """Median ms of a one-message publish to the 3 processes, and of a ping round trip."""
    first = Storage(root / f"{upload}-s0", [])
    storage = [first]
    try:
        first.address()
        storage += [Storage(root / f"{upload}-s{i}", [first.addr]) for i in (1, 2)]
        peers = [parse_peer_addr(s.addr or s.address()).peer_id for s in storage]
        async with trio.open_nursery() as nursery:
            alice = Node.open(root / f"{upload}-alice", config=NodeConfig(bootstrap=(first.addr,)))
            await alice.start(nursery)
            publisher = alice.publisher(
                generate_log_key(), mode=LogMode.paged(64, embed=0), replicas=3, replica_peers=peers, upload=upload
            )
            await publisher.append([bytes(256) for _ in range(64)])
            await publisher.publish()
            ping = EchoStream(await alice.host.new_stream(peers[0], [PING]))
            publish_s: list[float] = []
            rtt_s: list[float] = []
            for i in range(publishes):
                await trio.sleep(SETTLE)
                rtt_s.append(await ping.ping())
                start = time.perf_counter()
                await publisher.append([i.to_bytes(4, "big") * 64])
                report = await publisher.publish()
                publish_s.append(time.perf_counter() - start)
                if len(report.stored_on) < 3:
                    raise RuntimeError(f"stored on {len(report.stored_on)} of 3")
            await ping.close()
            await alice.stop()
            nursery.cancel_scope.cancel()
        return statistics.median(publish_s) * 1e3, statistics.median(rtt_s) * 1e3
    finally:
        for s in storage:
            s.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=20, help="one-message publishes per upload mode (default 20)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rlp2p-procs-") as tmp:
        for upload in ("once", "each"):
            publish_ms, rtt_ms = trio.run(measure, Path(tmp), upload, args.publishes)
            print(
                f"upload {upload}: publish one message to 3 storage processes {publish_ms:.1f} ms (median of "
                f"{args.publishes}); open-stream ping {rtt_ms:.2f} ms; {publish_ms / rtt_ms:.1f} x a round trip"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
