"""Where the time goes: the profiles behind docs/benchmarks.md, for the figures far from their limit.

``python -m bench.breakdown [cas] [sync] [publish] [batch]`` (all four by default), each on
a fresh local swarm:

- ``cas``: bulk CAS Get of 10 MiB in 4 KiB blocks under cProfile. Prints the wall time with and
  without the profiler, the profiled time by area (trio's scheduler, yamux, Noise, sockets, the
  hand-off to worker threads, rlp2p, ...), how many writes went to the sockets, and the time the
  server spent in store calls (each Get is one worker-thread call).
- ``sync``: Bob syncing 1,000 messages (paged:64, nothing embedded) and 10,000 (one page, all
  embedded) under cProfile, the same way.
- ``publish``: appending and publishing one message with 1, 3 and 5 replicas: as built; with
  Alice's DHT put of the record started in the background instead of awaited (the proposed fix);
  also with the storage peers' DHT announcements switched off (in a one-process swarm they share
  Alice's CPU); and with no DHT work at all.
- ``batch``: publishing 1,000 new messages to 3 replicas, with every server-side block write timed.

cProfile slows this code down several times (it traces every call), so its shares are indicative;
the wall times printed without it are the real ones. Uses nothing but rlp2p's public objects,
wrapping a few of their public methods on the instance for timing (no private attribute is
touched).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import trio

from bench.common import bodies, know_peers
from rlp2p.core.address import address_of
from rlp2p import generate_log_key
from rlp2p import LogMode
from rlp2p import Node
from rlp2p.node.reader import FETCH_BATCH

AREAS: list[tuple[str, str]] = [
    ("select.epoll", "waiting for I/O (epoll)"),
    ("_thread.lock", "handing work to worker threads (locks)"),
    ("_thread.start_new_thread", "handing work to worker threads (locks)"),
    ("_socket.socket", "socket send/recv syscalls"),
    ("ChaCha20Poly1305", "Noise encryption"),
    ("/libp2p/security/", "Noise framing (libp2p)"),
    ("/libp2p/stream_muxer/", "yamux (libp2p)"),
    ("/libp2p/kad_dht/", "Kademlia DHT (libp2p)"),
    ("/libp2p/", "other libp2p"),
    ("/trio/", "trio scheduler and primitives"),
    ("/outcome/", "trio scheduler and primitives"),
    ("/rlp2p/", "rlp2p"),
    ("sqlite3", "SQLite"),
    ("google/protobuf", "protobuf"),
    ("_hashlib", "hashing"),
    ("cryptography", "other cryptography"),
    ("/multiaddr/", "multiaddr"),
    ("/cid/", "CIDs and multihashes (py-cid, py-multihash)"),
    ("/multihash/", "CIDs and multihashes (py-cid, py-multihash)"),
    ("/logging/", "logging calls (below their level)"),
    ("/python3.", "Python standard library and builtins"),
    ("~:0(<", "Python standard library and builtins"),
]


def area_of(filename: str, name: str) -> str:
    where = f"{filename} {name}"
    for needle, area in AREAS:
        if needle in where:
            return area
    return "other"


def by_area(profile: cProfile.Profile) -> list[tuple[str, float]]:
    """Own time (tottime) summed by area, largest first."""
    stats = pstats.Stats(profile)
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[area_of(filename, name)] += tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])


def call_count(profile: cProfile.Profile, needle: str) -> int:
    stats = pstats.Stats(profile)
    return sum(v[1] for (f, _l, n), v in stats.stats.items() if needle in f"{f} {n}")  # type: ignore[attr-defined]


def print_areas(profile: cProfile.Profile, top: int = 10) -> None:
    areas = by_area(profile)
    total = sum(t for _, t in areas) or 1.0
    for area, seconds in areas[:top]:
        print(f"      {100 * seconds / total:5.1f}%  {seconds:7.2f} s  {area}")


def print_top(profile: cProfile.Profile, needle: str = "/rlp2p/", top: int = 6) -> None:
    """The functions under ``needle`` with the most own time (cProfile's cumulative times are
    meaningless for coroutines: it counts each resumption as a call)."""
    stats = pstats.Stats(profile)
    rows = [
        (v[2], v[1], f"{Path(f).parent.name}/{Path(f).name}:{line}({n})")
        for (f, line, n), v in stats.stats.items()  # type: ignore[attr-defined]
        if needle in f and "/bench/" not in f
    ]
    for tottime, calls, where in sorted(rows, reverse=True)[:top]:
        print(f"      own {tottime:6.2f} s  {calls:>8} calls  {where}")


@contextmanager
def profiled() -> Iterator[cProfile.Profile]:
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield profile
    finally:
        profile.disable()


@contextmanager
def timed_calls(obj: Any, name: str, into: list[float], sync: bool = False) -> Iterator[None]:
    """Wrap ``obj.name`` (on the class or instance) so each call's duration lands in ``into``."""
    original = getattr(obj, name)
    if sync:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                into.append(time.perf_counter() - start)
    else:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                into.append(time.perf_counter() - start)

    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        setattr(obj, name, original)


