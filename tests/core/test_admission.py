"""The admission policy over plain values: no network, no store, a clock we move."""

from __future__ import annotations

import pytest

from rlp2p.core.admission import MAX_TRACKED_WRITERS, Admission, AdmissionConfig, PeerUsage, parse_allow
from rlp2p.core.keys import generate_log_key, log_name
from rlp2p.errors import DecodeError, NotAllowed, QuotaExceeded, WriteRefused


def peer() -> str:
    return log_name(generate_log_key().public_key)


STRANGER, FRIEND, LOG = peer(), peer(), peer()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_open_mode_admits_within_the_byte_quota_and_refuses_past_it():
    adm = Admission(AdmissionConfig(quota_bytes_per_peer=100))
    adm.check_blocks(STRANGER, PeerUsage(bytes=60), 40)  # exactly at the quota
    with pytest.raises(QuotaExceeded) as info:
        adm.check_blocks(STRANGER, PeerUsage(bytes=60), 41)
    assert info.value.code == "QUOTA"
    adm.check_blocks(STRANGER, PeerUsage(bytes=500), 0)  # nothing new (all held): no cost
    assert info.value.reason == "quota_bytes"


def test_allow_listed_writers_are_exempt_from_per_peer_quotas_and_rate():
    adm = Admission(AdmissionConfig(quota_bytes_per_peer=1, quota_names_per_peer=0, write_rate=1, write_burst=1, allow=frozenset({FRIEND})))
    adm.check_blocks(FRIEND, PeerUsage(bytes=10**12), 10**9)
    adm.check_record(FRIEND, LOG, new_name=True, usage=PeerUsage(names=10**6))
    adm.check_rate(FRIEND, 10**6)
    with pytest.raises(QuotaExceeded):
        adm.check_blocks(STRANGER, PeerUsage(), 2)


def test_names_quota_counts_only_new_names():
    adm = Admission(AdmissionConfig(quota_names_per_peer=2))
    adm.check_record(STRANGER, LOG, new_name=True, usage=PeerUsage(names=1))
    with pytest.raises(QuotaExceeded, match="names per peer"):
        adm.check_record(STRANGER, LOG, new_name=True, usage=PeerUsage(names=2))
    adm.check_record(STRANGER, LOG, new_name=False, usage=PeerUsage(names=2))  # an update of its log


def test_per_log_quota_applies_to_everyone():
    adm = Admission(AdmissionConfig(quota_bytes_per_log=1000, allow=frozenset({FRIEND})))
    adm.check_record(FRIEND, LOG, new_name=False, usage=PeerUsage(), log_bytes=1000)
    with pytest.raises(QuotaExceeded, match="per log"):
        adm.check_record(FRIEND, LOG, new_name=False, usage=PeerUsage(), log_bytes=1001)


def test_allowlist_of_names_takes_their_records_from_anyone_and_nothing_else():
    adm = Admission(AdmissionConfig(mode="allowlist", allow=frozenset({LOG}), quota_bytes_per_peer=100))
    adm.check_record(STRANGER, LOG, new_name=True, usage=PeerUsage())
    with pytest.raises(NotAllowed) as info:
        adm.check_record(STRANGER, peer(), new_name=True, usage=PeerUsage())
    assert (info.value.code, info.value.reason) == ("NOT_ALLOWED", "not_allowed")
    # a block does not name its log: strangers upload within their quota, unreached blocks are collected
    adm.check_blocks(STRANGER, PeerUsage(), 100)
    with pytest.raises(QuotaExceeded):
        adm.check_blocks(STRANGER, PeerUsage(), 101)


def test_allowlist_of_writers_only_keeps_strangers_out_entirely():
    adm = Admission(AdmissionConfig(mode="allowlist", allow=frozenset({FRIEND})))
    adm.check_blocks(FRIEND, PeerUsage(), 10)
    adm.check_record(FRIEND, LOG, new_name=True, usage=PeerUsage())
    # FRIEND could be a log name as well as a writer: a listed entry is matched both ways
    adm.check_record(STRANGER, FRIEND, new_name=True, usage=PeerUsage())
    with pytest.raises(NotAllowed):
        adm.check_record(STRANGER, LOG, new_name=True, usage=PeerUsage())
    adm2 = Admission(AdmissionConfig(mode="allowlist"))
    with pytest.raises(NotAllowed):
        adm2.check_blocks(STRANGER, PeerUsage(), 1)
    with pytest.raises(NotAllowed):
        adm2.check_blocks(None, PeerUsage(), 1)  # an unknown writer is a stranger


