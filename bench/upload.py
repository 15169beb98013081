"""Upload once (issue 11.3-4): the bytes Alice sends to 3 replicas against 1, and a publish's time.

Bytes: Alice publishes a new log of ``UPLOAD_MESSAGES`` messages (``body_bytes`` each) to 1 named
replica, then another of the same size to 3 with upload once (the default) and with upload each;
then one more message to each log. Bytes are what Alice's request streams carried out
(``PublishReport.bytes_sent``: blocks, records, the forward request; a confirming fetch only
for a target without a signed ack).
Goal ``publish_upload_ratio_3v1``: 3 replicas over 1 for the log's publish, limit 1.1.

Time: append and publish one message to 3 named replicas (upload once and each), against one
round trip on an open stream measured in the same run. Goal ``publish_ms_over_rtt`` (upload once,
the default), limit ``PUBLISH_RTT_LIMIT``: upload once is two round trips in sequence by design
(Alice's to the forwarder, the blocks and the record on the CAS stream with the forward request
beside them; the forwarder's to the targets, all at once, each target's signed ack coming back
with its answer), plus a store transaction, a signature and a verification at each hop. The
issue's ~1.2 ms counts one round trip (upload each's shape, also reported).
"""

from __future__ import annotations

import time
from typing import Any

import trio

from bench.common import TIMESTAMP, Context, bodies, know_peers, peer_ids
from bench.goals import goal
from bench.measure import ratio, summary, table
from bench.probes import rtt_baseline
from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode

MODE = LogMode.paged(64, embed=0)
#: messages of the log whose publish the bytes goal compares
UPLOAD_MESSAGES = 64
#: goal limits (issue 11's table: 1.1; the round trips upload once needs, see the module doc)
UPLOAD_RATIO_LIMIT = 1.1
PUBLISH_RTT_LIMIT = 3.0
PROBE_SAMPLES = 20


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    if len(ctx.storage) < 3:
        return {"status": "skipped", "reason": "needs 3 storage peers"}
    alice = await ctx.start_node("alice")
    know_peers(alice, ctx.storage)
    rows: list[dict[str, Any]] = []
    try:
        await trio.sleep(cfg.settle_seconds)
        rtt_ms = summary(await rtt_baseline(alice.host, ctx.storage[0].peer_id, PROBE_SAMPLES), scale=1e3)["median"]
        for replicas, upload in ((1, "each"), (3, "once"), (3, "each")):
            ctx.say(f"upload: {UPLOAD_MESSAGES} messages to {replicas} replica(s), upload {upload}")
            publisher = alice.publisher(
                generate_log_key(), mode=MODE, replicas=replicas, replica_peers=peer_ids(ctx.storage[:replicas]), upload=upload
            )
            await publisher.append(bodies(UPLOAD_MESSAGES, cfg.body_bytes, seed=replicas), timestamp=TIMESTAMP)
            first = await publisher.publish()
            one_bytes: list[int] = []
            one_s: list[float] = []
            for rep in range(max(cfg.publish_reps, 3)):
                await trio.sleep(cfg.settle_seconds)
                start = time.perf_counter()
                await publisher.append(bodies(1, cfg.body_bytes, seed=20_000 + rep))
                report = await publisher.publish()
                one_s.append(time.perf_counter() - start)
                one_bytes.append(report.bytes_sent)
                if len(report.stored_on) < replicas:
                    raise RuntimeError(f"publish stored on {len(report.stored_on)} of {replicas} replicas")
            ms = summary(one_s, scale=1e3)
            rows.append(
                {
                    "replicas": replicas,
                    "upload": upload,
                    "log_bytes_sent": first.bytes_sent,
                    "one_message_bytes_sent": int(summary(one_bytes, digits=0)["median"]),
                    "one_message_ms": ms,
                    "one_message_over_rtt": ratio(ms["median"], rtt_ms, 2),
                }
            )
    finally:
        await ctx.stop_node(alice)
    base, once, each = rows
    upload_ratio = ratio(once["log_bytes_sent"], base["log_bytes_sent"], 3)
    over_rtt = once["one_message_over_rtt"]
    return {
        "status": "ok",
        "mode": "paged:64/none",
        "messages": UPLOAD_MESSAGES,
        "rtt_open_ms": rtt_ms,
        "rows": rows,
        "one_message_ratio_3v1": ratio(once["one_message_bytes_sent"], base["one_message_bytes_sent"], 3),
        "each_ratio_3v1": ratio(each["log_bytes_sent"], base["log_bytes_sent"], 3),
        "goals": {
            "publish_upload_ratio_3v1": goal(upload_ratio, UPLOAD_RATIO_LIMIT),
            "publish_ms_over_rtt": goal(over_rtt, PUBLISH_RTT_LIMIT),
        },
    }


def render(result: dict[str, Any]) -> list[str]:
    if result.get("status") != "ok":
        return [f"9. Upload once: skipped ({result.get('reason', '')})"]
    rows = [
        [
            f"{r['replicas']} ({r['upload']})",
            r["log_bytes_sent"],
            r["one_message_bytes_sent"],
            r["one_message_ms"]["median"],
            r["one_message_over_rtt"],
        ]
        for r in result["rows"]
    ]
    goals = result["goals"]
    return [
        f"9. Upload once: bytes Alice sends for a log of {result['messages']} messages and for one more message "
        f"({result['mode']}); one round trip = {result['rtt_open_ms']} ms\n"
        + table(["replicas (upload)", "log bytes", "+1 msg bytes", "+1 msg ms", "x 1 round trip"], rows)
        + f"\n   3 vs 1 replicas: log {goals['publish_upload_ratio_3v1']['value']} (limit {UPLOAD_RATIO_LIMIT}), "
        f"one message {result['one_message_ratio_3v1']}, upload each {result['each_ratio_3v1']}; "
        f"publish one message {goals['publish_ms_over_rtt']['value']} x a round trip (limit {PUBLISH_RTT_LIMIT})"
    ]
