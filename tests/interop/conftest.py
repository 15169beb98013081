"""Fixtures of the js-libp2p interop tests: a running js node, a py-libp2p host.

The tests run with ``--import-mode=importlib``, which puts no test folder on sys.path, so this
conftest adds its own folder for the helper module ``interop_util``; the js node's driver is
``interop.jsnode`` at the checkout's root (shared with the DHT benchmark).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import AsyncIterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import multiaddr  # noqa: E402
from libp2p import new_host  # noqa: E402
from libp2p.crypto.ed25519 import create_new_key_pair  # noqa: E402
from libp2p.network.config import ConnectionConfig  # noqa: E402

from interop_util import ECHO_PROTOCOL, echo_handler  # noqa: E402
from interop.jsnode import JsNode  # noqa: E402


def check_stopped(js: JsNode) -> None:
    assert js.returncode == 0, f"js node did not stop cleanly (exit code {js.returncode})"
    assert not js.protocol_errors, f"js node wrote unexpected lines on stdout: {js.protocol_errors}"


@pytest.fixture
async def js_node(js_deps: None) -> AsyncIterator[JsNode]:
    """A running js-libp2p node (interop/node.mjs), stopped at teardown."""
    async with JsNode() as js:
        yield js
    check_stopped(js)


@pytest.fixture
async def js_node2(js_deps: None) -> AsyncIterator[JsNode]:
    """A second js-libp2p node, for tests that need two."""
    async with JsNode() as js:
        yield js
    check_stopped(js)


def make_py_host():
    return new_host(
        key_pair=create_new_key_pair(),
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )


@pytest.fixture
async def py_host():
    """A py-libp2p host on 127.0.0.1 (noise + yamux by default) serving the echo protocol.

    Ping and identify are among py-libp2p's default handlers.
    """
    host = make_py_host()
    host.set_stream_handler(ECHO_PROTOCOL, echo_handler)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        yield host
