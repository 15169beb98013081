"""AsyncStore: the store seen from trio (a worker thread per call; a reader's small deliveries
on the event loop when the store runs them without waiting or fsync)."""

from __future__ import annotations

import threading
from pathlib import Path

from rlp2p.node.backend import INLINE_ITEMS, AsyncStore
from rlp2p.store import open_store

LOG = "12D3KooWLogName"


def deliveries_on(store) -> list[bool]:
    """Whether each ``store.deliver`` call from now on ran on the main (event loop) thread."""
    on_main: list[bool] = []
    deliver = store.deliver

    def recorded(*args, **kwargs):
        on_main.append(threading.current_thread() is threading.main_thread())
        return deliver(*args, **kwargs)

    store.deliver = recorded
    return on_main


async def test_a_small_delivery_runs_on_the_loop_and_a_large_one_in_a_thread(tmp_path: Path) -> None:
    with open_store(tmp_path, deliveries="NORMAL") as store:
        astore = AsyncStore(store)
        on_main = deliveries_on(store)
        await astore.deliver(store.deliver, LOG, [(1, b"id1", b"m1")], messages=1)
        large = [(seq, b"id%d" % seq, b"m") for seq in range(2, INLINE_ITEMS + 3)]
        await astore.deliver(store.deliver, LOG, large, messages=len(large))
        assert on_main == [True, False]
        assert store.get_reader_state(LOG).delivered_seq == INLINE_ITEMS + 2


async def test_a_durable_store_delivers_in_a_thread(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        astore = AsyncStore(store)
        on_main = deliveries_on(store)
        await astore.deliver(store.deliver, LOG, [(1, b"id1", b"m1")], messages=1)
        assert on_main == [False] and store.get_reader_state(LOG).delivered_seq == 1


async def test_a_store_without_run_inline_delivers_in_a_thread(tmp_path: Path) -> None:
    with open_store(tmp_path, deliveries="NORMAL") as store:

        class Plain:  # any Store: only its methods
            deliver = store.deliver

        on_main = deliveries_on(Plain)
        await AsyncStore(Plain()).deliver(Plain.deliver, LOG, [(1, b"id1", b"m1")], messages=1)  # type: ignore[arg-type]
        assert on_main == [False]
