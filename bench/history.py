"""Section "history": what a history truncation costs, beside the publishes and syncs it is
compared with, on a swarm of its own (its storage peers run retention on a clock it moves).

``python -m bench --only history`` (N = 2,000, keep 1,000; --quick: 500, keep 250), or
``python -m bench.history [N] [KEEP]`` (default 2000 messages, keep 1000; paged:64, nothing
embedded, 3 replicas, a local swarm on 127.0.0.1). Prints, each with its ratio to a baseline
measured in the same run:

- the truncating publish (every kept page rewritten and, since a truncation makes every replica's
  holding unusable, the kept log sent again) against the first publish of the whole log;
- the next one-message publish after it against one before it (should be 1.0: appends cost the same);
- a new reader's sync of the truncated log against one of the whole log (about KEEP / N);
- what one storage peer's retention collects afterwards, against what it held.

Goals: ``truncate_publish_ratio`` (bytes of the truncating publish / the first publish, limit
0.3: pages and new messages only), ``truncate_append_ratio`` (a one-message publish after / before
it, limit 1.1), ``truncate_sync_ratio`` (a new reader's bytes / the whole log's, limit
KEEP / N + 0.05).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import trio

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.retention import RetentionConfig
from rlp2p.node.swarm import LocalSwarm


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


async def measure(n: int = 2000, keep: int = 1000) -> dict[str, Any]:
    offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(timezone.utc) + offset[0]

    with tempfile.TemporaryDirectory() as root:
        async with trio.open_nursery() as nursery:
            swarm = LocalSwarm(Path(root), nursery, timeout=10.0, clock=clock)
            retention = RetentionConfig(grace=60, interval=10**6)
            storage = [await swarm.start_node(f"storage{i}", storage=True, bootstrap=() if i == 0 else None, retention=retention) for i in range(3)]
            alice = await swarm.start_node("alice")
            publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(64, embed=0), replicas=3, replica_peers=[s.peer_id for s in storage])
            await publisher.append([f"message {i} ".encode() * 8 for i in range(n)])
            whole = await publisher.publish()
            await publisher.append([b"one more"])
            started = time.monotonic()
            append_before = await publisher.publish()
            append_before.seconds = time.monotonic() - started

            bob = await swarm.start_node("bob")
            sync_whole = await bob.reader(storage_peers=[storage[0].peer_id]).sync(publisher.name)

            truncated = await publisher.truncate(keep=keep)
            await publisher.append([b"and one more"])
            append_after = await publisher.publish()

            carol = await swarm.start_node("carol")
            sync_kept = await carol.reader(storage_peers=[storage[0].peer_id]).sync(publisher.name)

            held_blocks, held_bytes = storage[0].store.block_stats()
            offset[0] = timedelta(minutes=5)
            swept = await storage[0].retention.run_pass()  # type: ignore[union-attr]
            await swarm.close()
            nursery.cancel_scope.cancel()
    return {
        "n": n,
        "keep": keep,
        "publish_whole": {"blocks": sum(r.blocks_sent for r in whole.replicas), "bytes": whole.bytes_sent, "seconds": whole.seconds},
        "publish_truncate": {"blocks": sum(r.blocks_sent for r in truncated.replicas), "bytes": truncated.bytes_sent, "seconds": truncated.seconds},
        "append_before": {"blocks": sum(r.blocks_sent for r in append_before.replicas), "bytes": append_before.bytes_sent},
        "append_after": {"blocks": sum(r.blocks_sent for r in append_after.replicas), "bytes": append_after.bytes_sent},
        "sync_whole": {"messages": sync_whole.new_messages, "bytes_in": sync_whole.bytes_in, "pages": sync_whole.pages},
        "sync_kept": {"messages": sync_kept.new_messages, "bytes_in": sync_kept.bytes_in, "pages": sync_kept.pages, "gone": sync_kept.gone},
        "collected": {"blocks": swept.swept_blocks, "bytes": swept.swept_bytes, "held_blocks": held_blocks, "held_bytes": held_bytes},
    }


async def run(ctx: Any) -> dict[str, Any]:
    n = 500 if ctx.config.quick else 2000
    ctx.say(f"history: truncate {n:,} messages to {n // 2:,}")
    result = await measure(n, n // 2)
    from bench.goals import goal  # (bench/ is importable when the suite runs)

    result["status"] = "ok"
    result["goals"] = {
        "truncate_publish_ratio": goal(result["publish_truncate"]["bytes"] / result["publish_whole"]["bytes"], 0.3),
        "truncate_append_ratio": goal(result["append_after"]["bytes"] / result["append_before"]["bytes"], 1.1),
        "truncate_sync_ratio": goal(result["sync_kept"]["bytes_in"] / result["sync_whole"]["bytes_in"], 0.55),
    }
    return result


def render(r: dict[str, Any]) -> list[str]:
    pw, pt, ab, aa = r["publish_whole"], r["publish_truncate"], r["append_before"], r["append_after"]
    sw, sk, c = r["sync_whole"], r["sync_kept"], r["collected"]
    lines = [
        f"10. History truncation: {r['n']} messages, keep {r['keep']} (paged:64, nothing embedded, 3 replicas)",
        f"  truncating publish: {pt['blocks']} blocks, {pt['bytes']} bytes, {pt['seconds']:.2f} s"
        f"  ({_ratio(pt['bytes'], pw['bytes'])} the first publish: {pw['blocks']} blocks, {pw['bytes']} bytes, {pw['seconds']:.2f} s)",
        f"  one-message publish after it: {aa['blocks']} blocks, {aa['bytes']} bytes"
        f"  ({_ratio(aa['bytes'], ab['bytes'])} one before it: {ab['blocks']} blocks, {ab['bytes']} bytes)",
        f"  new reader's sync: {sk['messages']} messages, {sk['pages']} pages, {sk['bytes_in']} bytes in, gone {sk['gone']}"
        f"  ({_ratio(sk['bytes_in'], sw['bytes_in'])} a sync of the whole log: {sw['messages']} messages, {sw['bytes_in']} bytes)",
        f"  retention on one storage peer: collected {c['blocks']} blocks, {c['bytes']} bytes"
        f"  ({_ratio(c['bytes'], c['held_bytes'])} of the {c['held_blocks']} blocks, {c['held_bytes']} bytes it held)",
    ]
    if "goals" in r:
        lines.append("   " + ", ".join(f"{name} {g['value']} (limit {g['limit']})" for name, g in r["goals"].items()))
    return ["\n".join(lines)]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 2000
    keep = int(args[1]) if len(args) > 1 else n // 2
    print("\n".join(render(trio.run(measure, n, keep))))


if __name__ == "__main__":
    main()