def test_rate_limit_refills_with_the_injected_clock():
    clock = Clock()
    adm = Admission(AdmissionConfig(write_rate=10, write_burst=20), monotonic=clock)
    adm.check_rate(STRANGER, 20)  # the whole burst at once
    with pytest.raises(QuotaExceeded, match="rate") as info:
        adm.check_rate(STRANGER, 1)
    assert info.value.reason == "rate"
    adm.check_rate(peer(), 5)  # another writer has its own bucket
    clock.t += 0.5  # 5 tokens back
    adm.check_rate(STRANGER, 5)
    with pytest.raises(QuotaExceeded):
        adm.check_rate(STRANGER, 1)
    with pytest.raises(QuotaExceeded):
        adm.check_rate(peer(), 21)  # more than a burst can never pass


def test_rate_buckets_are_bounded():
    adm = Admission(AdmissionConfig(write_rate=1, write_burst=1), monotonic=Clock())
    for i in range(MAX_TRACKED_WRITERS + 50):
        adm.check_rate(f"writer{i}", 1)
    assert len(adm._buckets) == MAX_TRACKED_WRITERS
    adm.check_rate("writer0", 1)  # forgotten: it starts again with a full burst


def test_no_limits():
    adm = Admission(AdmissionConfig.unlimited())
    adm.check_rate(STRANGER, 10**9)
    adm.check_blocks(STRANGER, PeerUsage(bytes=10**15), 10**12)
    adm.check_record(STRANGER, LOG, new_name=True, usage=PeerUsage(names=10**9), log_bytes=10**15)


def test_config_and_allow_list_are_checked():
    with pytest.raises(ValueError):
        AdmissionConfig(mode="closed")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AdmissionConfig(quota_bytes_per_peer=-1)
    with pytest.raises(ValueError):
        AdmissionConfig(write_rate=0)
    assert parse_allow([f" {LOG} ", FRIEND]) == {LOG, FRIEND}
    qm = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"  # an RSA-style (sha2-256) peer id
    assert parse_allow([qm]) == {qm}
    for bad in ("", "foo", "Qmfoo", LOG[:-1], LOG + "1"):
        with pytest.raises(DecodeError):
            parse_allow([bad])
    assert issubclass(QuotaExceeded, WriteRefused) and issubclass(NotAllowed, WriteRefused)


def test_all_peers_quotas_bound_what_fresh_peer_ids_can_take_together():
    adm = Admission(AdmissionConfig(quota_bytes_all_peers=1000, quota_names_all_peers=3, allow=frozenset({FRIEND})))
    fresh = peer()  # nothing stored of its own, but the strangers together are near the bound
    adm.check_blocks(fresh, PeerUsage(), 100, others=PeerUsage(bytes=900))
    with pytest.raises(QuotaExceeded, match="does not list") as bytes_all:
        adm.check_blocks(fresh, PeerUsage(), 101, others=PeerUsage(bytes=900))
    adm.check_record(fresh, LOG, new_name=True, usage=PeerUsage(), others=PeerUsage(names=2))
    with pytest.raises(QuotaExceeded) as names_all:
        adm.check_record(fresh, LOG, new_name=True, usage=PeerUsage(), others=PeerUsage(names=3))
    assert (bytes_all.value.reason, names_all.value.reason) == ("quota_bytes_all", "quota_names_all")
    # the allow-listed are outside those bounds
    adm.check_blocks(FRIEND, PeerUsage(), 10**6, others=PeerUsage(bytes=10**6))
    adm.check_record(FRIEND, LOG, new_name=True, usage=PeerUsage(), others=PeerUsage(names=10**6))
