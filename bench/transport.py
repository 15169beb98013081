"""Section 1, the transport limit: bulk CAS Get against raw yamux throughput, and round trips.

Between the same two hosts (a storage peer and a client node on 127.0.0.1), in one run, with the
kinds interleaved round by round (their order rotating), so that a slow moment of a shared
machine hits every kind alike:

- raw: ``/rlp2p-bench/blast/1.0.0`` streams the bytes in 64 KiB writes (the transport limit), and
  in writes of each CAS block size (the same number of writes as a CAS Get of those blocks);
- CAS: the client fetches every block of ``transfer_bytes`` / block size blocks with pipelined
  Gets on one stream, ``FETCH_BATCH`` at a time, as the reader does, each block verified.

Round trips: 32 bytes echoed on one open stream, and on a new stream each time (open, one round
trip, close); beside them one CAS Get of a 256-byte block on an open stream and on a new stream.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.common import Context
from bench.measure import mb_per_s, ratio, summary, table
from bench.probes import EchoStream, blast, ping_new_stream
from rlp2p.core.address import address_of
from rlp2p.node.reader import FETCH_BATCH

RAW_WRITE = 64 * 1024


def _kib(size: int) -> str:
    return f"{size // 1024} KiB"


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    client, server = ctx.client, ctx.storage[0]
    peer = server.peer_id
    total = cfg.transfer_bytes

    # the blocks, straight into the server's store (the same bytes a publish would put there)
    blocks: dict[int, list[bytes]] = {}
    for size in cfg.block_sizes:
        count = -(-total // size)
        data = [os.urandom(size) for _ in range(count)]
        addresses = [address_of(d) for d in data]
        await server.astore.call(server.store.put_blocks, list(zip(addresses, data, strict=True)))
        blocks[size] = addresses
    small = os.urandom(256)
    small_address = address_of(small)
    await server.astore.call(server.store.put_blocks, [(small_address, small)])

    async def cas_fetch(size: int) -> float:
        addresses = blocks[size]
        start = time.perf_counter()
        async with client.cas(peer) as cas:
            for i in range(0, len(addresses), FETCH_BATCH):
                results = await cas.get_many(addresses[i : i + FETCH_BATCH])
                bad = [r for r in results.values() if not isinstance(r, bytes)]
                if bad:
                    raise RuntimeError(f"CAS Get failed: {bad[0]!r}")
        return time.perf_counter() - start

    kinds: list[tuple[str, Any, int]] = [("raw", RAW_WRITE, total)]
    kinds += [("raw", size, total) for size in cfg.block_sizes if size != RAW_WRITE]
    kinds += [("cas", size, len(blocks[size]) * size) for size in cfg.block_sizes]

    def label(kind: str, size: int) -> str:
        return f"raw, {_kib(size)} writes" if kind == "raw" else f"CAS Get, {_kib(size)} blocks"

    # warm-up: connection, first streams, store caches
    await blast(client.host, peer, 256 * 1024, RAW_WRITE)
    async with client.cas(peer) as cas:
        await cas.get(small_address)

    samples: dict[str, list[float]] = {label(k, s): [] for k, s, _ in kinds}
    nbytes = {label(k, s): n for k, s, n in kinds}
    for round_no in range(cfg.throughput_rounds):
        shift = round_no % len(kinds)
        for kind, size, n in kinds[shift:] + kinds[:shift]:
            name = label(kind, size)
            ctx.say(f"transport: {name}, {n / 1e6:.1f} MB (round {round_no + 1}/{cfg.throughput_rounds})")
            seconds = await (blast(client.host, peer, n, size) if kind == "raw" else cas_fetch(size))
            samples[name].append(mb_per_s(n, seconds))

    throughput: dict[str, dict[str, Any]] = {
        name: {"bytes": nbytes[name], "mb_s": summary(values, digits=2)} for name, values in samples.items()
    }
    raw_limit = throughput[label("raw", RAW_WRITE)]["mb_s"]["median"]
    ratios = {}
    for size in cfg.block_sizes:
        cas_mb_s = throughput[label("cas", size)]["mb_s"]["median"]
        same_writes = throughput[label("raw", size)]["mb_s"]["median"]
        ratios[str(size)] = {
            "cas_mb_s": cas_mb_s,
            "raw_mb_s": raw_limit,
            "raw_same_writes_mb_s": same_writes,
            "cas_over_raw": ratio(cas_mb_s, raw_limit),
            "cas_over_raw_same_writes": ratio(cas_mb_s, same_writes),
        }

    # round trips, interleaved: raw echo and CAS Get of one small block
    ctx.say(f"transport: {cfg.rtt_open_samples} round trips on open streams")
    raw_open: list[float] = []
    cas_open: list[float] = []
    echo = await EchoStream.open(client.host, peer)
    try:
        async with client.cas(peer) as cas:
            await cas.get(small_address)
            await echo.ping()
            for _ in range(cfg.rtt_open_samples):
                raw_open.append(await echo.ping())
                start = time.perf_counter()
                await cas.get(small_address)
                cas_open.append(time.perf_counter() - start)
    finally:
        await echo.close()

    ctx.say(f"transport: {cfg.rtt_new_samples} round trips on new streams")
    raw_new: list[float] = []
    cas_new: list[float] = []
    for _ in range(cfg.rtt_new_samples):
        raw_new.append(await ping_new_stream(client.host, peer))
        start = time.perf_counter()
        async with client.cas(peer, fresh=True) as cas:  # not a stream kept from before
            await cas.get(small_address)
        cas_new.append(time.perf_counter() - start)

    rtt = {
        "raw_open_ms": summary(raw_open, scale=1e3),
        "cas_open_ms": summary(cas_open, scale=1e3),
        "raw_new_stream_ms": summary(raw_new, scale=1e3),
        "cas_new_stream_ms": summary(cas_new, scale=1e3),
    }
    rtt_ratios = {
        "cas_open_over_raw_open": ratio(rtt["cas_open_ms"]["median"], rtt["raw_open_ms"]["median"]),
        "cas_new_over_raw_new": ratio(rtt["cas_new_stream_ms"]["median"], rtt["raw_new_stream_ms"]["median"]),
        "raw_new_over_raw_open": ratio(rtt["raw_new_stream_ms"]["median"], rtt["raw_open_ms"]["median"]),
    }
    ctx.baselines.update(
        raw_mb_s=raw_limit,
        rtt_open_ms=rtt["raw_open_ms"]["median"],
        rtt_new_stream_ms=rtt["raw_new_stream_ms"]["median"],
    )
    return {
        "status": "ok",
        "hosts": {"client": client.peer_id.to_string(), "server": peer.to_string()},
        "transfer_bytes": total,
        "rounds": cfg.throughput_rounds,
        "throughput": throughput,
        "ratios": ratios,
        "rtt": rtt,
        "rtt_ratios": rtt_ratios,
    }


def render(result: dict[str, Any]) -> list[str]:
    rows = []
    raw_limit = result["ratios"][next(iter(result["ratios"]))]["raw_mb_s"]
    for name, entry in result["throughput"].items():
        s = entry["mb_s"]
        rows.append([name, entry["bytes"], s["median"], s["min"], s["max"], ratio(s["median"], raw_limit)])
    out = [
        "1a. Bulk transfer between two hosts on 127.0.0.1 (MB/s = 10^6 B/s; median of "
        f"{result['rounds']} interleaved rounds)\n"
        + table(["transfer", "bytes", "MB/s", "min", "max", "x raw 64 KiB"], rows)
    ]
    rows = []
    for size, r in result["ratios"].items():
        rows.append([_kib(int(size)), r["cas_mb_s"], r["raw_mb_s"], r["cas_over_raw"], r["raw_same_writes_mb_s"], r["cas_over_raw_same_writes"]])
    out.append(
        "1b. CAS Get against the raw stream\n"
        + table(["block", "CAS MB/s", "raw MB/s", "CAS/raw", "raw same-writes MB/s", "CAS/raw same-writes"], rows)
    )
    rtt = result["rtt"]
    raw_open, raw_new = rtt["raw_open_ms"]["median"], rtt["raw_new_stream_ms"]["median"]
    rows = [
        ["raw echo, open stream", rtt["raw_open_ms"]["n"], raw_open, rtt["raw_open_ms"]["p90"], 1.0],
        ["CAS Get 256 B, open stream", rtt["cas_open_ms"]["n"], rtt["cas_open_ms"]["median"], rtt["cas_open_ms"]["p90"], ratio(rtt["cas_open_ms"]["median"], raw_open)],
        ["raw echo, new stream each", rtt["raw_new_stream_ms"]["n"], raw_new, rtt["raw_new_stream_ms"]["p90"], ratio(raw_new, raw_open)],
        ["CAS Get 256 B, new stream each", rtt["cas_new_stream_ms"]["n"], rtt["cas_new_stream_ms"]["median"], rtt["cas_new_stream_ms"]["p90"], ratio(rtt["cas_new_stream_ms"]["median"], raw_open)],
    ]
    out.append("1c. Round trips (ms)\n" + table(["request/response", "n", "median ms", "p90 ms", "x raw open"], rows))
    return out
