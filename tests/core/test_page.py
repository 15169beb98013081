"""RemoteLog pages: modes, layout, encode/decode, and every check a reader makes on a page."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from rlp2p.core.address import address_of
from rlp2p.core.message import Message
from rlp2p.core.address import check_address
from rlp2p.core.page import (
    DEFAULT_EMBED_MAX,
    EMPTY_ADDRESS,
    LogEntry,
    LogMode,
    Page,
    Pair,
    build_log,
)
from rlp2p.errors import (
    AddressError,
    DecodeError,
    HashMismatch,
    LimitExceeded,
    MessageIdMismatch,
    PageError,
    Rlp2pError,
)
from rlp2p.limits import Limits
from rlp2p.pb.vac import remotelog_pb2

PbLog = remotelog_pb2.RemoteLog
PbPair = remotelog_pb2.RemoteLog.Pair


def msg(i: int, body: bytes | None = None) -> Message:
    return Message(b"group", 1_700_000_000 + i, body if body is not None else f"message {i}".encode())


def entries(n: int) -> list[LogEntry]:
    return [LogEntry.from_message(i, msg(i)) for i in range(1, n + 1)]


def decoded_pages(built) -> list[Page]:
    return [Page.decode(data) for _, data in built.pages]


def pb_pair(m: Message, number: int, embed: bool = False, **override) -> PbPair:
    data = m.encode()
    fields = dict(remoteHash=address_of(data), localHash=m.id, data=data if embed else b"", seq=number)
    fields.update(override)
    return PbPair(**fields)


def pb_page(*pairs: PbPair, tail: bytes = b"") -> bytes:
    return PbLog(pair=list(pairs), tail=tail).SerializeToString(deterministic=True)


# --- modes ------------------------------------------------------------------------------------


def test_mode_constructors():
    assert LogMode.fully_replicated() == LogMode(page_size=None, embed=None)
    assert LogMode.fully_replicated(embed=0) == LogMode(None, 0)
    assert LogMode.paged(50) == LogMode(50, 0)
    assert LogMode.paged(50, embed=7) == LogMode(50, 7)
    assert LogMode.linked_list() == LogMode(1, 0) == LogMode.paged(1)
    assert LogMode.linked_list(embed=None) == LogMode(1, None)


@pytest.mark.parametrize(
    ("page_size", "embed", "error"),
    [
        (0, 0, ValueError),
        (-3, 0, ValueError),
        (2, -1, ValueError),
        (True, 0, TypeError),
        (2, "3", TypeError),
        (1.5, 0, TypeError),
    ],
)
def test_mode_validation(page_size, embed, error):
    with pytest.raises(error):
        LogMode(page_size, embed)


def test_paged_needs_a_size():
    with pytest.raises(TypeError):
        LogMode.paged(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layout", "embed", "expected"),
    [
        ("full", "all", LogMode(None, None)),
        ("full", "none", LogMode(None, 0)),
        ("paged:100", "newest:10", LogMode(100, 10)),
        (" Paged:7 ", "NEWEST:0", LogMode(7, 0)),
        ("paged:1", "none", LogMode(1, 0)),
        ("linked", "all", LogMode(1, None)),
    ],
)
def test_mode_parse(layout, embed, expected):
    mode = LogMode.parse(layout, embed)
    assert mode == expected
    assert LogMode.parse(*mode.to_args()) == mode


@pytest.mark.parametrize(
    ("layout", "embed", "words"),
    [
        ("paged:0", "none", "layout"),
        ("paged:", "none", "layout"),
        ("paged:-1", "none", "layout"),
        ("paged:+5", "none", "layout"),
        ("paged:x", "none", "layout"),
        ("pages:5", "none", "layout"),
        ("", "none", "layout"),
        ("full", "some", "embed"),
        ("full", "newest:", "embed"),
        ("full", "newest:-2", "embed"),
        ("full", "newest:1.5", "embed"),
    ],
)
def test_mode_parse_refuses(layout, embed, words):
    with pytest.raises(ValueError, match=words):
        LogMode.parse(layout, embed)


def test_mode_describe_and_args():
    assert LogMode(None, None).describe() == "fully replicated (one page), every message embedded"
    assert LogMode(1, 0).describe() == "linked list (one message a page), no message embedded"
    assert LogMode(20, 1).describe() == "paged, 20 messages a page, the newest 1 message embedded"
    assert LogMode(20, 5).describe() == "paged, 20 messages a page, the newest 5 messages embedded"
    assert LogMode(20, 5).to_args() == ("paged:20", "newest:5")
    assert LogMode(1, None).to_args() == ("linked", "all")
    assert LogMode(None, 0).to_args() == ("full", "none")


def test_mode_embeds():
    assert [s for s in range(1, 11) if LogMode(3, 4).embeds(s, 10)] == [7, 8, 9, 10]
    assert not any(LogMode(3, 0).embeds(s, 10) for s in range(1, 11))
    assert all(LogMode(3, None).embeds(s, 10) for s in range(1, 11))
    assert all(LogMode(3, 99).embeds(s, 10) for s in range(1, 11))


# --- entries ----------------------------------------------------------------------------------


def test_entry_hashes():
    m = msg(1)
    a, b = LogEntry.from_message(1, m), LogEntry(1, m.encode())
    assert a == b
    assert a.local_hash == b.local_hash == m.id
    assert a.remote_hash == b.remote_hash == address_of(m.encode())
    assert b.message == m


def test_entry_validation():
    with pytest.raises(ValueError):
        LogEntry(0, b"")
    with pytest.raises(TypeError):
        LogEntry(1, "text")  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        _ = LogEntry(1, b"\xff\xff").local_hash


# --- layout -----------------------------------------------------------------------------------


def test_empty_log():
    built = build_log([], LogMode.paged(10), cas=[b"x"])
    assert built.head is None and built.pages == [] and built.blocks == {} and built.n == 0


def test_entries_must_be_numbered_from_one():
    es = entries(3)
    with pytest.raises(ValueError):
        build_log(es[1:], LogMode.paged(2))
    with pytest.raises(ValueError):
        build_log([es[0], es[2], es[1]], LogMode.paged(2))


@pytest.mark.parametrize(
    ("mode", "ranges"),
    [
        (LogMode.paged(3), [(3, 1), (6, 4), (9, 7), (10, 10)]),
        (LogMode.paged(5), [(5, 1), (10, 6)]),
        (LogMode.paged(50), [(10, 1)]),
        (LogMode.fully_replicated(0), [(10, 1)]),
        (LogMode.linked_list(), [(s, s) for s in range(1, 11)]),
    ],
)
def test_layout(mode, ranges):
    es = entries(10)
    built = build_log(es, mode)
    pages = decoded_pages(built)
    assert [(p.newest_seq, p.oldest_seq) for p in pages] == ranges
    assert built.head == built.pages[-1][0] and built.n == 10
    tails = [p.tail for p in pages]
    assert tails == [None] + [address for address, _ in built.pages[:-1]]
    for page in pages:
        seqs = [pair.seq for pair in page.pairs]
        assert seqs == list(range(page.newest_seq, page.oldest_seq - 1, -1))
        for pair in page.pairs:
            entry = es[pair.seq - 1]
            assert (pair.remote_hash, pair.local_hash) == (entry.remote_hash, entry.local_hash)
            assert pair.data is None
    # embed none: every page plus every message
    assert built.blocks == {**dict(built.pages), **{e.remote_hash: e.data for e in es}}
    for address, data in built.pages:
        assert address_of(data) == address


@pytest.mark.parametrize(
    ("embed", "embedded"), [(None, range(1, 11)), (0, []), (4, range(7, 11)), (30, range(1, 11))]
)
def test_embedding(embed, embedded):
    es = entries(10)
    built = build_log(es, LogMode.paged(3, embed=embed))
    got = sorted(pair.seq for page in decoded_pages(built) for pair in page.pairs if pair.embedded)
    assert got == list(embedded)
    for page in decoded_pages(built):
        for pair in page.pairs:
            if pair.embedded:
                assert pair.data == es[pair.seq - 1].data and pair.message == es[pair.seq - 1].message
            else:
                assert pair.message is None
    assert set(built.blocks) == set(dict(built.pages)) | {e.remote_hash for e in es if e.seq not in embedded}


def test_full_log_embedding_everything_is_one_block():
    built = build_log(entries(25), LogMode.fully_replicated())
    assert len(built.pages) == 1 and list(built.blocks) == [built.head]


def test_cas_hint_rides_in_the_head_page_only():
    hint = (b"/ip4/addr-one", b"/ip4/addr-two")
    built = build_log(entries(7), LogMode.paged(3), cas=hint)
    assert [p.cas for p in decoded_pages(built)] == [(), (), hint]
    assert Page.decode(build_log(entries(3), LogMode.linked_list(), cas=hint).pages[-1][1]).cas == hint


def test_empty_message_is_never_embedded_and_its_block_is_listed():
    empty = LogEntry.from_message(1, Message(b"", 0, b""))
    assert empty.data == b"" and empty.remote_hash == EMPTY_ADDRESS
    built = build_log([empty, LogEntry.from_message(2, msg(2))], LogMode.fully_replicated())
    (page,) = decoded_pages(built)
    assert page.pairs[1].data is None and page.pairs[0].embedded
    assert built.blocks[EMPTY_ADDRESS] == b""
    assert Pair(EMPTY_ADDRESS, empty.local_hash, 1, b"").data is None


def test_build_refuses_what_readers_would_refuse():
    es = [LogEntry.from_message(i, msg(i, b"x" * 100)) for i in range(1, 6)]
    with pytest.raises(LimitExceeded):
        build_log(es, LogMode.paged(2), limits=Limits(max_message=50))
    with pytest.raises(LimitExceeded):
        build_log(es, LogMode.paged(3), limits=Limits(max_page_pairs=2))
    build_log(es, LogMode.paged(2), limits=Limits(max_page_pairs=2))  # fits
    with pytest.raises(LimitExceeded):
        build_log(es, LogMode.fully_replicated(), limits=Limits(max_block=300))
    with pytest.raises(LimitExceeded):
        build_log(es, LogMode.paged(2), limits=Limits(max_page_pairs=4, max_block=20))


def test_build_is_pure():
    es = entries(12)
    mode = LogMode.paged(5, embed=3)
    fresh = [LogEntry(e.seq, e.data) for e in es]
    assert build_log(es, mode, cas=[b"c"]) == build_log(fresh, mode, cas=[b"c"])


@settings(max_examples=60, deadline=None)
@given(
    n1=st.integers(0, 30),
    added=st.integers(1, 30),
    page_size=st.integers(1, 8),
    embed=st.sampled_from([0, None, 1, 3, 10]),
    cas=st.sampled_from([(), (b"/hint",)]),
)
def test_republish_keeps_unchanged_pages(n1, added, page_size, embed, cas):
    es = entries(n1 + added)
    mode = LogMode.paged(page_size, embed=embed)
    old, new = build_log(es[:n1], mode, cas=cas), build_log(es, mode, cas=cas)
    assert len(new.pages) >= len(old.pages)
    for i, (address, _) in enumerate(old.pages):
        full = (i + 1) * page_size <= n1
        same_embedding = embed is None or (i + 1) * page_size <= n1 - embed
        was_head = i == len(old.pages) - 1
        if full and same_embedding and not (was_head and cas):
            assert new.pages[i][0] == address, f"page {i} changed"
    if embed == 0 and not cas:
        # the publisher uploads only what is new: at most the old partial head and the new pages
        unchanged = {a for a, _ in old.pages} & {a for a, _ in new.pages}
        assert len(unchanged) >= n1 // page_size


# --- encode / decode --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", [LogMode.fully_replicated(), LogMode.paged(4, embed=3), LogMode.linked_list(), LogMode.paged(3)]
)
def test_round_trip(mode):
    built = build_log(entries(9), mode, cas=[b"hint"])
    for _, data in built.pages:
        page = Page.decode(data)
        assert page.encode() == data
        assert Page.decode(page.encode()) == page
        assert page.address() == address_of(data)


def test_empty_page_is_an_empty_log():
    page = Page.decode(b"")
    assert page == Page(pairs=()) and page.newest_seq is None and page.oldest_seq is None
    assert Page.decode(PbLog(cas=[b"h"]).SerializeToString()).cas == (b"h",)
    with pytest.raises(PageError, match="empty"):
        Page.decode(pb_page(tail=address_of(b"older")))


def test_oversize_page_is_refused_before_parsing():
    with pytest.raises(LimitExceeded) as info:
        Page.decode(b"\xff" * 11, Limits(max_block=10))  # garbage: parsing would say DecodeError
    assert info.value.what == "page size" and info.value.size == 11
    Page.decode(pb_page(pb_pair(msg(1), 1)), Limits(max_block=200))


def test_too_many_pairs():
    data = pb_page(*(pb_pair(msg(i), i) for i in (3, 2, 1)))
    with pytest.raises(LimitExceeded) as info:
        Page.decode(data, Limits(max_page_pairs=2))
    assert info.value.what == "pairs in a page"
    assert len(Page.decode(data, Limits(max_page_pairs=3)).pairs) == 3


@pytest.mark.parametrize("data", [b"\xff", b"\x0a\x05ab", b"\x12", b"\x0a\x02\x08", b"\x08\x01\x02"])
def test_garbage_is_a_decode_error(data):
    with pytest.raises(DecodeError):
        Page.decode(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_page_or_a_typed_error(data):
    try:
        page = Page.decode(data)
    except Rlp2pError:
        return
    assert isinstance(page, Page)


VALID = address_of(b"valid")


@pytest.mark.parametrize(
    ("override", "error", "words"),
    [
        (dict(remoteHash=b""), PageError, "remoteHash"),
        (dict(remoteHash=b"\x01" * 36), PageError, "remoteHash"),
        (dict(remoteHash=b"\x01\x70\x12\x20" + b"\x00" * 32), PageError, "remoteHash"),  # dag-pb codec
        (dict(localHash=b"\x00" * 31), PageError, "localHash"),
        (dict(localHash=b""), PageError, "localHash"),
        (dict(seq=0), PageError, "no seq"),
    ],
)
def test_bad_pair(override, error, words):
    with pytest.raises(error, match=words):
        Page.decode(pb_page(pb_pair(msg(1), 1, **override)))


def test_bad_tail():
    with pytest.raises(PageError, match="tail"):
        Page.decode(pb_page(pb_pair(msg(2), 2), tail=b"\x01\x02"))
    with pytest.raises(AddressError):
        check_address(b"\x01\x02")


@pytest.mark.parametrize("seqs", [(3, 1), (1, 2), (2, 2), (5, 4, 2)])
def test_seqs_must_be_consecutive_and_descending(seqs):
    pairs = [pb_pair(msg(s), s) for s in seqs]
    with pytest.raises(PageError, match="consecutive"):
        Page.decode(pb_page(*pairs, tail=VALID))


def test_tail_must_match_the_first_page():
    with pytest.raises(PageError, match="seq 1 has a tail"):
        Page.decode(pb_page(pb_pair(msg(2), 2), pb_pair(msg(1), 1), tail=VALID))
    with pytest.raises(PageError, match="no tail"):
        Page.decode(pb_page(pb_pair(msg(3), 3), pb_pair(msg(2), 2)))
    page = Page.decode(pb_page(pb_pair(msg(3), 3), pb_pair(msg(2), 2), tail=VALID))
    assert page.tail == VALID and (page.newest_seq, page.oldest_seq) == (3, 2)


def test_embedded_data_must_match_its_hashes():
    m, other = msg(1), msg(2)
    # data that is not what remoteHash names
    with pytest.raises(HashMismatch):
        Page.decode(pb_page(pb_pair(m, 1, embed=True, data=other.encode())))
    # data and remoteHash agree, localHash is another message's id
    with pytest.raises(MessageIdMismatch):
        Page.decode(pb_page(pb_pair(m, 1, embed=True, localHash=other.id)))
    # bytes that hash right but are no message
    garbage = b"\xff\xff\xff"
    with pytest.raises(PageError, match="not a vac.mvds.Message"):
        Page.decode(pb_page(pb_pair(m, 1, embed=True, data=garbage, remoteHash=address_of(garbage))))
    # over the message limit (checked before hashing)
    with pytest.raises(LimitExceeded):
        Page.decode(pb_page(pb_pair(m, 1, embed=True)), Limits(max_message=5))
    assert Page.decode(pb_page(pb_pair(m, 1, embed=True))).pairs[0].message == m


def test_empty_message_reference_must_carry_its_id():
    with pytest.raises(MessageIdMismatch):
        Page.decode(pb_page(PbPair(remoteHash=EMPTY_ADDRESS, localHash=msg(1).id, seq=1)))
    empty = Message(b"", 0, b"")
    page = Page.decode(pb_page(PbPair(remoteHash=EMPTY_ADDRESS, localHash=empty.id, seq=1)))
    assert page.pairs[0].data is None


def test_unknown_fields_are_ignored():
    # forward compatibility: a newer writer's extra field does not break this reader
    data = pb_page(pb_pair(msg(1), 1)) + b"\xa0\x06\x01"  # field 100, varint 1
    assert Page.decode(data).pairs[0].seq == 1


# --- embedded pairs without remoteHash; the embedding size bound ------------------------------


def test_embedded_pairs_leave_out_their_hashes_and_the_reader_computes_them():
    log = entries(5)
    built = build_log(log, LogMode.paged(2, embed=None))
    for _, data in built.pages:
        pb = PbLog()
        pb.ParseFromString(data)
        assert all(p.remoteHash == b"" and p.localHash == b"" and p.data for p in pb.pair)
    pairs = [pair for page in decoded_pages(built) for pair in page.pairs]
    assert {p.seq: p.remote_hash for p in pairs} == {e.seq: e.remote_hash for e in log}
    assert {p.seq: p.local_hash for p in pairs} == {e.seq: e.local_hash for e in log}
    for page, (address, data) in zip(decoded_pages(built), built.pages, strict=True):
        assert page.encode() == data and page.address() == address
    # kept on request, and byte-for-byte what the decoder reads either way
    kept = build_log(log, LogMode(2, None, embedded_hashes=True))
    assert [Page.decode(d).pairs for _, d in kept.pages] == [p.pairs for p in decoded_pages(built)]
    assert all(len(a) > len(b) for (_, a), (_, b) in zip(kept.pages, built.pages, strict=True))
    assert Page.decode(kept.pages[0][1]).encode(embedded_hashes=True) == kept.pages[0][1]
    # newest-k: the embedded pairs only
    mixed = Page.decode(dict(build_log(log, LogMode.fully_replicated(embed=2)).pages)[build_log(log, LogMode.fully_replicated(embed=2)).head])
    assert [p.embedded for p in mixed.pairs] == [True, True, False, False, False]
    pb = PbLog()
    pb.ParseFromString(mixed.encode())
    assert [bool(p.remoteHash) for p in pb.pair] == [False, False, True, True, True]


def test_a_pair_without_remote_hash_is_still_checked():
    m, other = msg(1), msg(2)
    # data whose id is not localHash: refused as before
    with pytest.raises(MessageIdMismatch):
        Page.decode(pb_page(pb_pair(m, 1, embed=True, remoteHash=b"", data=other.encode())))
    # data that is not what remoteHash names, localHash left out
    with pytest.raises(HashMismatch):
        Page.decode(pb_page(pb_pair(m, 1, embed=True, localHash=b"", data=other.encode())))
    # localHash left out without data: a bad pair
    with pytest.raises(PageError, match="localHash"):
        Page.decode(pb_page(pb_pair(m, 1, localHash=b"")))
    # both left out: the message's own hashes stand
    [pair] = Page.decode(pb_page(pb_pair(m, 1, embed=True, remoteHash=b"", localHash=b""))).pairs
    assert (pair.remote_hash, pair.local_hash, pair.message) == (address_of(m.encode()), m.id, m)
    # neither data nor remoteHash: a bad pair
    with pytest.raises(PageError, match="remoteHash"):
        Page.decode(pb_page(pb_pair(m, 1, remoteHash=b"")))
    # oversize data is refused before it is hashed
    big = Message(b"g", 1, b"x" * 200)
    with pytest.raises(LimitExceeded):
        Page.decode(pb_page(pb_pair(big, 1, embed=True, remoteHash=b"", localHash=b"")), Limits(max_message=100))


@pytest.mark.parametrize("mode", [LogMode.paged(4, embed=None), LogMode.paged(4, embed=3), LogMode.fully_replicated()])
def test_a_message_over_embed_max_goes_by_reference(mode):
    log = entries(6)
    big = LogEntry.from_message(5, msg(5, b"B" * (DEFAULT_EMBED_MAX + 1)))
    log[4] = big
    built = build_log(log, mode)
    assert big.remote_hash in built.blocks  # its own block
    pairs = {p.seq: p for page in decoded_pages(built) for p in page.pairs}
    assert not pairs[5].embedded and pairs[6].embedded
    # the bound is the mode's: without it the message rides in its page
    unbounded = build_log(log, LogMode(mode.page_size, mode.embed, embed_max=None))
    assert big.remote_hash not in unbounded.blocks


def test_a_large_message_is_not_in_any_later_page():
    """Appends after a large message change the head page; the large message is never in it."""
    mode = LogMode.paged(100, embed=None)
    log = entries(3)
    log[1] = LogEntry.from_message(2, msg(2, b"L" * 100_000))
    first = build_log(log, mode)
    for n in range(4, 8):
        log.append(LogEntry.from_message(n, msg(n)))
        built = build_log(log, mode)
        head = dict(built.pages)[built.head]
        assert len(head) < 2000  # the 100 kB message is a block of its own, not in the page
        assert log[1].remote_hash in built.blocks and log[1].remote_hash in first.blocks
    assert LogMode(4, None, embed_max=10).embeds(1, 1, 10) and not LogMode(4, None, embed_max=10).embeds(1, 1, 11)
    with pytest.raises(ValueError):
        LogMode(4, None, embed_max=-1)
