"""Incremental publishing: the pages rebuilt after appends, and what each replica lacks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, build_log, build_pages, first_open_page
from rlp2p.core.publish import (
    Holding,
    build_start,
    holding_after,
    lacking,
    mode_key,
    next_sequence,
    partial_holding,
    usable,
)

MODES = [
    LogMode.fully_replicated(),
    LogMode.fully_replicated(embed=0),
    LogMode.fully_replicated(embed=3),
    LogMode.paged(4, embed=0),
    LogMode.paged(4, embed=None),
    LogMode.paged(4, embed=1),
    LogMode.paged(4, embed=6),
    LogMode.paged(3, embed=3),
    LogMode.linked_list(embed=0),
    LogMode.linked_list(embed=None),
    LogMode.linked_list(embed=2),
]


def entry(seq: int, body: bytes) -> LogEntry:
    # body b"" with group b"" and timestamp 0 is the empty message, whose block is b""
    if body == b"":
        return LogEntry.from_message(seq, Message(b"", 0, b""))
    return LogEntry.from_message(seq, Message(b"g", 1_700_000_000 + seq, body))


def grow(log: list[LogEntry], bodies: list[bytes]) -> None:
    log.extend(entry(len(log) + 1, b) for b in bodies)


def incremental(log: list[LogEntry], have: Holding | None, mode: LogMode, cas: tuple[bytes, ...]):
    """What the publisher does: build from the lowest open page of what is held."""
    page, tail = build_start([usable(have, mode, len(log))])
    first_seq = page * (mode.page_size or 1) + 1
    part = log[first_seq - 1 :]
    return build_pages(part, mode, cas, first_page=page, tail=tail), part


@settings(max_examples=150, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    batches=st.lists(st.lists(st.sampled_from([b"a", b"bb", b"", b"ccc" * 20]), min_size=1, max_size=9), min_size=1, max_size=6),
    hints=st.lists(st.sampled_from([(), (b"/h1",), (b"/h1", b"/h2")]), min_size=6, max_size=6),
)
def test_incremental_build_equals_the_whole_build(mode, batches, hints):
    log: list[LogEntry] = []
    have: Holding | None = None
    for i, bodies in enumerate(batches):
        before = None if not log else build_log(log, mode, hints[i - 1] if i else ())
        grow(log, bodies)
        cas = hints[i]
        built, part = incremental(log, have, mode, cas)
        whole = build_log(log, mode, cas)
        # same pages, addresses and head as the whole build, from the page built on
        assert built.head == whole.head and built.n == whole.n
        assert built.pages == whole.pages[built.first_page :]
        assert built.tail == (whole.pages[built.first_page - 1][0] if built.first_page else None)
        # every block the replica lacks is sent; nothing outside the log is
        sent = lacking(have, built, part, mode)
        assert len(sent) == len(set(sent))
        assert set(sent) <= set(whole.blocks)
        held = set(before.blocks) if before is not None else set()
        assert set(whole.blocks) - held <= set(sent)
        # O(k + P + K): what is rebuilt is the new messages, the open pages and the newest K
        if mode.page_size is not None and have is not None:
            k = len(bodies)
            bound = k + 2 * mode.page_size + (mode.embed or 0)
            assert len(part) <= bound
        have = holding_after(built, mode)


@settings(max_examples=150, deadline=None)
@given(
    mode=st.sampled_from([m for m in MODES if m.page_size is not None]),
    batches=st.lists(st.lists(st.sampled_from([b"a", b"bb", b"", b"ccc" * 20]), min_size=1, max_size=9), min_size=1, max_size=6),
    data=st.data(),
)
def test_an_upload_cut_short_resumes_from_the_last_whole_page(mode, batches, data):
    log: list[LogEntry] = []
    held: set[bytes] = set()  # what the replica really holds
    have: Holding | None = None  # what the publisher knows of it
    for bodies in batches:
        grow(log, bodies)
        built, part = incremental(log, have, mode, (b"/h",))
        whole = build_log(log, mode, (b"/h",))
        sent = lacking(have, built, part, mode)
        assert set(whole.blocks) - held <= set(sent)
        pages = {a: i for i, (a, _) in enumerate(built.pages, start=built.first_page)}
        cuts = [k for k, a in enumerate(sent) if a in pages]
        cut = data.draw(st.sampled_from([None, *cuts]))
        if cut is None:  # the whole upload and the record went through
            held |= set(sent)
            have = holding_after(built, mode)
            continue
        held |= set(sent[: cut + 1])
        partial = partial_holding(built, mode, pages[sent[cut]])
        if partial is not None and partial.length > (have.length if have else 0):
            have = partial


@pytest.mark.parametrize("mode", MODES, ids=mode_key)
def test_a_replica_left_behind_catches_up_from_its_own_holding(mode):
    log: list[LogEntry] = []
    grow(log, [b"x%d" % i for i in range(7)])
    first = build_log(log, mode)
    behind = holding_after(first, mode)
    current = behind
    for round_ in range(3):
        grow(log, [b"y%d-%d" % (round_, i) for i in range(5)])
        built, _ = incremental(log, current, mode, ())
        current = holding_after(built, mode)
    # one build serves both: it starts at the lower open page
    page, tail = build_start([usable(current, mode, len(log)), usable(behind, mode, len(log))])
    assert page == behind.open_page
    part = log[page * (mode.page_size or 1) :]
    built = build_pages(part, mode, first_page=page, tail=tail)
    whole = build_log(log, mode)
    assert set(whole.blocks) - set(first.blocks) <= set(lacking(behind, built, part, mode))
    assert lacking(current, built, part, mode) == []  # it holds that very head


def test_a_refresh_sends_nothing_and_a_new_hint_only_the_head_page():
    mode = LogMode.paged(4, embed=0)
    log: list[LogEntry] = []
    grow(log, [b"m%d" % i for i in range(10)])
    built = build_log(log, mode, (b"/a",))
    have = holding_after(built, mode)
    again, part = incremental(log, have, mode, (b"/a",))
    assert lacking(have, again, part, mode) == []
    moved, part = incremental(log, have, mode, (b"/b",))
    assert lacking(have, moved, part, mode) == [moved.head]


def test_holdings_of_another_mode_or_a_longer_log_are_not_used():
    mode = LogMode.paged(4, embed=0)
    log: list[LogEntry] = []
    grow(log, [b"m%d" % i for i in range(10)])
    have = holding_after(build_log(log, mode), mode)
    assert usable(have, mode, 10) == have
    assert usable(have, LogMode.paged(5, embed=0), 10) is None
    assert usable(have, mode, 9) is None
    assert build_start([have, None]) == (0, None)
    assert build_start([]) == (0, None)
    with pytest.raises(ValueError):
        lacking(None, build_pages(log[have.open_page * 4 :], mode, first_page=have.open_page, tail=have.open_tail), log, mode)


def test_first_open_page():
    assert first_open_page(LogMode.paged(4, embed=0), 0) == 0
    assert first_open_page(LogMode.paged(4, embed=0), 8) == 1  # the full head page loses its hint
    assert first_open_page(LogMode.paged(4, embed=0), 9) == 2
    assert first_open_page(LogMode.paged(4, embed=5), 9) == 1  # seq 5 may lose its payload
    assert first_open_page(LogMode.paged(4, embed=None), 9) == 2
    assert first_open_page(LogMode.fully_replicated(), 9) == 0


def test_next_sequence_is_above_everything_that_may_have_left():
    assert next_sequence(0, 0) == 1
    assert next_sequence(4, 4) == 5
    assert next_sequence(4, 7) == 8  # attempts 5..7 failed but their records may be out there
