"""Retention's pure parts: the mark over pages, the cut-offs."""

from __future__ import annotations

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, build_log
from rlp2p.core.retention import Mark, MarkOverflow, RetentionConfig, drop_cutoff, page_references, sweep_cutoff


def built(n: int, mode: LogMode, tag: bytes = b""):
    entries = [LogEntry(seq=i, data=Message(b"g" * 32, 1, tag + b"m%d" % i).encode()) for i in range(1, n + 1)]
    return build_log(entries, mode)


def walk(mark: Mark, name: str, head: bytes, blocks: dict[bytes, bytes]) -> None:
    mark.start(name, head)
    while (page := mark.next_page()) is not None:
        messages = mark.page(page, blocks.get(page))
        mark.sizes({a: len(blocks[a]) for a in messages if a in blocks})


def test_mark_reaches_every_block_of_a_paged_log_and_measures_it():
    log = built(30, LogMode.paged(8, embed=0))
    mark = Mark()
    walk(mark, "a", log.head, log.blocks)
    assert mark.reached == set(log.blocks)
    assert mark.log_bytes["a"] == sum(len(d) for d in log.blocks.values())


def test_mark_of_two_logs_and_a_block_that_is_missing():
    a = built(10, LogMode.linked_list(embed=0))
    b = built(5, LogMode.fully_replicated(), tag=b"b")
    blocks = {**a.blocks, **b.blocks}
    oldest_page = a.pages[0][0]
    del blocks[oldest_page]  # this peer lacks a page: the walk of that log stops there
    mark = Mark()
    walk(mark, "a", a.head, blocks)
    walk(mark, "b", b.head, blocks)
    assert set(b.blocks) <= mark.reached
    first_message = address_of(Message(b"g" * 32, 1, b"m1").encode())
    # every block but the one only the missing page named
    assert set(a.blocks) & mark.reached == set(a.blocks) - {first_message}
    assert oldest_page in mark.reached  # named by its successor's tail: kept if it comes back
    assert mark.log_bytes["a"] == sum(len(d) for addr, d in a.blocks.items() if addr not in (oldest_page, first_message))
    unreached = {address_of(b"junk")}
    assert not unreached & mark.reached


def test_mark_budget_overflows_rather_than_growing():
    log = built(30, LogMode.paged(8, embed=0))
    mark = Mark(budget=10)
    with pytest.raises(MarkOverflow):
        walk(mark, "a", log.head, log.blocks)


def test_a_head_that_is_not_a_page_keeps_only_itself():
    junk = b"not a page \xff\xff"
    mark = Mark()
    walk(mark, "x", address_of(junk), {address_of(junk): junk})
    assert mark.reached == {address_of(junk)}
    assert page_references(junk) == (None, [])


def test_cutoffs():
    cfg = RetentionConfig(drop_after=100, grace=10)
    assert drop_cutoff(cfg, 1000) == 900 and sweep_cutoff(cfg, 1000) == 990
    assert drop_cutoff(RetentionConfig(drop_after=None), 1000) is None
    with pytest.raises(ValueError):
        RetentionConfig(drop_after=0)
    with pytest.raises(ValueError):
        RetentionConfig(grace=-1)
