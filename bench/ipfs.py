"""Section "ipfs": a plain Helia node reading an rlp2p log from rlp2p storage peers, beside
rlp2p's own reader, in the same run (issue 14).

Alice publishes N = 1,000 messages of ``body_bytes`` random bodies to the storage peers, in two
layouts: the publisher's default (pages of 64, payloads embedded: Helia fetches 16 pages) and
pages of 64 with no payload embedded (16 pages and 1,000 message blocks over Bitswap). For each,
a fresh Helia node (interop/helia-read.mjs) that knows one storage peer's address resolves the
name through the DHT and fetches every block over Bitswap; a fresh rlp2p Bob syncs the same log
over CAS. Helia's time counts from the resolve to the last block (its process start-up is left
out); Bob's is his sync report's. Each is measured ``reps`` times, alternating; medians compared.
``--quick``: the default layout, once.

Goal ``ipfs_helia_read_ratio``: Helia's seconds / Bob's for the default layout, limit 10 (an
IPFS reader may be slower, not unusable).
"""

from __future__ import annotations

import statistics
from typing import Any

import trio

from bench.common import TIMESTAMP, Context, bodies, know_peers, peer_ids
from bench.dht import load_driver
from bench.goals import goal
from bench.measure import ratio, table
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.p2p.dht import binary_record_key

N = 1_000
LAYOUTS = {"paged:64 embed all": LogMode.paged(64, embed=None), "paged:64 embed none": LogMode.paged(64, embed=0)}
GOALS = {"ipfs_helia_read_ratio": 10.0}
HELIA_TIMEOUT = 120.0


async def _publish(ctx: Context, mode: LogMode, seed: int) -> str:
    storage = ctx.storage[: ctx.config.sync_replicas]
    alice = await ctx.start_node("alice")
    try:
        know_peers(alice, storage)
        publisher = alice.publisher(
            generate_log_key(), mode=mode, replicas=len(storage), write_quorum=len(storage), replica_peers=peer_ids(storage)
        )
        await publisher.append(bodies(N, ctx.config.body_bytes, seed), timestamp=TIMESTAMP)
        await publisher.publish()
    finally:
        await ctx.stop_node(alice)
    key = binary_record_key(publisher.name)
    with trio.move_on_after(30):  # storage peers put the record into the DHT in the background
        while not any(s.discovery and s.discovery.dht.value_store.get(key) for s in storage):
            await trio.sleep(0.05)
    return publisher.name


async def _bob(ctx: Context, name: str) -> dict[str, Any]:
    storage = ctx.storage[: ctx.config.sync_replicas]
    bob = await ctx.start_node("bob")
    know_peers(bob, storage)
    try:
        report = await bob.reader(storage_peers=peer_ids(storage)).sync(name)
    finally:
        await ctx.stop_node(bob)
    if report.new_messages != N:
        raise RuntimeError(f"Bob got {report.new_messages} of {N} messages")
    return {"seconds": round(report.seconds, 4), "blocks": report.blocks}


async def _helia(ctx: Context, name: str) -> dict[str, Any]:
    from interop.helia import helia_read

    result = await helia_read([ctx.storage[0].addrs[0]], name, timeout=HELIA_TIMEOUT)
    if len(result["messages"]) != N:
        raise RuntimeError(f"Helia got {len(result['messages'])} of {N} messages")
    seconds = (result["resolve_ms"] + result["fetch_ms"]) / 1e3
    return {"seconds": round(seconds, 4), "resolve_seconds": round(result["resolve_ms"] / 1e3, 4), "blocks": result["blocks"]}


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    if not cfg.js:
        return {"status": "skipped", "reason": "--no-js"}
    driver, reason = load_driver()
    if driver is None:
        return {"status": "skipped", "reason": reason}
    reps = 1 if cfg.quick else 3
    layouts: dict[str, Any] = {}
    chosen = dict(list(LAYOUTS.items())[:1]) if cfg.quick else LAYOUTS  # --quick: the default layout only
    for label, mode in chosen.items():
        name = await _publish(ctx, mode, seed=len(layouts))
        runs: dict[str, list[dict[str, Any]]] = {"helia": [], "rlp2p": []}
        for rep in range(reps):
            ctx.say(f"ipfs: Helia and Bob read N = {N:,} ({label}, {rep + 1}/{reps})")
            runs["helia"].append(await _helia(ctx, name))
            runs["rlp2p"].append(await _bob(ctx, name))
        med = {kind: round(statistics.median(r["seconds"] for r in rs), 4) for kind, rs in runs.items()}
        layouts[label] = {
            "runs": runs,
            "median_seconds": med,
            "blocks": {kind: rs[0]["blocks"] for kind, rs in runs.items()},
            "helia_over_rlp2p": ratio(med["helia"], med["rlp2p"]),
        }
    default = layouts["paged:64 embed all"]
    return {
        "status": "ok",
        "n": N,
        "reps": reps,
        "body_bytes": cfg.body_bytes,
        "layouts": layouts,
        "goals": {"ipfs_helia_read_ratio": goal(default["helia_over_rlp2p"], GOALS["ipfs_helia_read_ratio"])},
    }


def render(result: dict[str, Any]) -> list[str]:
    rows = []
    for label, layout in result["layouts"].items():
        med = layout["median_seconds"]
        rows.append(
            [label, f"{med['helia']:.3f}", layout["blocks"]["helia"], f"{med['rlp2p']:.3f}", layout["blocks"]["rlp2p"], layout["helia_over_rlp2p"]]
        )
    g = result["goals"]["ipfs_helia_read_ratio"]
    return [
        f"10. IPFS: a fresh Helia node reads N = {result['n']:,} x {result['body_bytes']} B from rlp2p storage peers "
        f"(DHT resolve + Bitswap) beside rlp2p's reader (CAS), median of {result['reps']}\n"
        + table(["layout", "Helia s", "Helia blocks", "rlp2p s", "rlp2p blocks", "Helia / rlp2p"], rows)
        + f"\n   ipfs_helia_read_ratio {g['value']} (limit {g['limit']})"
    ]
