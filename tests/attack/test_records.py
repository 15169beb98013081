"""Records with sane bounds (issue 10, item 5): a storage peer refuses, with a typed status, a
record signed by the log's own key whose TTL or validity would pin it for ever."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, LogMode, build_log
from rlp2p.core.record import create_record
from rlp2p.errors import RemoteError
from rlp2p.limits import DEFAULT_LIMITS
from rlp2p.wire.cas import CAS_PROTOCOL, CasClient
from rlp2p.wire.ns import NS_PROTOCOL, NsClient
from rlp2p.wire.rpc import RpcStream

from attack_util import client_host, serve


async def test_out_of_bound_ttl_and_validity_refused(tmp_path) -> None:
    key = generate_log_key()
    name = log_name(key.public_key)
    # a real one-message log: a storage peer takes a new log's record only once it holds its blocks
    built = build_log([LogEntry(1, Message(b"g" * 32, 0, b"hello").encode())], LogMode.paged(4))
    head = built.head
    now = datetime.now(timezone.utc)  # IPNSValidator reads the real clock: records made at it
    forever = datetime(9999, 12, 31, tzinfo=timezone.utc) - now
    async with serve(tmp_path / "server") as proc, client_host() as client:
        await client.connect(proc.peer)
        cas = CasClient(RpcStream(await client.new_stream(proc.peer.peer_id, [CAS_PROTOCOL]), DEFAULT_LIMITS, timeout=10))
        await cas.add_many(list(built.blocks.values()))
        await cas.rpc.aclose()
        stream = await client.new_stream(proc.peer.peer_id, [NS_PROTOCOL])
        ns = NsClient(RpcStream(stream, DEFAULT_LIMITS, timeout=10))
        for sequence, (validity, ttl) in enumerate(
            [
                (timedelta(days=7), timedelta(seconds=(2**64 - 1) // 10**9)),  # TTL of 2^64-1 ns
                (forever, timedelta(minutes=1)),  # valid until year 9999
                (timedelta(days=367), timedelta(minutes=1)),  # just past the maximum of 366 days
                (timedelta(days=7), timedelta(days=1, seconds=1)),  # just past the maximum of a day
            ],
            start=1,
        ):
            with pytest.raises(RemoteError) as refused:
                await ns.update(name, create_record(key, head, sequence, validity=validity, ttl=ttl, now=now))
            assert refused.value.code == "INVALID_RECORD", refused.value
            assert "this peer's" in str(refused.value)
        # within the bounds: accepted, and it is the record served
        await ns.update(name, create_record(key, head, 10, validity=timedelta(days=365), ttl=timedelta(days=1), now=now))
        assert (await ns.fetch(name)).sequence == 10
        await ns.rpc.aclose()
