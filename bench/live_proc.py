"""The processes of the live section's push path: ``python -m bench.live_proc storage|follower``.

``bench/live.py`` starts each storage peer and Carol (the push follower) as its own OS process
with this module, so Carol's latency is her path (the storage peer that pushes, the wire, her
node), not one process's CPU for every node of the bench. Each process prints one JSON object a
line on stdout: first ``{"addr": ...}`` (storage) or ``{"ready": ..., "rtt": [...]}`` (follower),
then one event a line, each stamped with ``time.monotonic()`` (``CLOCK_MONOTONIC``: one clock for
every process on a Linux machine, unlike trio's clock, which is per run):

* storage: ``accept`` (the record is committed and the node hands it to its announcer, which
  hands it to the push streams: where ``push_ms`` starts), ``writing`` and ``written`` (the push
  frames handed to the stream, and its write returned: after the reader may have read them);
* follower: ``frame`` (a pushed record and its messages read and verified), ``rebuilt`` (the
  head page rebuilt and offered), ``commit`` and ``committed`` (her store transaction before
  ``on_message``: the inbox's in a sync, or ``deliver_head`` when the pushed page is delivered
  without one), ``message`` (``on_message``), ``report`` (a sync's or a delivery's bytes).

The hooks wrap public methods of this process's own classes; nothing in ``rlp2p`` changes.
SIGTERM or SIGINT stops a process cleanly; its parent (the section) stops every one it started.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

import trio

#: round trips Carol times on an open echo stream to her push peer before the messages
RTT_SAMPLES = 50


_out = threading.Lock()  # one line at a time: the store's hooks emit from its worker thread


def emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def _hook_storage() -> None:
    """Stamp the push writes of this process's push server (public methods wrapped)."""
    from rlp2p.wire.push import PushServer

    queued: deque[int] = deque(maxlen=64)  # seqs pushed, not yet written (one stream here)
    push = PushServer.push

    def pushed(self: PushServer, info: Any) -> None:
        if self.watching(info.name):
            queued.append(info.sequence)
        push(self, info)

    handle = PushServer.handle

    async def handled(self: PushServer, stream: Any, **options: Any) -> None:
        write = stream.write

        async def timed_write(data: bytes) -> None:
            seq = queued.popleft() if queued else None  # (the held record on opening: none)
            if seq is not None:
                emit("writing", seq=seq, bytes=len(data))
            await write(data)
            if seq is not None:
                emit("written", seq=seq)

        stream.write = timed_write
        await handle(self, stream, **options)

    PushServer.push = pushed  # type: ignore[method-assign]
    PushServer.handle = handled  # type: ignore[method-assign]


def _stamp_acceptance(node: Any) -> None:
    """``accept``: the node's announcer is handed the record it just committed (the first thing
    ``Node`` does with a newer record; the push streams get it in the same call)."""
    announcements = node.announcements
    announce = announcements.announce

    def accepted(info: Any) -> None:
        emit("accept", seq=info.sequence, record_bytes=len(info.raw))
        announce(info)

    announcements.announce = accepted


async def storage(data: Path, bootstrap: list[str]) -> None:
    from bench.probes import install
    from rlp2p.node.node import Node, NodeConfig

    _hook_storage()
    node = Node.open(data, config=NodeConfig(storage=True, bootstrap=tuple(bootstrap)))
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with node:
                install(node.host)
                _stamp_acceptance(node)
                print(json.dumps({"addr": node.addrs[0]}), flush=True)
                async for _ in signals:
                    break
    finally:
        node.close_store()


