"""Sections 2 and 3: what Bob pays to sync a log, and to learn that nothing is new.

Section 2. For each log size N and mode, Alice (a client node) publishes a log of N messages with
``body_bytes`` random bodies to ``sync_replicas`` storage peers and goes offline; then a fresh Bob
(a new node with an empty store) syncs it from those storage peers, named to him, so the figures
are the sync protocol's own (section 6 measures the DHT). Set-up shortcut: the message blocks
are put into the storage peers' stores directly, byte-identical to what a publish uploads, and
the publish that follows uploads the pages and the record (section 4 measures publishing).

Against the minimum: the bytes of the messages themselves (the serialized ``vac.mvds.Message``,
body plus group id and timestamp, which Bob needs to check each message's id) and one round
trip. The time floor is one open-stream round trip plus those bytes at the raw stream throughput,
both measured in this run (section 1, and a round-trip probe beside each log size).

A cell whose time, projected linearly from the same mode at the previous size, is over
``cell_cap_seconds`` is skipped with the projection as its reason.

Section 3. A reader that is caught up polls: one NS Fetch to each of ``fanout`` storage peers
in parallel. The minimum is one round trip carrying one record.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from bench.common import Context, know_peers, make_log, mode_label, peer_ids
from bench.measure import Deadline, ratio, summary, table
from bench.probes import EchoStream, ping_new_stream, rtt_baseline
from rlp2p import Message
from rlp2p import LogMode

#: round trips in the probe measured beside each log size
PROBE_SAMPLES = 20


def _message_bytes(n: int, body_bytes: int, group_id: bytes) -> int:
    from bench.common import TIMESTAMP

    return n * len(Message(group_id, TIMESTAMP, bytes(body_bytes)).encode())


async def run_sync(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    storage = ctx.storage[: cfg.sync_replicas]
    ids = peer_ids(storage)
    deadline = Deadline(cfg.sync_budget_seconds)
    cells: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    measured: dict[str, tuple[int, float]] = {}  # mode -> (n, seconds of publish + sync)
    raw_mb_s = ctx.baselines.get("raw_mb_s")

    for n in cfg.sync_sizes:
        plan: list[LogMode] = []
        for mode in cfg.sync_modes:
            label = mode_label(mode)
            if deadline.expired:
                skipped.append({"n": n, "mode": label, "reason": f"the sync grid's budget of {cfg.sync_budget_seconds:.0f} s was spent"})
                continue
            if label in measured:
                prev_n, prev_seconds = measured[label]
                projected = prev_seconds * n / prev_n
                if projected > cfg.cell_cap_seconds:
                    skipped.append(
                        {
                            "n": n,
                            "mode": label,
                            "projected_seconds": round(projected, 1),
                            "reason": f"projected {projected:.0f} s (publish + sync took {prev_seconds:.1f} s at "
                            f"N = {prev_n:,}, time grows linearly with N) is over the cap of {cfg.cell_cap_seconds:.0f} s a cell",
                        }
                    )
                    continue
            plan.append(mode)
        if not plan:
            continue

        probe = await rtt_baseline(ctx.client.host, storage[0].peer_id, PROBE_SAMPLES)
        rtt_open_ms = summary(probe, scale=1e3)["median"]

        alice = await ctx.start_node("alice")
        logs = []
        try:
            for i, mode in enumerate(plan):
                ctx.say(f"sync: Alice publishes N = {n:,}, {mode_label(mode)}")
                publisher, report = await make_log(ctx, alice, n, mode, storage, seed=n * 1000 + i)
                logs.append((mode, publisher, report))
        finally:
            await ctx.stop_node(alice)  # Alice is offline before Bob looks
        await trio.sleep(cfg.settle_seconds)  # the storage peers' announcements end

        for mode, publisher, published in logs:
            label = mode_label(mode)
            ctx.say(f"sync: Bob syncs N = {n:,}, {label}")
            bob = await ctx.start_node("bob")
            know_peers(bob, storage)
            try:
                report = await bob.reader(storage_peers=ids).sync(publisher.name)
            finally:
                await ctx.stop_node(bob)
            # (the inbox takes seqs only in order, so a count and the last seq say it all)
            if (report.new_messages, report.last_seq) != (n, n):
                raise RuntimeError(f"Bob got {report.new_messages} of {n} messages of {label}")
            message_bytes = _message_bytes(n, cfg.body_bytes, publisher.group_id)
            floor = None
            if rtt_open_ms is not None and raw_mb_s:
                # rounded before the ratio, so the ratio is the reported figures' own
                floor = float(f"{rtt_open_ms / 1e3 + message_bytes / (raw_mb_s * 1e6):.4g}")
            seconds = round(report.seconds, 4)
            cell = {
                "n": n,
                "mode": label,
                "layout": mode.to_args()[0],
                "embed": mode.to_args()[1],
                "seconds": seconds,
                "round_trips": report.round_trips,
                "requests": report.requests,
                "streams": report.streams,
                "bytes_in": report.bytes_in,
                "bytes_out": report.bytes_out,
                "pages": report.pages,
                "blocks": report.blocks,
                "delivered": report.new_messages,
                "body_bytes": n * cfg.body_bytes,
                "message_bytes": message_bytes,
                "bytes_in_over_message_bytes": ratio(report.bytes_in, message_bytes),
                "round_trips_over_minimum": ratio(report.round_trips, 1),
                "probe_rtt_open_ms": rtt_open_ms,
                "floor_seconds": floor,
                "seconds_over_floor": ratio(seconds, floor, 1),
                "publish_seconds": round(published.seconds, 3),
            }
            cells.append(cell)
            ctx.logs[(n, label)] = publisher.name
            measured[label] = (n, report.seconds + published.seconds)
    return {
        "status": "ok",
        "replicas": cfg.sync_replicas,
        "body_bytes": cfg.body_bytes,
        "raw_mb_s": raw_mb_s,
        "cells": cells,
        "skipped": skipped,
        "seconds_in_grid": round(deadline.elapsed, 1),
    }


def render_sync(result: dict[str, Any]) -> list[str]:
    rows = [
        [
            f"{c['n']:,}",
            c["mode"],
            c["seconds"],
            c["seconds_over_floor"],
            c["round_trips"],
            c["requests"],
            c["streams"],
            c["bytes_in"],
            c["bytes_out"],
            c["bytes_in_over_message_bytes"],
        ]
        for c in result["cells"]
    ]
    text = (
        f"2. Bob syncs N messages ({result['body_bytes']} B bodies) from {result['replicas']} storage peers, "
        "Alice offline\n   minimum: 1 round trip and the messages' own bytes; time floor = 1 open-stream "
        "round trip + those bytes at the raw MB/s of 1a\n"
        + table(["N", "mode (layout/embed)", "seconds", "x floor", "round trips", "requests", "streams", "bytes in", "bytes out", "in / msg bytes"], rows)
    )
    out = [text]
    for s in result["skipped"]:
        out.append(f"   skipped: N = {s['n']:,}, {s['mode']}: {s['reason']}")
    return out


async def run_poll(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    storage = ctx.storage[: cfg.sync_replicas]
    ids = peer_ids(storage)
    # a log of that size that section 2 published (the record is the same size in every mode)
    log = next((name for (n, _), name in ctx.logs.items() if n == cfg.poll_log_size), None)
    if log is None:
        alice = await ctx.start_node("alice")
        try:
            ctx.say(f"poll: Alice publishes N = {cfg.poll_log_size:,}")
            publisher, _ = await make_log(ctx, alice, cfg.poll_log_size, LogMode.paged(64, embed=0), storage, seed=7)
            log = publisher.name
        finally:
            await ctx.stop_node(alice)
        await trio.sleep(cfg.settle_seconds)  # the storage peers' announcements end
    stored = await storage[0].astore.call(storage[0].store.get_record, log)
    assert stored is not None, "the storage peer holds the record it acknowledged"
    record_bytes = len(stored.record)

    bob = await ctx.start_node("bob")
    know_peers(bob, storage)
    try:
        first = await bob.reader(storage_peers=ids).sync(log)
        if first.new_messages != cfg.poll_log_size:
            raise RuntimeError(f"Bob got {first.new_messages} of {cfg.poll_log_size} messages")
        variants = {
            "named storage peers, fanout 3": bob.reader(storage_peers=ids, fanout=3),
            "named storage peers, fanout 1": bob.reader(storage_peers=ids[:1], fanout=1),
            "found through the DHT, fanout 3": bob.reader(fanout=3),
        }
        reports: dict[str, list[Any]] = {name: [] for name in variants}
        raw_new: list[float] = []
        raw_open: list[float] = []
        ctx.say(f"poll: {cfg.poll_samples} caught-up polls of each kind")
        echo = await EchoStream.open(bob.host, ids[0])
        try:
            for _ in range(cfg.poll_samples):
                raw_open.append(await echo.ping())
                raw_new.append(await ping_new_stream(bob.host, ids[0]))
                for name, reader in variants.items():
                    start = time.perf_counter()
                    report = await reader.sync(log)
                    report.seconds = time.perf_counter() - start
                    if not report.up_to_date or report.new_messages:
                        raise RuntimeError(f"a caught-up poll ({name}) was not up to date")
                    reports[name].append(report)
        finally:
            await echo.close()
    finally:
        await ctx.stop_node(bob)

    raw_new_ms = summary(raw_new, scale=1e3)
    raw_open_ms = summary(raw_open, scale=1e3)
    rows = {}
    for name, rs in reports.items():
        ms = summary([r.seconds for r in rs], scale=1e3)
        last = rs[-1]
        rows[name] = {
            "ms": ms,
            "round_trips": last.round_trips,
            "requests": last.requests,
            "streams": last.streams,
            "bytes_in": last.bytes_in,
            "bytes_out": last.bytes_out,
            "bytes_in_over_record": ratio(last.bytes_in, record_bytes),
            "round_trips_over_minimum": ratio(last.round_trips, 1),
            "ms_over_raw_new_stream": ratio(ms["median"], raw_new_ms["median"]),
            "ms_over_raw_open": ratio(ms["median"], raw_open_ms["median"]),
        }
    return {
        "status": "ok",
        "log_size": cfg.poll_log_size,
        "record_bytes": record_bytes,
        "raw_open_ms": raw_open_ms,
        "raw_new_stream_ms": raw_new_ms,
        "polls": rows,
    }


def render_poll(result: dict[str, Any]) -> list[str]:
    rows = [
        [
            name,
            r["ms"]["median"],
            r["ms_over_raw_new_stream"],
            r["round_trips"],
            r["streams"],
            r["bytes_in"],
            r["bytes_out"],
            r["bytes_in_over_record"],
        ]
        for name, r in result["polls"].items()
    ]
    rows.append(["minimum: raw new-stream round trip", result["raw_new_stream_ms"]["median"], 1.0, 1, 1, result["record_bytes"], None, 1.0])
    return [
        f"3. A caught-up reader polls (log of {result['log_size']:,}; record {result['record_bytes']} B; "
        f"raw open-stream round trip {result['raw_open_ms']['median']} ms)\n"
        + table(["poll", "median ms", "x raw new stream", "round trips", "streams", "bytes in", "bytes out", "in / record"], rows)
    ]
