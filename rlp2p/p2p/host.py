"""Creating and addressing py-libp2p hosts, with the sharp edges of py-libp2p 0.8.1 handled here.

See docs/upstream.md; the connection and window workarounds are
tested in tests/attack/ (test_host_limits.py, test_connections.py, test_memory.py).
"""

from __future__ import annotations

import logging
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, IMuxedConn
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.rcmgr import ResourceLimits, ResourceManager
from libp2p.rcmgr.connection_limits import ConnectionLimits

from rlp2p.errors import DecodeError
from rlp2p.limits import DEFAULT_HOST_LIMITS, HostLimits

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"
#: how long a yamux frame's send may take once started (its caller's cancel waits for it); past
#: it the connection is closed, since a frame cut short cannot be taken back
FRAME_SEND_TIMEOUT = 30.0

# Sharp edge: py-libp2p's logger has no handler and does not propagate, so Python's last-resort
# handler prints its warnings on the stderr of any application embedding us. A NullHandler keeps
# them quiet unless the application adds a handler of its own (or sets ``propagate``).
logging.getLogger("libp2p").addHandler(logging.NullHandler())


def make_host(
    key_pair: KeyPair | None = None,
    *,
    dial_retries: int = 1,
    limits: HostLimits = DEFAULT_HOST_LIMITS,
) -> IHost:
    """A host with Noise, yamux and TCP, and connection and stream limits (``limits``).

    Sharp edges: without ``max_connections_per_peer=1`` every dial waits a fixed 250 ms (a
    happy-eyeballs delay in py-libp2p's swarm); with it a loopback dial takes about 12 ms. And a
    dial to a dead peer is retried 3 times with back-off (0.1, 0.2, 0.4 s) by default, which
    stalls every DHT lookup that meets one; ``dial_retries`` sets that. And an inbound
    connection's slot comes back only when the swarm stops (see :func:`_give_inbound_slots_back`).
    """
    host = new_host(
        key_pair=key_pair or create_new_key_pair(),
        connection_config=ConnectionConfig(
            max_connections_per_peer=1,  # the dial setting above, not a limit on inbound ones
            max_connections=limits.max_connections,
            high_watermark=limits.max_connections,  # prune only past our own limit
        ),
        resource_manager=resource_manager(limits),
    )
    _cap_yamux_window(limits.max_stream_window)
    _cancel_safe_yamux_writes()
    _batched_yamux_window_updates()
    network: Any = host.get_network()  # the Swarm: its retry_config is not on the interface
    network.retry_config = RetryConfig(max_retries=dial_retries)
    if isinstance(network, Swarm):
        # its inbound slots would be max_connections - min_connections, and min_connections also
        # sets how many connections the auto-connector keeps up: set the slots directly
        network._inbound_limiter = trio.CapacityLimiter(limits.max_inbound_connections)
        _give_inbound_slots_back(network)
        _release_scopes_of_refused_connections(network)
    return host


def resource_manager(limits: HostLimits = DEFAULT_HOST_LIMITS) -> ResourceManager:
    """py-libp2p's resource manager with our limits. In 0.8.1 what it enforces is: connections
    in all, established inbound, per peer and in all, pending inbound, new connections a second
    per peer (checked in the swarm's ``upgrade_inbound_raw_conn`` and ``add_conn``), and streams
    in all (a semaphore: streams past it wait). Its memory limit is charged by nothing in
    py-libp2p, and it has no per-peer stream limit on the data path: the CAS and NS servers
    bound both themselves (``rlp2p.wire.rpc.MemoryBudget``). docs/upstream.md has the details."""
    return ResourceManager(
        limits=ResourceLimits(max_connections=limits.max_connections, max_streams=limits.max_streams),
        connection_limits=ConnectionLimits(
            max_pending_inbound=limits.max_pending_inbound,
            max_pending_outbound=limits.max_pending_inbound,
            max_established_inbound=limits.max_inbound_connections,
            max_established_outbound=limits.max_connections,
            max_established_per_peer=limits.max_connections_per_peer,
            max_established_total=limits.max_connections,
        ),
        connections_per_peer_per_sec=limits.connections_per_peer_per_s,
        burst_connections_per_peer=limits.connection_burst_per_peer,
        enable_memory_pooling=False,  # a pool nothing on the data path takes from
    )