async def follower(data: Path, name: str, peers: list[str], deliveries: str) -> None:
    """Carol: ``follow(mesh=False)`` on a node without gossipsub, from ``peers`` in that order,
    her store's deliveries ``deliveries`` (NORMAL, as ``Node.open`` opens a node that is not a
    storage peer: no fsync; FULL: each fsynced)."""
    from bench.common import peer_info
    from bench.probes import rtt_baseline
    from rlp2p.node.follow import Follower
    from rlp2p.node.node import Node, NodeConfig
    from rlp2p.node.reader import Reader
    from rlp2p.store import open_store
    from rlp2p.store.lock import lock_data_dir
    from rlp2p.store.sqlite import SQLiteStore
    import rlp2p.node.follow as follow_module

    deliver = SQLiteStore.deliver

    def committed(self: SQLiteStore, name: str, items: Any, *args: Any, **kwargs: Any) -> Any:
        # the inbox transaction before on_message (its fsync with FULL), in the store's thread
        emit("commit", seq=items[-1][0] if items else 0)
        out = deliver(self, name, items, *args, **kwargs)
        emit("committed", seq=items[-1][0] if items else 0)
        return out

    deliver_head = SQLiteStore.deliver_head

    def committed_head(self: SQLiteStore, name: str, record: bytes, seq: int, head: bytes, page: bytes, items: Any, **kwargs: Any) -> bool:
        # the same transaction on the pushed path (Reader.deliver_pushed: no sync)
        emit("commit", seq=items[-1][0] if items else 0)
        out = deliver_head(self, name, record, seq, head, page, items, **kwargs)
        if out:
            emit("committed", seq=items[-1][0] if items else 0)
        return out

    SQLiteStore.deliver = committed  # type: ignore[method-assign, assignment]
    SQLiteStore.deliver_head = committed_head  # type: ignore[method-assign, assignment]

    records = follow_module.pushed_records
    heads: dict[bytes, int] = {}  # head page CID -> seq of the records pushed (bounded below)

    async def stamped(*args: Any, **kwargs: Any) -> Any:
        async for pushed in records(*args, **kwargs):
            info = pushed.info
            if info is not None:  # (None: a compact record it could not expand; it syncs)
                emit("frame", seq=info.sequence, bytes=pushed.size, messages=len(pushed.messages))
                if len(heads) >= 64:
                    heads.clear()
                heads[info.head] = info.sequence
            yield pushed

    follow_module.pushed_records = stamped  # type: ignore[assignment]
    offer = Reader.offer_block

    def offered(self: Reader, address: bytes, data: bytes) -> None:
        # the follower rebuilt the head page and hands it to its sync
        offer(self, address, data)
        if address in heads:
            emit("rebuilt", seq=heads.pop(address))

    Reader.offer_block = offered  # type: ignore[method-assign]

    lock = lock_data_dir(data)
    node = Node(open_store(data, deliveries=deliveries), config=NodeConfig(announce=False))  # type: ignore[arg-type]
    infos = [peer_info(p) for p in peers]
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with node, trio.open_nursery() as nursery:
                for info in infos:
                    node.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
                carol: Follower

                def on_message(delivery: Any) -> None:
                    emit("message", seq=delivery.seq, size=len(delivery.data), rebuilt=carol.stats.rebuilt, syncs=carol.stats.syncs)

                carol = Follower(
                    node.reader(storage_peers=[i.peer_id for i in infos]),
                    [name],
                    on_message=on_message,
                    poll_interval=24 * 3600.0,
                    on_report=lambda r: emit("report", seq=r.record_seq, bytes_in=r.bytes_in),
                    mesh=False,
                )
                nursery.start_soon(carol.run)
                await carol.caught_up.wait()
                rtts = await rtt_baseline(node.host, infos[0].peer_id, RTT_SAMPLES)
                print(json.dumps({"ready": True, "rtt": rtts}), flush=True)
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()
    finally:
        node.close_store()
        lock.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["storage", "follower"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--name", help="the log to follow (follower)")
    parser.add_argument("--peer", action="append", default=[], help="a storage peer's /p2p/ address (follower)")
    parser.add_argument("--deliveries", choices=["FULL", "NORMAL"], default="NORMAL", help="the follower's deliveries (default NORMAL, as Node.open)")
    args = parser.parse_args(argv)
    from rlp2p.p2p.host import quiet_libp2p_logs
    import logging

    quiet_libp2p_logs(logging.CRITICAL)
    if args.role == "storage":
        trio.run(storage, args.data, args.bootstrap)
    else:
        if not args.name or not args.peer:
            parser.error("a follower needs --name and --peer")
        trio.run(partial(follower, args.data, args.name, args.peer, args.deliveries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
