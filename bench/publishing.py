"""Section 4, publishing: one new message to a log that holds some already, and a batch.

Alice's log already holds ``publish_existing`` messages, published to its replicas (set up with
the message blocks preloaded, as in section 2). Each repetition (after a pause that lets the
previous one's background work end) appends one 256-byte message and publishes, timed apart: the append (local, durable) and the publish (build the pages, upload what
the replicas lack, update the record on each, put the record into the DHT). With replicas named
by the application, and with replicas placed through the DHT (the default). The minimum is one
round trip: every replica could take the new blocks and the record in one pipelined exchange,
all replicas in parallel.

Batch: a new log of ``batch_messages`` messages appended and published at once to 3 named
replicas (nothing preloaded); its floor is the bytes it sent at the raw stream throughput of
section 1.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from bench.common import (
    TIMESTAMP,
    Context,
    bodies,
    know_peers,
    peer_ids,
    preload_message_blocks,
)
from bench.measure import mb_per_s, ratio, summary, table
from bench.probes import ping_new_stream, rtt_baseline
from rlp2p import generate_log_key
from rlp2p import LogMode

MODE = LogMode.paged(64, embed=0)
PROBE_SAMPLES = 20


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    alice = await ctx.start_node("alice")
    know_peers(alice, ctx.storage)
    by_id = {node.peer_id: node for node in ctx.storage}
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    try:
        await trio.sleep(cfg.settle_seconds)  # the new node's background start-up (routing table refresh) first
        probe_open = await rtt_baseline(alice.host, ctx.storage[0].peer_id, PROBE_SAMPLES)
        probe_new = [await ping_new_stream(alice.host, ctx.storage[0].peer_id) for _ in range(PROBE_SAMPLES // 2)]
        rtt_open_ms = summary(probe_open, scale=1e3)["median"]
        rtt_new_ms = summary(probe_new, scale=1e3)["median"]

        for placement in cfg.publish_placements:
            for replicas in cfg.publish_replicas:
                if replicas > len(ctx.storage):
                    skipped.append(f"{replicas} replicas: the swarm has {len(ctx.storage)} storage peers")
                    continue
                ctx.say(f"publish: {replicas} replica(s), placed {'by name' if placement == 'named' else 'through the DHT'}")
                key = generate_log_key()
                if placement == "named":
                    chosen = ctx.storage[:replicas]
                    publisher = alice.publisher(key, mode=MODE, replicas=replicas, replica_peers=peer_ids(chosen))
                else:
                    publisher = alice.publisher(key, mode=MODE, replicas=replicas)
                    candidates = await publisher.candidates()
                    chosen = [by_id[p] for p in candidates[:replicas] if p in by_id]
                await publisher.append(bodies(cfg.publish_existing, cfg.body_bytes, seed=replicas), timestamp=TIMESTAMP)
                await preload_message_blocks(alice, publisher, chosen)
                await publisher.publish()
                append_s: list[float] = []
                publish_s: list[float] = []
                sent: list[int] = []
                for rep in range(cfg.publish_reps):
                    # the previous publish's background work (the replicas' DHT announcements) first
                    await trio.sleep(cfg.settle_seconds)
                    body = bodies(1, cfg.body_bytes, seed=10_000 + rep)
                    start = time.perf_counter()
                    await publisher.append(body)
                    middle = time.perf_counter()
                    report = await publisher.publish()
                    end = time.perf_counter()
                    if len(report.stored_on) < publisher.write_quorum:
                        raise RuntimeError(f"publish stored on {len(report.stored_on)} replicas")
                    append_s.append(middle - start)
                    publish_s.append(end - middle)
                    sent.append(report.bytes_sent)
                publish_ms = summary(publish_s, scale=1e3)
                total_ms = summary([a + p for a, p in zip(append_s, publish_s, strict=True)], scale=1e3)
                rows.append(
                    {
                        "placement": placement,
                        "replicas": replicas,
                        "existing_messages": cfg.publish_existing,
                        "append_ms": summary(append_s, scale=1e3),
                        "publish_ms": publish_ms,
                        "total_ms": total_ms,
                        "bytes_sent": int(summary(sent, digits=0)["median"]),
                        "total_over_rtt_open": ratio(total_ms["median"], rtt_open_ms, 1),
                        "total_over_rtt_new_stream": ratio(total_ms["median"], rtt_new_ms, 1),
                    }
                )

        await trio.sleep(cfg.settle_seconds)
        ctx.say(f"publish: a batch of {cfg.batch_messages:,} messages to 3 replicas")
        replicas = min(3, len(ctx.storage))
        publisher = alice.publisher(generate_log_key(), mode=MODE, replicas=replicas, replica_peers=peer_ids(ctx.storage[:replicas]))
        start = time.perf_counter()
        await publisher.append(bodies(cfg.batch_messages, cfg.body_bytes, seed=99), timestamp=TIMESTAMP)
        middle = time.perf_counter()
        report = await publisher.publish()
        end = time.perf_counter()
        raw_mb_s = ctx.baselines.get("raw_mb_s")
        seconds = round(end - start, 4)
        # ratios come from the rounded figures that are reported, so anyone can recompute them
        floor = float(f"{report.bytes_sent / (raw_mb_s * 1e6):.4g}") if raw_mb_s else None
        batch = {
            "messages": cfg.batch_messages,
            "replicas": replicas,
            "append_seconds": round(middle - start, 4),
            "publish_seconds": round(end - middle, 4),
            "seconds": seconds,
            "messages_per_second": round(cfg.batch_messages / seconds, 1),
            "bytes_sent": report.bytes_sent,
            "upload_mb_s": round(mb_per_s(report.bytes_sent, end - middle), 3),
            "raw_mb_s": raw_mb_s,
            "floor_seconds": floor,
            "seconds_over_floor": ratio(seconds, floor, 1),
        }
    finally:
        await ctx.stop_node(alice)
    return {
        "status": "ok",
        "mode": "paged:64/none",
        "rtt_open_ms": rtt_open_ms,
        "rtt_new_stream_ms": rtt_new_ms,
        "one_message": rows,
        "batch": batch,
        "skipped": skipped,
    }


def render(result: dict[str, Any]) -> list[str]:
    rows = [
        [
            "by name" if r["placement"] == "named" else "DHT",
            r["replicas"],
            r["append_ms"]["median"],
            r["publish_ms"]["median"],
            r["total_ms"]["median"],
            r["total_ms"]["p90"],
            r["total_over_rtt_open"],
            r["bytes_sent"],
        ]
        for r in result["one_message"]
    ]
    existing = result["one_message"][0]["existing_messages"] if result["one_message"] else 0
    out = [
        f"4a. Append and publish one message to a log of {existing:,} ({result['mode']}); minimum: 1 round trip "
        f"= {result['rtt_open_ms']} ms open stream, {result['rtt_new_stream_ms']} ms new stream\n"
        + table(["replicas placed", "replicas", "append ms", "publish ms", "total ms", "p90 ms", "x 1 round trip", "bytes sent"], rows)
    ]
    b = result["batch"]
    out.append(
        f"4b. Batch: {b['messages']:,} messages appended and published at once to {b['replicas']} replicas\n"
        + table(
            ["messages/s", "append s", "publish s", "bytes sent", "upload MB/s", "floor s", "x floor"],
            [[b["messages_per_second"], b["append_seconds"], b["publish_seconds"], b["bytes_sent"], b["upload_mb_s"], b["floor_seconds"], b["seconds_over_floor"]]],
        )
    )
    for s in result["skipped"]:
        out.append(f"   skipped: {s}")
    return out
