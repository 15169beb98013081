"""What every section of the suite shares: its settings, the swarm it runs in, and set-up helpers."""

from __future__ import annotations

import itertools
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import multiaddr
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from rlp2p import LogMode, Node, generate_log_key
from rlp2p.core.page import LogEntry, build_log
from rlp2p.testing import LocalSwarm

#: the source checkout bench/ sits in: child processes run there so that ``import bench`` works
REPO_ROOT = Path(__file__).resolve().parents[1]

#: timestamp of every benchmark message: fixed, so a log's bytes depend on its key and seed only
TIMESTAMP = 1_700_000_000


#: the scale section's log sizes; ``--scale-max`` takes those up to it
SCALE_SIZES = (1_000, 100_000, 1_000_000)
#: the largest the full run takes by default (a million takes several minutes: opt in)
SCALE_MAX = 100_000


def scale_sizes(scale_max: int) -> tuple[int, ...]:
    return tuple(n for n in SCALE_SIZES if n <= scale_max)


@dataclass(frozen=True)
class BenchConfig:
    """How much each section measures. :meth:`full` is ``python -m bench``; :meth:`quick` is ``--quick``."""

    quick: bool
    # 1. transport
    transfer_bytes: int
    block_sizes: tuple[int, ...]
    throughput_rounds: int
    rtt_open_samples: int
    rtt_new_samples: int
    # 2. sync cost
    sync_sizes: tuple[int, ...]
    sync_modes: tuple[LogMode, ...]
    body_bytes: int
    #: a cell whose projected time is over this is skipped, and the table says why
    cell_cap_seconds: float
    #: the whole sync grid stops starting cells after this
    sync_budget_seconds: float
    # 3. caught-up poll
    poll_log_size: int
    poll_samples: int
    # 4. publishing
    publish_existing: int
    publish_replicas: tuple[int, ...]
    #: "named" (the application names the replicas) and/or "dht" (placed through the DHT)
    publish_placements: tuple[str, ...]
    publish_reps: int
    batch_messages: int
    # 5. offline simulation
    offline_fractions: tuple[float, ...]
    offline_seeds: int
    # 6. DHT
    dht_keys: int
    js: bool = True
    # 7. scale: log sizes N, the first is the baseline (empty: the section is off)
    scale_sizes: tuple[int, ...] = ()
    #: storage peers in the swarm (publishing measures up to 5 replicas)
    storage_peers: int = 5
    #: replicas of the logs Bob syncs in sections 2 and 3
    sync_replicas: int = 3
    #: NodeConfig.timeout of every node (seconds for one network operation)
    node_timeout: float = 30.0
    #: pause that lets the background work of what came before (the storage peers' DHT
    #: announcements of a new record, a new node's routing-table refresh) end before a clock starts
    settle_seconds: float = 0.5

    @classmethod
    def full(cls, **overrides: Any) -> BenchConfig:
        settings: dict[str, Any] = dict(
            quick=False,
            transfer_bytes=10 * 1024 * 1024,
            block_sizes=(4096, 65536),
            throughput_rounds=3,
            rtt_open_samples=200,
            rtt_new_samples=100,
            sync_sizes=(100, 1_000, 10_000),
            sync_modes=(
                LogMode.fully_replicated(embed=None),
                LogMode.fully_replicated(embed=0),
                LogMode.paged(16, embed=0),
                LogMode.paged(64, embed=0),
                LogMode.paged(256, embed=0),
                LogMode.paged(64, embed=None),
                LogMode.paged(64, embed=16),
                LogMode.linked_list(embed=0),
            ),
            body_bytes=256,
            cell_cap_seconds=60.0,
            sync_budget_seconds=330.0,
            poll_log_size=1_000,
            poll_samples=20,
            publish_existing=1_000,
            publish_replicas=(1, 3, 5),
            publish_placements=("named", "dht"),
            publish_reps=5,
            batch_messages=1_000,
            offline_fractions=(0.05, 0.1, 0.25, 0.5, 0.9, 1.0),
            offline_seeds=10,
            dht_keys=10,
            scale_sizes=scale_sizes(SCALE_MAX),
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def quick_run(cls, **overrides: Any) -> BenchConfig:
        settings: dict[str, Any] = dict(
            quick=True,
            transfer_bytes=1024 * 1024,
            block_sizes=(4096, 65536),
            throughput_rounds=1,
            rtt_open_samples=20,
            rtt_new_samples=10,
            sync_sizes=(100,),
            sync_modes=(
                LogMode.fully_replicated(embed=None),
                LogMode.paged(16, embed=0),
            ),
            body_bytes=256,
            cell_cap_seconds=20.0,
            sync_budget_seconds=30.0,
            poll_log_size=100,
            poll_samples=3,
            publish_existing=50,
            publish_replicas=(1, 3),
            publish_placements=("named",),
            publish_reps=1,
            batch_messages=50,
            offline_fractions=(0.1, 0.5, 1.0),
            offline_seeds=2,
            dht_keys=2,
            settle_seconds=0.2,
            storage_peers=3,
        )
        settings.update(overrides)
        return cls(**settings)

    def describe(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "sync_modes"}
        out["sync_modes"] = [mode_label(m) for m in self.sync_modes]
        return out


def mode_label(mode: LogMode) -> str:
    layout, embed = mode.to_args()
    return f"{layout}/{embed}"


@dataclass
class Context:
    """The running swarm and what sections learn that later sections compare against."""

    config: BenchConfig
    swarm: LocalSwarm
    storage: list[Node]
    client: Node
    #: transport limits measured in section 1 (None until measured)
    baselines: dict[str, float | None] = field(default_factory=dict)
    #: logs the sync grid published and Bob synced: (N, mode label) -> log name
    logs: dict[tuple[int, str], str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    quiet: bool = False
    _names: itertools.count = field(default_factory=itertools.count)

    def say(self, text: str) -> None:
        """Progress on stderr, so stdout keeps only the tables."""
        if not self.quiet:
            print(f"[{time.monotonic() - self.started:7.1f}s] {text}", file=sys.stderr, flush=True)

    async def start_node(self, prefix: str, **config: Any) -> Node:
        node = await self.swarm.start_node(f"{prefix}-{next(self._names)}", **config)
        from bench.probes import install

        install(node.host)
        return node

    async def stop_node(self, node: Node) -> None:
        await self.swarm.stop(node)


def bodies(count: int, size: int, seed: int) -> list[bytes]:
    """``count`` pseudo-random bodies of ``size`` bytes (random, so nothing compresses)."""
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


async def preload_message_blocks(alice: Node, publisher: Any, storage: list[Node]) -> int:
    """Put the log's blocks straight into ``storage``'s stores and tell Alice's publisher they
    hold them, so the publish that follows uploads only the head page (it gains the CAS hint)
    and the record.

    Set-up only: the blocks are byte-for-byte what a publish would upload (content addressed),
    and section 4 measures publishing itself. Returns how many blocks were preloaded.
    """
    rows = await alice.astore.call(alice.store.log_entries, publisher.name)
    entries = [LogEntry(seq=seq, data=data) for seq, data in rows]
    built = build_log(entries, publisher.mode, limits=alice.config.limits)
    items = list(built.blocks.items())
    if not items:
        return 0
    for node in storage:
        await node.astore.call(node.store.put_blocks, items)
        await publisher.assume_held(node.peer_id, built)
    return len(items)


async def make_log(
    ctx: Context,
    alice: Node,
    n: int,
    mode: LogMode,
    replicas: list[Node],
    *,
    seed: int,
    preload: bool = True,
    key: KeyPair | None = None,
    replicas_wanted: int | None = None,
    named: bool = True,
) -> tuple[Any, Any]:
    """A new log of ``n`` messages published by ``alice`` to ``replicas``: (publisher, report)."""
    know_peers(alice, replicas)
    publisher = alice.publisher(
        key or generate_log_key(),
        mode=mode,
        replicas=replicas_wanted or len(replicas),
        write_quorum=replicas_wanted or len(replicas),
        replica_peers=[r.peer_id for r in replicas] if named else None,
    )
    await publisher.append(bodies(n, ctx.config.body_bytes, seed), timestamp=TIMESTAMP)
    if preload:
        await preload_message_blocks(alice, publisher, replicas)
    report = await publisher.publish()
    return publisher, report


def peer_ids(nodes: list[Node]) -> list[ID]:
    return [n.peer_id for n in nodes]


def know_peers(node: Node, peers: list[Node]) -> None:
    """Put ``peers``' listen addresses into ``node``'s peerstore, without dialing: an application
    that names storage peers knows where they are, and the first request dials on demand."""
    for peer in peers:
        info = peer_info(peer.addrs[0])
        node.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)


def peer_info(addr: object) -> PeerInfo:
    """The peer id and address of a ``/p2p/`` multiaddr (py-libp2p's own parser)."""
    return info_from_p2p_addr(multiaddr.Multiaddr(str(addr)))
