"""Section "private": what sealing costs a reader. A fresh Bob syncs a log of N messages of
``body_bytes`` random bodies, private (sealed, rlp2p.core.private) and public, same layout, same
storage peers, in the same run; the public sync is the baseline.

Goals: ``private_time_ratio`` (private sync seconds / public, limit 1.2) and
``private_bytes_ratio`` (bytes Bob received, private / public, limit 1.1). Each kind is measured
``reps`` times, alternating, and the medians are compared (the machine is shared).
"""

from __future__ import annotations

import statistics
from typing import Any

import trio

from bench.common import TIMESTAMP, Context, bodies, know_peers, peer_ids
from bench.goals import goal
from bench.measure import ratio, table
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode

MODE = LogMode.paged(64, embed=None)  # the publisher's default layout
GOALS = {"private_time_ratio": 1.2, "private_bytes_ratio": 1.1}


async def _one(ctx: Context, n: int, private: bool, seed: int) -> dict[str, Any]:
    storage = ctx.storage[: ctx.config.sync_replicas]
    alice = await ctx.start_node("alice")
    try:
        know_peers(alice, storage)
        publisher = alice.publisher(
            generate_log_key(), mode=MODE, replicas=len(storage), write_quorum=len(storage),
            replica_peers=peer_ids(storage), private=private,
        )
        await publisher.append(bodies(n, ctx.config.body_bytes, seed), timestamp=TIMESTAMP)
        await publisher.publish()
        capability = await publisher.capability() if private else None
    finally:
        await ctx.stop_node(alice)
    await trio.sleep(ctx.config.settle_seconds)
    bob = await ctx.start_node("bob")
    know_peers(bob, storage)
    try:
        report = await bob.reader(storage_peers=peer_ids(storage)).sync(publisher.name, capability=capability)
    finally:
        await ctx.stop_node(bob)
    if (report.new_messages, report.last_seq) != (n, n):
        raise RuntimeError(f"Bob got {report.new_messages} of {n} messages")
    return {"seconds": report.seconds, "bytes_in": report.bytes_in, "round_trips": report.round_trips}


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    n, reps = (1_000, 1) if cfg.quick else (10_000, 3)
    runs: dict[str, list[dict[str, Any]]] = {"public": [], "private": []}
    for rep in range(reps):
        for kind in ("public", "private"):
            ctx.say(f"private: Bob syncs N = {n:,}, {kind} ({rep + 1}/{reps})")
            runs[kind].append(await _one(ctx, n, kind == "private", seed=rep))
    # rounded before the ratios, so each ratio is the reported figures' own
    med = {
        kind: {key: round(statistics.median(r[key] for r in rs), 4) for key in ("seconds", "bytes_in", "round_trips")}
        for kind, rs in runs.items()
    }
    time_ratio = ratio(med["private"]["seconds"], med["public"]["seconds"])
    bytes_ratio = ratio(med["private"]["bytes_in"], med["public"]["bytes_in"])
    return {
        "status": "ok",
        "n": n,
        "reps": reps,
        "body_bytes": cfg.body_bytes,
        "mode": "paged:64 embed all",
        "runs": runs,
        "median": med,
        "goals": {
            "private_time_ratio": goal(time_ratio, GOALS["private_time_ratio"]),
            "private_bytes_ratio": goal(bytes_ratio, GOALS["private_bytes_ratio"]),
        },
    }


def render(result: dict[str, Any]) -> list[str]:
    med = result["median"]
    rows = [
        [kind, f"{med[kind]['seconds']:.3f}", f"{int(med[kind]['bytes_in']):,}", int(med[kind]["round_trips"])]
        for kind in ("public", "private")
    ]
    goals = result["goals"]
    return [
        f"9. Private logs: a fresh reader syncs N = {result['n']:,} x {result['body_bytes']} B "
        f"({result['mode']}), median of {result['reps']}\n"
        + table(["log", "seconds", "bytes in", "round trips"], rows)
        + "\n   "
        + ", ".join(f"{name} {g['value']} (limit {g['limit']})" for name, g in goals.items())
    ]
