"""The node as an application embeds it."""

from __future__ import annotations

import pytest

from rlp2p.errors import PublishError
from rlp2p.node.node import Node, NodeConfig
from rlp2p.store import open_store


async def test_errors_of_the_body_come_back_unwrapped(tmp_path):
    with pytest.raises(PublishError):
        async with Node.open(tmp_path / "n", config=NodeConfig()):
            raise PublishError("raised inside the body")


async def test_a_restarted_node_keeps_its_identity(tmp_path):
    async with Node.open(tmp_path / "n") as first:
        peer = first.peer_id
    async with Node.open(tmp_path / "n") as second:
        assert second.peer_id == peer


async def test_a_node_closes_the_store_it_opened_but_not_one_it_was_given(tmp_path):
    async with Node.open(tmp_path / "a") as opened:
        assert not opened.store.closed
    assert opened.store.closed
    with open_store(tmp_path / "b") as store:
        async with Node(store) as given:
            pass
        assert not given.store.closed
