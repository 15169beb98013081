"""Page deltas over real pages of rlp2p.core.page's layout: exact, smaller, and never trusted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, Page, build_log
from rlp2p.core.pagedelta import apply_checked, apply_page_delta, page_delta
from rlp2p.errors import DecodeError, HashMismatch, LimitExceeded, PageDeltaError
from rlp2p.limits import Limits
from rlp2p.pb.vac import cas_pb2

HINT_A = (b"/replica-a",)
HINT_B = (b"/replica-a", b"/replica-b")


def entries(n: int, size: int = 40) -> list[LogEntry]:
    return [
        LogEntry.from_message(i, Message(b"g" * 32, 1_700_000_000 + i, (f"{i:06d}" * size)[:size].encode()))
        for i in range(1, n + 1)
    ]


def head(n: int, mode: LogMode, cas=HINT_A, first_seq: int = 1, sealed: int = 0) -> bytes:
    built = build_log(entries(n)[first_seq - 1 :], mode, cas, first_seq=first_seq, sealed=sealed)
    return built.pages[-1][1]


def pages(n: int, mode: LogMode, cas=HINT_A) -> list[bytes]:
    return [data for _, data in build_log(entries(n), mode, cas).pages]


def roundtrip(base: bytes, page: bytes) -> bytes:
    delta = page_delta(base, page)
    assert delta is not None
    assert len(delta) < len(page)
    assert apply_checked(base, delta, address_of(page)) == page
    assert cas_pb2.PageDelta.FromString(delta).base == address_of(base)
    return delta


@pytest.mark.parametrize(
    "mode",
    [
        LogMode.paged(64, embed=None),  # the default: embedded without hashes
        LogMode(page_size=64, embed=None, embedded_hashes=True),
        LogMode.paged(64, embed=0),  # by reference
        LogMode.fully_replicated(),
    ],
)
def test_a_grown_head_is_a_small_delta(mode):
    base, page = head(40, mode), head(41, mode)
    delta = roundtrip(base, page)
    # one new pair and a few header bytes: far less than the 41-pair page
    new_pair = len(page) - len(base)
    assert len(delta) < new_pair + 60


def test_several_new_pairs_and_first_seq():
    mode = LogMode.paged(64, embed=None)
    roundtrip(head(10, mode), head(30, mode))
    # truncated history: first_seq on the head page, changed between the two
    roundtrip(head(30, mode, first_seq=5), head(33, mode, first_seq=9))


def test_embedded_window_strips_pairs_that_left_it():
    for hashes in (False, True):
        mode = LogMode(page_size=64, embed=5, embedded_hashes=hashes)
        base, page = head(40, mode), head(43, mode)
        assert Page.decode(base).pairs[4].embedded and not Page.decode(page).pairs[7].embedded  # seq 36
        roundtrip(base, page)


def test_a_full_head_becomes_an_older_page():
    mode = LogMode.paged(64, embed=None)
    old_head = head(64, mode)
    after = pages(65, mode)
    # the old head's pairs, its CAS hint dropped: a few bytes
    delta = roundtrip(old_head, after[0])
    assert len(delta) < 60
    # the new head shares nothing with the old head: sent whole
    assert page_delta(old_head, after[1]) is None


def test_cas_hint_changed():
    mode = LogMode.paged(64, embed=None)
    roundtrip(head(20, mode, cas=HINT_A), head(21, mode, cas=HINT_B))
    roundtrip(head(20, mode, cas=HINT_B), head(20, mode, cas=()))


def test_sealed_pages():
    mode = LogMode.paged(64, embed=None)
    roundtrip(head(20, mode, sealed=1), head(22, mode, sealed=1))
    # a sealed page keeps its localHash beside the data; strip still gives the exact page
    strip = LogMode(page_size=64, embed=3)
    roundtrip(head(20, strip, sealed=1), head(22, strip, sealed=1))


def test_unrelated_or_unparsable_pages_have_no_delta():
    mode = LogMode.paged(8, embed=None)
    p = pages(40, mode)
    assert page_delta(p[0], p[3]) is None
    assert page_delta(b"\xff\xff", p[3]) is None
    assert page_delta(p[0], b"\xff\xff") is None


def _delta(base: bytes, page: bytes) -> cas_pb2.PageDelta:
    d = page_delta(base, page)
    assert d is not None
    return cas_pb2.PageDelta.FromString(d)


def test_tampering_is_caught_by_the_cid_check():
    mode = LogMode.paged(64, embed=None)
    base, page = head(40, mode), head(41, mode)
    want = address_of(page)
    good = _delta(base, page)
    tampered = []
    for change in (
        lambda d: setattr(d, "keep", d.keep - 1),
        lambda d: setattr(d, "skip", 1),
        lambda d: d.pair[0].MergeFrom(cas_pb2.DeltaPair(seq=99)),
        lambda d: setattr(d, "tail", b"\x01"),
        lambda d: setattr(d, "first_seq", 3),
        lambda d: setattr(d, "new_cas", True),
    ):
        d = cas_pb2.PageDelta()
        d.CopyFrom(good)
        change(d)
        tampered.append(d.SerializeToString())
    for bad in tampered:
        with pytest.raises((HashMismatch, PageDeltaError)):
            apply_checked(base, bad, want)
    # the right delta against another base
    with pytest.raises(PageDeltaError, match="another base"):
        apply_page_delta(head(39, mode), good.SerializeToString())
    # a delta naming no base is taken against the one given: the CID check still decides
    good.base = b""
    assert apply_checked(base, good.SerializeToString(), want) == page
    with pytest.raises((HashMismatch, PageDeltaError)):
        apply_checked(head(39, mode), good.SerializeToString(), want)


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"skip": 30, "keep": 20}, "keeps pairs"),
        ({"keep": 2**32 - 1}, "keeps pairs"),
        ({"keep": 3, "strip": 4}, "strips"),
    ],
)
def test_counts_beyond_the_base_are_refused(fields, error):
    base = head(40, LogMode.paged(64, embed=None))
    d = cas_pb2.PageDelta(base=address_of(base), **fields)
    with pytest.raises(PageDeltaError, match=error):
        apply_page_delta(base, d.SerializeToString())


def test_limits():
    base = head(40, LogMode.paged(64, embed=None))
    small = Limits(max_block=len(base) - 1)
    with pytest.raises(LimitExceeded):
        apply_page_delta(base, b"", small)
    d = cas_pb2.PageDelta(base=address_of(base), keep=40, pair=[cas_pb2.DeltaPair(seq=41)] * 3)
    with pytest.raises(LimitExceeded, match="pairs"):
        apply_page_delta(base, d.SerializeToString(), Limits(max_page_pairs=42))
    # the result over max_block: a delta adding a big pair
    d = cas_pb2.PageDelta(base=address_of(base), keep=40, pair=[cas_pb2.DeltaPair(data=b"x" * 4000, seq=41)])
    with pytest.raises(LimitExceeded, match="made by the delta"):
        apply_page_delta(base, d.SerializeToString(), Limits(max_block=len(base) + 2000))
    with pytest.raises(LimitExceeded, match="delta size"):
        apply_page_delta(base, d.SerializeToString(), Limits(max_block=len(base) + 10))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_page_or_a_typed_error(data):
    base = head(5, LogMode.paged(64, embed=None))
    for delta in (data, cas_pb2.PageDelta(base=address_of(base)).SerializeToString() + data):
        try:
            out = apply_page_delta(base, delta)
        except DecodeError:
            continue
        assert isinstance(out, bytes)
