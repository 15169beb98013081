"""History truncation, pure: page layout from first_seq, page checks, publish bookkeeping, sync."""

from __future__ import annotations

import pytest

from rlp2p.core.address import address_of
from rlp2p.core.history import plan_truncation
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, Page, build_log, build_pages, first_open_page
from rlp2p.core.publish import build_start, holding_after, lacking, messages_held, mode_key, usable
from rlp2p.core.retention import Mark
from rlp2p.core.sync import SyncPlan
from rlp2p.errors import PageError
from rlp2p.pb.vac import remotelog_pb2


def msg(i: int) -> Message:
    return Message(b"group", 1_700_000_000 + i, f"message {i}".encode())


def entries(first: int, n: int) -> list[LogEntry]:
    return [LogEntry.from_message(i, msg(i)) for i in range(first, n + 1)]


def run(plan: SyncPlan, blocks: dict[bytes, bytes]) -> list[int]:
    seqs: list[int] = []
    for _ in range(10_000):
        if plan.done:
            break
        for address in plan.wants():
            plan.receive(address, blocks[address])
        seqs += [d.seq for d in plan.ready()]
    assert plan.done
    return seqs


MODES = [
    LogMode.paged(10, embed=0),
    LogMode.paged(10, embed=None),
    LogMode.paged(10, embed=4),
    LogMode.linked_list(embed=0),
    LogMode.fully_replicated(embed=None),
    LogMode.fully_replicated(embed=0),
]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.describe())
@pytest.mark.parametrize("first", [2, 10, 11, 25])
def test_truncated_layout_keeps_seqs_and_page_boundaries(mode, first):
    n = 47
    built = build_log(entries(first, n), mode, first_seq=first)
    whole = build_log(entries(1, n), mode)
    pages = [Page.decode(data, start=first) for _, data in built.pages]
    # the first page holds `first`.. its usual end, no tail; the others are the usual pages
    assert pages[0].oldest_seq == first and pages[0].tail is None
    if mode.page_size is not None:
        for page in pages[1:]:
            assert (page.oldest_seq - 1) % mode.page_size == 0
        assert len(built.pages) == (n - 1) // mode.page_size - (first - 1) // mode.page_size + 1
    head = Page.decode(built.pages[-1][1])
    assert head.first_seq == first and head.newest_seq == n
    assert all(p.first_seq == 1 for p in pages[:-1])  # the head page alone says it
    # message blocks keep their addresses: only pages change
    assert set(built.blocks) - {a for a, _ in built.pages} <= set(whole.blocks)


def test_an_untruncated_log_has_the_same_bytes_as_before():
    es = entries(1, 30)
    built = build_log(es, LogMode.paged(8, embed=0))
    assert all(remotelog_pb2.RemoteLog.FromString(d).first_seq == 0 for _, d in built.pages)
    assert built == build_log(es, LogMode.paged(8, embed=0), first_seq=1)


@pytest.mark.parametrize("mode", MODES[:4], ids=lambda m: m.describe())
def test_an_append_after_truncation_rebuilds_only_the_open_pages(mode):
    first, n, more = 14, 40, 47
    whole = build_log(entries(first, more), mode, first_seq=first)
    page = first_open_page(mode, n, first)
    older = build_log(entries(first, n), mode, first_seq=first)
    tail = None if page == older.first_page else older.pages[page - older.first_page - 1][0]
    start = first if tail is None else page * mode.page_size + 1
    part = build_pages(entries(start, more), mode, first_page=page, tail=tail, first_seq=first)
    assert part.head == whole.head
    assert part.pages == whole.pages[page - whole.first_page :]


def test_publish_bookkeeping_treats_a_truncated_log_as_new_to_every_replica():
    mode = LogMode.paged(10, embed=0)
    es = entries(1, 40)
    before = holding_after(build_log(es, mode), mode)
    assert usable(before, mode, 40) is before
    assert usable(before, mode, 40, first_seq=25) is None  # a truncation since: rebuild
    assert build_start([None], first_page=2) == (2, None)
    kept = entries(25, 40)
    built = build_log(kept, mode, first_seq=25)
    assert built.first_page == 2 and built.tail is None
    sent = lacking(None, built, kept, mode)
    assert set(sent) == set(built.blocks)
    after = holding_after(built, mode)
    assert after.mode == mode_key(mode, 25) == "paged:10 none from:25"
    assert after.open_page == 3 and after.open_tail == built.pages[0][0]
    # the next append sends the new messages and the open pages only
    grown = entries(25, 44)
    again = build_log(grown, mode, first_seq=25)
    have = usable(after, mode, 44, first_seq=25)
    assert have is after
    page, tail = build_start([have], first_page=2)
    part = build_pages(grown[page * 10 + 1 - 25 :], mode, first_page=page, tail=tail, first_seq=25)
    assert part.head == again.head
    assert set(lacking(have, part, grown[page * 10 + 1 - 25 :], mode)) == {a for a, _ in part.pages} | {
        e.remote_hash for e in grown if e.seq > 40
    }


def test_plan_truncation():
    mode = LogMode.paged(10, embed=0)
    plan = plan_truncation(mode, 47, before=25)
    assert (plan.first_seq, plan.dropped, plan.first_page, plan.pages_rewritten) == (25, (1, 24), 2, 3)
    assert plan_truncation(mode, 47, keep=5).first_seq == 43
    assert plan_truncation(mode, 47, keep=100).first_seq == 1 and not plan_truncation(mode, 47, keep=100).changes
    assert not plan_truncation(mode, 47, 30, before=25).changes  # already past it
    for bad in ({"before": 48}, {"before": 0}, {"keep": 0}, {}, {"before": 2, "keep": 2}):
        with pytest.raises(ValueError):
            plan_truncation(mode, 47, **bad)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.describe())
