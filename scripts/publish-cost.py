"""Time appending and publishing one message onto a log of N messages (issue 8, item 3).

    .venv/bin/python scripts/publish-cost.py [N ...]     (default: 1000 100000)

A LocalSwarm on 127.0.0.1 with 3 storage peers, named as the replicas (so no DHT lookup, whose
time on a loaded machine would hide what is measured); Alice's log is laid out in pages of 64 with every
message embedded (the publisher's default). For each N: a log of N messages of 256 bytes is
appended and published once (set-up, not timed), then REPS times one more message is appended and
published; prints the median ms, the bytes sent to the replicas and the rows read from the local
log, and each N's time as a ratio to the first N's (same run, same machine).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

import logging

import rlp2p
from rlp2p.core.keys import generate_log_key
from rlp2p.p2p.host import parse_peer_addr, quiet_libp2p_logs
from rlp2p.node.swarm import LocalSwarm

REPS = 7


async def one_n(n: int, root: Path) -> dict[str, float]:
    rng = random.Random(n)
    async with trio.open_nursery() as nursery:
        swarm = LocalSwarm(root, nursery, timeout=60.0)
        storage = await swarm.add_storage(3)
        alice = await swarm.start_node("alice")
        for node in storage:
            info = parse_peer_addr(node.addrs[0])
            alice.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
        publisher = alice.publisher(generate_log_key(), replica_peers=[n.peer_id for n in storage])
        for start in range(0, n, 10_000):
            await publisher.append([rng.randbytes(256) for _ in range(min(10_000, n - start))])
        await publisher.publish()
        read = [0]
        log_entries = alice.store.log_entries

        def counting(*args, **kwargs):
            rows = log_entries(*args, **kwargs)
            read[0] += len(rows)
            return rows

        alice.store.log_entries = counting
        times, sent, rows = [], [], []
        for _ in range(REPS):
            await trio.sleep(0.2)
            read[0] = 0
            t0 = time.perf_counter()
            await publisher.append([rng.randbytes(256)])
            report = await publisher.publish()
            times.append((time.perf_counter() - t0) * 1e3)
            sent.append(report.bytes_sent)
            rows.append(read[0])
        await swarm.close()
        nursery.cancel_scope.cancel()
    return {"ms": statistics.median(times), "min": min(times), "bytes": statistics.median(sent), "rows": statistics.median(rows)}


def main() -> None:
    quiet_libp2p_logs(logging.CRITICAL)
    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 100_000]
    print(f"rlp2p from {Path(rlp2p.__file__).parent}")
    base = None
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            r = trio.run(one_n, n, Path(tmp))
        base = base or r["ms"]
        print(
            f"N={n:>9,}  append+publish one message: median {r['ms']:8.1f} ms (x{r['ms'] / base:.2f} of N={sizes[0]:,}),"
            f" min {r['min']:7.1f} ms"
            f"  bytes sent {int(r['bytes']):>9,}  local rows read {int(r['rows']):>9,}",
            flush=True,
        )


if __name__ == "__main__":
    main()