@asynccontextmanager
async def local_swarm(storage: int) -> Any:
    from rlp2p.testing import LocalSwarm

    with tempfile.TemporaryDirectory(prefix="rlp2p-breakdown-") as tmp:
        async with trio.open_nursery() as nursery:
            swarm = LocalSwarm(Path(tmp), nursery, timeout=60.0)
            try:
                await swarm.add_storage(storage)
                yield swarm
            finally:
                with trio.CancelScope(shield=True):
                    await swarm.close()


def _ms(values: Sequence[float]) -> str:
    return f"median {statistics.median(values) * 1e3:.1f} ms" if values else "-"


# --- cas --------------------------------------------------------------------------------------


async def cas(total: int = 10 * 1024 * 1024, size: int = 4096) -> None:
    print(f"\ncas: bulk CAS Get of {total / 1e6:.1f} MB in {size // 1024} KiB blocks, one stream, {FETCH_BATCH} pipelined a batch")
    async with local_swarm(1) as swarm:
        server = swarm.storage[0]
        client = await swarm.start_node("client")
        data = [os.urandom(size) for _ in range(-(-total // size))]
        addresses = [address_of(d) for d in data]
        await server.astore.call(server.store.put_blocks, list(zip(addresses, data, strict=True)))

        async def fetch() -> float:
            start = time.perf_counter()
            async with client.cas(server.peer_id) as c:
                for i in range(0, len(addresses), FETCH_BATCH):
                    await c.get_many(addresses[i : i + FETCH_BATCH])
            return time.perf_counter() - start

        await fetch()  # warm-up
        plain = await fetch()
        store_calls: list[float] = []
        # every store call of the server goes through its one worker-thread boundary, astore.call
        with timed_calls(server.astore, "call", store_calls), profiled() as profile:
            with_profiler = await fetch()
        print(f"   wall: {plain:.2f} s ({total / plain / 1e6:.2f} MB/s) without the profiler, {with_profiler:.2f} s with it")
        sends = call_count(profile, "method 'send' of '_socket.socket'")
        print(f"   {len(addresses)} blocks: {sends} socket sends ({sends / len(addresses):.1f} a block, both directions)")
        print(
            f"   server store calls (each a worker-thread call): {len(store_calls)}, "
            f"{_ms(store_calls)}, {sum(store_calls):.2f} s in all (profiled run)"
        )
        print("   profiled own time by area:")
        print_areas(profile)
        print("   rlp2p functions by own time:")
        print_top(profile)


# --- sync -------------------------------------------------------------------------------------


async def _sync_once(swarm: Any, n: int, mode: LogMode) -> None:
    storage = swarm.storage[:3]
    alice = await swarm.start_node(f"alice-{n}-{mode.to_args()[0]}")
    know_peers(alice, storage)
    publisher = alice.publisher(generate_log_key(), mode=mode, replicas=3, replica_peers=[s.peer_id for s in storage])
    await publisher.append(bodies(n, 256, seed=n))
    await publisher.publish()
    await swarm.stop(alice)
    await trio.sleep(1.0)
    results = []
    for profile_it in (False, True):
        bob: Node = await swarm.start_node(f"bob-{n}-{mode.to_args()[0]}-{profile_it}")
        know_peers(bob, storage)
        await trio.sleep(0.5)
        if profile_it:
            with profiled() as profile:
                report = await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(publisher.name)
        else:
            report = await bob.reader(storage_peers=[s.peer_id for s in storage]).sync(publisher.name)
        results.append(report.seconds)
        await swarm.stop(bob)
    layout, embed = mode.to_args()
    print(f"\nsync: Bob syncs N = {n:,} ({layout}/{embed}) from 3 storage peers")
    print(f"   wall: {results[0]:.2f} s without the profiler, {results[1]:.2f} s with it; {report.round_trips} round trips, {report.requests} requests")
    print("   profiled own time by area (Bob and the storage peers share this process):")
    print_areas(profile)
    print("   rlp2p functions by own time:")
    print_top(profile)


async def sync() -> None:
    async with local_swarm(3) as swarm:
        await _sync_once(swarm, 1_000, LogMode.paged(64, embed=0))
        await _sync_once(swarm, 10_000, LogMode.fully_replicated(embed=None))


# --- publish ----------------------------------------------------------------------------------


async def publish(reps: int = 5, existing: int = 50, pause: float = 1.0) -> None:
    print(f"\npublish: append + publish one message to a log of {existing}, median of {reps} ({pause:g} s apart, so background work ends)")
    async with local_swarm(5) as swarm:
        storage: list[Node] = swarm.storage
        alice = await swarm.start_node("alice")
        know_peers(alice, storage)
        assert alice.discovery is not None
        original_put = alice.discovery.put_record
        put_times: list[float] = []

        async def put_in_background(info: Any) -> None:
            # the proposed patch: start the DHT put in the node's nursery and return at once
            alice.in_background(original_put, info)

        async def no_put(info: Any) -> None:
            return None

        variants = [
            ("as built", original_put, True),
            ("Alice's DHT put not awaited (patch)", put_in_background, True),
            ("... and storage peers announce nothing", put_in_background, False),
            ("no DHT work at all", no_put, False),
        ]
        try:
            for variant, put, announce in variants:
                for s in storage:  # their DHT provide + put of each new record, through their public Discovery
                    assert s.discovery is not None
                    if announce:
                        vars(s.discovery).pop("announce_log", None)
                        vars(s.discovery).pop("put_record", None)
                    else:
                        s.discovery.announce_log = no_put  # type: ignore[method-assign]
                        s.discovery.put_record = no_put  # type: ignore[method-assign]
                alice.discovery.put_record = put  # type: ignore[method-assign]
                line = []
                for replicas in (1, 3, 5):
                    publisher = alice.publisher(
                        generate_log_key(), mode=LogMode.paged(64, embed=0), replicas=replicas,
                        replica_peers=[s.peer_id for s in storage[:replicas]],
                    )
                    await publisher.append(bodies(existing, 256, seed=replicas))
                    await publisher.publish()
                    times = []
                    for _ in range(reps):
                        await trio.sleep(pause)
                        await publisher.append(bodies(1, 256, seed=7))
                        put_times.clear()
                        start = time.perf_counter()
                        if put is original_put:
                            with timed_calls(alice.discovery, "put_record", put_times):
                                await publisher.publish()
                        else:
                            await publisher.publish()
                        times.append(time.perf_counter() - start)
                    extra = f" (Alice's DHT put {_ms(put_times)})" if put is original_put else ""
                    line.append(f"{replicas}: {statistics.median(times) * 1e3:.0f} ms{extra}")
                print(f"   {variant:40s} replicas " + "; ".join(line))
        finally:
            alice.discovery.put_record = original_put  # type: ignore[method-assign]
            for s in storage:
                vars(s.discovery).pop("announce_log", None)
                vars(s.discovery).pop("put_record", None)


# --- batch ------------------------------------------------------------------------------------


async def batch(messages: int = 1_000) -> None:
    print(f"\nbatch: publish {messages:,} new messages to 3 replicas")
    async with local_swarm(3) as swarm:
        storage = swarm.storage
        alice = await swarm.start_node("alice")
        know_peers(alice, storage)
        publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(64, embed=0), replicas=3, replica_peers=[s.peer_id for s in storage])
        await publisher.append(bodies(messages, 256, seed=1))
        writes: list[float] = []
        blocks: list[int] = []

        def counted(original: Callable[..., Any]) -> Callable[..., Any]:
            def put(items: Any, *args: Any, **kwargs: Any) -> Any:  # put_block goes through put_blocks
                items = list(items)
                blocks.append(len(items))
                start = time.perf_counter()
                try:
                    return original(items, *args, **kwargs)
                finally:
                    writes.append(time.perf_counter() - start)

            return put

        # wrapped on each node's own store object, so only this swarm's writes are counted: a
        # storage peer writes what it admits with put_blocks_as, Alice with put_blocks
        stores = [n.store for n in (alice, *storage)]
        methods = ("put_blocks", "put_blocks_as")
        for store in stores:
            for method in methods:
                setattr(store, method, counted(getattr(store, method)))
        try:
            start = time.perf_counter()
            report = await publisher.publish()
            seconds = time.perf_counter() - start
        finally:
            for store in stores:
                for method in methods:
                    vars(store).pop(method, None)
        print(f"   wall: {seconds:.2f} s ({messages / seconds:.0f} messages/s), {report.bytes_sent:,} bytes sent")
        print(
            f"   block writes in the stores of Alice and the storage peers: {len(writes)} transactions (synchronous=FULL: "
            f"one fsync each) for {sum(blocks):,} blocks, {_ms(writes)} each, {sum(writes):.2f} s in all"
        )


SECTIONS: dict[str, Callable[[], Awaitable[None]]] = {"cas": cas, "sync": sync, "publish": publish, "batch": batch}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", metavar="WHAT", help=f"any of {', '.join(SECTIONS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [w for w in args.what if w not in SECTIONS]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)} (choose from {', '.join(SECTIONS)})")
    from rlp2p import quiet_libp2p_logs

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    quiet_libp2p_logs(logging.CRITICAL)

    async def run() -> None:
        for name in args.what or list(SECTIONS):
            await SECTIONS[name]()

    trio.run(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
