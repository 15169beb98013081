"""A follower rebuilds the new head page from the previous one and the new messages."""

from __future__ import annotations

import pytest

from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, build_log
from rlp2p.core.rebuild import rebuild_head

CAS = (b"\x04\x7f\x00\x00\x01\x06\x0f\xa1",)


def entries(n: int) -> list[LogEntry]:
    return [LogEntry.from_message(i, Message(group_id=b"g", timestamp=i, body=bytes([i % 251]) * 40)) for i in range(1, n + 1)]


def head_page(log) -> bytes:
    return dict(log.pages)[log.head]


@pytest.mark.parametrize(
    "mode", [LogMode.paged(16, embed=1), LogMode.paged(4, embed=1), LogMode.paged(4, embed=3), LogMode.paged(8, embed=None)]
)
@pytest.mark.parametrize("added", [1, 2])
def test_every_next_head_page_is_rebuilt_byte_for_byte(mode, added):
    log = entries(20)
    rebuilt = 0
    for n in range(1, len(log) - added + 1):
        before, after = build_log(log[:n], mode, CAS), build_log(log[: n + added], mode, CAS)
        new = [(e.seq, e.data) for e in log[n : n + added]]
        data = rebuild_head(head_page(before), new, after.head)
        if data is not None:
            assert data == head_page(after)
            rebuilt += 1
    if mode.embed is not None and mode.embed > 1:
        # a message that leaves the newest k on an older page changes that page, so the head's
        # tail: not rebuilt then (fetched), never wrong
        assert rebuilt > 0
    else:
        # the same page and a page just started both rebuild (a batch across a boundary may not)
        assert rebuilt >= (len(log) - added) * (0.75 if added > 1 else 1.0)


def test_anything_else_is_none_never_a_wrong_page():
    mode = LogMode.paged(16, embed=1)
    log = entries(5)
    before, after = build_log(log[:4], mode, CAS), build_log(log, mode, CAS)
    new = [(5, log[4].data)]
    assert rebuild_head(head_page(before), new, after.head) == head_page(after)
    other_cas = build_log(log, mode, (b"\x04\x7f\x00\x00\x02\x06\x0f\xa1",))
    assert rebuild_head(head_page(before), new, other_cas.head) is None  # the hint changed: fetch
    assert rebuild_head(head_page(before), [(6, log[4].data)], after.head) is None  # a gap
    assert rebuild_head(head_page(before), [(5, b"\xff" * 10)], after.head) is None  # not a message
    assert rebuild_head(b"not a page", new, after.head) is None
    assert rebuild_head(head_page(before), [], after.head) is None


def test_the_page_rebuilt_last_is_not_decoded_again_and_the_layouts_kept_are_bounded(monkeypatch):
    """A follower rebuilds each head from the one it rebuilt last: that page's layout is kept
    from when it was built, so it is neither decoded nor re-encoded to learn its flags."""
    from rlp2p.core import rebuild
    from rlp2p.core.page import Page

    mode = LogMode.paged(16, embed=1)
    log = entries(8)
    pages = [head_page(build_log(log[:n], mode, CAS)) for n in range(1, 9)]
    rebuild._LAYOUTS._known.clear()  # (other tests may have built the same pages)
    decoded: list[bytes] = []
    real = Page.decode
    monkeypatch.setattr(Page, "decode", staticmethod(lambda data, *a, **k: decoded.append(data) or real(data, *a, **k)))
    previous = pages[0]
    for n in range(1, 8):
        after = build_log(log[: n + 1], mode, CAS)
        previous = rebuild_head(previous, [(n + 1, log[n].data)], after.head)
        assert previous == pages[n]
    assert decoded == [pages[0]]  # only the first, which this process never built
    assert len(rebuild._LAYOUTS._known) <= rebuild.LAYOUTS
    big = b"\x00" * (rebuild.LAYOUT_BYTES + 1)  # not a page, and too large to keep
    assert list(rebuild.rebuild_candidates(big, [(1, log[0].data)])) == []
    assert all(len(data) <= rebuild.LAYOUT_BYTES for data, _ in rebuild._LAYOUTS._known)
