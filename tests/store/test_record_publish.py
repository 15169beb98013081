"""A publish's bookkeeping in one transaction: replicas' holdings and the publish state together."""

from __future__ import annotations

import pytest

from rlp2p.core.publish import Holding
from rlp2p.store import PublishState, open_store


def holding(length: int) -> Holding:
    return Holding("paged:8 none", length, bytes([length]) * 36, 0, None)


def test_holdings_and_state_are_written_together(tmp_path):
    store = open_store(tmp_path)
    try:
        store.reserve_sequence("log", 7)
        store.record_publish("log", {"peerA": holding(3), "peerB": holding(3)}, PublishState(5, 3, 5))
        assert store.replica_holding("log", "peerA") == holding(3)
        assert store.replica_holding("log", "peerB") == holding(3)
        state = store.get_publish_state("log")
        assert (state.record_seq, state.published_length, state.reserved_seq) == (5, 3, 7)  # reserved never drops
        # a failed publish: the holdings alone
        store.record_publish("log", {"peerC": holding(4)})
        assert store.replica_holding("log", "peerC") == holding(4)
        assert store.get_publish_state("log").record_seq == 5
        # a bad holding fails before anything is written
        with pytest.raises(TypeError):
            store.record_publish("log", {"peerD": holding(5), "peerE": "nonsense"})  # type: ignore[dict-item]
        assert store.replica_holding("log", "peerD") is None
    finally:
        store.close()
