"""Section ``transfer``: the goals of issue 11 items 5 and 6, each a figure beside its limit.

- ``cas_get_4k_over_raw``: a bulk CAS Get of 4 KiB blocks (every block on one stream, as the
  client pipelines it, each verified) over the raw yamux stream in 64 KiB writes, the two
  interleaved round by round between the same two hosts. Limit 0.8.
- ``sync_10k_ref_seconds``: a fresh Bob syncs 10,000 messages of 256 B bodies published by
  reference (``paged:256/none``) from one storage peer (1,000 in ``--quick``). Limit 2.0 s.
- ``sync_10k_ref_round_trips_over``: that sync's round trips over (2 + pages walked + 1): the
  record, the walk, and one for the message blocks, pipelined. Limit 1.0.
- ``bytes_in_over_msg_embedded``: bytes Bob reads over the messages' own bytes, in the embedded
  modes (the larger of ``full/all`` and ``paged:64/all``). Limit 1.15.
"""

from __future__ import annotations

import os
import time
from typing import Any

import trio

from bench.common import TIMESTAMP, Context, know_peers, make_log, mode_label
from bench.goals import goal, met
from bench.measure import mb_per_s, ratio, summary, table
from bench.probes import blast
from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.core.page import LogMode

RAW_WRITE = 64 * 1024
#: interleaved rounds of the bulk Get against raw (pairs: the ratio is their median). On the
#: shared 2-core machine one pair's ratio ran from 0.4 to 2 under a load of 10-20 (a slow moment
#: hits one side of a pair): 9 pairs (about 10 s) keep the median from moving with one of them
ROUNDS = 9
#: fresh readers syncing the same log (the seconds are their median)
SYNCS = 3
BLOCK = 4 * 1024
REF_MODE = LogMode.paged(256, embed=0)
EMBEDDED_MODES = (LogMode.fully_replicated(embed=None), LogMode.paged(64, embed=None))
LIMITS = {
    "cas_get_4k_over_raw": 0.8,
    "sync_10k_ref_seconds": 2.0,
    "sync_10k_ref_round_trips_over": 1.0,
    "bytes_in_over_msg_embedded": 1.15,
}
#: goals met by staying at or under the limit (the others by reaching it)
AT_MOST = {"sync_10k_ref_seconds", "sync_10k_ref_round_trips_over", "bytes_in_over_msg_embedded"}


def _goal(name: str, value: float | None) -> dict[str, Any]:
    return goal(value, LIMITS[name], at_least=name not in AT_MOST)


