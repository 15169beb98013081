"""NS Poll (rlp2p.wire.ns_poll) against a real storage peer: limits, a cut answer, bad records."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from rlp2p.core.address import address_of
from rlp2p.core.keys import generate_log_key, log_name, name_to_peer_id
from rlp2p.core.poll import State
from rlp2p.core.record import create_record
from rlp2p.limits import DEFAULT_LIMITS
from rlp2p.pb.vac import ns_pb2
from rlp2p.wire.ns import decode_response
from rlp2p.wire.ns_poll import PollState, PollStats, encode_answer, encode_poll


def logs(count: int, sequence: int = 4) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        key = generate_log_key()
        out.append((log_name(key.public_key), create_record(key, address_of(b"%d" % i), sequence)))
    return out


async def test_a_poll_over_the_limit_is_refused_before_any_record_is_read_and_the_stream_serves_on(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client")
    limit = storage.config.limits.max_poll_names
    ids = [(name_to_peer_id(name).to_bytes(), None) for name, _ in logs(1)] * (limit + 1)
    async with client.ns(storage.peer_id) as ns:
        too_many, empty_id, fine = await ns.rpc.call_many([encode_poll(ids), encode_poll([(b"", None)]), encode_poll(ids[:1])])
    assert decode_response(too_many).error.code == ns_pb2.Error.TOO_LARGE
    assert decode_response(empty_id).error.code == ns_pb2.Error.BAD_REQUEST
    [result] = decode_response(fine).polled.results
    assert result.state == ns_pb2.PollResult.NOT_HELD and len(fine) <= 6


async def test_an_answer_cut_at_the_servers_budget_is_asked_again_for_the_rest(swarm):
    small = replace(DEFAULT_LIMITS, max_answer_bytes_per_stream=1_000)  # about four records
    (storage,) = [await swarm.start_node("storage", storage=True, limits=small)]
    client = await swarm.start_node("client")
    held = logs(10)
    for name, record in held:
        storage.store.put_record(name, record, 4)
    stats = PollStats()
    now = datetime.now(timezone.utc)
    async with client.ns(storage.peer_id) as ns:
        answers = await ns.poll([(name, 3) for name, _ in held] + [(held[0][0], 4)], now=now, stats=stats, compact=False)
        compact_stats = PollStats()
        compact = await ns.poll([(name, 3) for name, _ in held], now=now, stats=compact_stats)
    assert [a.state for a in answers] == [State.CHANGED] * 10 + [State.UNCHANGED]
    assert [a.info.raw for a in answers[:10]] == [record for _, record in held]
    assert stats.round_trips == 3 and not stats.fell_back  # 4 + 4 + 2 records (and the 2-byte unchanged)
    # compact records (151 B): 6 + 4, each rebuilt to the exact record
    assert [a.info.raw for a in compact] == [record for _, record in held]
    assert compact_stats.round_trips == 2


async def test_a_bad_record_fails_its_log_only(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client")
    (good_name, good), (bad_name, bad) = logs(2)
    storage.store.put_record(good_name, good, 4)
    forged = bytearray(bad)
    forged[-5] ^= 0xFF  # a stored record that no longer verifies: a broken or lying server
    storage.store.put_record(bad_name, bytes(forged), 4)
    async with client.ns(storage.peer_id) as ns:
        answers = await ns.poll([(bad_name, None), (good_name, 1)])
    assert answers[0].state is State.FAILED and "InvalidRecord" in answers[0].error
    assert answers[1].state is State.CHANGED and answers[1].info.sequence == 4


def test_sequence_only_is_field_10_and_a_reader_of_the_spec_alone_ignores_it():
    log_id = name_to_peer_id(logs(1)[0][0]).to_bytes()
    plain, only = encode_poll([(log_id, 3)]), encode_poll([(log_id, 3)], [True])
    assert len(only) == len(plain) + 2  # the tag of field 10 and a true
    entry = ns_pb2.NsRequest.FromString(only).poll.logs[0]
    assert entry.sequence_only and entry.sequence == 3
    assert not ns_pb2.NsRequest.FromString(plain).poll.logs[0].sequence_only
    answer = ns_pb2.NsResponse.FromString(encode_answer([(PollState.CHANGED, b"", 2**40)]))
    (result,) = answer.polled.results
    assert result.state == PollState.CHANGED and result.sequence == 2**40 and not result.record
    assert len(encode_answer([(PollState.CHANGED, b"", 7)])) < 10
    assert not ns_pb2.NsResponse.FromString(encode_answer([(PollState.UNCHANGED, b"")])).polled.results[0].HasField("sequence")


async def test_a_server_answers_sequence_only_logs_with_their_sequence_and_the_rest_as_before(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client")
    held = logs(3, sequence=5)
    for name, record in held:
        storage.store.put_record(name, record, 5)
    stats = PollStats()
    now = datetime.now(timezone.utc)
    entries = [(held[0][0], 4), (held[1][0], 4), (held[2][0], 5), (held[0][0], None)]
    async with client.ns(storage.peer_id) as ns:
        answers = await ns.poll(entries, now=now, stats=stats, sequence_only=[True, False, True, True])
        raw = await ns.rpc.call_many([encode_poll([(name_to_peer_id(held[0][0]).to_bytes(), 4)], [True])])
    assert [a.state for a in answers] == [State.NEWER, State.CHANGED, State.UNCHANGED, State.NEWER]
    assert answers[0].sequence == 5 and answers[0].info is None and answers[1].info.raw == held[1][1]
    assert stats.round_trips == 1
    (result,) = decode_response(raw[0]).polled.results
    assert result.sequence == 5 and not result.record and len(raw[0]) < 12


def test_a_sequence_where_the_record_was_asked_for_is_a_failed_answer():
    from rlp2p.wire.ns_poll import _judge

    result = ns_pb2.PollResult(state=PollState.CHANGED, sequence=9)
    now = datetime.now(timezone.utc)
    name = logs(1)[0][0]
    assert _judge((name, 3), result, DEFAULT_LIMITS, now, True).state is State.FAILED
    assert _judge((name, 3), result, DEFAULT_LIMITS, now, True, True).sequence == 9


async def test_compact_records_in_a_poll_answer_are_smaller_and_rebuild_the_exact_record(swarm):
    (storage,) = await swarm.add_storage(1)
    client = await swarm.start_node("client")
    held = logs(3)
    for name, record in held:
        storage.store.put_record(name, record, 4)
    ids = [(name_to_peer_id(name).to_bytes(), 3) for name, _ in held]
    async with client.ns(storage.peer_id) as ns:
        whole, compact = await ns.rpc.call_many([encode_poll(ids), encode_poll(ids, compact=True)])
        answers = await ns.poll([(name, 3) for name, _ in held])
    assert all(r.record and not r.compact for r in decode_response(whole).polled.results)
    assert all(r.compact and not r.record for r in decode_response(compact).polled.results)
    assert len(whole) - len(compact) == 3 * (221 - 151)
    assert [a.info.raw for a in answers] == [record for _, record in held]


def test_a_compact_poll_answer_is_verified_and_only_taken_when_asked_for():
    from rlp2p.core.compact import compact_record
    from rlp2p.wire.ns_poll import _judge

    ((name, record),) = logs(1)
    now = datetime.now(timezone.utc)
    compact = compact_record(None, record, with_value=True)
    assert compact is not None
    good = ns_pb2.PollResult(state=PollState.CHANGED, compact=compact)
    assert _judge((name, 3), good, DEFAULT_LIMITS, now, True, compact=True).info.raw == record
    assert _judge((name, 3), good, DEFAULT_LIMITS, now, True, compact=False).state is State.FAILED
    forged = ns_pb2.PollResult(state=PollState.CHANGED, compact=compact[:5] + bytes([compact[5] ^ 1]) + compact[6:])
    assert "InvalidRecord" in _judge((name, 3), forged, DEFAULT_LIMITS, now, True, compact=True).error
    junk = ns_pb2.PollResult(state=PollState.CHANGED, compact=b"\xff\xff")
    assert "DecodeError" in _judge((name, 3), junk, DEFAULT_LIMITS, now, True, compact=True).error
    # a server from before ignores the field and sends the record: taken as ever
    whole = ns_pb2.PollResult(state=PollState.CHANGED, record=record)
    assert _judge((name, 3), whole, DEFAULT_LIMITS, now, True, compact=True).info.raw == record
