"""The node as an application embeds it."""

from __future__ import annotations

import pytest

from rlp2p.errors import PublishError
from rlp2p.node.node import Node, NodeConfig


async def test_errors_of_the_body_come_back_unwrapped(tmp_path):
    with pytest.raises(PublishError):
        async with Node.open(tmp_path / "n", config=NodeConfig()):
            raise PublishError("raised inside the body")


async def test_a_restarted_node_keeps_its_identity(tmp_path):
    async with Node.open(tmp_path / "n") as first:
        peer = first.peer_id
    first.close_store()
    async with Node.open(tmp_path / "n") as second:
        assert second.peer_id == peer
    second.close_store()
