"""pushed_deliveries: a head page alone as a reader's next state, or None (sans-I/O)."""

from __future__ import annotations

import pytest

from rlp2p.core.page import LogEntry, LogMode, build_log
from rlp2p.core.pushed import pushed_deliveries
from rlp2p.limits import DEFAULT_LIMITS
from tests.core.test_sync import build, msg


def head_of(n: int, mode: LogMode, **kw) -> tuple[bytes, bytes]:
    _, log = build(n, mode, **kw)
    assert log.head is not None
    return log.head, dict(log.pages)[log.head]


@pytest.mark.parametrize("n", [5, 16, 17])  # inside a page, the last of a page, the first of the next
def test_the_newest_message_embedded_in_the_head_page_is_the_whole_next_state(n: int) -> None:
    head, page = head_of(n, LogMode.paged(16, embed=1))
    got = pushed_deliveries(head, page, n - 1, DEFAULT_LIMITS)
    assert got is not None and [(d.seq, d.message.body) for d in got] == [(n, f"message {n}".encode())]


def test_several_new_messages_all_embedded() -> None:
    head, page = head_of(6, LogMode.paged(16, embed=4))
    got = pushed_deliveries(head, page, 3, DEFAULT_LIMITS)
    assert got is not None and [d.seq for d in got] == [4, 5, 6]


@pytest.mark.parametrize(
    "case", ["a message not embedded", "an older page to walk", "nothing new", "behind the reader", "not the head's bytes"]
)
def test_anything_else_is_none(case: str) -> None:
    mode, n, delivered = LogMode.paged(16, embed=1), 6, 5
    if case == "a message not embedded":
        delivered = 4  # seq 5's block is not in the page
    elif case == "an older page to walk":
        n, delivered = 17, 15  # seq 16 is on the page before
        mode = LogMode.paged(16, embed=16)
    elif case == "nothing new":
        delivered = 6
    elif case == "behind the reader":
        delivered = 9
    head, page = head_of(n, mode)
    if case == "not the head's bytes":
        page = page[:-1] + bytes([page[-1] ^ 1])
    assert pushed_deliveries(head, page, delivered, DEFAULT_LIMITS) is None


def test_a_truncated_log_past_the_reader_is_none() -> None:
    entries = [LogEntry.from_message(i, msg(i)) for i in (20, 21)]
    log = build_log(entries, LogMode.paged(16, embed=2), first_seq=20)
    assert log.head is not None
    page = dict(log.pages)[log.head]
    assert pushed_deliveries(log.head, page, 18, DEFAULT_LIMITS) is None  # seq 19 is gone
    got = pushed_deliveries(log.head, page, 19, DEFAULT_LIMITS)  # (a reader that had it all)
    assert got is not None and [d.seq for d in got] == [20, 21]