async def _cas_over_raw(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    client, server = ctx.client, ctx.storage[0]
    peer = server.peer_id
    total = cfg.transfer_bytes
    data = [os.urandom(BLOCK) for _ in range(total // BLOCK)]
    addresses = [address_of(d) for d in data]
    await server.astore.call(server.store.put_blocks, list(zip(addresses, data, strict=True)))
    del data

    async def cas_fetch() -> float:
        start = time.perf_counter()
        async with client.cas(peer) as cas:
            results = await cas.get_many(addresses)
        seconds = time.perf_counter() - start
        if len(results) != len(addresses) or not all(isinstance(r, bytes) for r in results.values()):
            raise RuntimeError("a CAS Get failed")
        return seconds

    async def raw_fetch() -> float:
        return await blast(client.host, peer, total, RAW_WRITE)

    async def timed(fetch: Any) -> tuple[float, float]:
        # MB/s, and the process's CPU seconds per MB (both hosts run in this process): on a
        # busy shared machine the CPU cost moves less than the wall clock
        cpu = time.process_time()
        seconds = await fetch()
        return mb_per_s(total, seconds), (time.process_time() - cpu) / (total / 1e6)

    await blast(client.host, peer, 256 * 1024, RAW_WRITE)  # warm-up
    await cas_fetch()
    raw: list[float] = []
    cas: list[float] = []
    raw_cpu: list[float] = []
    cas_cpu: list[float] = []
    rounds = 3 if cfg.quick else ROUNDS
    for round_no in range(rounds):
        ctx.say(f"transfer: CAS Get 4 KiB against raw, {total / 1e6:.1f} MB (round {round_no + 1}/{rounds})")
        order = [(raw, raw_cpu, raw_fetch), (cas, cas_cpu, cas_fetch)]
        for speeds, cpus, fetch in order if round_no % 2 == 0 else order[::-1]:
            speed, cpu_per_mb = await timed(fetch)
            speeds.append(speed)
            cpus.append(cpu_per_mb)
    # each round's pair measured back to back: the median of their ratios
    paired = summary([c / r for c, r in zip(cas, raw, strict=True)], digits=3)
    # the same pairs by CPU (both hosts in this process): what is ours, less moved by the load
    paired_cpu = summary([r / c for c, r in zip(cas_cpu, raw_cpu, strict=True)], digits=3)
    return {
        "bytes": total,
        "rounds": rounds,
        "raw_mb_s": summary(raw, digits=2),
        "cas_mb_s": summary(cas, digits=2),
        "raw_cpu_s_per_mb": summary(raw_cpu, digits=4),
        "cas_cpu_s_per_mb": summary(cas_cpu, digits=4),
        "ratio": paired["median"],
        "ratio_per_round": paired,
        "cpu_ratio": ratio(summary(raw_cpu, digits=6)["median"], summary(cas_cpu, digits=6)["median"]),
        "cpu_ratio_per_round": paired_cpu,
    }


async def _sync(ctx: Context, n: int, mode: LogMode, seed: int) -> dict[str, Any]:
    storage = ctx.storage[:1]
    alice = await ctx.start_node("alice")
    try:
        ctx.say(f"transfer: Alice publishes N = {n:,}, {mode_label(mode)}")
        publisher, _ = await make_log(ctx, alice, n, mode, storage, seed=seed)
    finally:
        await ctx.stop_node(alice)
    await trio.sleep(ctx.config.settle_seconds)
    reports = []
    for i in range(SYNCS if n >= 10_000 else 1):
        bob = await ctx.start_node("bob")
        know_peers(bob, storage)
        try:
            ctx.say(f"transfer: Bob {i + 1} syncs N = {n:,}, {mode_label(mode)}")
            report = await bob.reader(storage_peers=[storage[0].peer_id]).sync(publisher.name)
        finally:
            await ctx.stop_node(bob)
        if (report.new_messages, report.last_seq) != (n, n):
            raise RuntimeError(f"Bob got {report.new_messages} of {n} messages of {mode_label(mode)}")
        reports.append(report)
    seconds = summary([r.seconds for r in reports], digits=4)
    message_bytes = n * len(Message(publisher.group_id, TIMESTAMP, bytes(ctx.config.body_bytes)).encode())
    return {
        "n": n,
        "mode": mode_label(mode),
        "seconds": seconds["median"],
        "seconds_all": seconds,
        "round_trips": max(r.round_trips for r in reports),
        "pages": report.pages,
        "blocks": report.blocks,
        "bytes_in": report.bytes_in,
        "message_bytes": message_bytes,
        "bytes_in_over_message_bytes": ratio(report.bytes_in, message_bytes),
    }


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    n_ref = 1_000 if cfg.quick else 10_000
    n_embedded = 100 if cfg.quick else 1_000
    transfer = await _cas_over_raw(ctx)
    ref = await _sync(ctx, n_ref, REF_MODE, seed=11)
    embedded = [await _sync(ctx, n_embedded, mode, seed=12 + i) for i, mode in enumerate(EMBEDDED_MODES)]
    over = ratio(ref["round_trips"], 2 + ref["pages"] + 1, 3)
    goals = {
        "cas_get_4k_over_raw": _goal("cas_get_4k_over_raw", transfer["ratio"]),
        "sync_10k_ref_seconds": _goal("sync_10k_ref_seconds", ref["seconds"]),
        "sync_10k_ref_round_trips_over": _goal("sync_10k_ref_round_trips_over", over),
        "bytes_in_over_msg_embedded": _goal(
            "bytes_in_over_msg_embedded", max(c["bytes_in_over_message_bytes"] for c in embedded)
        ),
    }
    return {"status": "ok", "cas_get_4k": transfer, "sync_ref": ref, "sync_embedded": embedded, "goals": goals}


def render(result: dict[str, Any]) -> list[str]:
    t = result["cas_get_4k"]
    rows = [
        ["raw, 64 KiB writes", t["bytes"], t["raw_mb_s"]["median"], t["raw_mb_s"]["min"], t["raw_mb_s"]["max"], t["raw_cpu_s_per_mb"]["median"]],
        ["CAS Get, 4 KiB blocks", t["bytes"], t["cas_mb_s"]["median"], t["cas_mb_s"]["min"], t["cas_mb_s"]["max"], t["cas_cpu_s_per_mb"]["median"]],
    ]
    out = [
        f"T1. Bulk CAS Get against the raw stream (MB/s; {t['rounds']} interleaved rounds; CPU s/MB of both hosts)\n"
        + table(["transfer", "bytes", "MB/s", "min", "max", "CPU s/MB"], rows)
        + f"\n   CAS/raw: median of per-round ratios {t['ratio']} (min {t['ratio_per_round']['min']}, "
        f"max {t['ratio_per_round']['max']}); by CPU cost {t['cpu_ratio']}"
        + (f", median of per-round CPU ratios {t['cpu_ratio_per_round']['median']}" if "cpu_ratio_per_round" in t else "")
    ]
    rows = [
        [c["n"], c["mode"], c["seconds"], c["round_trips"], c["pages"], c["blocks"], c["bytes_in"], c["bytes_in_over_message_bytes"]]
        for c in [result["sync_ref"], *result["sync_embedded"]]
    ]
    out.append("T2. A fresh reader's sync, one storage peer\n" + table(["N", "mode", "seconds", "round trips", "pages", "blocks", "bytes in", "in / msg bytes"], rows))
    rows = [[name, g["value"], g["limit"], g["ratio"], "yes" if met(g) else "NO"] for name, g in result["goals"].items()]
    out.append("T3. Goals\n" + table(["goal", "value", "limit", "value / limit", "met"], rows))
    return out
