"""``rlp2p demo``: the remote log in one local swarm, narrated with its figures.

Storage peers start; Alice publishes and goes offline; Bob comes online and syncs from the
storage peers alone; Alice publishes more while Bob is offline; a storage peer dies; Bob syncs
again and then polls, caught up. Everything runs on 127.0.0.1 in this process, on the embedded
SQLite storage, in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.node.swarm import LocalSwarm


class _Narrator:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.started = time.monotonic()

    def say(self, text: str, **figures: Any) -> None:
        if self.as_json:
            print(json.dumps({"t": round(time.monotonic() - self.started, 3), "step": text, **figures}), flush=True)
        else:
            print(f"[{time.monotonic() - self.started:6.2f}s] {text}", flush=True)


def _sync_figures(report: Any) -> dict[str, Any]:
    return {
        "new_messages": report.new_messages,
        "round_trips": report.round_trips,
        "streams": report.streams,
        "requests": report.requests,
        "bytes_in": report.bytes_in,
        "bytes_out": report.bytes_out,
        "seconds": round(report.seconds, 3),
    }


async def run_demo(args: argparse.Namespace) -> int:
    say = _Narrator(args.json).say
    n_first, n_more = args.messages, max(1, args.messages // 4)
    storage_count = args.storage_peers  # the command refuses fewer than 3
    mode = LogMode.paged(64, embed=16)
    with tempfile.TemporaryDirectory(prefix="rlp2p-demo-") as tmp:
        root = Path(tmp)
        async with trio.open_nursery() as nursery:
            swarm = LocalSwarm(root, nursery)
            storage = await swarm.add_storage(storage_count)
            say(f"{storage_count} storage peers are up", peers=[s.peer_id.to_string() for s in storage])

            key = generate_log_key()

            async def alice_publishes(bodies: list[bytes]) -> tuple[Any, Any]:
                """Alice comes online (from her data folder), publishes, and leaves."""
                alice = await swarm.start_node("alice")
                publisher = alice.publisher(key, mode=mode)
                await publisher.append(bodies)
                report = await publisher.publish()
                await swarm.stop(alice)
                return publisher, report

            publisher, report = await alice_publishes([f"hello Bob, message {i}".encode() for i in range(n_first)])
            say(
                f"Alice published {report.messages} messages to log {publisher.name} ({mode.describe()}) "
                f"on {len(report.stored_on)} replicas: {report.bytes_sent} bytes in {report.seconds:.2f} s; "
                "Alice is now offline",
                messages=report.messages,
                replicas=len(report.stored_on),
                bytes_sent=report.bytes_sent,
                seconds=round(report.seconds, 3),
            )

            # Bob joins through another storage peer and finds the log through the DHT
            bob = await swarm.start_node("bob", bootstrap=(storage[-1].addrs[0],))
            reader = bob.reader()
            first = await reader.sync(publisher.name)
            (oldest,) = await reader.inbox(publisher.name, limit=1)
            (newest,) = await reader.inbox(publisher.name, after=first.delivered_seq - 1, limit=1)
            await swarm.stop(bob)
            say(
                f"Bob came online and synced {first.new_messages} messages from the storage peers alone: "
                f"{first.round_trips} round trips, {first.bytes_in} bytes in, {first.seconds:.2f} s; "
                f"first: {oldest.message.body.decode()!r}, last: {newest.message.body.decode()!r}",
                **_sync_figures(first),
            )

            publisher, report = await alice_publishes([f"while you were away, {i}".encode() for i in range(n_more)])
            say(
                f"While Bob was offline, Alice came back, published {n_more} more and left: "
                f"{report.bytes_sent} bytes sent (only the changed pages and new blocks)",
                messages=report.messages,
                bytes_sent=report.bytes_sent,
            )

            victim = next(s for s in storage if s.peer_id.to_string() == report.stored_on[0])
            await swarm.stop(victim)
            say(f"storage peer {victim.peer_id} went down")

            bob = await swarm.start_node("bob", bootstrap=swarm.bootstrap)
            second = await bob.reader().sync(publisher.name)
            say(
                f"Bob came back and got exactly the {second.new_messages} messages he missed "
                f"(seq {second.first_seq}..{second.last_seq}): {second.round_trips} round trips, "
                f"{second.bytes_in} bytes in, {second.seconds:.2f} s",
                **_sync_figures(second),
            )
            poll = await bob.reader().sync(publisher.name)
            say(
                f"Bob polled again: up to date in {poll.round_trips} round trip, {poll.bytes_in} bytes in, "
                f"{poll.seconds * 1000:.1f} ms",
                **_sync_figures(poll),
            )
            await swarm.close()
    say("demo finished")
    return 0
