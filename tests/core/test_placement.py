import hashlib

import cid
from hypothesis import given, strategies as st

from rlp2p.core.placement import closest, log_key, order_candidates, provider_key, xor_distance


def test_log_key_is_sha256_of_the_name():
    assert log_key("12D3KooWabc") == hashlib.sha256(b"12D3KooWabc").digest()


def test_provider_key_is_a_cidv1_raw_sha256_and_differs_per_log():
    a, b = provider_key("12D3KooWa"), provider_key("12D3KooWb")
    parsed = cid.from_string(a)
    assert parsed.version == 1 and parsed.codec == "raw"
    assert a != b and provider_key("12D3KooWa") == a


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30, unique=True), st.binary(min_size=32, max_size=32), st.integers(0, 40))
def test_closest_is_the_k_nearest_by_hashed_xor_distance(peers, target, k):
    chosen = closest(target, peers, k)
    assert len(chosen) == min(k, len(peers))
    dist = lambda p: xor_distance(hashlib.sha256(p).digest(), target)  # noqa: E731
    rest = [p for p in peers if p not in chosen]
    if chosen and rest:
        assert max(map(dist, chosen)) <= min(map(dist, rest))
    assert [dist(p) for p in chosen] == sorted(dist(p) for p in chosen)


def test_order_candidates_keeps_everyone_once():
    peers = [b"a", b"b", b"c", b"a"]
    ordered = order_candidates(b"\x00" * 32, peers)
    assert sorted(ordered) == [b"a", b"b", b"c"]