def _cap_yamux_window(size: int) -> None:
    """Sharp edge: py-libp2p 0.8.1's yamux doubles a stream's receive window (up to 16 MiB) on
    each read made soon after the previous one, so a server that read a few bytes of a stream and
    then waits (for memory, say) may have granted the sender megabytes it then buffers: 1-2 MiB a
    stream measured. The cap is a module constant, so it applies to every yamux connection in
    the process (the larger of the calls wins, so a test's small host cannot shrink a node's)."""
    import libp2p.stream_muxer.yamux.yamux as yamux

    default = yamux.DEFAULT_WINDOW_SIZE
    if not getattr(yamux, "_rlp2p_capped", False) or size > yamux.MAX_WINDOW_SIZE:
        yamux.MAX_WINDOW_SIZE = max(size, default)
        yamux._rlp2p_capped = True  # type: ignore[attr-defined]


def _cancel_safe_yamux_writes() -> None:
    """Sharp edge: py-libp2p 0.8.1's yamux encrypts a frame (taking the next Noise nonce) and then
    sends it, and trio checks for a cancel before each socket send; a caller cancelled in between
    (a deadline passing while it waited for the connection's write lock) sends nothing, the peer
    is a nonce behind, fails to authenticate every later frame and drops the connection, while
    this side still lists it: streams opened on it fail ("Failed to create stream"). Seen as a
    publish losing a replica under load. Here a frame, once its send starts, is sent whole (the
    caller's cancel takes effect right after), within ``FRAME_SEND_TIMEOUT``, else the connection
    is closed. Class-wide, like the window cap. docs/upstream.md has the case
    (tests/node/test_yamux_edges.py)."""
    import libp2p.stream_muxer.yamux.yamux as yamux

    if getattr(yamux.Yamux, "_rlp2p_cancel_safe", False):
        return

    async def write_frame(self: Any, data: bytes) -> None:
        async with self._write_lock:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(FRAME_SEND_TIMEOUT) as sending:
                    await self.secured_conn.write(data)
                if sending.cancelled_caught:
                    self.event_shutting_down.set()
                    await _close_quietly(self.secured_conn)
                    raise yamux.MuxedStreamError(f"a frame's send took over {FRAME_SEND_TIMEOUT:g} s: connection closed")
        await trio.lowlevel.checkpoint()

    yamux.Yamux._write_frame = write_frame  # type: ignore[method-assign]
    yamux.Yamux._rlp2p_cancel_safe = True  # type: ignore[attr-defined]


def _batched_yamux_window_updates() -> None:
    """Sharp edge: py-libp2p 0.8.1's yamux sends a WINDOW_UPDATE frame on nearly every read (its
    "partial slack" and "release on read" rules), awaited inside ``read`` before the data is
    returned: as many frames again as the data frames (measured: 10,956 updates for 6,385 data
    frames over 40 publishes), each encrypted, sent and handled by the peer, on the path of
    every request and push. This keeps only go-yamux's rule: credit goes back once the bytes
    read reach half the stream's target window (with py-libp2p's window auto-tuning). A blocked
    sender means our receive window is 0, so reading what it sent always reaches that half: no
    stall. docs/upstream.md has the case (tests/node/test_yamux_edges.py counts updates)."""
    import libp2p.stream_muxer.yamux.yamux as yamux

    if getattr(yamux.YamuxStream, "_rlp2p_batched_updates", False):
        return

    async def update_window(self: Any, *, bytes_read: int = 0) -> None:
        credit = 0
        async with self.window_lock:
            buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
            released = self.target_recv_window - (self.recv_window + buffered)
            if released > 0 and released >= self._grow_threshold():
                credit = self._grow_to_delta(buffered) + self._apply_autotune_epoch(buffered)
                self._pending_recv_release = 0
        if credit > 0:
            await self.send_window_update(credit, skip_lock=True)

    yamux.YamuxStream._auto_tune_and_send_window_update = update_window  # type: ignore[method-assign]
    yamux.YamuxStream._rlp2p_batched_updates = True  # type: ignore[attr-defined]


