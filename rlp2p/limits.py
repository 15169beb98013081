"""Limits on everything read from the wire or from a peer's bytes.

Every decoder takes a :class:`Limits`; every size and count it reads is checked against it before
anything is allocated for it. The defaults fit a phone: a 10,000-message fully replicated log
with 256-byte bodies embedded is about 3 MB, well under ``max_block``.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    #: largest CAS block (a serialized page or message) we store, send or accept
    max_block: int = 8 * MiB
    #: largest serialized vac.mvds.Message
    max_message: int = 1 * MiB
    #: most pairs one RemoteLog page may hold
    max_page_pairs: int = 100_000
    #: most pages a reader walks back through `tail` in one sync
    max_pages_walk: int = 1_000_000
    #: IPNS records are at most 10 KiB (ipfs/specs IPNS record, "Record Size Limit")
    max_record: int = 10 * KiB
    #: longest log name (a base58 peer id is about 52 characters)
    max_name: int = 256
    #: most logs one NS Poll request names (rlp2p extension; a reader splits longer lists)
    max_poll_names: int = 1_000
    #: largest length-prefixed frame on a CAS or NS stream (a block plus its envelope)
    max_frame: int = 8 * MiB + 4 * KiB
    #: requests a server accepts on one stream before it answers (pipelining depth)
    max_pipeline: int = 256
    #: requests a server serves on one stream in all, so a stream cannot be held forever
    max_requests_per_stream: int = 1_000_000
    #: a request frame declared larger than this (only a CAS Add is) is buffered only once the
    #: server has set its declared size aside in its memory budget; smaller frames (a Get, a
    #: Fetch, an Update) are read at once
    large_frame: int = 64 * KiB
    #: answer bytes a server builds for one stream before the client has read the ones before
    #: (a request naming many large blocks is answered a few MiB at a time, as the client reads)
    max_answer_bytes_per_stream: int = 4 * MiB
    #: bytes a server holds for one peer across its streams: large request frames being
    #: received plus answers not yet read; past it that peer's streams wait (back-pressure)
    max_server_bytes_per_peer: int = 16 * MiB
    #: the same for all peers together (one server; the CAS and NS servers have one each)
    max_server_bytes: int = 32 * MiB
    #: CAS or NS streams a server serves at once for one peer; more are reset
    max_streams_per_peer: int = 8
    #: longest record TTL a storage peer accepts (IPNS TTL is a caching hint; default 1 minute)
    max_record_ttl_s: int = 24 * 3600
    #: furthest a record's validity may lie ahead of the storage peer's clock (default 7 days)
    max_record_validity_s: int = 366 * 24 * 3600


@dataclass(frozen=True)
class HostLimits:
    """Connection and stream limits of the py-libp2p host a node creates (``NodeConfig.host_limits``).

    They go to py-libp2p's swarm and its resource manager (``libp2p.rcmgr``): see
    ``rlp2p/p2p/host.py`` for what each enforces in py-libp2p 0.8.1.
    """

    #: connections in all (the swarm's ``max_connections``; rcmgr's total and established total)
    max_connections: int = 512
    #: inbound connections open at once (the swarm's inbound slots, rcmgr's established inbound)
    max_inbound_connections: int = 384
    #: inbound connections being upgraded (security and muxer handshakes) at once
    max_pending_inbound: int = 64
    #: connections open at once with one peer (rcmgr's established per peer)
    max_connections_per_peer: int = 4
    #: streams in all, every protocol (rcmgr's stream limit; py-libp2p queues streams past it)
    max_streams: int = 4096
    #: most bytes a yamux stream's receive window grows to (py-libp2p 0.8.1 grows it to 16 MiB
    #: per stream as soon as the application reads, whether or not it reads on; process-wide)
    max_stream_window: int = 1024 * KiB
    #: new connections a second from one peer, and the burst allowed (rcmgr's rate limiter)
    connections_per_peer_per_s: float = 10.0
    connection_burst_per_peer: float = 50.0


DEFAULT_LIMITS = Limits()
DEFAULT_HOST_LIMITS = HostLimits()
