"""Fixtures shared by the suite."""

from __future__ import annotations

import logging

import pytest

from rlp2p.node.host import quiet_libp2p_logs

# py-libp2p logs expected conditions at ERROR; the tests assert on behaviour, not on its logs
quiet_libp2p_logs(logging.CRITICAL)


@pytest.fixture
async def swarm(tmp_path, nursery):
    """A LocalSwarm in this test's nursery; every node it started is stopped at the end."""
    from rlp2p.node.swarm import LocalSwarm

    local = LocalSwarm(tmp_path, nursery, timeout=5.0)
    try:
        yield local
    finally:
        await local.close()
