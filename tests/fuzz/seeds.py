"""Seed corpora: real values the code encodes, so mutations start from what peers really send."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache

from libp2p.crypto.ed25519 import create_new_key_pair
from multiaddr import Multiaddr

from rlp2p.core.address import address_of
from rlp2p.core.keys import log_name, name_to_peer_id
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, Page, build_log
from rlp2p.core.record import create_record
from rlp2p.pb.vac import cas_pb2, ns_pb2
from rlp2p.wire import cas, ns, ns_poll
from rlp2p.wire.framing import encode_frame

KEY = create_new_key_pair(b"rlp2p fuzz seed key, 32 bytes..!")
OTHER_KEY = create_new_key_pair(b"rlp2p fuzz other key, 32 bytes!!")
NAME = log_name(KEY.public_key)
#: records are made at the real clock (py-libp2p's validator and NsClient.fetch read it), once
NOW = datetime.now(timezone.utc).replace(microsecond=0)
CAS_HINT = (Multiaddr("/ip4/127.0.0.1/tcp/4001").to_bytes(),)


def messages() -> list[Message]:
    return [
        Message(b"", 0, b""),
        Message(b"group", 1_700_000_000, b"hello"),
        Message(b"\x00" * 32, -1, b"x" * 300),
        Message(b"g", 2**63 - 1, bytes(range(256))),
    ]


def entries(n: int) -> list[LogEntry]:
    return [LogEntry.from_message(i + 1, Message(b"group", 1_700_000_000 + i, b"body %d" % i)) for i in range(n)]


@cache
def pages() -> list[bytes]:
    out = [Page(pairs=()).encode(), Page(pairs=(), cas=CAS_HINT).encode()]
    modes = [
        LogMode.fully_replicated(),
        LogMode.fully_replicated(embed=0),
        LogMode.paged(3, embed=0),
        LogMode.paged(4, embed=2),
        LogMode.linked_list(embed=None),
    ]
    for mode in modes:
        out += [data for _, data in build_log(entries(7), mode, CAS_HINT).pages]
    with_empty = [LogEntry.from_message(1, Message(b"", 0, b"")), *entries(3)[1:]]
    with_empty = [LogEntry(i + 1, e.data) for i, e in enumerate(with_empty)]
    out += [data for _, data in build_log(with_empty, LogMode.fully_replicated()).pages]
    return out


@cache
def records() -> list[bytes]:
    head = address_of(pages()[2])
    return [
        create_record(KEY, head, 1, now=NOW, v1_compatible=True),
        create_record(KEY, head, 0, now=NOW),  # compact: V2 only, no pubKey
        create_record(KEY, head, 2**64 - 1, ttl=timedelta(0), now=NOW),
        create_record(KEY, address_of(b""), 7, validity=timedelta(seconds=1), now=NOW),
        create_record(OTHER_KEY, head, 3, now=NOW, pub_key=True),  # another log's key: WrongName
    ]


def addresses() -> list[bytes]:
    return [address_of(b""), address_of(b"x"), address_of(pages()[2])]


def cas_requests() -> list[bytes]:
    return [
        cas.encode_add(b""),
        cas.encode_add(b"block"),
        cas.encode_add(pages()[3]),
        cas.encode_get(address_of(b"block")),
        cas.encode_get(address_of(b"absent")),
        cas.encode_get(b"\x01\x55\x12\x10" + b"\x00" * 16),
        cas_pb2.CasRequest().SerializeToString(),
    ]


def cas_responses() -> list[bytes]:
    return [
        cas_pb2.CasResponse(content=cas_pb2.Content(data=b"block")).SerializeToString(),
        cas_pb2.CasResponse(address=cas_pb2.Address(id=address_of(b"block"))).SerializeToString(),
        cas.encode_error(cas.Code.NOT_FOUND, "no block"),
        cas.encode_error(99, "a code from a newer version"),
    ]


def ns_requests() -> list[bytes]:
    return [
        ns.encode_update(NAME, records()[0]),
        ns.encode_update(NAME, records()[2]),
        ns.encode_update(NAME, records()[4]),
        ns.encode_update("not a name", b"junk"),
        ns.encode_fetch(NAME),
        ns.encode_fetch(log_name(OTHER_KEY.public_key)),
        ns_pb2.NsRequest().SerializeToString(),
        ns_poll.encode_poll([(name_to_peer_id(NAME).to_bytes(), 0), (name_to_peer_id(NAME).to_bytes(), None)]),
        ns_poll.encode_poll([(b"\x00\x01x", 5)]),
    ]


def ns_responses() -> list[bytes]:
    return [
        ns_pb2.NsResponse(content=ns_pb2.Content(data=records()[0])).SerializeToString(),
        ns.encode_status(ns.Status.OK),
        ns.encode_status(ns.Status.STALE, "older"),
        ns.encode_error(ns.Code.NOT_FOUND, "no record"),
        ns_poll.encode_answer([(ns_pb2.PollResult.CHANGED, records()[0])]),
        ns_poll.encode_answer([(ns_pb2.PollResult.UNCHANGED, b"")]),
        ns_poll.encode_answer([(ns_pb2.PollResult.NOT_HELD, b"")]),
    ]


def frames_of(payloads: list[bytes]) -> bytes:
    return b"".join(encode_frame(p) for p in payloads)
