"""A storage peer's counters for Prometheus, served over HTTP on a loopback address.

Off by default (``NodeConfig.metrics``); needs the ``metrics`` extra (``prometheus-client``).
Values that live elsewhere (connections, blocks and names held, quota use, refusals) are read
when Prometheus scrapes, by a collector; only what happens on streams is counted here, by
wrapping the CAS and NS stream handlers. Every metric is named ``rlp2p_*``; see
docs/operators.md for the list.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from rlp2p.node.node import Node

log = logging.getLogger(__name__)

#: writers whose usage is exported one by one (the largest): a label per peer is bounded
TOP_WRITERS = 10


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` to serve metrics on; the host must be a loopback address."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"metrics address must be HOST:PORT, not {text!r}")
    host = host.strip("[]")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"metrics listen only on a loopback address (a scraper on this machine or a tunnel), not {host}")
        number = int(port)
    except ValueError as exc:
        raise ValueError(f"bad metrics address {text!r}: {exc}") from exc
    if not 0 <= number < 65536:
        raise ValueError(f"bad metrics port {number}")
    return host, number


class _CountingStream:
    """A libp2p stream that counts the bytes read from and written to it."""

    def __init__(self, stream: Any, metrics: StorageMetrics) -> None:
        self._stream = stream
        self._metrics = metrics

    async def read(self, n: int | None = None) -> bytes:
        data = await self._stream.read(n)
        self._metrics.bytes_in += len(data)
        return data

    async def write(self, data: bytes) -> None:
        await self._stream.write(data)
        self._metrics.bytes_out += len(data)

    def __getattr__(self, name: str) -> Any:  # close, reset, muxed_conn, ...
        return getattr(self._stream, name)


class StorageMetrics:
    def __init__(self, node: Node) -> None:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError as exc:
            raise ImportError("metrics need prometheus-client: pip install 'rlp2p[metrics]'") from exc
        self.node = node
        self.registry = CollectorRegistry()
        self.registry.register(self)  # type: ignore[arg-type]
        self.streams_total: dict[str, int] = {}
        self.streams_open: dict[str, int] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        self._httpd: Any = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    # --- counting --------------------------------------------------------------------------

    def counted(self, protocol: str, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        self.streams_total.setdefault(protocol, 0)
        self.streams_open.setdefault(protocol, 0)

        async def handle(stream: Any) -> None:
            self.streams_total[protocol] += 1
            self.streams_open[protocol] += 1
            try:
                await handler(_CountingStream(stream, self))
            finally:
                self.streams_open[protocol] -= 1

        return handle

    # --- the collector (runs in the HTTP server's thread, on each scrape) ------------------

    def describe(self) -> list[Any]:
        return []  # no describe at registration: collect() reads the store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from rlp2p.core.admission import QUOTAS, REASONS

        node, store = self.node, self.node.store
        connections = node.network.connection_count()
        yield GaugeMetricFamily("rlp2p_connections", "Open libp2p connections", value=connections)
        opened = CounterMetricFamily("rlp2p_streams", "CAS and NS streams served", labels=["protocol"])
        current = GaugeMetricFamily("rlp2p_streams_open", "CAS and NS streams being served", labels=["protocol"])
        for protocol in sorted(self.streams_total):
            opened.add_metric([protocol], self.streams_total[protocol])
            current.add_metric([protocol], self.streams_open[protocol])
        yield opened
        yield current
        yield CounterMetricFamily("rlp2p_bytes_in", "Bytes read on CAS and NS streams", value=self.bytes_in)
        yield CounterMetricFamily("rlp2p_bytes_out", "Bytes written on CAS and NS streams", value=self.bytes_out)
        blocks, size = store.block_stats()
        yield GaugeMetricFamily("rlp2p_blocks_held", "CAS blocks held", value=blocks)
        yield GaugeMetricFamily("rlp2p_block_bytes_held", "Bytes of CAS blocks held", value=size)
        yield GaugeMetricFamily("rlp2p_names_held", "Logs (names) a record is held for", value=store.record_count())
        refused = CounterMetricFamily("rlp2p_write_refusals", "Writes refused by admission, by reason", labels=["reason"])
        for reason in REASONS:
            refused.add_metric([reason], node.admission.refusals.by_reason.get(reason, 0))
        yield refused
        cfg = node.admission.config
        limits = GaugeMetricFamily("rlp2p_quota_limit", "Per-peer and per-log quotas (-1: none)", labels=["quota"])
        for quota in QUOTAS:
            value = getattr(cfg, quota)
            limits.add_metric([quota.removeprefix("quota_")], -1 if value is None else value)
        yield limits
        used_bytes = GaugeMetricFamily("rlp2p_quota_bytes_used", f"Bytes stored by the {TOP_WRITERS} largest writers", labels=["peer"])
        used_names = GaugeMetricFamily("rlp2p_quota_names_used", f"Names created by the {TOP_WRITERS} largest writers", labels=["peer"])
        for peer, nbytes, names in store.top_usage(TOP_WRITERS):
            used_bytes.add_metric([peer], nbytes)
            used_names.add_metric([peer], names)
        yield used_bytes
        yield used_names
        total_bytes, total_names = store.total_usage()
        yield GaugeMetricFamily("rlp2p_usage_bytes", "Bytes of blocks charged to writers, all together", value=total_bytes)
        yield GaugeMetricFamily("rlp2p_usage_names", "Names charged to writers, all together", value=total_names)

    # --- serving -----------------------------------------------------------------------------

    def start(self, listen: str) -> None:
        from prometheus_client import start_http_server

        host, port = parse_listen(listen)
        self._httpd, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.address = (host, self._httpd.server_address[1])
        log.info("metrics on http://%s:%d/metrics", *self.address)

    async def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            await trio.to_thread.run_sync(httpd.shutdown)  # waits for its loop (up to 0.5 s)
            httpd.server_close()


__all__ = ["StorageMetrics", "TOP_WRITERS", "parse_listen"]
