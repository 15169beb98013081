"""The reader's sync plan, driven against an in-memory CAS (a dict of the built log's blocks)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.core.page import EMPTY_ADDRESS, BuiltLog, LogEntry, LogMode, Page, Pair, build_log
from rlp2p.core.sync import DEFAULT_WINDOW, Delivery, SyncPlan
from rlp2p.errors import (
    AddressError,
    DecodeError,
    HashMismatch,
    LimitExceeded,
    LogRewritten,
    MessageIdMismatch,
    PageError,
)
from rlp2p.limits import Limits


def msg(i: int) -> Message:
    return Message(b"group", 1_700_000_000 + i, f"message {i}".encode())


def entries_of(messages: list[Message]) -> list[LogEntry]:
    return [LogEntry.from_message(i, m) for i, m in enumerate(messages, start=1)]


def build(n: int, mode: LogMode, **kw) -> tuple[list[LogEntry], BuiltLog]:
    es = entries_of([msg(i) for i in range(1, n + 1)])
    return es, build_log(es, mode, **kw)


class Driver:
    """Runs a plan to completion against ``blocks``, recording and checking every request."""

    def __init__(
        self, plan: SyncPlan, blocks: dict[bytes, bytes], rng: random.Random | None = None, *, page_pairs: int | None = None
    ) -> None:
        self.plan, self.blocks, self.rng = plan, blocks, rng
        self.page_pairs = page_pairs  # most pairs a page of the log holds (None: unknown)
        self.requested: list[bytes] = []
        self.retried: set[bytes] = set()
        self.asked: dict[bytes, int] = {}  # handed out minus given back, per address
        self.accepted: list[bytes] = []  # what receive() used, in order
        self.delivered: list[Delivery] = []
        self.most_held = 0
        self.progress: list[tuple[tuple[int, int], int]] = []  # (plan.progress, delivered) a round

    def run(self, max_rounds: int = 10_000) -> list[Delivery]:
        plan, rng = self.plan, self.rng
        for _ in range(max_rounds):
            if plan.done:
                break
            limit = rng.choice([None, 1, 2, 5]) if rng else None
            wants = plan.wants(limit)
            assert wants or plan.in_flight, "stalled: nothing to fetch, nothing in flight, not done"
            assert set(wants) <= plan.in_flight
            assert plan.wants(0) == []
            for address in wants:
                assert address in self.blocks, "asked for a block the CAS does not hold"
                if not plan.replaying:  # a replay asks for pages again, and for far repeats
                    assert address not in self.requested or address in self.retried, "asked twice without a retry"
                self.retried.discard(address)
                self.requested.append(address)
                self.asked[address] = self.asked.get(address, 0) + 1
            pending = list(plan.in_flight)
            if rng:
                rng.shuffle(pending)
                pending = pending[: rng.randint(1, len(pending))] if pending else []
            for address in pending:
                if rng and rng.random() < 0.1:
                    plan.retry(address)  # a failed fetch: hand it back
                    self.retried.add(address)
                    self.asked[address] -= 1
                    continue
                if not plan.needs(address):
                    # satisfied meanwhile by a copy embedded in a page received in this same
                    # round (a repeated payload): its late answer is ignored
                    assert plan.receive(address, self.blocks[address]) is False
                    continue
                assert plan.receive(address, self.blocks[address])
                self.accepted.append(address)
                if rng and rng.random() < 0.3:
                    self.delivered += plan.ready()
            self.delivered += plan.ready()
            self.most_held = max(self.most_held, plan.held)
            self.progress.append((plan.progress, len(self.delivered)))
        else:
            raise AssertionError("the plan did not finish")
        assert plan.wants() == [] and plan.ready() == [] and not plan.in_flight and not plan.walking
        return self.delivered


def sync_all(built: BuiltLog, delivered_seq: int = 0, **kw) -> tuple[SyncPlan, Driver]:
    plan = SyncPlan(built.head, delivered_seq, **kw)
    driver = Driver(plan, built.blocks)
    driver.run()
    return plan, driver


def check_plan(es: list[LogEntry], mode: LogMode, built: BuiltLog, s: int, driver: Driver, window: int | None = None) -> None:
    n = len(es)
    plan = driver.plan
    assert [d.seq for d in driver.delivered] == list(range(s + 1, n + 1))
    for d in driver.delivered:
        entry = es[d.seq - 1]
        assert (d.message, d.id, d.data) == (entry.message, entry.local_hash, entry.data)
    assert plan.done and plan.head_seq == n and plan.delivered_seq == n
    # progress only moves forward and ends at its total (missing messages twice: located, delivered)
    dones = [done for (done, _), _ in driver.progress]
    assert dones == sorted(dones) and plan.progress == (2 * (n - s), 2 * (n - s))
    # pages: exactly those holding something newer than s
    pages = [Page.decode(data) for _, data in built.pages]
    # (the head is always fetched: it is how the reader learns N)
    needed_pages = {a for (a, _), p in zip(built.pages, pages, strict=True) if p.newest_seq > s}
    if n:
        needed_pages.add(built.head)
    asked_pages = {a for a in driver.requested if a in dict(built.pages)}
    assert asked_pages == needed_pages
    # blocks: only messages newer than s that their page does not embed
    needed_blocks = {e.remote_hash for e in es if e.seq > s and not mode.embeds(e.seq, n) and e.data}
    asked_blocks = set(driver.requested) - asked_pages
    assert asked_blocks <= needed_blocks
    accepted_blocks = [a for a in driver.accepted if a not in needed_pages]
    assert plan.pages_fetched == len(needed_pages)
    assert plan.pages_fetched + plan.pages_reread == len(driver.accepted) - len(accepted_blocks)
    assert plan.blocks_fetched == len(accepted_blocks)
    assert plan.bytes_received == sum(len(built.blocks[a]) for a in driver.accepted)
    window = window or DEFAULT_WINDOW
    assert plan.replaying == (n - s > window)
    if not plan.replaying:
        assert plan.pages_reread == 0 and plan.blocks_fetched == len(asked_blocks)
    else:
        # every walked page but the last is taken again, once; a block once per seq needing it
        assert plan.pages_reread == plan.pages_fetched - 1
        assert all(driver.asked[a] <= 2 for a in needed_pages)
        occurrences = {a: sum(1 for e in es if e.seq > s and e.remote_hash == a) for a in asked_blocks}
        assert all(driver.asked[a] <= occurrences[a] for a in asked_blocks)
        # memory: at most a window of messages and one page held
        page_pairs = mode.page_size or n
        assert driver.most_held < window + page_pairs


# --- properties -------------------------------------------------------------------------------

messages = st.builds(
    Message,
    group_id=st.sampled_from([b"", b"a", b"group-b"]),
    timestamp=st.one_of(st.just(0), st.integers(-(2**63), 2**63 - 1)),
    body=st.binary(max_size=12),
)
modes = st.builds(
    LogMode,
    page_size=st.one_of(st.none(), st.just(1), st.integers(2, 12)),
    embed=st.one_of(st.none(), st.just(0), st.integers(1, 20)),
)


@st.composite
def scenarios(draw):
    log = draw(st.lists(messages, max_size=60))
    mode = draw(modes)
    s = draw(st.integers(0, len(log)))
    # None: the default window (every scenario here syncs directly); small: a replay
    window = draw(st.one_of(st.none(), st.integers(1, 12)))
    return entries_of(log), mode, s, window


def windowed(window: int | None) -> dict:
    return {} if window is None else {"window": window}


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_plan_delivers_exactly_what_is_missing(scenario):
    es, mode, s, window = scenario
    built = build_log(es, mode)
    plan, driver = sync_all(built, s, **windowed(window))
    check_plan(es, mode, built, s, driver, window)


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.integers(0, 2**32))
def test_any_order_and_retries_give_the_same_result(scenario, seed):
    es, mode, s, window = scenario
    built = build_log(es, mode, cas=[b"/hint"])
    plan = SyncPlan(built.head, s, **windowed(window))
    # a plain Random: hypothesis' own randoms draw from its buffer, and a long run that exhausts it
    # is silently discarded instead of failing
    driver = Driver(plan, built.blocks, random.Random(seed))
    driver.run()
    check_plan(es, mode, built, s, driver, window)
    assert plan.cas == ((b"/hint",) if es else ())


# --- the walk ---------------------------------------------------------------------------------


def test_blocks_are_wanted_in_parallel_with_the_walk():
    es, built = build(10, LogMode.paged(3))
    plan = SyncPlan(built.head, 0)
    assert plan.head == built.head and plan.head_seq is None and not plan.done and plan.walking
    assert plan.wants() == [built.head]
    assert plan.wants() == []  # idempotent: the head is in flight
    plan.receive(built.head, built.blocks[built.head])
    assert plan.head_seq == 10 and plan.pages_fetched == 1
    page3 = built.pages[2][0]
    assert plan.wants(1) == [page3]  # the walk comes first
    assert plan.wants() == [es[9].remote_hash]
    plan.receive(page3, built.blocks[page3])
    # blocks come oldest first
    assert plan.wants() == [built.pages[1][0]] + [es[i].remote_hash for i in (6, 7, 8)]
    assert plan.ready() == []


def test_a_long_sync_walks_addresses_then_takes_the_pages_again_oldest_first():
    es, built = build(20, LogMode.paged(3))  # pages 1-3, 4-6, ..., 19-20
    page = {Page.decode(d).oldest_seq: a for a, d in built.pages}
    plan = SyncPlan(built.head, 0, window=4)
    assert plan.wants() == [built.head]
    plan.receive(built.head, built.blocks[built.head])
    assert plan.replaying and plan.held == 0
    for oldest in (16, 13, 10, 7, 4):
        assert plan.wants() == [page[oldest]]  # the walk alone: no block is wanted yet
        plan.receive(page[oldest], built.blocks[page[oldest]])
        assert plan.held == 0
    assert plan.wants(1) == [page[1]]
    assert plan.is_page(page[1]) and not plan.is_page(es[0].remote_hash)
    plan.receive(page[1], built.blocks[page[1]])  # the walk's last page: opened at once
    assert not plan.walking and plan.pages_fetched == 7
    # then the next page again (held 3 < window 4), and the blocks of the open pages, oldest first
    assert plan.wants() == [page[4]] + [es[i].remote_hash for i in (0, 1, 2)]
    assert plan.held == 6
    for i in (0, 1, 2):
        plan.receive(es[i].remote_hash, es[i].data)
    assert [d.seq for d in plan.ready()] == [1, 2, 3]
    assert plan.wants() == [page[7]]  # 4..6 asked for, 3 held: one more page
    plan.receive(page[4], built.blocks[page[4]])
    assert plan.is_page(page[7]) and plan.pages_reread == 1
    driver = Driver(plan, built.blocks)
    driver.run()
    assert [d.seq for d in driver.delivered] == list(range(4, 21)) and plan.pages_reread == 6


def test_a_replay_fetches_a_payload_again_only_beyond_the_window():
    same = Message(b"g", 1, b"again")
    es = entries_of([same, msg(2), msg(3), msg(4), msg(5), same, msg(7), same])
    built = build_log(es, LogMode.paged(2))
    plan, driver = sync_all(built, window=3)
    assert plan.replaying and [d.seq for d in driver.delivered] == list(range(1, 9))
    # seq 1 alone, then seqs 6 and 8 are held together: fetched twice, not three times
    assert driver.requested.count(address_of(same.encode())) == 2


def test_progress_moves_while_the_walk_goes_back_and_ends_at_its_total():
    # a linked list: one page a round, and nothing can be delivered before the walk ends
    _, built = build(20, LogMode.linked_list(embed=None))
    plan, driver = sync_all(built, delivered_seq=5)
    steps = [step for step, _ in driver.progress]
    assert all(total == 30 for _, total in steps)  # 15 missing, each located then delivered
    dones = [done for done, _ in steps]
    assert dones == sorted(dones) and dones[-1] == 30
    before_delivery = [done for (done, _), delivered in driver.progress if delivered == 0]
    assert len(set(before_delivery)) >= 10  # it moved at every page walked
    assert plan.progress == (30, 30)
    assert SyncPlan(built.head, 5).progress == (0, 0)  # nothing known before the head page


def test_nothing_new():
    _, built = build(10, LogMode.paged(3))
    plan = SyncPlan(built.head, 10)
    plan.receive(built.head, built.blocks[built.head])
    assert plan.done and plan.ready() == [] and plan.wants() == [] and plan.head_seq == 10


def test_walk_stops_at_the_page_holding_the_next_message():
    es, built = build(10, LogMode.paged(3))
    plan, driver = sync_all(built, 6)  # s + 1 = 7 is the first pair of page 3 (seq 7..9)
    assert plan.pages_fetched == 2 and [d.seq for d in driver.delivered] == [7, 8, 9, 10]
    plan, _ = sync_all(built, 7)
    assert plan.pages_fetched == 2 and plan.blocks_fetched == 3


def test_empty_log():
    plan = SyncPlan(None, 0)
    assert plan.done and plan.head_seq == 0 and plan.wants() == [] and plan.ready() == []
    with pytest.raises(LogRewritten):
        SyncPlan(None, 3)


def test_empty_head_page():
    empty = Page(pairs=()).encode()
    plan = SyncPlan(address_of(empty), 0)
    plan.receive(address_of(empty), empty)
    assert plan.done and plan.head_seq == 0
    plan = SyncPlan(address_of(empty), 2)
    with pytest.raises(LogRewritten):
        plan.receive(address_of(empty), empty)


def test_log_rewritten():
    _, built = build(5, LogMode.paged(2))
    plan = SyncPlan(built.head, 7)
    with pytest.raises(LogRewritten, match="rewritten") as info:
        plan.receive(built.head, built.blocks[built.head])
    assert (info.value.head_seq, info.value.delivered_seq) == (5, 7)
    assert isinstance(info.value, PageError)
    assert plan.head_seq is None and plan.pages_fetched == 0


def chain(*pages: Page) -> tuple[bytes, dict[bytes, bytes]]:
    """Encode pages oldest first, linking each to the previous one; return (head, blocks)."""
    blocks: dict[bytes, bytes] = {}
    tail = None
    for page in pages:
        data = Page(page.pairs, tail, page.cas).encode()
        tail = address_of(data)
        blocks[tail] = data
    assert tail is not None
    return tail, blocks


def pairs(*seqs: int, embed: bool = False, message=msg) -> tuple[Pair, ...]:
    out = []
    for s in seqs:
        data = message(s).encode()
        out.append(Pair(address_of(data), message(s).id, s, data if embed else None))
    return tuple(out)


@pytest.mark.parametrize(
    "older",
    [
        pairs(4, 3, 2, 1),  # overlaps the newer page
        pairs(1),  # leaves a gap (seq 2, 3 missing)
    ],
)
def test_broken_chain(older):
    head, blocks = chain(Page(older), Page(pairs(5, 4)))
    plan = SyncPlan(head, 0)
    plan.receive(head, blocks[head])
    (tail,) = plan.wants(1)
    with pytest.raises(PageError, match="broken chain"):
        plan.receive(tail, blocks[tail])


def test_page_walk_limit():
    _, built = build(5, LogMode.linked_list())
    plan = SyncPlan(built.head, 0, Limits(max_pages_walk=3))
    for _ in range(2):
        (page,) = plan.wants(1)
        plan.receive(page, built.blocks[page])
    (page,) = plan.wants(1)
    with pytest.raises(LimitExceeded, match="pages walked"):
        plan.receive(page, built.blocks[page])
    # a reader that holds more needs fewer pages
    plan, _ = sync_all(built, 2, limits=Limits(max_pages_walk=3))
    assert plan.pages_fetched == 3


# --- bad blocks leave the plan as it was ------------------------------------------------------


def snapshot(plan: SyncPlan):
    return (
        plan.in_flight,
        plan.head_seq,
        plan.walking,
        plan.delivered_seq,
        plan.pages_fetched,
        plan.blocks_fetched,
        plan.bytes_received,
    )


def test_corrupted_blocks_raise_and_change_nothing():
    es, built = build(6, LogMode.paged(2))
    plan = SyncPlan(built.head, 0)
    driver = Driver(plan, built.blocks)
    (head,) = plan.wants()
    before = snapshot(plan)
    with pytest.raises(HashMismatch):
        plan.receive(head, built.blocks[head] + b"\x00")
    assert snapshot(plan) == before
    plan.receive(head, built.blocks[head])
    wants = plan.wants()
    block = es[5].remote_hash
    assert block in wants
    before = snapshot(plan)
    with pytest.raises(HashMismatch):
        plan.receive(block, es[4].data)  # another message's bytes
    with pytest.raises(LimitExceeded):
        plan.receive(block, b"x" * (Limits().max_message + 1))
    assert snapshot(plan) == before
    assert plan.receive(block, es[5].data) is True
    driver.run()
    assert [d.seq for d in driver.delivered] == list(range(1, 7))


def test_block_that_is_not_what_its_page_says():
    # a writer (or a forger with a valid page) pairing a message with another message's id
    bad = Pair(address_of(msg(2).encode()), msg(1).id, 2)
    head, blocks = chain(Page(pairs(1, embed=True)), Page((bad,)))
    plan = SyncPlan(head, 0)
    plan.receive(head, blocks[head])
    with pytest.raises(MessageIdMismatch):
        plan.receive(bad.remote_hash, msg(2).encode())
    # a reference to bytes that are no message at all
    garbage = b"\xff\xff\xff"
    head, blocks = chain(Page((Pair(address_of(garbage), msg(1).id, 1),)))
    plan = SyncPlan(head, 0)
    plan.receive(head, blocks[head])
    with pytest.raises(DecodeError):
        plan.receive(address_of(garbage), garbage)
    assert plan.blocks_fetched == 0 and plan.in_flight == frozenset()


def test_page_limits_apply():
    _, built = build(6, LogMode.paged(3))
    plan = SyncPlan(built.head, 0, Limits(max_block=20))
    with pytest.raises(LimitExceeded, match="page size"):
        plan.receive(built.head, built.blocks[built.head])
    plan = SyncPlan(built.head, 0, Limits(max_page_pairs=2))
    with pytest.raises(LimitExceeded, match="pairs"):
        plan.receive(built.head, built.blocks[built.head])


def test_same_block_under_two_ids_is_refused():
    m = msg(1)
    a = Pair(address_of(m.encode()), m.id, 3)
    b = Pair(address_of(m.encode()), msg(9).id, 2)
    # in one page
    head, blocks = chain(Page(pairs(1)), Page((a, b)))
    with pytest.raises(MessageIdMismatch):
        SyncPlan(head, 0).receive(head, blocks[head])
    # across pages: first as a wanted block, then as a reference with another id
    head, blocks = chain(Page((Pair(a.remote_hash, msg(9).id, 1),)), Page((Pair(a.remote_hash, m.id, 2),)))
    plan = SyncPlan(head, 0)
    plan.receive(head, blocks[head])
    tail = plan.wants(1)[0]
    with pytest.raises(MessageIdMismatch):
        plan.receive(tail, blocks[tail])
    # across pages: first embedded, then as a reference with another id
    embedded = Pair(a.remote_hash, m.id, 2, m.encode())
    head, blocks = chain(Page((Pair(a.remote_hash, msg(9).id, 1),)), Page((embedded,)))
    plan = SyncPlan(head, 0)
    plan.receive(head, blocks[head])
    (tail,) = plan.wants(1)
    with pytest.raises(MessageIdMismatch):
        plan.receive(tail, blocks[tail])


# --- duplicates and embedded copies -----------------------------------------------------------


def test_a_repeated_message_is_fetched_once():
    same = Message(b"g", 1, b"again")
    es = entries_of([same, msg(2), same, msg(4), same])
    built = build_log(es, LogMode.paged(2))
    plan, driver = sync_all(built)
    assert driver.requested.count(same_address := address_of(same.encode())) == 1
    assert [d.seq for d in driver.delivered if d.data == same.encode()] == [1, 3, 5]
    assert same_address in built.blocks


def test_a_block_in_flight_is_not_handed_out_again_for_an_older_copy():
    same = Message(b"g", 1, b"again")
    es = entries_of([msg(1), same, msg(3), same])
    built = build_log(es, LogMode.paged(2))
    plan = SyncPlan(built.head, 0)
    plan.receive(built.head, built.blocks[built.head])
    tail, block = built.pages[0][0], es[3].remote_hash
    assert plan.wants() == [tail, es[2].remote_hash, block]
    plan.receive(tail, built.blocks[tail])  # seq 2 needs the block that is in flight for seq 4
    assert plan.wants() == [es[0].remote_hash]
    plan.retry(block)
    assert plan.wants() == [block]  # now for seq 2: it is the oldest
    plan.receive(block, same.encode())
    plan.receive(es[0].remote_hash, es[0].data)
    assert [d.seq for d in plan.ready()] == [1, 2]  # seq 3 is still in flight
    assert plan.wants() == []
    plan.receive(es[2].remote_hash, es[2].data)
    assert [d.seq for d in plan.ready()] == [3, 4] and plan.done
    assert plan.blocks_fetched == 3


def test_an_embedded_copy_satisfies_a_block_in_flight():
    m = msg(1)
    older = Page(pairs(1, embed=True, message=lambda _: m))
    head, blocks = chain(older, Page((Pair(address_of(m.encode()), m.id, 2),)))
    plan = SyncPlan(head, 0)
    plan.receive(head, blocks[head])
    wants = plan.wants()
    assert address_of(m.encode()) in wants
    tail = next(a for a in wants if a in blocks)
    plan.receive(tail, blocks[tail])
    assert plan.in_flight == frozenset() and plan.done is False
    assert [d.seq for d in plan.ready()] == [1, 2] and plan.done
    # the late answer is harmless
    assert plan.receive(address_of(m.encode()), m.encode()) is False
    assert plan.blocks_fetched == 0


def test_empty_message_needs_no_fetch():
    empty = Message(b"", 0, b"")
    es = entries_of([empty, msg(2), empty])
    for mode in (LogMode.paged(2), LogMode.fully_replicated()):
        built = build_log(es, mode)
        plan, driver = sync_all(built)
        assert EMPTY_ADDRESS in built.blocks and EMPTY_ADDRESS not in driver.requested
        assert [d.message for d in driver.delivered] == [empty, msg(2), empty]


# --- API misuse -------------------------------------------------------------------------------


def test_misuse():
    es, built = build(3, LogMode.paged(2))
    with pytest.raises(ValueError):
        SyncPlan(built.head, -1)
    with pytest.raises(AddressError):
        SyncPlan(b"not an address", 0)
    plan = SyncPlan(built.head, 0)
    with pytest.raises(ValueError, match="not part of this sync"):
        plan.receive(es[0].remote_hash, es[0].data)  # not known to be needed yet
    with pytest.raises(ValueError, match="not part of this sync"):
        plan.receive(b"junk", b"")
    with pytest.raises(ValueError, match="not in flight"):
        plan.retry(built.head)
    with pytest.raises(ValueError):
        plan.wants(-1)
    (head,) = plan.wants()
    plan.retry(head)
    assert plan.wants() == [head]
    plan.receive(head, built.blocks[head])
    assert plan.receive(head, built.blocks[head]) is False  # a duplicate answer
    assert not plan.needs(head)


def test_a_cache_can_answer_before_wants():
    es, built = build(4, LogMode.paged(2))
    plan = SyncPlan(built.head, 0)
    assert plan.needs(built.head)
    plan.receive(built.head, built.blocks[built.head])  # from a local cache, never handed out
    assert plan.needs(es[3].remote_hash)
    plan.receive(es[3].remote_hash, es[3].data)
    assert es[3].remote_hash not in plan.wants()


def test_a_delivery_reads_as_one_line():
    def delivery(body: bytes) -> Delivery:
        m = Message(b"g", 1, body)
        return Delivery(7, m, m.id, m.encode())

    d = delivery(b"hello")
    assert str(d) == f"#7 {d.id.hex()[:8]} hello"
    assert str(delivery("line one\nline two \u00e9".encode())).endswith("line one\\nline two \u00e9")
    assert str(delivery(b"\xff\xfe\x00")).endswith("<3 bytes>")
    long = str(delivery(b"x" * 100))
    assert long.endswith("x\u2026") and len(long.split(" ", 2)[2]) == 60
