"""``nspoll``: the NS Poll extension (conditional, batched Fetch) against plain Fetch, same run.

a. A caught-up reader of one log, fanout 3: bytes and round trips of ``Reader.poll`` (what a
   caught-up ``Reader.sync`` now sends) beside ``Reader(conditional=False).sync`` (three
   Fetches, each answered with the whole record).
b. A reader following 100 logs, none changed: one ``Reader.poll`` of all (round trips per storage
   peer, bytes) beside 100 caught-up syncs with Fetch.
c. Record bytes: the compact default (V2 only, no pubKey) beside the V1-compatible record.
d. A changed log, fanout 3: the bytes a ``Reader.poll`` receives, over one record's. The record
   is asked of one storage peer, the sequence only of the others (``sequence_only``): about one
   record, where each of the three sent it before (about 3).

Goals (the issue's limits): ``poll_bytes_fanout3`` 200 B, ``poll_round_trips`` 1,
``poll_100_logs_round_trips`` 1 per storage peer, ``poll_100_logs_bytes`` 100 x 200 B,
``record_bytes`` 221 B.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Context, know_peers, make_log, peer_ids
from bench.goals import goal
from bench.measure import ratio, summary, table
from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.page import LogMode
from rlp2p.core.record import create_record
from rlp2p.node.polling import PollReport

#: logs the following reader of (b) polls
FOLLOWED_LOGS = 100
#: the issue's limit for a caught-up poll of one log with fanout 3, bytes in + out
POLL_BYTES_LIMIT = 200
RECORD_BYTES_LIMIT = 221


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    storage = ctx.storage[:3]
    ids = peer_ids(storage)
    alice = await ctx.start_node("alice")
    try:
        ctx.say("nspoll: Alice publishes a log of 10")
        publisher, _ = await make_log(ctx, alice, 10, LogMode.paged(64, embed=0), storage, seed=11)
    finally:
        await ctx.stop_node(alice)
    log = publisher.name

    # (b)'s logs: records every storage peer holds and Bob has accepted (their pages play no part)
    followed = []
    records: list[tuple[str, bytes, bytes]] = []
    for i in range(FOLLOWED_LOGS - 1):
        key = generate_log_key()
        head = address_of(b"nspoll page %d" % i)
        records.append((log_name(key.public_key), create_record(key, head, 5), head))
    for node in storage:
        await node.astore.call(lambda n=node: [n.store.put_record(name, raw, 5) for name, raw, _ in records])

    # (d)'s log: Bob accepts sequence 5, then every storage peer gets sequence 6
    changing_key = generate_log_key()
    changing = log_name(changing_key.public_key)
    changing_head = address_of(b"nspoll changing page")
    changing_old = create_record(changing_key, changing_head, 5)
    changing_new = create_record(changing_key, address_of(b"nspoll changed page"), 6)
    for node in storage:
        await node.astore.call(lambda n=node: n.store.put_record(changing, changing_old, 5))

    bob = await ctx.start_node("bob")
    know_peers(bob, storage)
    try:
        reader = bob.reader(storage_peers=ids, fanout=3)
        fetcher = bob.reader(storage_peers=ids, fanout=3, conditional=False)  # the baseline: Fetch
        first = await reader.sync(log)
        if first.new_messages != 10:
            raise RuntimeError(f"Bob got {first.new_messages} of 10 messages")
        await bob.astore.call(lambda: [bob.store.set_reader_record(name, raw, 5, head) for name, raw, head in records])
        followed = [name for name, _, _ in records] + [log]

        ctx.say(f"nspoll: {cfg.poll_samples} caught-up polls and fetches of one log, fanout 3")
        one_poll: list[PollReport] = []
        one_fetch: list[Any] = []
        poll_ms: list[float] = []
        fetch_ms: list[float] = []
        for _ in range(cfg.poll_samples):
            report = PollReport()
            start = time.perf_counter()
            polls = await reader.poll([log], report)
            poll_ms.append(time.perf_counter() - start)
            if polls[log].changed or report.failed:
                raise RuntimeError(f"a caught-up poll was not caught up: {report.failed}")
            one_poll.append(report)
            start = time.perf_counter()
            synced = await fetcher.sync(log)
            fetch_ms.append(time.perf_counter() - start)
            if not synced.up_to_date:
                raise RuntimeError("a caught-up sync was not up to date")
            one_fetch.append(synced)

        ctx.say(f"nspoll: a reader following {FOLLOWED_LOGS} logs polls them, then syncs each")
        many = PollReport()
        start = time.perf_counter()
        polls = await reader.poll(followed, many)
        many_s = time.perf_counter() - start
        if any(p.changed for p in polls.values()) or many.failed:
            raise RuntimeError(f"a caught-up poll of {FOLLOWED_LOGS} logs was not caught up: {many.failed}")
        fetch_rt = fetch_bytes = 0
        start = time.perf_counter()
        for name in followed:
            synced = await fetcher.sync(name)
            fetch_rt += synced.round_trips
            fetch_bytes += synced.bytes_in + synced.bytes_out
        each_s = time.perf_counter() - start

        ctx.say("nspoll: a poll of a changed log, fanout 3")
        await bob.astore.call(lambda: bob.store.set_reader_record(changing, changing_old, 5, changing_head))
        for node in storage:
            await node.astore.call(lambda n=node: n.store.put_record(changing, changing_new, 6))
        changed = PollReport()
        polls = await reader.poll([changing], changed)
        if polls[changing].best is None or polls[changing].best.sequence != 6 or changed.failed:
            raise RuntimeError(f"a changed log was not seen changed: {changed.failed}")
    finally:
        await ctx.stop_node(bob)

    last_poll, last_fetch = one_poll[-1], one_fetch[-1]
    poll_bytes = last_poll.bytes_in + last_poll.bytes_out
    fetch_bytes_one = last_fetch.bytes_in + last_fetch.bytes_out
    poll_rt = max(last_poll.round_trips.values())
    many_rt = max(many.round_trips.values())
    many_bytes = many.bytes_in + many.bytes_out
    compact = len(create_record(generate_log_key(), address_of(b"x"), 1))
    legacy = len(create_record(generate_log_key(), address_of(b"x"), 1, v1_compatible=True))
    return {
        "status": "ok",
        "one_log": {
            "poll": {"ms": summary(poll_ms, scale=1e3), "round_trips": poll_rt, "rounds": last_poll.rounds,
                     "bytes_in": last_poll.bytes_in, "bytes_out": last_poll.bytes_out, "bytes": poll_bytes},
            "fetch": {"ms": summary(fetch_ms, scale=1e3), "round_trips": last_fetch.round_trips,
                      "bytes_in": last_fetch.bytes_in, "bytes_out": last_fetch.bytes_out, "bytes": fetch_bytes_one},
            "bytes_poll_over_fetch": ratio(poll_bytes, fetch_bytes_one),
        },
        "followed_logs": {
            "logs": len(followed),
            "storage_peers": len(ids),
            "poll": {"seconds": round(many_s, 4), "round_trips_per_peer": many_rt, "rounds": many.rounds,
                     "requests": many.requests, "bytes_in": many.bytes_in, "bytes_out": many.bytes_out, "bytes": many_bytes},
            "each_synced": {"seconds": round(each_s, 4), "round_trips": fetch_rt, "bytes": fetch_bytes},
            "bytes_poll_over_each": ratio(many_bytes, fetch_bytes),
            "seconds_poll_over_each": ratio(many_s, each_s),
        },
        "record_bytes": {"compact": compact, "v1_compatible": legacy, "compact_over_v1": ratio(compact, legacy)},
        "changed_log": {
            "bytes_in": changed.bytes_in,
            "bytes_out": changed.bytes_out,
            "rounds": changed.rounds,
            "record_bytes": len(changing_new),
            # one record a poll: about 1 (each of the three sent it before: about 3)
            "bytes_in_over_record": ratio(changed.bytes_in, len(changing_new)),
        },
        "goals": {
            "poll_bytes_fanout3": goal(poll_bytes, POLL_BYTES_LIMIT),
            "poll_round_trips": goal(poll_rt, 1),
            "poll_100_logs_round_trips": goal(many_rt, 1),
            "poll_100_logs_bytes": goal(many_bytes, FOLLOWED_LOGS * POLL_BYTES_LIMIT),
            "record_bytes": goal(compact, RECORD_BYTES_LIMIT),
        },
    }


def render(result: dict[str, Any]) -> list[str]:
    one, many, rec = result["one_log"], result["followed_logs"], result["record_bytes"]
    rows = [
        ["caught-up poll, 1 log, fanout 3", one["poll"]["ms"]["median"], one["poll"]["round_trips"], one["poll"]["bytes_in"], one["poll"]["bytes_out"], one["poll"]["bytes"]],
        ["caught-up sync (Fetch), 1 log, fanout 3", one["fetch"]["ms"]["median"], one["fetch"]["round_trips"], one["fetch"]["bytes_in"], one["fetch"]["bytes_out"], one["fetch"]["bytes"]],
        [f"poll of {many['logs']} logs (round trips per peer)", many["poll"]["seconds"] * 1e3, many["poll"]["round_trips_per_peer"], many["poll"]["bytes_in"], many["poll"]["bytes_out"], many["poll"]["bytes"]],
        [f"{many['logs']} caught-up syncs (Fetch)", many["each_synced"]["seconds"] * 1e3, many["each_synced"]["round_trips"], None, None, many["each_synced"]["bytes"]],
    ]
    changed = result.get("changed_log")
    if changed is not None:
        rows.append(
            [f"poll of a changed log, fanout 3 (in: x{changed['bytes_in_over_record']} a record)", None, changed["rounds"],
             changed["bytes_in"], changed["bytes_out"], changed["bytes_in"] + changed["bytes_out"]]
        )
    goals = [[name, g["value"], g["limit"], g["ratio"]] for name, g in result["goals"].items()]
    return [
        f"nspoll. NS Poll against Fetch ({many['storage_peers']} storage peers); records {rec['compact']} B compact, "
        f"{rec['v1_compatible']} B with V1 fields (x{rec['compact_over_v1']})\n"
        + table(["", "ms", "round trips", "bytes in", "bytes out", "bytes"], rows)
        + "\n"
        + table(["goal", "value", "limit", "value / limit"], goals)
    ]
