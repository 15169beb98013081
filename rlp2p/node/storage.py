"""A storage peer's admission gate and retention passes: the core's policy wired to the store.

An admitted write (a batch of CAS Adds, a NS Update) is one store transaction from the check of
the writer's usage to its accounting (the core's decision runs inside it, as a callback), so
concurrent streams of one writer cannot overshoot a quota and a crash cannot store a write
without charging it. A retention sweep deletes a chunk only in a transaction that finds the
records still those it marked from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import cbor2
import trio
from libp2p.records.pb.ipns_pb2 import IpnsEntry

from rlp2p.core.admission import Admission, PeerUsage
from rlp2p.core.record import RecordInfo, parse_head_value
from rlp2p.core.address import address_to_text
from rlp2p.core.retention import Mark, MarkOverflow, RetentionConfig, drop_cutoff, page_needs, sweep_cutoff
from rlp2p.errors import IncompleteLog, Rlp2pError, WriteRefused
from rlp2p.limits import DEFAULT_LIMITS, Limits
from rlp2p.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
#: addresses the sweep reads and deletes at once
SWEEP_CHUNK = 500
#: completeness walks of newly arriving logs run at once (each holds one page in memory)
WALKS = 2


def first_missing(store: Store, head: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes | None:
    """The first block a reader of ``head`` would need that ``store`` lacks, walking from the head
    back through ``tail``; None if it holds them all (or the log is longer than a reader walks).
    Blocking: run it in a worker thread. Its cost is the log's pages, which a publisher sending a
    log to a new replica has just uploaded anyway."""
    address: bytes | None = head
    pages = 0
    while address is not None and pages < limits.max_pages_walk:
        pages += 1
        data = store.get_blocks([address]).get(address)
        if data is None:
            return address
        address, needed = page_needs(data, limits)
        held = store.has_blocks(needed)
        for block in needed:
            if block not in held:
                return block
    return None


async def _call(fn: Callable[..., T], *args: Any) -> T:
    return await trio.to_thread.run_sync(partial(fn, *args))


class StorageGate:
    """The :class:`~rlp2p.wire.admit.WriteGate` of a storage peer: it stores admitted writes."""

    def __init__(
        self,
        store: Store,
        admission: Admission,
        now: Callable[[], float],
        limits: Limits = DEFAULT_LIMITS,
        on_new_record: Callable[[RecordInfo], Awaitable[None]] | None = None,
        on_blocks: Callable[[list[tuple[bytes, bytes]]], None] | None = None,
    ) -> None:
        self.store = store
        self.admission = admission
        self.now = now  # Unix seconds by the node's clock
        self.limits = limits
        self.on_new_record = on_new_record
        #: told of every admitted batch of blocks once stored (never blocks: the push keeps the
        #: head page a record about to come names, rlp2p/wire/push.py)
        self.on_blocks = on_blocks
        #: told of a record about to be stored, before its commit (never blocks: the push streams
        #: work out their frames while the commit runs, PushServer.prepare)
        self.before_record: Callable[[RecordInfo], None] | None = None
        self._walks = trio.CapacityLimiter(WALKS)

    def _counted(self, exc: WriteRefused) -> WriteRefused:
        self.admission.refusals.add(exc.reason)
        return exc

    async def put_blocks(self, writer: str | None, items: list[tuple[bytes, bytes]]) -> None:
        adm = self.admission
        try:
            adm.check_rate(writer, len(items))
            if writer is None:  # a stream whose peer cannot be told: admitted as a stranger, not charged
                adm.check_blocks(None, PeerUsage(), sum(len(d) for _, d in items))
                await _call(self.store.put_blocks, items)
            else:

                def admit(usage: tuple[int, int], others: tuple[int, int], new_bytes: int) -> None:
                    adm.check_blocks(writer, PeerUsage(*usage), new_bytes, PeerUsage(*others))

                await _call(self.store.put_blocks_as, items, writer, self.now(), admit, adm.config.allow)
        except WriteRefused as exc:
            raise self._counted(exc) from None
        if self.on_blocks is not None:
            self.on_blocks(items)

    async def put_record(self, writer: str | None, info: RecordInfo) -> None:
        adm = self.admission
        try:
            # the checks that need no store first: a refused writer costs no walk
            adm.check_rate(writer, 1)
            adm.check_allowed(writer, info.name)
            if await _call(self.store.get_record, info.name) is None:
                # a log new here (or dropped, and back): take its record only if its blocks are
                # all here, so this peer never serves a head it cannot serve whole (a publisher's
                # memory of what we acknowledged may predate a retention pass)
                async with self._walks:
                    missing = await trio.to_thread.run_sync(first_missing, self.store, info.head, self.limits)
                if missing is not None:
                    raise IncompleteLog(
                        f"block {address_to_text(missing)} of the log {info.name} is not here: upload the log again",
                        reason="incomplete",
                    )

            def admit(new_name: bool, usage: tuple[int, int], others: tuple[int, int], log_bytes: int) -> None:
                adm.check_record(
                    writer, info.name, new_name=new_name, usage=PeerUsage(*usage), log_bytes=log_bytes, others=PeerUsage(*others)
                )

            if self.before_record is not None:
                self.before_record(info)
            await _call(self.store.put_record_as, info.name, info.raw, info.sequence, writer, self.now(), admit, adm.config.allow)
        except WriteRefused as exc:
            raise self._counted(exc) from None
        if self.on_new_record is not None:
            await self.on_new_record(info)


def head_of(record: bytes) -> bytes | None:
    """The head page a held record names (it was verified when it was stored; its validity
    does not matter here: a held record's blocks stay until the log is dropped)."""
    try:
        data = cbor2.loads(IpnsEntry.FromString(record).data)
        return parse_head_value(data["Value"])
    except Exception:  # cannot happen for a record that was verified; keep nothing for it
        log.warning("retention: a held record does not parse")
        return None


@dataclass
class RetentionReport:
    dropped: list[str]
    marked: int = 0
    swept_blocks: int = 0
    swept_bytes: int = 0
    #: the mark ran out of budget: nothing was swept
    overflow: bool = False
    #: a record changed during the pass: the sweep stopped, to run again next pass
    heads_moved: bool = False


class Retention:
    """Runs retention passes over a store (see :mod:`rlp2p.core.retention`)."""

    def __init__(self, store: Store, gate: StorageGate, config: RetentionConfig, limits: Limits = DEFAULT_LIMITS) -> None:
        self.store = store
        self.gate = gate
        self.config = config
        self.limits = limits
        self._cursor = b""  # where the last sweep stopped (block addresses, in order)

    async def run_pass(self) -> RetentionReport:
        now = self.gate.now()
        report = RetentionReport(dropped=[])
        cutoff = drop_cutoff(self.config, now)
        if cutoff is not None:
            stale = await _call(self.store.stale_names, cutoff, 10_000)
            report.dropped = await _call(self.store.drop_records, stale, cutoff)
            for name in report.dropped:
                log.info("retention: dropped %s (not updated for %.0f s)", name, self.config.drop_after)
        if not self.config.collect:
            return report

        records = await _call(self.store.heads)
        heads: dict[str, bytes] = {}
        for name, (raw, _) in records.items():
            head = head_of(raw)
            if head is not None:
                heads[name] = head
        mark = Mark(self.config.mark_budget, self.limits)
        try:
            for name in sorted(heads):
                mark.start(name, heads[name])
                while (page := mark.next_page()) is not None:
                    found = await _call(self.store.get_blocks, [page])
                    messages = mark.page(page, found.get(page))
                    if messages:
                        mark.sizes(await _call(self.store.block_sizes, messages))
        except MarkOverflow as exc:
            log.warning("retention: %s; collect nothing this pass (raise the mark budget)", exc)
            report.overflow = True
            return report
        report.marked = len(mark.reached)
        await _call(self.store.set_log_bytes, {n: b for n, b in mark.log_bytes.items() if n in records})

        marked_records = {n: r for n, (r, _) in records.items()}
        before = sweep_cutoff(self.config, now)
        examined = 0
        while examined < self.config.sweep_per_pass:
            chunk = await _call(self.store.blocks_stored_before, before, self._cursor, SWEEP_CHUNK)
            if not chunk:
                self._cursor = b""  # a whole round done: start over next pass
                break
            examined += len(chunk)
            dead = [a for a in chunk if a not in mark.reached]
            if dead:
                # deleted only if no record moved since the mark (a new head could reach an old block)
                done = await _call(self.store.delete_blocks, dead, before, marked_records)
                if done is None:
                    report.heads_moved = True  # this chunk again on the next pass
                    break
                report.swept_blocks += done[0]
                report.swept_bytes += done[1]
            self._cursor = chunk[-1]
        if report.swept_blocks:
            log.info("retention: collected %d blocks, %d bytes", report.swept_blocks, report.swept_bytes)
        return report

    async def loop(self) -> None:
        while True:
            await trio.sleep(self.config.interval)
            try:
                await self.run_pass()
            except Rlp2pError as exc:
                log.warning("retention pass failed: %s", exc)


__all__ = ["RetentionReport", "Retention", "StorageGate", "first_missing"]