@pytest.mark.parametrize("window", [4, 2048])
@pytest.mark.parametrize(("delivered", "gone"), [(0, (1, 24)), (10, (11, 24)), (23, (24, 24)), (24, None), (30, None)])
def test_a_reader_behind_the_truncation_gets_the_rest_and_a_report(mode, window, delivered, gone):
    built = build_log(entries(25, 47), mode, first_seq=25)
    plan = SyncPlan(built.head, delivered, window=window)
    seqs = run(plan, built.blocks)
    assert seqs == list(range(max(delivered, 24) + 1, 48))
    assert plan.gone == gone and plan.first_seq == 25
    assert plan.delivered_seq == 47


def _page(seqs, tail=None, first_seq=0) -> bytes:
    pairs = []
    for s in seqs:
        data = msg(s).encode()
        pairs.append(remotelog_pb2.RemoteLog.Pair(remoteHash=address_of(data), localHash=msg(s).id, seq=s))
    return remotelog_pb2.RemoteLog(pair=pairs, tail=tail or b"", first_seq=first_seq).SerializeToString()


def _blocks(*datas: bytes) -> dict[bytes, bytes]:
    blocks = {address_of(d): d for d in datas}
    for s in range(1, 50):
        blocks[address_of(msg(s).encode())] = msg(s).encode()
    return blocks


def test_head_pages_that_claim_first_seq_inconsistently_are_refused():
    old = _page(range(10, 0, -1))
    with pytest.raises(PageError, match="before the log's first seq"):
        Page.decode(_page([12, 11], tail=address_of(old), first_seq=15))  # holds older than it says
    with pytest.raises(PageError, match="has a tail"):
        Page.decode(_page([15, 14], tail=address_of(old), first_seq=14))  # the first page has no tail
    with pytest.raises(PageError, match="no tail"):
        Page.decode(_page([15, 14], first_seq=12))  # says 12, ends at 14 with nothing older
    with pytest.raises(PageError, match="first_seq"):
        Page.decode(remotelog_pb2.RemoteLog(first_seq=3).SerializeToString())  # an empty log
    assert Page.decode(_page([15, 14], first_seq=14)).first_seq == 14


def test_a_chain_inconsistent_with_the_head_is_refused_like_any_bad_page():
    # the head says the log starts at 5, but its tail page is an old first page that ends at 1
    first = _page(range(10, 0, -1))
    head = _page(range(20, 10, -1), tail=address_of(first), first_seq=5)
    plan = SyncPlan(address_of(head), 0)
    with pytest.raises(PageError, match="before the log's first seq 5"):
        run(plan, _blocks(first, head))
    # the head says 5, the tail page ends at 8 with no tail: messages 5..7 are not there
    short = _page([10, 9, 8])
    head = _page(range(20, 10, -1), tail=address_of(short), first_seq=5)
    with pytest.raises(PageError, match="no tail"):
        run(SyncPlan(address_of(head), 0), _blocks(short, head))
    # an untruncated head over a tailless page that does not end at 1
    head = _page(range(20, 10, -1), tail=address_of(short))
    with pytest.raises(PageError, match="no tail"):
        run(SyncPlan(address_of(head), 0), _blocks(short, head))
    # only the head may say where history starts
    liar = _page([10, 9, 8, 7, 6, 5], first_seq=5)
    head = _page(range(20, 10, -1), tail=address_of(liar), first_seq=5)
    with pytest.raises(PageError, match="not the head"):
        run(SyncPlan(address_of(head), 0), _blocks(liar, head))


def test_retention_marks_what_a_truncated_log_names_and_nothing_before():
    mode = LogMode.paged(10, embed=0)
    old = build_log(entries(1, 47), mode)
    new = build_log(entries(25, 47), mode, first_seq=25)
    mark = Mark()
    mark.start("log", new.head)
    while (page := mark.next_page()) is not None:
        mark.page(page, new.blocks[page])
    assert mark.reached == set(new.blocks)
    gone = set(old.blocks) - mark.reached
    assert {e.remote_hash for e in entries(1, 24)} <= gone
    assert {a for a, _ in old.pages} <= gone  # every old page: the kept ones were rewritten


def test_a_reader_that_knows_only_the_specification_walks_to_the_last_tail_and_stops():
    # fields 1..2 only: pairs and tail; an unknown field is skipped by any protobuf parser
    built = build_log(entries(25, 47), LogMode.paged(10, embed=None), first_seq=25)
    seqs, address = [], built.head
    while address:
        page = remotelog_pb2.RemoteLog.FromString(built.blocks[address])
        seqs += [p.seq for p in page.pair]
        address = page.tail
    assert sorted(seqs) == list(range(25, 48))


def test_after_a_truncation_a_replica_is_sent_the_pages_not_the_messages_it_held():
    mode = LogMode.paged(10, embed=2)
    before = holding_after(build_log(entries(1, 40), mode), mode)
    kept = entries(25, 44)
    built = build_log(kept, mode, first_seq=25)
    held = messages_held(before, mode, 44, 25)
    assert held == 40
    sent = set(lacking(None, built, kept, mode, held))
    pages = {a for a, _ in built.pages}
    # every page, the new messages' blocks, and 39..40 (embedded at 40, blocks now)
    assert sent == pages | {e.remote_hash for e in kept if e.seq > 38 and e.seq <= 42}
    # not for another layout, a longer log (lost local state), or without a truncation since
    assert messages_held(before, LogMode.paged(8, embed=2), 44, 25) == 0
    assert messages_held(before, mode, 39, 25) == 0
    assert messages_held(holding_after(built, mode), mode, 44, 25) == 0
    assert messages_held(None, mode, 44, 25) == 0
