"""One reader sync in a process of its own, so its peak RSS is the reader's alone (scale section).

``python -m bench.scale_reader DATA NAME PEER_MULTIADDR`` opens a reader node on ``DATA``
(a fresh folder, or one a previous run synced), syncs ``NAME`` from the storage peer at
``PEER_MULTIADDR`` alone, and prints one JSON line: the sync's seconds, bytes and counts, and the
process's resident set at the start (node up, before the sync) and its peak during the sync.
The peak is the kernel's high-water mark (``VmHWM``), reset just before the sync where Linux
allows it (``/proc/self/clear_refs``), so it measures the sync, not the imports.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import trio


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_kib() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def sync_once(data: Path, name: str, peer: str, timeout: float) -> dict[str, object]:
    from bench.common import peer_info
    from rlp2p import Node, NodeConfig, quiet_libp2p_logs

    quiet_libp2p_logs(logging.CRITICAL)
    info = peer_info(peer)
    async with Node.open(data, config=NodeConfig(timeout=timeout)) as node:
        node.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
        reader = node.reader(storage_peers=[info.peer_id])
        start_kib = _status_kib("VmRSS") or 0
        reset = _reset_peak()
        started, cpu = time.perf_counter(), time.process_time()
        report = await reader.sync(name)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        peak_kib = _peak_kib()
    node.close_store()
    return {
        "seconds": seconds,
        # this process's CPU (its threads included): a busy machine changes it less than seconds
        "cpu_seconds": cpu,
        "new_messages": report.new_messages,
        "last_seq": report.last_seq,
        "bytes_in": report.bytes_in,
        "bytes_out": report.bytes_out,
        "round_trips": report.round_trips,
        "pages": report.pages,
        "blocks": report.blocks,
        "rss_start_kib": start_kib,
        "rss_peak_kib": peak_kib,
        "peak_reset": reset,
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: python -m bench.scale_reader DATA NAME PEER_MULTIADDR [TIMEOUT]", file=sys.stderr)
        return 2
    timeout = float(argv[3]) if len(argv) == 4 else 60.0
    result = trio.run(sync_once, Path(argv[0]), argv[1], argv[2], timeout)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
