"""Section 5, the problem the specification exists for: two mostly-offline peers.

Plain MVDS (batch mode) between Alice and Bob against the remote log with always-on storage, from
the pure epoch simulation :mod:`bench.offline_sim` (its docstring states the model and the
byte model). The baseline is MVDS: ratios are remote log / MVDS for the share delivered and the
latency, MVDS / remote log for the bandwidth multiplier.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench import offline_sim
from bench.common import Context
from bench.measure import ratio, table


def simulate(fractions: tuple[float, ...], seeds: int, payload_bytes: int) -> dict[str, Any]:
    config = offline_sim.SimConfig(payload_bytes=payload_bytes)
    results = offline_sim.run_comparison(fractions, seeds=seeds, config=config)
    rows = [dataclasses.asdict(r) for r in results]
    compare = []
    for online in fractions:
        mvds = next(r for r in results if r.design == offline_sim.MVDS and r.online == online)
        log = next(r for r in results if r.design == offline_sim.REMOTE_LOG and r.online == online)
        compare.append(
            {
                "online": online,
                "mvds_delivered_share": round(mvds.delivered_share, 4),
                "log_delivered_share": round(log.delivered_share, 4),
                "delivered_log_over_mvds": ratio(log.delivered_share, mvds.delivered_share),
                "mvds_latency_p50": mvds.latency_median,
                "log_latency_p50": log.latency_median,
                "latency_p50_log_over_mvds": ratio(log.latency_median, mvds.latency_median),
                "mvds_latency_p95": mvds.latency_p95,
                "log_latency_p95": log.latency_p95,
                "mvds_multiplier": round(mvds.multiplier, 3),
                "log_multiplier": round(log.multiplier, 3),
                "multiplier_mvds_over_log": ratio(mvds.multiplier, log.multiplier),
            }
        )
    return {
        "status": "ok",
        "config": dataclasses.asdict(config),
        "seeds": seeds,
        "results": rows,
        "compare": compare,
        "table": offline_sim.format_table(results),
    }


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    ctx.say(f"offline: simulating {len(cfg.offline_fractions)} online fractions x {cfg.offline_seeds} seeds")
    return simulate(cfg.offline_fractions, cfg.offline_seeds, cfg.body_bytes)


def render(result: dict[str, Any]) -> list[str]:
    c = result["config"]
    rows = [
        [
            f"{r['online']:g}",
            f"{100 * r['mvds_delivered_share']:.1f}%",
            f"{100 * r['log_delivered_share']:.1f}%",
            r["mvds_latency_p50"],
            r["log_latency_p50"],
            r["mvds_latency_p95"],
            r["log_latency_p95"],
            r["mvds_multiplier"],
            r["log_multiplier"],
        ]
        for r in result["compare"]
    ]
    return [
        f"5. Two mostly-offline peers: plain MVDS against the remote log (epoch simulation, {c['n_messages']} "
        f"messages of {c['payload_bytes']} B over {c['epochs']} epochs, {result['seeds']} seeds; latency in epochs; "
        "multiplier = bytes on the air / bytes delivered)\n"
        + table(["online", "MVDS delivered", "log delivered", "MVDS p50", "log p50", "MVDS p95", "log p95", "MVDS mult", "log mult"], rows),
        "   full simulation table:\n" + "\n".join("   " + line for line in result["table"].splitlines()),
    ]
