"""The epoch simulation of MVDS against the remote log: its model, its byte model, its API."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from itertools import pairwise

import pytest

from bench.log_wire import DEFAULT_MODE, RECORD_TIME, LogWire, replica_id, sim_message
from bench.offline_sim import (
    MVDS,
    REMOTE_LOG,
    Result,
    RunResult,
    SimConfig,
    WireModel,
    creation_epochs,
    floor_crossing,
    format_table,
    mvds_backoff,
    online_draws,
    run_comparison,
    schedule,
    simulate_mvds,
    simulate_remote_log,
    summarize,
)
from rlp2p import LogMode
from rlp2p.core.address import address_of
from rlp2p.core.compact import expand_record
from rlp2p.core.message import Message
from rlp2p.core.page import LogEntry, Page, build_log
from rlp2p.core.pagedelta import apply_checked, apply_page_delta
from rlp2p.core.forward import Lacks
from rlp2p.core.keys import name_to_peer_id
from rlp2p.core.record import create_record, verify_record
from rlp2p.core.sync import SyncPlan
from rlp2p.pb.vac import mvds_pb2
from rlp2p.wire import cas, ns
from rlp2p.wire.forward import decode_forward
from rlp2p.wire.ns_poll import PollState
from rlp2p.wire.framing import FrameDecoder


def _by_design(results: list[Result], online: float) -> tuple[Result, Result]:
    mvds = next(r for r in results if r.design == MVDS and r.online == online)
    log = next(r for r in results if r.design == REMOTE_LOG and r.online == online)
    return mvds, log


def _world(config: SimConfig, online: float, seed: int) -> tuple[list[bool], list[bool], list[int]]:
    rng = random.Random(seed)
    draws_a, draws_b = online_draws(config.epochs, rng)
    created = creation_epochs(config.n_messages, config.window, config.arrivals, rng)
    return schedule(draws_a, online), schedule(draws_b, online), created


def _first_at_or_after(flags: list[bool], start: int) -> int | None:
    return next((t for t in range(start, len(flags)) if flags[t]), None)


# --- presence and arrivals -------------------------------------------------------------------


def test_schedules_threshold_the_draws_and_nest_across_fractions():
    draws = [0.0, 0.25, 0.5, 0.75, 0.999]
    assert schedule(draws, 0.0) == [False] * 5
    assert schedule(draws, 0.5) == [True, True, False, False, False]
    assert schedule(draws, 1.0) == [True] * 5
    with pytest.raises(ValueError):
        schedule(draws, 1.5)
    draws_a, draws_b = online_draws(2000, random.Random(1))
    assert draws_a != draws_b
    low, high = schedule(draws_a, 0.1), schedule(draws_a, 0.5)
    assert all(
        h for l_, h in zip(low, high, strict=True) if l_
    )  # online at 0.1 implies online at 0.5
    assert 150 < sum(low) < 250 and 900 < sum(high) < 1100


def test_creation_epochs():
    assert creation_epochs(4, 10) == [0, 2, 5, 7]
    spread = creation_epochs(50, 100, "random", random.Random(2))
    assert spread == sorted(spread) and spread[0] >= 0 and spread[-1] < 100
    assert len(set(spread)) > 30
    with pytest.raises(ValueError):
        creation_epochs(5, 10, "random")


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_same_results_other_seed_other_results():
    first = run_comparison((0.1, 0.5), n_messages=50, epochs=400, seed=7, seeds=3)
    again = run_comparison((0.1, 0.5), n_messages=50, epochs=400, seed=7, seeds=3)
    other = run_comparison((0.1, 0.5), n_messages=50, epochs=400, seed=8, seeds=3)
    assert first == again
    assert first != other


def test_comparison_shape_and_order():
    results = run_comparison((0.25, 1.0), n_messages=20, epochs=100, seeds=2)
    assert [(r.design, r.online) for r in results] == [
        (MVDS, 0.25),
        (REMOTE_LOG, 0.25),
        (MVDS, 1.0),
        (REMOTE_LOG, 1.0),
    ]
    assert all(r.seeds == 2 and r.messages == 40 for r in results)


# --- MVDS ------------------------------------------------------------------------------------


def test_mvds_always_online_delivers_everything_at_once_with_one_ack_each():
    config = SimConfig()
    wire = WireModel.measure(config.payload_bytes)
    created = creation_epochs(config.n_messages, config.window)
    always = [True] * config.epochs
    run = simulate_mvds(config, always, always, created, wire)

    n = config.n_messages
    assert run.delivered == n
    assert run.latencies == [0] * n  # sent and received in its creation epoch
    assert run.message_sends == n and run.duplicates == 0  # the ack beats the first retransmission
    # one message per Payload (messages are 5 epochs apart), one ack per Payload
    assert run.bytes_alice == n * wire.mvds_payload(1, 0)
    assert run.bytes_bob == n * wire.mvds_payload(0, 1)
    expected = (wire.mvds_payload(1, 0) + wire.mvds_payload(0, 1)) / config.payload_bytes
    assert run.multiplier == pytest.approx(expected)
    assert 1.0 < run.multiplier < 1.4  # message envelope (~20%) plus a 32-byte ack (~14%)

    mvds, _ = _by_design(run_comparison((1.0,), seeds=2), 1.0)
    assert mvds.delivered_share == 1.0
    assert mvds.latency_median == 0 and mvds.latency_p95 == 0
    assert mvds.multiplier == pytest.approx(expected)


def test_mvds_with_a_one_epoch_base_retransmits_before_the_ack_arrives():
    config = SimConfig(n_messages=10, epochs=100, backoff_base=1)
    created = creation_epochs(config.n_messages, config.window)
    always = [True] * config.epochs
    run = simulate_mvds(config, always, always, created)
    # the ack leaves Bob one epoch after the message arrived, when Alice's retransmission is due
    assert run.message_sends == 2 * config.n_messages
    assert run.duplicates == config.n_messages
    assert run.delivered == config.n_messages


def test_mvds_never_delivers_between_peers_that_never_meet():
    config = SimConfig(n_messages=20, epochs=200)
    created = creation_epochs(config.n_messages, config.window)
    alice = [t % 2 == 0 for t in range(config.epochs)]
    bob = [t % 2 == 1 for t in range(config.epochs)]

    mvds = simulate_mvds(config, alice, bob, created)
    assert mvds.delivered == 0 and mvds.bytes_to_bob == 0
    assert mvds.message_sends > 3 * config.n_messages  # she keeps retransmitting into the void
    assert math.isinf(mvds.multiplier)

    log = simulate_remote_log(config, alice, bob, created)
    assert log.delivered == config.n_messages
    assert max(log.latencies) <= 2  # upload when Alice is next online, fetch on Bob's next epoch


@pytest.mark.parametrize("online", [0.05, 0.1])
def test_low_online_fraction_mvds_delivers_less_and_later_than_the_log(online):
    mvds, log = _by_design(run_comparison((online,), seed=3, seeds=5), online)
    assert mvds.delivered_share < log.delivered_share
    assert log.delivered_share > 0.95
    # each phone's figure is its own bytes over the same payload delivered
    assert log.alice_multiplier == pytest.approx(log.bytes_alice / log.delivered_payload_bytes)
    assert log.bob_multiplier == pytest.approx(log.bytes_to_bob / log.delivered_payload_bytes)
    assert mvds.alice_multiplier == pytest.approx(mvds.bytes_alice / mvds.delivered_payload_bytes)
    assert mvds.latency_median is not None and log.latency_median is not None
    assert mvds.latency_median > log.latency_median


@pytest.mark.parametrize("alice_hears_the_ack", [True, False])
def test_an_ack_counts_only_if_alice_is_online_to_hear_it(alice_hears_the_ack):
    config = SimConfig(n_messages=1, epochs=6, send_window=1)
    #          t:   0     1                    2     3     4      5
    alice = [True, alice_hears_the_ack, True, True, False, False]
    bob = [True, True, True, True, False, False]
    run = simulate_mvds(config, alice, bob, [0])
    wire = WireModel.measure()
    assert run.delivered_at == (0,)
    if alice_hears_the_ack:  # acked at 1, before the retransmission due at 0 + 2
        assert (run.message_sends, run.duplicates) == (1, 0)
        assert run.bytes_bob == wire.mvds_payload(0, 1)
    else:  # the ack of epoch 1 is lost: resent at 2, acked again at 3
        assert (run.message_sends, run.duplicates) == (2, 1)
        assert run.bytes_bob == 2 * wire.mvds_payload(0, 1)
        assert run.deliveries == ((0, 0),)


def test_backoff_formula():
    assert [mvds_backoff(k, 2, 64) for k in range(1, 9)] == [2, 4, 8, 16, 32, 64, 64, 64]
    assert [mvds_backoff(k, 2, 64, reset=True) for k in range(1, 9)] == [2, 4, 8, 16, 32, 64, 2, 4]
    assert [mvds_backoff(k, 3, 20) for k in range(1, 6)] == [3, 6, 12, 20, 20]
    assert [mvds_backoff(k, 3, 20, reset=True) for k in range(1, 6)] == [3, 6, 12, 3, 6]
    assert mvds_backoff(10_000, 2, 64) == 64
    for bad in [(0, 2, 64), (1, 0, 64), (1, 8, 4)]:
        with pytest.raises(ValueError):
            mvds_backoff(*bad)


# --- remote log ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_log_delivers_exactly_the_messages_bob_can_see_after_their_upload(seed):
    rng = random.Random(seed)
    config = SimConfig(n_messages=rng.randint(1, 30), epochs=rng.randint(20, 120))
    online = rng.choice([0.02, 0.05, 0.2, 0.5])
    alice, bob, created = _world(config, online, seed)
    if seed % 4 == 0:  # Bob leaves for good halfway: later uploads must stay undelivered
        bob[config.epochs // 2 :] = [False] * (config.epochs - config.epochs // 2)
    run = simulate_remote_log(config, alice, bob, created)

    expected: list[int | None] = []
    for c in created:
        upload = _first_at_or_after(alice, c)
        expected.append(None if upload is None else _first_at_or_after(bob, upload))
    assert list(run.delivered_at) == expected


def test_log_delivers_in_the_upload_epoch_when_bob_is_there():
    config = SimConfig(n_messages=3, epochs=10, send_window=3)
    created = [0, 1, 2]
    alice = [False] * 5 + [True] + [False] * 4  # uploads all three at 5
    bob = [False] * 5 + [True] + [False] * 4
    run = simulate_remote_log(config, alice, bob, created)
    assert run.delivered_at == (5, 5, 5)
    assert run.latencies == [5, 4, 3]


def test_log_bytes_are_every_upload_forward_confirmation_poll_page_and_block():
    config = SimConfig(n_messages=4, epochs=10, send_window=4)  # the defaults: upload once, NS Poll
    wire = config.log_wire()
    created = [0, 1, 2, 3]
    alice = [False, True, False, True] + [False] * 6  # publishes {0, 1} at 1 and {2, 3} at 3
    bob = [True] + [False] * 4 + [True, True] + [False] * 3  # polls at 0 (nothing), 5 and 6
    run = simulate_remote_log(config, alice, bob, created, wire)

    first, second = wire.publish(0, 2, 1), wire.publish(2, 4, 2)
    (ask1, told1), (ask2, told2) = wire.forward(0, 2, 1), wire.forward(2, 4, 2)
    # one upload and one Forward request each; the 2 targets' signed acks ride its answer
    assert wire.confirmation(2, 1) == (0, 0)
    assert run.bytes_alice == first.sent + len(ask1) + second.sent + len(ask2)
    to_alice = first.answered + len(told1) + second.answered + len(told2)
    assert run.bytes_to_alice == to_alice
    sync = wire.sync(0, 4)
    to_bob = (
        3 * wire.fetch_response(0, 0)  # epoch 0: he holds no record: Fetch, NOT_FOUND from each of 3
        + 3 * wire.fetch_response(4, 2)  # epoch 5: still none held: Fetch, then the log from one replica
        + sync.received
        + 3 * wire.poll_answer_size(4, 2, 2)  # epoch 6: he holds sequence 2: NS Poll, "unchanged"
    )
    assert run.bytes_to_bob == to_bob
    # the record asked of one replica (in compact form: PollQuery.compact, 2 bytes), the sequence
    # only of the other two (PollLog.sequence_only, 2 bytes each)
    assert run.bytes_bob == 6 * wire.fetch_request() + sync.sent + wire.poll_request_size(2) + 2 * wire.poll_request_size(2, True)
    assert wire.poll_request_size(2, True) == wire.poll_request_size(2)
    # storage: its answers, and the forwarder's copies to the 2 others with their answers and acks
    # (Alice sent the second head page as a delta and the record compact; the forwarder copies
    # pages and records whole)
    assert first.sent == first.whole and second.sent < second.whole
    copy1, copy2 = wire.publish(0, 2, 1, compact=False), wire.publish(2, 4, 2, compact=False)
    copies = 2 * (copy1.whole + copy1.answered + copy2.whole + copy2.answered)
    copies += 2 * (sum(wire.ack_frames(1)) + sum(wire.ack_frames(2)))
    assert run.bytes_storage == to_bob + to_alice + copies
    assert run.delivered_at == (5, 5, 5, 5)
    assert wire.poll_answer_size(4, 2, 2) < 10 < len(wire.record(4, 2)) < wire.fetch_response(4, 2)
    # a changed log: the record, in compact form (151 of its 221 B)
    assert len(wire.record(4, 2)) > wire.poll_answer_size(4, 2, 1) > 151

    # uploading to each replica, fetching on every poll: 3 uploads, the record every time
    each = simulate_remote_log(replace(config, upload_once=False, conditional=False), alice, bob, created, wire)
    assert each.bytes_alice == 3 * (first.sent + second.sent)
    assert each.bytes_to_alice == 3 * (first.answered + second.answered)
    assert each.bytes_to_bob == to_bob - 3 * wire.poll_answer_size(4, 2, 2) + 3 * wire.fetch_response(4, 2)


def test_the_floor_is_each_payload_once_and_a_record_per_publish_or_per_sync_with_news():
    config = SimConfig(n_messages=4, epochs=10, send_window=4)
    wire = config.log_wire()
    created = [0, 1, 2, 3]
    alice = [False, True, False, True] + [False] * 6  # publishes {0, 1} at 1 (seq 1), {2, 3} at 3 (seq 2)
    bob = [False, False, True, True, True] + [False] * 5  # syncs at 2 (two new) and 3 (two new); 4: nothing new
    run = simulate_remote_log(config, alice, bob, created, wire)
    assert run.publishes == 2 and run.syncs == 2 and run.published == 4
    assert run.floor_alice == 4 * 256 + len(wire.record(2, 1)) + len(wire.record(4, 2))
    assert run.floor_bob == run.floor_alice  # the same two records: each sync found one publish
    late = simulate_remote_log(config, alice, [False] * 5 + [True] * 5, created, wire)
    assert late.syncs == 1 and late.floor_bob == 4 * 256 + len(wire.record(4, 2))  # one record for both publishes
    result = summarize(0.1, [run, late])
    assert result.alice_floor == pytest.approx(2 * run.floor_alice / (8 * 256))
    assert result.bob_floor == pytest.approx((run.floor_bob + late.floor_bob) / (8 * 256))
    assert result.messages_per_publish == 2 and result.syncs == 3
    assert 1 < result.bob_floor < result.alice_floor < result.alice_multiplier
    mvds = summarize(0.1, [simulate_mvds(config, alice, bob, created)])
    assert mvds.alice_floor is None and mvds.bob_floor is None  # a floor of the log's schedules only
    # the record is the library's compact one; Alice's floor is under 1.3 above 2.88 messages a publish
    assert 200 < len(wire.record(2, 1)) < 240
    assert floor_crossing(221, 256, 1.3) == pytest.approx(2.878, abs=1e-3)
    assert 1 + 221 / (256 * floor_crossing(221, 256, 1.3)) == pytest.approx(1.3)


def test_past_the_records_validity_bob_asks_with_fetch_as_the_reader_does():
    config = SimConfig(n_messages=2, epochs=12, send_window=2)
    wire = config.log_wire()
    created = [0, 1]
    alice = [False, True] + [False] * 10  # one publish at 1 (sequence 1)
    bob = [False, True] + [False] * 3 + [True] + [False] * 5 + [True]  # polls at 1, 5 and 11
    fresh = simulate_remote_log(config, alice, bob, created, wire)
    expiring = simulate_remote_log(replace(config, record_validity=8), alice, bob, created, wire)
    assert fresh.delivered == expiring.delivered == 2
    # at 5 the record (signed at 1) is fresh: a poll, "unchanged"; at 11 it has expired: Fetch,
    # and each of the 3 sends the whole record
    extra = 3 * (wire.fetch_response(2, 1) - wire.poll_answer_size(2, 1, 1))
    assert expiring.bytes_to_bob - fresh.bytes_to_bob == extra > 3 * 200
    assert simulate_remote_log(replace(config, record_validity=11), alice, bob, created, wire).bytes_to_bob == fresh.bytes_to_bob
    with pytest.raises(ValueError):
        SimConfig(record_validity=0)


def test_poll_interval_upload_once_and_fanout_move_the_bytes_they_should():
    base = SimConfig(n_messages=20, epochs=200)
    created = creation_epochs(base.n_messages, base.window)  # 5i: each message its own publish
    always = [True] * base.epochs
    wire = base.log_wire()
    every = simulate_remote_log(base, always, always, created)
    sparse = simulate_remote_log(replace(base, poll_interval=10), always, always, created)
    assert sparse.delivered == every.delivered == 20
    assert sparse.bytes_bob < every.bytes_bob
    assert max(sparse.latencies) > max(every.latencies) == 0

    # upload each: Alice sends every block 3 times; upload once costs only the Forward and the
    # targets' acks more in all
    each = simulate_remote_log(replace(base, upload_once=False), always, always, created)
    assert each.message_sends == 3 * every.message_sends
    assert every.bytes_alice < each.bytes_alice / 2
    extra = 0
    for i in range(20):
        ask, told = wire.forward(i, i + 1, i + 1)
        extra += len(ask) + len(told) + 2 * sum(wire.ack_frames(i + 1))
        # Alice sends the head page as a delta and the record compact; the forwarder copies
        # both whole to the 2 others
        extra += 2 * (wire.publish(i, i + 1, i + 1, compact=False).whole - wire.publish(i, i + 1, i + 1).sent)
    assert every.bytes_total - each.bytes_total == extra
    assert every.bytes_to_bob == each.bytes_to_bob and every.bob_multiplier == each.bob_multiplier

    # a fanout of 1: Bob asks one replica a poll instead of 3 (the syncs stay the same)
    one = simulate_remote_log(replace(base, fanout=1), always, always, created)
    syncs = sum(wire.sync(i, i + 1).sent for i in range(20))
    # (the two others' polls ask the sequence only, 2 bytes, as the one asked for the record
    # says it takes compact records, 2 bytes; epoch 0's is a Fetch)
    assert every.bytes_bob - one.bytes_bob == 2 * (one.bytes_bob - syncs) > 0
    assert one.bob_multiplier < every.bob_multiplier

    # without NS Poll, every poll fetches the whole record from each of the 3
    fetching = simulate_remote_log(replace(base, conditional=False), always, always, created)
    assert fetching.delivered == 20 and fetching.bytes_to_bob > every.bytes_to_bob
    polls = base.epochs
    unchanged = polls - 20  # 20 polls see a new record, the rest nothing new
    assert fetching.bytes_to_bob - every.bytes_to_bob == 3 * unchanged * (
        wire.fetch_response(20, 20) - wire.poll_answer_size(20, 20, 20)
    ) + sum(
        3 * wire.fetch_response(i + 1, i + 1)
        - wire.poll_answer_size(i + 1, i + 1, i)  # the record, from one replica
        - 2 * wire.poll_answer_size(i + 1, i + 1, i, True)  # the sequence only, from the others
        for i in range(1, 20)
    )
    # one record a poll, not one a replica: a changed poll gets the record and two ~10-byte answers
    assert wire.poll_answer_size(2, 2, 1, True) < 12 < 151 < wire.poll_answer_size(2, 2, 1) < len(wire.record(2, 2))


# --- both ------------------------------------------------------------------------------------


def _assert_delivered_once(run: RunResult) -> None:
    indices = [i for i, _ in run.deliveries]
    assert len(indices) == len(set(indices)) == run.delivered
    for i, epoch in run.deliveries:
        assert run.delivered_at[i] == epoch
        assert epoch >= run.created[i]


def test_no_message_is_delivered_twice_even_when_copies_arrive_twice():
    config = SimConfig(n_messages=60, epochs=600)
    duplicates = 0
    for seed in range(6):
        for online in (0.1, 0.3, 0.6):
            alice, bob, created = _world(config, online, seed)
            mvds = simulate_mvds(config, alice, bob, created)
            _assert_delivered_once(mvds)
            _assert_delivered_once(simulate_remote_log(config, alice, bob, created))
            duplicates += mvds.duplicates
    assert duplicates > 0  # lost acks did make Alice resend messages Bob already had


def _run(design: str, created: list[int], delivered_at: list[int | None], sent: int) -> RunResult:
    return RunResult(
        design=design,
        payload_bytes=100,
        created=tuple(created),
        delivered_at=tuple(delivered_at),
        deliveries=tuple((i, d) for i, d in enumerate(delivered_at) if d is not None),
        bytes_alice=sent,
        bytes_bob=0,
        bytes_storage=0,
        bytes_to_bob=0,
        message_sends=len(created),
        duplicates=0,
    )


def test_summary_pools_seeds_nearest_rank_p95_and_ratio_of_sums():
    # latencies 1..20 over two runs, plus an undelivered message
    first = _run(MVDS, [0] * 5, list(range(1, 6)), sent=1000)  # multiplier 2.0
    second = _run(MVDS, [0] * 16, [*range(6, 21), None], sent=5000)  # multiplier 3.33
    result = summarize(0.5, [first, second])
    assert (result.messages, result.delivered, result.seeds) == (21, 20, 2)
    assert result.delivered_share == pytest.approx(20 / 21)
    assert result.latency_median == 10.5
    assert result.latency_p95 == 19  # nearest rank: the ceil(0.95 * 20) = 19th smallest
    assert result.multiplier == pytest.approx(6000 / (20 * 100))  # not the mean of 2.0 and 3.33
    empty = summarize(0.5, [_run(REMOTE_LOG, [0], [None], sent=10)])
    assert empty.latency_median is None and empty.latency_p95 is None
    assert math.isinf(empty.multiplier)
    with pytest.raises(ValueError):  # one design at a time
        summarize(0.5, [first, _run(REMOTE_LOG, [0], [0], sent=1)])


# --- byte model ------------------------------------------------------------------------------


def _real_payload(n_messages: int, n_acks: int, size: int = 256) -> bytes:
    messages = [
        mvds_pb2.Message(group_id=bytes([i]) * 32, timestamp=1_700_000_000 + i, body=bytes(size))
        for i in range(n_messages)
    ]
    acks = [Message(b"\xaa" * 32, 1_700_000_000, bytes([i])).id for i in range(n_acks)]
    payload = mvds_pb2.Payload(acks=acks, messages=messages)
    return payload.SerializeToString()


def test_a_payload_grows_with_its_messages_and_the_model_matches_it():
    sizes = [len(_real_payload(m, 0)) for m in range(5)]
    assert sizes == sorted(set(sizes))  # strictly increasing
    assert sizes[0] == 0
    assert all(b - a > 256 for a, b in pairwise(sizes))  # body plus envelope each
    wire = WireModel.measure(256)
    for m, a in [(0, 1), (1, 0), (1, 1), (3, 7), (20, 0), (0, 40)]:
        body = len(_real_payload(m, a))
        prefix = 1 if body < 128 else 2 if body < 16384 else 3
        assert wire.mvds_payload(m, a) == body + prefix


def _frames(blob: bytes) -> list[bytes]:
    decoder = FrameDecoder(max_frame=1 << 24)
    decoder.feed(blob)
    out = []
    while (frame := decoder.next_frame()) is not None:
        out.append(frame)
    assert decoder.at_boundary()
    return out


def _independent_log(n: int, wire: LogWire):
    """The same messages laid out by the library directly, as a publisher would."""
    entries = [LogEntry.from_message(i + 1, sim_message(i, wire.payload_bytes)) for i in range(n)]
    return build_log(entries, wire.mode, wire.hints)


def _added(request, held: dict[bytes, bytes]) -> tuple[bytes, bytes]:
    """An Add's (address, block); a DeltaAdd's applied to the base the replica holds, checked."""
    if request.WhichOneof("method") == "add":
        return address_of(request.add.data), request.add.data
    d = request.add_delta
    assert not d.id  # left out: the server computes it
    page = apply_page_delta(held[d.delta.base], d.delta.SerializeToString())
    return address_of(page), page


@pytest.mark.parametrize("mode", [DEFAULT_MODE, LogMode.paged(4, embed=0), LogMode.fully_replicated(embed=0)])
def test_a_publish_is_the_real_blocks_and_a_real_signed_record(mode):
    wire = LogWire(mode=mode)
    held: dict[bytes, bytes] = {}
    for have, n, sequence in [(0, 3, 1), (3, 9, 2), (9, 10, 3)]:
        frames = wire.publish(have, n, sequence)
        *add_frames, update_frame = _frames(b"".join(frames.requests))
        adds = [cas.decode_request(f) for f in add_frames]
        update = cas.decode_request(update_frame)  # the record rides the CAS stream
        built = _independent_log(n, wire)
        # every Add is a block of the real log, and with what the replica held, it holds it all
        added = dict(_added(a, held) for a in adds)
        if mode == DEFAULT_MODE and have:  # the head page went as a delta
            assert any(a.WhichOneof("method") == "add_delta" for a in adds)
        assert len(added) == len(adds) and added.items() <= built.blocks.items()
        held.update(added)
        assert built.blocks.keys() <= held.keys()
        pages = {address for address, _ in built.pages}
        assert frames.message_blocks == sum(a not in pages for a in added)
        assert all(Page.decode(added[a]) for a in added.keys() & pages)
        # the record: signed by the log's key, naming the real head, at this sequence
        assert update.update.name == wire.name
        # in compact form (UploadNameUpdate.compact), rebuilt exactly by the storage peer
        assert not update.update.content
        info = verify_record(wire.name, expand_record(None, update.update.compact), now=RECORD_TIME)
        assert (info.head, info.sequence) == (built.head, sequence)
        assert frames.sent == sum(len(f) for f in frames.requests)
        # the forwarder's copies send the whole record: 70 B more
        whole = wire.publish(have, n, sequence, compact=False)
        (whole_update,) = _frames(whole.requests[-1])
        assert cas.decode_request(whole_update).update.content == info.raw
        assert whole.sent - frames.sent == len(info.raw) - len(update.update.compact)
        answers = _frames(b"".join(frames.responses))
        assert [cas.decode_response(f).address.id for f in answers[:-1]] == list(added)
        assert cas.decode_response(answers[-1]).updated.status == ns.Status.OK


@pytest.mark.parametrize("mode", [DEFAULT_MODE, LogMode.paged(4, embed=0)])
def test_a_sync_is_what_a_real_reader_fetches_and_accepts(mode):
    wire = LogWire(mode=mode)
    for delivered, n in [(0, 7), (3, 7), (6, 9)]:
        sync = wire.sync(delivered, n)
        requests = [cas.decode_request(f) for f in _frames(b"".join(sync.requests))]
        gets = [r.get_delta.id if r.WhichOneof("method") == "get_delta" else r.get.id for r in requests]
        # the head page he holds: the base of the delta answers
        base = _independent_log(delivered, wire).pages[-1][1] if delivered else b""
        answers = []
        for address, f in zip(gets, _frames(b"".join(sync.responses)), strict=True):
            response = cas.decode_response(f)
            if response.WhichOneof("result") == "delta":
                answers.append(apply_checked(base, response.delta.SerializeToString(), address))
            else:
                answers.append(response.content.data)
        if delivered and mode == DEFAULT_MODE:
            assert any(r.WhichOneof("method") == "get_delta" for r in requests)
        # a fresh reader's plan, fed these answers, delivers exactly the new messages
        plan = SyncPlan(_independent_log(n, wire).head, delivered)
        for address, data in zip(gets, answers, strict=True):
            plan.receive(address, data)
        got = plan.ready()
        assert plan.done and [d.seq for d in got] == list(range(delivered + 1, n + 1)) == list(sync.delivered)
        assert [d.data for d in got] == [sim_message(i, 256).encode() for i in range(delivered, n)]
        assert sync.received == sum(len(f) for f in sync.responses)


def wire_fetch(wire: LogWire) -> bytes:
    from rlp2p.wire.framing import encode_frame

    return encode_frame(ns.encode_fetch(wire.name))


def test_the_record_and_the_fetch_answers_are_the_real_ones():
    wire = LogWire()
    record = wire.record(5, 2)
    # the library's default record, and the compact one (no V1 fields) smaller
    assert len(LogWire(record_v1=False).record(5, 2)) < len(LogWire(record_v1=True).record(5, 2))
    assert verify_record(wire.name, record, now=RECORD_TIME).sequence == 2
    (answer,) = _frames(wire.fetch_answer(5, 2))
    assert ns.decode_response(answer).content.data == record
    assert wire.fetch_response(5, 2) == len(wire.fetch_answer(5, 2))
    (missing,) = _frames(wire.fetch_answer(0, 0))
    assert ns.decode_response(missing).error.code == ns.Code.NOT_FOUND
    (fetch,) = _frames(encode_fetch_frame := wire_fetch(wire))
    assert ns.decode_request(fetch).fetch.name == wire.name and wire.fetch_request() == len(encode_fetch_frame)


@pytest.mark.parametrize("mode", [DEFAULT_MODE, LogMode.paged(4, embed=0)])
def test_the_forward_and_the_poll_are_the_real_frames(mode):
    import multiaddr

    from rlp2p.core.ack import AckCheck, check_ack
    from rlp2p.core.page import Page
    from rlp2p.p2p.host import parse_peer_addr

    wire = LogWire(mode=mode)
    for have, n, sequence in [(0, 3, 1), (3, 9, 2)]:
        ask, told = wire.forward(have, n, sequence)
        (frame,) = _frames(ask)
        request = decode_forward(ns.decode_request(frame).forward)  # the forwarder's own checks
        assert (request.name, request.sequence) == (wire.name, sequence)
        peers = [name_to_peer_id(replica_id(i)).to_bytes() for i in (1, 2)]
        if sequence == 1:  # in full to a forwarder not yet seen relaying acks
            assert [t.peer for t in request.targets] == peers
        else:  # then by position in the head page's CAS hint, which names them there
            hint = Page.decode(wire.built(n).blocks[wire.head(n)], start=None).cas
            named = [parse_peer_addr(multiaddr.Multiaddr(hint[t.hint - 1])).peer_id.to_bytes() for t in request.targets]
            assert named == peers and not any(t.peer for t in request.targets)
        # every target holds what the first does: one shared list, the blocks of the upload
        # (the server's answers name what it stored: a page sent as a delta carries no CID)
        answers = _frames(b"".join(wire.publish(have, n, sequence).responses))[:-1]
        added = [cas.decode_response(f).address.id for f in answers]
        assert all(t.plan.lacks is Lacks.SHARED for t in request.targets)
        assert request.blocks == added
        (answer,) = _frames(told)
        results = ns.decode_response(answer).forwarded.results
        assert [r.status for r in results] == [ns.Status.OK] * 2
        assert [r.blocks_sent for r in results] == [len(added)] * 2
        # each target's own signed ack rides the answer: no confirming Fetch
        assert [check_ack(p, wire.name, r.ack_seq, r.ack) for p, r in zip(peers, results, strict=True)] == [AckCheck.VALID] * 2

        (poll,) = _frames(wire.poll_request(sequence - 1))
        (entry,) = ns.decode_request(poll).poll.logs
        assert (entry.log, entry.sequence) == (name_to_peer_id(wire.name).to_bytes(), sequence - 1)
        assert ns.decode_request(poll).poll.compact
        (changed,) = _frames(wire.poll_answer(n, sequence, sequence - 1))
        (result,) = ns.decode_response(changed).polled.results
        assert result.state == PollState.CHANGED and not result.record  # in compact form
        record = expand_record(None, result.compact)
        assert verify_record(wire.name, record, now=RECORD_TIME).sequence == sequence
        (same,) = _frames(wire.poll_answer(n, sequence, sequence))
        assert [r.state for r in ns.decode_response(same).polled.results] == [PollState.UNCHANGED]
        # the others of the fanout: asked for the sequence only, answered with it and no record
        (only,) = _frames(wire.poll_request(sequence - 1, sequence_only=True))
        assert ns.decode_request(only).poll.logs[0].sequence_only
        (told_seq,) = _frames(wire.poll_answer(n, sequence, sequence - 1, sequence_only=True))
        (result,) = ns.decode_response(told_seq).polled.results
        assert (result.state, result.sequence, result.record) == (PollState.CHANGED, sequence, b"")


def test_the_sim_follows_the_library_defaults():
    import inspect

    from rlp2p import Publisher, Reader

    publisher = inspect.signature(Publisher.__init__).parameters
    reader = inspect.signature(Reader.__init__).parameters
    assert DEFAULT_MODE == publisher["mode"].default
    assert SimConfig().replicas == publisher["replicas"].default == 3
    assert SimConfig().upload_once == (publisher["upload"].default == "once")
    assert SimConfig().fanout == reader["fanout"].default
    assert SimConfig().conditional == reader["conditional"].default
    # the sim's record is create_record's default, which is the publisher's
    assert SimConfig().record_v1 is None
    assert inspect.signature(create_record).parameters["v1_compatible"].default == publisher["record_v1"].default


# --- table and configuration -----------------------------------------------------------------


def test_format_table_has_a_row_per_result_and_prints_inf():
    config = SimConfig(n_messages=5, epochs=50)
    created = creation_epochs(config.n_messages, config.window)
    never = [False] * config.epochs
    results = run_comparison((0.0, 1.0), seeds=1, config=config)
    text = format_table(results)
    lines = text.splitlines()
    assert len(lines) == 2 + len(results)
    assert lines[2].split()[:3] == [MVDS, "0", "0.0%"]
    assert "inf" in lines[2] and "-" in lines[2].split()
    assert lines[-1].split()[:3] == [REMOTE_LOG, "1", "100.0%"]
    assert simulate_mvds(config, never, never, created).delivered == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"epochs": 100, "send_window": 101},
        {"backoff_base": 0},
        {"backoff_base": 8, "backoff_cap": 4},
        {"poll_interval": 0},
        {"replicas": 0},
        {"fanout": 0},
        {"arrivals": "poisson"},
    ],
)
def test_bad_configurations_are_refused(kwargs):
    with pytest.raises(ValueError):
        SimConfig(**kwargs)


def test_schedules_must_cover_the_horizon():
    config = SimConfig(n_messages=2, epochs=10)
    with pytest.raises(ValueError):
        simulate_mvds(config, [True] * 9, [True] * 10, [0, 1])
    with pytest.raises(ValueError):
        simulate_remote_log(config, [True] * 10, [True] * 10, [3, 1])


def test_command_line_prints_the_table(capsys):
    from bench.offline_sim import main

    args = ["--online", "0.2", "1", "--messages", "10", "--epochs", "100", "--seeds", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()[2:6]] == [
        [MVDS, "0.2"],
        [REMOTE_LOG, "0.2"],
        [MVDS, "1"],
        [REMOTE_LOG, "1"],
    ]
    assert "10 messages of 256 B" in out and "2 seeds pooled" in out


def test_the_layout_table_runs_each_layout_both_ways(capsys):
    from bench.offline_sim import layout_table, main

    config = SimConfig(n_messages=10, epochs=100)
    modes = [LogMode.paged(64, embed=None), LogMode.paged(4, embed=0)]
    rows = layout_table(modes, 0.3, seeds=2, config=config)
    assert [mode for mode, _, _ in rows] == modes
    for mode, once, each in rows:
        same = run_comparison([0.3], seeds=2, config=replace(config, mode=mode))[1]
        assert once == same  # the defaults upload once
        assert each.delivered == once.delivered and each.bytes_alice > once.bytes_alice
    args = ["--online", "0.3", "--messages", "10", "--epochs", "100", "--seeds", "2", "--layouts", "paged:64/all", "paged:4/none"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["paged:64/all", "paged:4/none"]
    assert lines[2].split()[2] == f"{rows[0][1].alice_multiplier:.2f}"


def test_the_offline_section_reports_the_floors_as_plain_figures():
    from bench import offline

    result = offline.simulate((0.1,), 1, 256)
    at = result["compare"][0]
    floors = result["floors"]
    assert floors["sim_alice_floor_10pct"] == at["log_alice_floor"] and floors["sim_bob_floor_10pct"] == at["log_bob_floor"]
    assert 1 < at["log_bob_floor"] < at["log_bob_multiplier"] and 1 < at["log_alice_floor"] < at["log_alice_multiplier"]
    assert floors["messages_per_publish_at_limit"] == pytest.approx(floor_crossing(floors["record_bytes"], 256, 1.3), abs=1e-3)
    assert all(row["alice_floor"] == at["log_alice_floor"] for row in result["layouts"])  # the same schedules
    assert "sim_alice_floor_10pct" not in result["goals"]
    assert "5d. The floor" in "\n".join(offline.render(result))
