"""Creating and addressing py-libp2p hosts, with the sharp edges of py-libp2p 0.8.1 handled here.

See ../shared/libp2p-notes.md; each workaround has a test in tests/node/test_host.py.
"""

from __future__ import annotations

import logging

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from rlp2p.errors import DecodeError

DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"

# Sharp edge: py-libp2p's logger has no handler and does not propagate, so Python's last-resort
# handler prints its warnings on the stderr of any application embedding us. A NullHandler keeps
# them quiet unless the application adds a handler of its own (or sets ``propagate``).
logging.getLogger("libp2p").addHandler(logging.NullHandler())


def make_host(key_pair: KeyPair | None = None, *, dial_retries: int = 1) -> IHost:
    """A host with Noise, yamux and TCP.

    Sharp edges: without ``max_connections_per_peer=1`` every dial waits a fixed 250 ms (a
    happy-eyeballs delay in py-libp2p's swarm); with it a loopback dial takes about 12 ms. And a
    dial to a dead peer is retried 3 times with back-off (0.1, 0.2, 0.4 s) by default, which
    stalls every DHT lookup that meets one; ``dial_retries`` sets that.
    """
    host = new_host(
        key_pair=key_pair or create_new_key_pair(),
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )
    host.get_network().retry_config = RetryConfig(max_retries=dial_retries)
    return host


async def close_listeners(host: IHost) -> None:
    """Sharp edge: leaving ``host.run()`` leaves its TCP listeners open in py-libp2p 0.8.1, so a
    stopped node still accepts connections (which then never identify, and stall whoever dials
    them). Closing the network while the host still runs releases them."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await host.get_network().close()


def quiet_libp2p_logs(level: int = logging.ERROR) -> None:
    """Sharp edge: py-libp2p sets its logger to WARNING with no handler, so its noise ("Failed to
    read DHT message from stream:" on every normal end of stream) reaches stderr whatever the
    application configured. py-libp2p resets it when first imported, so we set it after that
    import (this module imports libp2p). Applications may lower it again."""
    logging.getLogger("libp2p").setLevel(level)
    # some modules pin their own level (the auto-connector logs at INFO whatever its parent says)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if name.startswith("libp2p.") and isinstance(logger, logging.Logger) and logger.level:
            logger.setLevel(level)


def full_addrs(host: IHost) -> list[str]:
    """The host's listen addresses with ``/p2p/<id>``, as peers dial them."""
    peer = host.get_id().to_string()
    out = []
    for addr in host.get_addrs():
        out.append(with_peer_id(addr, peer))
    return out


def with_peer_id(addr: multiaddr.Multiaddr | str, peer: str) -> str:
    """``addr`` ending in exactly one ``/p2p/<peer>``: the peerstore may hold addresses with or
    without it, and js-libp2p refuses to dial an address that names the peer twice."""
    text = str(addr)
    suffix = f"/p2p/{peer}"
    return text if text.endswith(suffix) else text + suffix


def serves(host: IHost, peer: ID, protocol: str) -> bool:
    """Whether identify told ``host`` that ``peer`` serves ``protocol`` (False for an unknown peer)."""
    try:
        return bool(host.get_peerstore().supports_protocols(peer, [protocol]))
    except Exception:  # py-libp2p raises PeerStoreError for a peer it never saw
        return False


def parse_peer_addr(addr: str | multiaddr.Multiaddr) -> PeerInfo:
    """A dialable multiaddr with ``/p2p/``; DecodeError (not a library exception) otherwise."""
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(str(addr)))
    except Exception as exc:
        raise DecodeError(f"not a multiaddr with /p2p/: {str(addr)[:200]!r} ({exc})") from exc


def parse_listen_addr(addr: str) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(addr)
    except Exception as exc:
        raise DecodeError(f"not a multiaddr: {addr[:200]!r} ({exc})") from exc