def _give_inbound_slots_back(swarm: Swarm) -> None:
    """Sharp edge: py-libp2p 0.8.1 takes one of ``max_connections - min_connections`` inbound
    slots per accepted TCP connection and gives it back when the inbound handler returns, which,
    after a successful upgrade, waits for the whole swarm to stop (``manager.wait_finished()``),
    not for the connection to close. So after that many connections in its life (250 by
    default) a listener refuses everyone, with none open. This replaces, on this swarm only, the
    handler's TCP path with one that waits for its own connection to close (the listener closes
    the socket when the handler returns, so it must wait for something). Written up with a
    reproduction in docs/upstream.md; remove when py-libp2p releases the slot on close.
    """
    upstream = swarm._do_handle_inbound_connection

    async def handle(read_write_closer: Any, maddr: multiaddr.Multiaddr, failure_event: Any) -> None:
        if isinstance(read_write_closer, IMuxedConn):  # QUIC and the like: not used by rlp2p
            await upstream(read_write_closer, maddr, failure_event)  # type: ignore[arg-type]
            return
        remote = swarm._build_remote_multiaddr(read_write_closer)
        if remote is not None and not await swarm.connection_gate.is_allowed(remote):
            await _close_quietly(read_write_closer)
            return
        raw_conn = RawConnection(read_write_closer, False)
        try:
            muxed = await swarm.upgrade_inbound_raw_conn(raw_conn, maddr)
        except Exception as exc:  # refused by a limit, or a failed handshake: py-libp2p closed it
            log.debug("inbound connection from %s not upgraded: %s", remote, exc)
            await _close_quietly(raw_conn)
            return
        await _until_closed(swarm, muxed)

    swarm._do_handle_inbound_connection = handle  # type: ignore[method-assign]


def _release_scopes_of_refused_connections(swarm: Swarm) -> None:
    """Sharp edge: when ``Swarm.add_conn`` refuses an upgraded connection (over the per-peer or
    inbound limit of the resource manager), it closes the connection but not the resource scope
    ``upgrade_inbound_raw_conn`` attached to it, so the manager's connection count never comes
    down: measured, 64 leaked over 600 connections, and at ``max_connections`` the host would
    refuse everyone again. This closes that scope (closing is idempotent) when ``add_conn``
    raises. docs/upstream.md has the case."""
    upstream = swarm.add_conn

    async def add_conn(muxed_conn: Any, direction: str = "unknown") -> Any:
        try:
            return await upstream(muxed_conn, direction)
        except BaseException:
            scope = getattr(muxed_conn, "_resource_scope", None)
            if scope is not None:
                try:
                    scope.close()
                except Exception:  # best effort: the connection is refused either way
                    log.debug("releasing a refused connection's scope failed", exc_info=True)
            raise

    swarm.add_conn = add_conn  # type: ignore[method-assign]


async def _until_closed(swarm: Swarm, muxed: Any) -> None:
    """Until the swarm connection over ``muxed`` closes, or the swarm stops."""
    conn = next((c for c in swarm.connections.get(muxed.peer_id, []) if c.muxed_conn is muxed), None)
    if conn is None:  # closed already (or never registered)
        return
    async with trio.open_nursery() as nursery:

        async def first(wait: Any) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(first, conn.event_closed.wait)  # type: ignore[attr-defined]  # SwarmConn's
        nursery.start_soon(first, swarm.manager.wait_finished)


async def _close_quietly(closer: Any) -> None:
    try:
        await closer.close()
    except Exception:  # already closed by py-libp2p
        pass


async def close_listeners(host: IHost) -> None:
    """Sharp edge: leaving ``host.run()`` leaves its TCP listeners open in py-libp2p 0.8.1, so a
    stopped node still accepts connections (which then never identify, and stall whoever dials
    them). Closing the network while the host still runs releases them."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        network = host.get_network()
        # Sharp edge too: the network closes its listeners one by one and unlists them only at
        # the end; in between, anything asking the host its addresses (gossipsub puts them in
        # each control message) read a closed socket, and OSError(EBADF) ended pubsub and the
        # node's stop with it (1 CI run in 4). Unlisted first, then closed.
        listeners = getattr(network, "listeners", None)
        if isinstance(listeners, dict):
            closing = list(listeners.values())
            listeners.clear()
            for listener in closing:
                try:
                    await listener.close()
                except Exception as exc:  # a listener that fails to close is closed by the OS at exit
                    log.debug("closing a listener: %r", exc)
        await network.close()


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
