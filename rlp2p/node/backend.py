"""The store, seen from trio: every blocking call runs in a worker thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import trio

from rlp2p.core.record import RecordInfo
from rlp2p.store import Store

T = TypeVar("T")

#: a reader's deliveries of at most this many messages may run on the event loop (a sync's larger
#: batches take the worker thread)
INLINE_ITEMS = 16


class AsyncStore:
    """Async facade over a synchronous :class:`Store`; also the CAS and NS servers' backend."""

    def __init__(self, store: Store, on_new_record: Callable[[RecordInfo], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.on_new_record = on_new_record

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def deliver(self, fn: Callable[..., T], *args: Any, messages: int, **kwargs: Any) -> T:
        """A reader's delivery ``fn`` (``deliver``, ``deliver_head``) of ``messages`` messages:
        of at most ``INLINE_ITEMS``, on the event loop if the store runs it without waiting or
        fsync (``SQLiteStore.run_inline``: a few hundred microseconds, two thread switches fewer
        before ``on_message``); else in the worker thread as :meth:`call`."""
        quick = messages <= INLINE_ITEMS
        inline = getattr(self.store, "run_inline", None) if quick else None  # (any Store may be)
        if inline is not None:
            ran, result = inline(fn, *args, **kwargs)
            if ran:
                await trio.lowlevel.cancel_shielded_checkpoint()  # (committed: not cancelled now)
                return result  # type: ignore[no-any-return]
        return await self.call(fn, *args, **kwargs)

    # BlockBackend
    async def get_blocks(self, addresses: list[bytes]) -> dict[bytes, bytes]:
        return await self.call(self.store.get_blocks, addresses)

    async def put_blocks(self, items: list[tuple[bytes, bytes]]) -> None:
        await self.call(self.store.put_blocks, items)

    async def get_blocks_within(self, addresses: list[bytes], max_bytes: int) -> tuple[dict[bytes, bytes], int, int]:
        """The blocks of the longest prefix of ``addresses`` whose sizes add up to at most
        ``max_bytes`` (absent blocks count 0), in one trip to the store's thread: ``(blocks,
        how many addresses the prefix has, the size of the first address left out or 0)``."""

        def run() -> tuple[dict[bytes, bytes], int, int]:
            upto = getattr(self.store, "get_blocks_upto", None)  # (a store may be any BlockStore-like)
            if upto is not None:
                found, whole = upto(addresses, max_bytes)
                if whole:  # the common case: one read; the prefix from the sizes of what it read
                    taken, left_out = _prefix_within(addresses, {a: len(d) for a, d in found.items()}, max_bytes)
                    if taken < len(addresses):  # (an address asked twice counts twice)
                        kept = set(addresses[:taken])
                        found = {a: d for a, d in found.items() if a in kept}
                    return found, taken, left_out
                del found
            taken, left_out = _prefix_within(addresses, self.store.block_sizes(addresses), max_bytes)
            return self.store.get_blocks(addresses[:taken]) if taken else {}, taken, left_out

        return await self.call(run)

    # RecordBackend
    async def get_record(self, name: str) -> bytes | None:
        stored = await self.call(self.store.get_record, name)
        return None if stored is None else stored.record

    async def get_records(self, names: list[str]) -> dict[str, bytes]:
        """The records held for ``names`` (the ones held), in one trip to the store thread."""

        def run() -> dict[str, bytes]:
            out = {}
            for name in names:
                stored = self.store.get_record(name)
                if stored is not None:
                    out[name] = stored.record
            return out

        return await self.call(run)

    async def put_record(self, info: RecordInfo) -> None:
        await self.call(self.store.put_record, info.name, info.raw, info.sequence)
        if self.on_new_record is not None:
            await self.on_new_record(info)


def _prefix_within(addresses: list[bytes], sizes: dict[bytes, int], max_bytes: int) -> tuple[int, int]:
    """How many of ``addresses`` fit in ``max_bytes`` by ``sizes`` (absent ones count 0), and the
    size of the first one left out (0 when all fit)."""
    total = 0
    for taken, address in enumerate(addresses):
        size = sizes.get(address, 0)
        if total + size > max_bytes:
            return taken, size
        total += size
    return len(addresses), 0
