"""Fixtures shared by the suite."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from interop.jsnode import JsNodeUnavailable, ensure_npm_deps, find_tools
from rlp2p.p2p.host import quiet_libp2p_logs

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


class FixedRecord:
    """An NS backend that answers every Fetch with ``record``: a lying or lagging storage peer."""

    def __init__(self, inner, record: bytes):
        self.inner = inner
        self.record = record

    async def get_record(self, name):
        return self.record

    async def put_record(self, info):
        await self.inner.put_record(info)


@pytest.fixture
def fixed_record():
    """``fixed_record(node.ns_server.backend, record)``: see FixedRecord."""
    return FixedRecord


@pytest.fixture(scope="session")
def js_deps() -> None:
    """node and npm present (else skip), and interop/node_modules installed with npm ci."""
    try:
        find_tools()
    except JsNodeUnavailable as exc:
        pytest.skip(str(exc))
    start = time.monotonic()
    took = ensure_npm_deps()
    if took is not None:
        print(f"\n[interop] npm ci took {took:.1f} s", file=sys.stderr)
    else:
        print(f"\n[interop] node_modules current ({time.monotonic() - start:.2f} s to check)", file=sys.stderr)
