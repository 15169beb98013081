"""Section 7: what a log's size costs. For each N of ``scale_sizes`` (the first is the baseline):

- publish one more: Alice appends 1 message to her log of N and publishes it (ms, bytes sent);
- fresh reader: a new reader, in an OS process of its own (``bench.scale_reader``), syncs
  the whole log (seconds, and its peak resident set above its start, so the figure is the
  reader's alone and not this process's);
- caught up: the same reader, after Alice published 1 more, syncs again (ms, bytes in + out).

Each figure is printed beside the same figure at the first N as a ratio: O(what changed) means
the publish and caught-up ratios stay near 1 whatever N, and the fresh reader's time grows
linearly while its memory does not.

Set-up: the log of N is appended in batches of ``APPEND_BATCH`` and published once (not
measured) in the publisher's default mode, to one named storage peer (replicas = 1), so the
figures are the protocol's own and the run stays short.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import trio

from bench.common import REPO_ROOT, TIMESTAMP, Context, bodies, know_peers, mode_label
from bench.measure import ratio, table
from rlp2p import generate_log_key

#: messages appended to the local log in one call while building a log of N
APPEND_BATCH = 10_000
#: seconds a reader process may take for one sync of the largest log, beyond the linear guess
READER_TIMEOUT = 1800.0


async def _reader_process(data: Path, name: str, peer: str, timeout: float) -> dict[str, Any]:
    """Run one sync in a child process; returns what it printed (see scale_reader)."""
    cmd = [sys.executable, "-m", "bench.scale_reader", str(data), name, peer, str(timeout)]
    with trio.fail_after(READER_TIMEOUT):
        # cwd: bench/ is imported from the checkout, not installed
        done = await trio.run_process(cmd, cwd=REPO_ROOT, capture_stdout=True, capture_stderr=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise RuntimeError(f"the reader process exited {done.returncode}: {' | '.join(tail)}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


async def _one_size(ctx: Context, n: int, index: int) -> dict[str, Any]:
    cfg = ctx.config
    storage = ctx.storage[0]
    alice = await ctx.start_node("scale-alice")
    try:
        know_peers(alice, [storage])
        publisher = alice.publisher(generate_log_key(), replicas=1, write_quorum=1, replica_peers=[storage.peer_id])
        ctx.say(f"scale: building a log of {n:,}")
        built = time.perf_counter()
        for start in range(0, n, APPEND_BATCH):
            count = min(APPEND_BATCH, n - start)
            await publisher.append(bodies(count, cfg.body_bytes, seed=index * 1_000_003 + start), timestamp=TIMESTAMP)
        await publisher.publish()
        build_seconds = time.perf_counter() - built
        await trio.sleep(cfg.settle_seconds)

        ctx.say(f"scale: publish one more onto {n:,}")
        await publisher.append(bodies(1, cfg.body_bytes, seed=-1 - index), timestamp=TIMESTAMP)
        started = time.perf_counter()
        one = await publisher.publish()
        publish_ms = (time.perf_counter() - started) * 1e3
        await trio.sleep(cfg.settle_seconds)

        ctx.say(f"scale: a fresh reader syncs {n + 1:,} (own process)")
        data = ctx.swarm.root / f"scale-bob-{index}"
        peer = storage.addrs[0]
        fresh = await _reader_process(data, publisher.name, peer, cfg.node_timeout)
        if (fresh["new_messages"], fresh["last_seq"]) != (n + 1, n + 1):
            raise RuntimeError(f"the fresh reader got {fresh['new_messages']} of {n + 1} messages")

        await publisher.append(bodies(1, cfg.body_bytes, seed=-1_000_000 - index), timestamp=TIMESTAMP)
        await publisher.publish()
        await trio.sleep(cfg.settle_seconds)
        ctx.say(f"scale: the caught-up reader syncs 1 new onto {n + 1:,}")
        caught = await _reader_process(data, publisher.name, peer, cfg.node_timeout)
        if (caught["new_messages"], caught["last_seq"]) != (1, n + 2):
            raise RuntimeError(f"the caught-up reader got {caught['new_messages']} messages, not 1")
    finally:
        await ctx.stop_node(alice)
    return {
        "n": n,
        "mode": mode_label(publisher.mode),
        "build_seconds": round(build_seconds, 2),
        "publish_one_ms": round(publish_ms, 1),
        "publish_one_bytes": one.bytes_sent,
        "fresh_sync_seconds": round(fresh["seconds"], 3),
        "fresh_cpu_seconds": round(fresh["cpu_seconds"], 3),
        "fresh_rss_above_start_mib": round((fresh["rss_peak_kib"] - fresh["rss_start_kib"]) / 1024, 1),
        "fresh_rss_start_mib": round(fresh["rss_start_kib"] / 1024, 1),
        "fresh_bytes_in": fresh["bytes_in"],
        "fresh_round_trips": fresh["round_trips"],
        "caught_up_ms": round(caught["seconds"] * 1e3, 1),
        "caught_up_bytes": caught["bytes_in"] + caught["bytes_out"],
        "peak_reset": bool(fresh["peak_reset"]),
    }


#: figures given as a ratio to the first N's
COMPARED = ("publish_one_ms", "publish_one_bytes", "fresh_sync_seconds", "fresh_cpu_seconds", "fresh_rss_above_start_mib", "caught_up_ms", "caught_up_bytes")


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    if not cfg.scale_sizes:
        return {"status": "skipped", "reason": "off in --quick (run `python -m bench --only scale`)"}
    rows: list[dict[str, Any]] = []
    for index, n in enumerate(cfg.scale_sizes):
        row = await _one_size(ctx, n, index)
        base = rows[0] if rows else row
        for key in COMPARED:
            row[f"{key}_ratio"] = ratio(row[key], base[key])
        # sync time per message, against the first N's: linear in N means a ratio near 1
        row["fresh_seconds_per_message_ratio"] = ratio(row["fresh_sync_seconds"] / n, base["fresh_sync_seconds"] / base["n"])
        rows.append(row)
    return {"status": "ok", "body_bytes": cfg.body_bytes, "replicas": 1, "sizes": list(cfg.scale_sizes), "rows": rows}


def render(result: dict[str, Any]) -> list[str]:
    if result.get("status") == "skipped":
        return [f"7. scale: skipped: {result.get('reason', '')}"]

    def pair(row: dict[str, Any], key: str) -> str:
        r = row.get(f"{key}_ratio")
        return f"{row[key]:,} (x{r})" if r is not None else f"{row[key]:,}"

    lines = [
        [
            f"{r['n']:,}",
            pair(r, "publish_one_ms"),
            pair(r, "publish_one_bytes"),
            pair(r, "fresh_sync_seconds"),
            r["fresh_seconds_per_message_ratio"],
            pair(r, "fresh_cpu_seconds"),
            pair(r, "fresh_rss_above_start_mib"),
            pair(r, "caught_up_ms"),
            pair(r, "caught_up_bytes"),
        ]
        for r in result["rows"]
    ]
    mode = result["rows"][0]["mode"] if result["rows"] else ""
    return [
        f"7. Scale: a log of N ({mode}, {result['body_bytes']} B bodies, 1 replica); (xR) = ratio to N = {result['sizes'][0]:,}\n"
        + table(
            ["N", "publish 1 ms", "publish 1 bytes", "fresh sync s", "s/msg ratio", "fresh CPU s", "fresh RSS MiB", "caught-up ms", "caught-up bytes"],
            lines,
        )
    ]
