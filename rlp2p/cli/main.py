"""``rlp2p``: make a log key, serve as a storage peer, publish, sync, and a local demo.

Human output by default; ``--json`` prints one JSON object a line for scripts. Exit status: 0 on
success, 1 when the operation failed (one ``rlp2p: error:`` line on stderr), 2 on bad usage.
Scripts outside the project depend on the contract in README.md ("The rlp2p command").

Start-up matters (a command is often one line of a script): nothing heavy is imported at module
level. Parsing and every usage check (names, multiaddrs, layouts, numbers) run before trio,
py-libp2p or the node are imported, so a usage error costs a tenth of a second and never touches
the network; the local-only commands (``keygen``, ``name``, ``status``, ``inbox``, ``ls``) never
import py-libp2p at all.

Each subcommand has one ``_opts_<name>`` function declaring its options, an optional
``_check_<name>`` for usage checks that argparse cannot do, and one ``cmd_<name>`` running it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rlp2p import __version__
from rlp2p.errors import Rlp2pError, Timeout

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: bootstrap peers when no --bootstrap is given: comma- or space-separated multiaddrs
BOOTSTRAP_ENV = "RLP2P_BOOTSTRAP"
#: the config file's path; default $XDG_CONFIG_HOME/rlp2p/config.toml (~/.config/...)
CONFIG_ENV = "RLP2P_CONFIG"
#: a publish message's limit (the encoded MVDS message; limits.max_message)
MESSAGE_LIMIT_TEXT = "1 MiB"
DEFAULT_TIMEOUT = 10.0
DEFAULT_REPLICAS = 3


class UsageError(Exception):
    """Bad usage found after parsing (exit status 2, with the command's usage line)."""


class CommandError(Rlp2pError):
    """A command failed for a reason it states itself (exit status 1)."""


# --- output ----------------------------------------------------------------------------------


def _emit(args: argparse.Namespace, human: str, **machine: Any) -> None:
    if args.json:
        print(json.dumps(machine), flush=True)
    else:
        print(human, flush=True)


def _warn(text: str) -> None:
    print(f"rlp2p: warning: {text}", file=sys.stderr, flush=True)


class _Progress:
    """A tqdm bar on stderr, only when stderr is a terminal and output is for people.

    Called once per batch the reader or publisher finished: ``(done, total)``; a total of 0 or
    None (not known yet, as in a linked log's walk) shows a counter without a bar.
    """

    def __init__(self, args: argparse.Namespace, desc: str, unit: str, *, steps_per_unit: int = 1) -> None:
        self.bar = None
        # a sync counts each message twice (located by the walk, then delivered): show messages
        self.steps_per_unit = steps_per_unit
        if not args.json and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is not None:
            self.bar.total = (total or 0) // self.steps_per_unit or None
            self.bar.n = done // self.steps_per_unit
            self.bar.refresh()

    async def tick(self, every: float = 0.5) -> None:
        """Redraw the bar now and then, so its clock runs while nothing is delivered yet (the
        reader walks a log's pages from the newest before it can deliver the oldest)."""
        import trio

        while self.bar is not None:
            await trio.sleep(every)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.close()


# --- shared option groups ------------------------------------------------------------------------


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _data_option(p: argparse.ArgumentParser, what: str = "the node's data folder (created if missing)") -> None:
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help=what)


def _network_options(p: argparse.ArgumentParser, *, listen_required: bool = False) -> None:
    _data_option(p, "the node's data folder (created if missing); one process at a time may use it")
    p.add_argument(
        "--listen",
        action="append",
        required=listen_required,
        metavar="MULTIADDR",
        help="address to listen on, e.g. /ip4/127.0.0.1/tcp/4001 (repeatable)"
        + ("" if listen_required else "; default /ip4/127.0.0.1/tcp/0"),
    )
    p.add_argument(
        "--bootstrap",
        action="append",
        metavar="MULTIADDR",
        help=f"a peer to join the swarm through, with /p2p/<peer id> (repeatable); default: ${BOOTSTRAP_ENV}, "
        "then the config file's `bootstrap` list",
    )
    p.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"limit on one network operation: a dial, a batch of requests, a DHT query (default {DEFAULT_TIMEOUT:g})",
    )


def _global_options(p: argparse.ArgumentParser, *, sub: bool) -> None:
    """``--json`` and ``-v``, accepted before and after the subcommand."""
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if sub else {}
    p.add_argument("--json", action="store_true", help="machine output: one JSON object a line", **default)
    p.add_argument(
        "-v", "--verbose", action="count", help="more logs on stderr, and a traceback on errors (-vv: py-libp2p's logs too)",
        **(default if sub else {"default": 0}),
    )


def _config_file() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rlp2p" / "config.toml"


def _resolve_bootstrap(args: argparse.Namespace) -> list[str]:
    """--bootstrap, else $RLP2P_BOOTSTRAP, else the config file's ``bootstrap``; each checked."""
    from rlp2p.cli.light import check_peer_addr
    from rlp2p.errors import DecodeError

    if args.bootstrap:
        source, addrs = "--bootstrap", list(args.bootstrap)
    elif os.environ.get(BOOTSTRAP_ENV, "").strip():
        source, addrs = BOOTSTRAP_ENV, os.environ[BOOTSTRAP_ENV].replace(",", " ").split()
    else:
        path = _config_file()
        source, addrs = str(path), []
        if path.exists():
            import tomllib

            try:
                config = tomllib.loads(path.read_text("utf-8"))
            except (OSError, UnicodeError, tomllib.TOMLDecodeError) as exc:
                raise UsageError(f"config file {path}: {exc}") from exc
            boot = config.get("bootstrap", [])
            if isinstance(boot, str):
                boot = [boot]
            if not isinstance(boot, list) or not all(isinstance(a, str) for a in boot):
                raise UsageError(f"config file {path}: `bootstrap` must be a list of multiaddrs")
            addrs = boot
    for addr in addrs:
        try:
            check_peer_addr(addr)
        except DecodeError as exc:
            raise UsageError(f"{source}: {exc}") from None
    args.bootstrap_source = source
    return addrs


def _check_network(args: argparse.Namespace, *, need_bootstrap: bool) -> None:
    from rlp2p.cli.light import check_listen_addr
    from rlp2p.errors import DecodeError

    for addr in args.listen or ():
        try:
            check_listen_addr(addr)
        except DecodeError as exc:
            raise UsageError(f"--listen: {exc}") from None
    args.bootstrap = _resolve_bootstrap(args)
    if need_bootstrap and not args.bootstrap:
        raise UsageError(
            f"no peer to join through: give --bootstrap MULTIADDR, or set {BOOTSTRAP_ENV}, or `bootstrap = [...]` in {_config_file()}"
        )


def _check_name_arg(args: argparse.Namespace) -> None:
    from rlp2p.cli.light import check_name
    from rlp2p.errors import DecodeError

    try:
        check_name(args.name)
    except DecodeError as exc:
        raise UsageError(f"NAME: {exc}") from None


def _node_config(args: argparse.Namespace, *, storage: bool) -> Any:
    from rlp2p.node.node import NodeConfig

    return NodeConfig(
        listen=tuple(args.listen or ("/ip4/127.0.0.1/tcp/0",)),
        bootstrap=tuple(args.bootstrap),
        storage=storage,
        timeout=args.timeout,
    )


def _quiet_libp2p(args: argparse.Namespace) -> None:
    """After py-libp2p is imported (it resets its logger then): its logs only with -vv."""
    import logging

    from rlp2p.p2p.host import quiet_libp2p_logs

    if args.verbose >= 2:
        quiet_libp2p_logs(logging.DEBUG)
        logging.getLogger("libp2p").propagate = True
    else:
        quiet_libp2p_logs(logging.CRITICAL)


class _BootstrapFailures:
    """Collects why each bootstrap peer was unreachable (the node logs it, and carries on)."""

    def __init__(self) -> None:
        import logging

        self.reasons: dict[str, str] = {}
        outer = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.msg.startswith("bootstrap peer") and len(record.args or ()) == 2:
                    peer, exc = record.args  # type: ignore[misc]
                    cause = _root_cause(exc) if isinstance(exc, BaseException) else exc
                    if isinstance(cause, OSError):
                        reason = str(cause.strerror).rsplit("): ", 1)[-1]  # trio prefixes the address
                    elif isinstance(exc, Timeout):
                        reason = "connected, but no answer within --timeout"
                    else:
                        reason = _short(exc)
                    outer.reasons[str(peer)] = reason

        self.handler = Handler(logging.WARNING)
        self.logger = logging.getLogger("rlp2p.p2p.dht")

    def __enter__(self) -> _BootstrapFailures:
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeHandler(self.handler)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost OS-level error behind a library's wrapper (``Connection refused``), if any."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return e
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
        todo.extend(getattr(e, "exceptions", ()) or ())
        todo.extend(getattr(e, "errors", ()) or ())  # py-libp2p's MultiError
    return exc


def _short(exc: Any) -> str:
    """One line of an exception's text, without py-libp2p's nested reprs."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _check_bootstrap_reached(node: Any, args: argparse.Namespace, failures: _BootstrapFailures) -> None:
    """Publish and sync need the swarm: fail naming the bootstrap peers if none answered."""
    if not args.bootstrap:
        return
    connected = {p.to_string() for p in node.network.connected()}
    if any(addr.rsplit("/p2p/", 1)[-1] in connected for addr in args.bootstrap):
        return
    parts = []
    for addr in args.bootstrap:
        peer = addr.rsplit("/p2p/", 1)[-1]
        reason = failures.reasons.get(peer, "no connection")
        parts.append(f"{addr} ({reason})")
    what = "the bootstrap peer" if len(parts) == 1 else "any bootstrap peer"
    raise CommandError(f"cannot reach {what} {'; '.join(parts)} (from {args.bootstrap_source})")


def _trio_run(fn: Callable[..., Any], *args: Any) -> Any:
    import trio

    return trio.run(fn, *args)


# --- keygen, name ------------------------------------------------------------------------------


def _opts_keygen(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the key (mode 0600)")
    p.add_argument("--force", action="store_true", help="replace an existing key file (its log is then lost to you)")


def cmd_keygen(args: argparse.Namespace) -> int:
    from rlp2p.cli.light import new_key_file

    name = new_key_file(args.out, overwrite=args.force)
    _emit(args, name, name=name, key_file=str(args.out))
    return EXIT_OK


def _opts_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", type=Path, required=True, metavar="FILE", help="a key file written by `rlp2p keygen`")


def cmd_name(args: argparse.Namespace) -> int:
    from rlp2p.cli.light import key_file_name

    name = key_file_name(args.key)
    _emit(args, name, name=name)
    return EXIT_OK


# --- serve ---------------------------------------------------------------------------------------


def _opts_serve(p: argparse.ArgumentParser) -> None:
    _network_options(p, listen_required=True)
    p.add_argument(
        "--republish-interval", type=_positive_seconds, default=None, metavar="SECONDS",
        help="seconds between re-announcing and re-putting the records held (default 3600)",
    )
    _storage_options(p)


# Defaults of the storage flags, as literals: the parser is built for every command, and the
# config classes import py-libp2p. tests/cli/test_cli_usage.py checks they equal the classes'.
GiB = 1 << 30
SERVE_DEFAULTS = {
    "quota_bytes_per_peer": 1 * GiB,
    "quota_names_per_peer": 64,
    "quota_bytes_per_log": 1 * GiB,
    "quota_bytes_all_peers": 10 * GiB,
    "quota_names_all_peers": 10_000,
    "write_rate": 2000.0,
    "write_burst": 20_000.0,
    "drop_after": 30 * 86400.0,
    "gc_grace": 86400.0,
    "retention_interval": 3600.0,
}


def _storage_options(p: argparse.ArgumentParser) -> None:
    d = SERVE_DEFAULTS
    g = p.add_argument_group("admission (who may write; reads are always open; see docs/operators.md)")
    g.add_argument(
        "--admission", choices=("open", "allowlist", "invite"), default=None,
        help="open: anyone writes within the quotas; allowlist: only what --allow lists; invite: only "
        "writers holding an invitation this peer signed (`rlp2p invite`), and what --allow lists "
        "(default: allowlist if --allow is given, else open)",
    )
    g.add_argument(
        "--allow", action="append", metavar="NAME_OR_PEER", type=_allow_entry,
        help="a log name or a writer's peer id (repeatable); listed writers are exempt from "
        "per-peer quotas and the rate limit",
    )
    g.add_argument(
        "--quota-bytes-per-peer", type=_amount, default=d["quota_bytes_per_peer"], metavar="SIZE",
        help="bytes of blocks one writer may store (K/M/G suffixes, or none; default 1G)",
    )
    g.add_argument(
        "--quota-names-per-peer", type=_amount, default=d["quota_names_per_peer"], metavar="N",
        help=f"logs one writer may create (or none; default {d['quota_names_per_peer']})",
    )
    g.add_argument(
        "--quota-bytes-per-log", type=_amount, default=d["quota_bytes_per_log"], metavar="SIZE",
        help="bytes one log may hold, as the last retention pass measured it (or none; default 1G)",
    )
    g.add_argument(
        "--quota-bytes-all-peers", type=_amount, default=d["quota_bytes_all_peers"], metavar="SIZE",
        help="bytes all writers but the allow-listed may store together: the disk bound, since "
        "peer ids are free (or none; default 10G)",
    )
    g.add_argument(
        "--quota-names-all-peers", type=_amount, default=d["quota_names_all_peers"], metavar="N",
        help=f"logs all writers but the allow-listed may create together (or none; default {d['quota_names_all_peers']})",
    )
    g.add_argument(
        "--write-rate", type=_seconds_or_none, default=d["write_rate"], metavar="PER_SECOND",
        help=f"sustained writes (blocks and record updates) per second and writer (or none; default {d['write_rate']:g})",
    )
    g.add_argument(
        "--write-burst", type=float, default=d["write_burst"], metavar="N",
        help=f"writes a writer may make at once above the rate (default {d['write_burst']:g})",
    )
    g = p.add_argument_group("retention")
    g.add_argument(
        "--drop-after", type=_seconds_or_none, default=d["drop_after"], metavar="SECONDS",
        help=f"drop a log whose record was not updated here for this long (or none; default {d['drop_after']:.0f}, 30 days)",
    )
    g.add_argument(
        "--gc-grace", type=float, default=d["gc_grace"], metavar="SECONDS",
        help=f"keep a block no head reaches for this long after it was stored (default {d['gc_grace']:g}, 1 day)",
    )
    g.add_argument(
        "--retention-interval", type=float, default=d["retention_interval"], metavar="SECONDS",
        help=f"seconds between retention passes (default {d['retention_interval']:g})",
    )
    g.add_argument("--no-gc", action="store_true", help="never collect unreachable blocks (stale logs are still dropped)")
    g = p.add_argument_group("metrics")
    g.add_argument(
        "--metrics", metavar="127.0.0.1:PORT", default=None, type=_metrics_address,
        help="serve Prometheus metrics at http://HOST:PORT/metrics on a loopback address "
        "(off by default; needs the metrics extra)",
    )


def _storage_policy(args: argparse.Namespace) -> tuple[Any, Any]:
    """The admission and retention configs of `rlp2p serve`'s flags."""
    from rlp2p.core.admission import AdmissionConfig, parse_allow
    from rlp2p.core.retention import RetentionConfig

    allow = parse_allow(args.allow or ())
    mode = args.admission or ("allowlist" if allow else "open")
    admission = AdmissionConfig(
        mode=mode,  # type: ignore[arg-type]  # argparse's choices keep it to the modes
        allow=allow,
        quota_bytes_per_peer=args.quota_bytes_per_peer,
        quota_names_per_peer=args.quota_names_per_peer,
        quota_bytes_per_log=args.quota_bytes_per_log,
        quota_bytes_all_peers=args.quota_bytes_all_peers,
        quota_names_all_peers=args.quota_names_all_peers,
        write_rate=args.write_rate,
        write_burst=args.write_burst,
    )
    retention = RetentionConfig(
        drop_after=args.drop_after,
        grace=args.gc_grace,
        interval=args.retention_interval,
        collect=not args.no_gc,
    )
    return admission, retention


def _amount(text: str) -> int | None:
    """A size or count: an integer with an optional K, M, G or T suffix (powers of 1024), or
    `none` for no limit."""
    text = text.strip()
    if text.lower() == "none":
        return None
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    scale = units.get(text[-1:].lower(), 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = int(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G, none)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a size is >= 0, not {text!r}")
    return value


def _allow_entry(text: str) -> str:
    from rlp2p.core.admission import parse_allow
    from rlp2p.errors import DecodeError

    try:
        (entry,) = parse_allow([text])
    except DecodeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return entry


def _metrics_address(text: str) -> str:
    from rlp2p.node.metrics import parse_listen

    try:
        parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _seconds_or_none(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"seconds must be > 0, not {text!r}")
    return value


def _check_serve(args: argparse.Namespace) -> None:
    _check_network(args, need_bootstrap=False)


def _check_port_free(listen: Sequence[str]) -> None:
    """Refuse a TCP port another program holds, before py-libp2p binds it with SO_REUSEPORT.

    py-libp2p sets SO_REUSEPORT on its listeners, so a second ``rlp2p serve`` on a port would
    share it silently (the kernel then splits connections between two peer ids). A plain bind
    (no SO_REUSEPORT) fails on a port anyone listens on. Between this check and py-libp2p's bind
    another program could take the port; the window is a few milliseconds.
    """
    import socket

    import multiaddr

    for text in listen:
        addr = multiaddr.Multiaddr(text)
        protocols = [p.name for p in addr.protocols()]
        if "tcp" not in protocols:
            continue
        port = int(addr.value_for_protocol("tcp"))
        if port == 0:
            continue
        if "ip4" in protocols:
            family, host = socket.AF_INET, addr.value_for_protocol("ip4")
        elif "ip6" in protocols:
            family, host = socket.AF_INET6, addr.value_for_protocol("ip6")
        else:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT port is free
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise CommandError(f"cannot listen on {text}: port {port} is in use by another program ({exc.strerror})") from None


async def _serve(args: argparse.Namespace) -> int:
    import signal

    import trio

    from rlp2p.node.node import Node

    _quiet_libp2p(args)
    config = _node_config(args, storage=True)
    if args.republish_interval is not None:
        config.republish_interval = args.republish_interval
    config.admission, config.retention = _storage_policy(args)
    config.metrics = args.metrics
    node = Node.open(args.data, config=config)
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals, _BootstrapFailures() as failures:
            async with node:
                if not node.addrs:
                    raise CommandError(f"cannot listen on {', '.join(args.listen)}")
                print(node.addrs[0], flush=True)  # the contract: the first line is the full multiaddr
                for peer, reason in failures.reasons.items():
                    _warn(f"bootstrap peer {peer} unreachable ({reason}); serving anyway")
                metrics = None if node.metrics is None else "http://{}:{}/metrics".format(*node.metrics.address)
                if args.json:
                    serving = {"event": "serving", "peer_id": node.peer_id.to_string(), "addrs": node.addrs, "metrics": metrics}
                    print(json.dumps(serving), flush=True)
                else:
                    print(f"storage peer {node.peer_id} serving {args.data}; Ctrl-C stops", flush=True)
                    if metrics:
                        print(f"metrics on {metrics}", flush=True)
                async for _ in signals:
                    break
    finally:
        node.close_store()
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from rlp2p.store.lock import lock_data_dir

    lock_data_dir(args.data).release()  # a folder in use is refused before the port is looked at
    _check_port_free(args.listen)
    return _trio_run(_serve, args)


# --- publish -------------------------------------------------------------------------------------


def _opts_publish(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", type=Path, required=True, metavar="FILE", help="the log's key file (`rlp2p keygen`)")
    _network_options(p)
    p.add_argument("--layout", default="paged:64", help="how the log is cut into pages: full | paged:P | linked (default paged:64)")
    p.add_argument("--embed", default="all", help="which messages ride inside their page: none | all | newest:K (default all); a message over 4 KiB always goes by reference")
    p.add_argument(
        "--replicas", type=_at_least(1), default=DEFAULT_REPLICAS, metavar="K",
        help=f"storage peers to keep a copy (default {DEFAULT_REPLICAS}); with fewer reachable, a warning",
    )
    p.add_argument(
        "--quorum", type=_at_least(1), default=None, metavar="Q",
        help="replicas that must store it for the publish to succeed, at most --replicas (default: a majority of --replicas)",
    )
    p.add_argument(
        "--upload", choices=("once", "each"), default="once",
        help="once (default): send new blocks to one replica, which forwards them to the others; "
        "each: send them to every replica yourself",
    )
    p.add_argument(
        "--validity", type=_duration, default=None, metavar="DURATION",
        help="how long the record stays valid: 30d, 12h, 15m, 90s or a sum like 1d12h (default 7d); "
        "storage peers keep serving it after that, marked as maybe stale",
    )
    p.add_argument(
        "--ttl", type=_duration, default=None, metavar="DURATION",
        help="how long readers may cache the record, same syntax (default 60s)",
    )
    p.add_argument(
        "--invite", action="append", default=[], metavar="TOKEN",
        help="an invitation a storage peer's operator gave you (`rlp2p invite`), presented to that peer "
        "before writing there (repeatable)",
    )
    p.add_argument(
        "--private", action="store_true",
        help="a new log is private: storage peers hold sealed messages, `rlp2p share` prints the capability that reads them",
    )
    p.add_argument(
        "--record-v1", action="store_true",
        help="sign records with the IPNS V1 fields and pubKey too, for old resolvers (435 B instead of 221 B)",
    )


_DURATION = re.compile(r"([0-9]+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``15m``, ``90s`` or a sum of them (``1d12h``): for --validity and --ttl."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration such as 30d, 12h, 15m, 90s or 1d12h")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


PUBLISH_DESCRIPTION = f"""\
Append the lines of stdin to the log, one message per line, and publish the log.

Each line is one message body: the newline and a trailing \\r are stripped, other bytes are kept
as they are (any encoding), a blank line is an empty message, and a message is at most
{MESSAGE_LIMIT_TEXT} (the whole input is refused, nothing appended, if one is over). With empty
stdin (or stdin a terminal) nothing is appended and the log is published as it is: this finishes
a publish that failed or, when nothing waits, renews the record alone (a new sequence and validity,
no pages sent). The command exits once a write quorum of replicas stored the log.

Retrying is safe: messages appended by a publish that failed are kept in the local log and not
appended again when the same lines come again. If stdin begins with exactly the messages still
waiting to be published, only the lines after them are appended (`rlp2p status` shows what waits).
"""


def _check_publish(args: argparse.Namespace) -> None:
    from rlp2p.core.page import LogMode

    replicas = args.replicas
    quorum = args.quorum if args.quorum is not None else replicas // 2 + 1
    if quorum > replicas:
        raise UsageError(f"--quorum {quorum} is more than --replicas {replicas}: a quorum is a number of the replicas")
    args.quorum = quorum
    try:
        args.mode = LogMode.parse(args.layout, args.embed)
    except ValueError as exc:
        text = str(exc).replace("layout ", "--layout ", 1).replace("embed ", "--embed ", 1)
        raise UsageError(text) from None
    _check_network(args, need_bootstrap=True)


def _read_messages(args: argparse.Namespace, name: str) -> list[bytes]:
    """stdin's lines as message bodies, each checked against the message limit (before the network)."""
    import hashlib
    import time

    from rlp2p.core.message import Message
    from rlp2p.limits import DEFAULT_LIMITS

    if sys.stdin is None or sys.stdin.isatty():
        return []
    data = sys.stdin.buffer.read()
    if not data:
        return []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    bodies = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    group = hashlib.sha256(name.encode()).digest()  # the publisher's default group
    now = int(time.time())
    for number, body in enumerate(bodies, start=1):
        size = len(Message(group, now, body).encode())
        if size > DEFAULT_LIMITS.max_message:
            raise CommandError(
                f"stdin line {number}: a message of {len(body)} bytes is over the {MESSAGE_LIMIT_TEXT} limit; nothing appended"
            )
    return bodies


def _pending(store: Any, name: str) -> tuple[int, int]:
    """(messages in the local log, messages the last successful publish covered)."""
    length = store.log_length(name)
    state = store.get_publish_state(name)
    return length, (state.published_length if state else 0)


def _waiting(data: Path, name: str) -> int:
    """Messages in the local log that no successful publish covered yet (0 if unreadable)."""
    from rlp2p.errors import StoreError
    from rlp2p.store import open_store

    try:
        with open_store(data) as store:
            length, published = _pending(store, name)
    except StoreError:
        return 0
    return length - published


def _new_bodies(store: Any, name: str, bodies: list[bytes]) -> tuple[list[bytes], int]:
    """Drop from ``bodies`` the messages still waiting to be published, if stdin starts with them.

    The retry rule: a publish that failed left its messages appended but unpublished; the same
    stdin again must not append them twice. Returns (bodies to append, how many were skipped).
    """
    from rlp2p.core.message import Message

    length, published = _pending(store, name)
    waiting = length - published
    if waiting <= 0 or len(bodies) < waiting:
        return bodies, 0
    rows = store.log_entries(name, after_seq=published)
    if [Message.decode(data).body for _, data in rows] == bodies[:waiting]:
        return bodies[waiting:], waiting
    return bodies, 0


async def _publish(args: argparse.Namespace, bodies: list[bytes]) -> int:
    from rlp2p.core.keys import load_key
    from rlp2p.node.node import Node

    _quiet_libp2p(args)
    key = load_key(args.key)
    node = Node.open(args.data, config=_node_config(args, storage=False))
    appended: list[int] = []
    try:
        store = node.store
        fresh, skipped = _new_bodies(store, args.name, bodies)
        with _BootstrapFailures() as failures:
            async with node:
                # unset: the publisher's defaults (7 days, 60 s)
                times = {k: v for k, v in (("validity", args.validity), ("ttl", args.ttl)) if v is not None}
                publisher = node.publisher(
                    key, mode=args.mode, replicas=args.replicas, write_quorum=args.quorum, upload=args.upload,
                    invitations=args.invite, private=True if args.private else None, record_v1=args.record_v1, **times,
                )
                if fresh:
                    appended = await publisher.append(fresh)
                _check_bootstrap_reached(node, args, failures)
                progress = _Progress(args, "uploading", "block")
                try:
                    report = await publisher.publish(progress=progress)
                finally:
                    progress.close()
    except Exception as exc:
        failure = next((e for e in _leaves(exc) if _expected(e)), None)
        if failure is None:
            node.close_store()
            raise
        node.close_store()  # the node closed it on exit already, unless it never started
        waiting = _waiting(args.data, args.name)
        if waiting > 0:
            retry = f"rlp2p publish --key {args.key} --data {args.data} < /dev/null"
            raise CommandError(
                f"{_describe(failure, args)}; {waiting} message{'s' if waiting != 1 else ''} "
                f"({len(appended)} from this run) appended locally but not published: `{retry}` "
                "(with the same options) publishes them; running this same command again does not append them twice"
            ) from exc
        raise
    node.close_store()
    stored = len(report.stored_on)
    if stored < args.replicas:
        _warn(f"stored on {stored} replicas, fewer than --replicas {args.replicas}: only {stored} storage peers took it")
    _emit(
        args,
        f"published {report.name}: {len(appended)} new"
        + (f" ({skipped} already appended by an earlier try)" if skipped else "")
        + f", {report.messages} in all, record seq {report.sequence}, "
        f"stored on {stored} replicas ({report.bytes_sent} bytes sent, {report.seconds:.2f} s)",
        name=report.name,
        appended=len(appended),
        already_appended=skipped,
        messages=report.messages,
        sequence=report.sequence,
        stored_on=report.stored_on,
        replicas_wanted=args.replicas,
        bytes_sent=report.bytes_sent,
        seconds=round(report.seconds, 4),
    )
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    from rlp2p.cli.light import key_file_name

    args.name = key_file_name(args.key)
    bodies = _read_messages(args, args.name)
    return _trio_run(_publish, args, bodies)


# --- sync ----------------------------------------------------------------------------------------


def _opts_sync(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name", metavar="NAME",
        help="the log's name (12D3KooW..., as `rlp2p keygen` printed it), or a private log's capability (`rlp2p share`)",
    )
    _network_options(p)
    p.add_argument(
        "--require-fresh", action="store_true",
        help="refuse a log whose newest record has expired (default: read it, and warn on stderr)",
    )
    p.add_argument("more", nargs="*", metavar="NAME", help="more logs to follow (with --follow)")
    p.add_argument(
        "--follow", action="store_true",
        help="after catching up, keep printing messages as they arrive (pushed over gossipsub), until Ctrl-C",
    )
    p.add_argument(
        "--poll", type=_positive_seconds, default=None, metavar="SECONDS",
        help="with --follow: seconds between safety-net syncs, for announcements that never came (default 180)",
    )
    p.add_argument(
        "--no-mesh", action="store_true",
        help="with --follow: join no gossipsub mesh (no pubsub at all); a storage peer pushes each newer record "
        "on one stream (the phone-friendly way)",
    )


SYNC_DESCRIPTION = """\
Print each message of the log this reader has not shown yet, then exit.

Messages are printed in order, one a line: `SEQ  BODY` (the body as UTF-8, undecodable bytes
replaced), or with --json `{"id", "seq", "group_id", "timestamp", "body"}` (id = MVDS message id in
hex, group id in hex, body in base64). A message counts as shown once it was written to a terminal
or a file, or read out of a pipe by a program that then read on (or stayed to the end); what was
never read (`| head`, Ctrl-C) is printed again by the next run. A progress bar runs on stderr
when it is a terminal.
"""


def _check_sync(args: argparse.Namespace) -> None:
    from rlp2p.core.private import Capability

    args.capability = None
    if Capability.looks_like(args.name):
        from rlp2p.errors import BadCapability

        try:
            args.capability = Capability.parse(args.name)
        except BadCapability as exc:
            raise UsageError(f"CAPABILITY: {exc}") from None
        if args.follow:
            raise UsageError("--follow does not take a capability yet: sync without --follow")
        args.name = args.capability.name
    _check_name_arg(args)
    from rlp2p.cli.light import check_name
    from rlp2p.errors import DecodeError

    if args.more and not args.follow:
        raise UsageError("several log names need --follow")
    if args.poll is not None and not args.follow:
        raise UsageError("--poll goes with --follow")
    if args.no_mesh and not args.follow:
        raise UsageError("--no-mesh goes with --follow")
    for name in args.more:
        try:
            check_name(name)
        except DecodeError as exc:
            raise UsageError(f"NAME {name}: {exc}") from None
    _check_network(args, need_bootstrap=True)


def _format_delivery(args: argparse.Namespace, seq: int, message_id: bytes, message: Any) -> bytes:
    if args.json:
        import base64

        text = json.dumps(
            {
                "id": message_id.hex(),
                "seq": seq,
                "group_id": message.group_id.hex(),
                "timestamp": message.timestamp,
                "body": base64.b64encode(message.body).decode("ascii"),
            }
        )
    else:
        # one message, one line: a body's own line breaks are shown escaped
        body = message.body.decode("utf-8", "replace").replace("\n", "\\n").replace("\r", "\\r")
        text = f"{seq:>6}  {body}"
    return (text + "\n").encode("utf-8", "replace")


#: acknowledge what was shown at least this often while printing (a DB commit each)
ACK_EVERY = 256


async def _sync(args: argparse.Namespace) -> int:
    import signal

    import trio

    from rlp2p.cli.output import Output, OutputClosed
    from rlp2p.errors import NoReplicas
    from rlp2p.node.node import Node

    _quiet_libp2p(args)
    node = Node.open(args.data, config=_node_config(args, storage=False))
    out = Output(sys.stdout.fileno())
    status = EXIT_OK
    report = None
    try:
        reader = node.reader(require_fresh=args.require_fresh)
        acked = [0]

        async def ack(seq: int) -> None:
            if seq > acked[0]:
                await reader.ack(args.name, seq)
                acked[0] = seq

        async def show(delivery: Any) -> None:
            await out.write_line(delivery.seq, _format_delivery(args, delivery.seq, delivery.id, delivery.message))
            if out.shown_seq - acked[0] >= ACK_EVERY:
                await ack(out.shown_seq)

        interrupted = False
        with _BootstrapFailures() as failures, trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with node:
                acked[0] = (await reader.state(args.name)).acked_seq
                _check_bootstrap_reached(node, args, failures)
                progress = _Progress(args, "syncing", "msg", steps_per_unit=2)
                try:
                    async with trio.open_nursery() as nursery:

                        async def on_signal() -> None:
                            nonlocal interrupted
                            async for _ in signals:
                                interrupted = True
                                nursery.cancel_scope.cancel()
                                return

                        nursery.start_soon(on_signal)
                        nursery.start_soon(progress.tick)
                        try:
                            report = await reader.sync(
                                args.name, on_message=show, auto_ack=False, progress=progress,
                                capability=getattr(args, "capability", None),
                            )
                        except OutputClosed:
                            pass  # `| head`: the reader of our output is gone; not an error
                        except NoReplicas as exc:
                            if args.require_fresh and "ExpiredRecord" in str(exc):
                                raise CommandError(
                                    f"{args.name}: every record storage peers offered has expired "
                                    "(ExpiredRecord), and --require-fresh refuses an expired log"
                                ) from exc
                            if "valid record" in str(exc):
                                raise CommandError(
                                    f"{args.name}: no storage peer has a record for this log: it was never published, "
                                    "or its record expired (-v shows each peer's answer)"
                                ) from exc
                            raise
                        nursery.cancel_scope.cancel()
                finally:
                    progress.close()
                    with trio.CancelScope(shield=True):
                        await ack(await out.finish(interrupted=interrupted))
                        await out.aclose()
        if interrupted:
            status = EXIT_INTERRUPTED
    finally:
        node.close_store()
    if out.closed:
        _stdout_gone()
        return EXIT_OK
    if report is not None and not interrupted:
        _report_staleness(args, report, node.config.clock())
    if report is not None and not args.json and not interrupted:
        state = "up to date" if report.up_to_date else f"{report.new_messages} new"
        if report.redelivered:
            state += f", {report.redelivered} not shown before printed again"
        print(
            f"{args.name}: {state}, record seq {report.record_seq}, {report.round_trips} round trips, "
            f"{report.bytes_in} bytes in, {report.seconds:.2f} s",
            file=sys.stderr,
        )
    return status


def _report_staleness(args: argparse.Namespace, report: Any, now: datetime) -> None:
    """Stderr: one warning line when the record had expired; with ``--json``, a summary line last
    (stderr, so that stdout stays one message a line)."""
    expired_at = None
    if report.expired_at is not None:
        expired_at = report.expired_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        days = (now - report.expired_at).days
        print(
            f"warning: the newest record of {args.name} expired at {expired_at} ({days} days ago); "
            "newer messages may exist that no storage peer has",
            file=sys.stderr,
            flush=True,
        )
    gone = getattr(report, "gone", None)
    if gone is not None:
        print(
            f"note: {args.name}: messages {gone[0]}..{gone[1]} are gone (the publisher truncated the log "
            f"before seq {gone[1] + 1}); every message still in it was delivered",
            file=sys.stderr,
            flush=True,
        )
    if args.json:
        summary = {
            "record_seq": report.record_seq,
            "delivered": report.new_messages + report.redelivered,
            "up_to_date": report.up_to_date,
            "expired_at": expired_at,
            "gone": None if gone is None else {"first": gone[0], "last": gone[1]},
        }
        print(json.dumps({"summary": summary}), file=sys.stderr, flush=True)


async def _follow(args: argparse.Namespace) -> int:
    """``sync --follow``: rlp2p/cli/follow.py prints until SIGINT/SIGTERM (exit 0)."""
    from rlp2p.cli.follow import follow
    from rlp2p.node.node import Node

    _quiet_libp2p(args)
    config = _node_config(args, storage=False)
    if args.no_mesh:  # no gossipsub at all: records come on a push stream (rlp2p/wire/push.py)
        import dataclasses

        config = dataclasses.replace(config, announce=False)
    node = Node.open(args.data, config=config)

    def show(delivery: Any) -> None:
        sys.stdout.buffer.write(_format_delivery(args, delivery.seq, delivery.id, delivery.message))
        sys.stdout.buffer.flush()

    try:
        async with node:
            return await follow(args, node, [args.name, *args.more], show)
    finally:
        node.close_store()


def cmd_sync(args: argparse.Namespace) -> int:
    if args.follow:
        return _trio_run(_follow, args)
    return _trio_run(_sync, args)


# --- local reads: status, inbox, ls ------------------------------------------------------------------


def _open_existing(data: Path) -> Any:
    """The store of an existing data folder, for reading (these commands never create one)."""
    from rlp2p.store import open_store
    from rlp2p.store.sqlite import DB_FILENAME

    if not (data / DB_FILENAME).exists():
        raise CommandError(f"--data {data}: no rlp2p data folder there")
    return open_store(data)


def _opts_status(p: argparse.ArgumentParser) -> None:
    _data_option(p, "the publisher's data folder")
    p.add_argument("--key", type=Path, metavar="FILE", help="only this key's log (default: every log published from DIR)")


def cmd_status(args: argparse.Namespace) -> int:
    """What each local log holds, and how much of it is not yet on a write quorum of replicas."""
    names: list[str]
    if args.key is not None:
        from rlp2p.cli.light import key_file_name

        names = [key_file_name(args.key)]
    with _open_existing(args.data) as store:
        if args.key is None:
            names = store.local_logs()
        rows = []
        for name in names:
            length, published = _pending(store, name)
            state = store.get_publish_state(name)
            rows.append(
                {
                    "name": name,
                    "messages": length,
                    "published": published,
                    "pending": length - published,
                    "record_seq": state.record_seq if state else 0,
                    # each replica's high-water mark: the messages it holds (its lag is the rest)
                    "replicas": store.replica_lengths(name),
                }
            )
    if not rows and not args.json:
        print(f"no log published from {args.data}")
    for row in rows:
        pending = row["pending"]
        _emit(
            args,
            f"{row['name']}: {row['messages']} messages, {row['published']} published on a quorum of replicas "
            f"(record seq {row['record_seq']})"
            + (f"; {pending} appended but not published: `rlp2p publish` with empty stdin publishes them" if pending else "")
            + "".join(
                f"\n  replica {peer}: {held} messages" + (f" ({row['messages'] - held} behind)" if held < row["messages"] else "")
                for peer, held in row["replicas"].items()
            ),
            **row,
        )
    return EXIT_OK


def _opts_inbox(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the log's name")
    _data_option(p, "the reader's data folder")
    p.add_argument("--after", type=_at_least(0), default=0, metavar="SEQ", help="only messages after this seq (default 0: all)")
    p.add_argument("--limit", type=_at_least(1), default=None, metavar="N", help="at most N messages (default: all)")


def _check_inbox(args: argparse.Namespace) -> None:
    _check_name_arg(args)


def cmd_inbox(args: argparse.Namespace) -> int:
    """Print again what this reader holds of a log (as `sync` prints it); no network."""
    from rlp2p.core.message import Message

    #: messages read from the store at a time: memory stays bounded for any inbox
    page = 1024
    after, left = args.after, args.limit
    with _open_existing(args.data) as store:
        while left is None or left > 0:
            rows = store.delivered(args.name, after_seq=after, limit=page if left is None else min(page, left))
            if not rows:
                break
            chunk = b"".join(_format_delivery(args, seq, mid, Message.decode(data)) for seq, mid, data in rows)
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            after = rows[-1][0]
            if left is not None:
                left -= len(rows)
    return EXIT_OK


def _opts_ls(p: argparse.ArgumentParser) -> None:
    _data_option(p, "a data folder (a storage peer's, a reader's or a publisher's)")


def cmd_ls(args: argparse.Namespace) -> int:
    """The logs a data folder holds: records (storage peer), inboxes (reader), local logs (publisher)."""
    from datetime import datetime, timezone

    with _open_existing(args.data) as store:
        records = []
        for name in store.record_names():
            held = store.get_record(name)
            if held is None:
                continue
            records.append({"role": "storage", "name": name, "record_seq": held.sequence, "record_bytes": len(held.record), "expires": None, "raw": held.record})
        readers = []
        for name in store.reader_logs():
            state = store.get_reader_state(name)
            readers.append({"role": "reader", "name": name, "record_seq": state.record_seq, "delivered": state.delivered_seq, "shown": state.acked_seq, "expires": None, "raw": state.record})
        local = [{"role": "publisher", "name": name, "messages": _pending(store, name)[0], "published": _pending(store, name)[1]} for name in store.local_logs()]
        blocks, block_bytes = store.block_stats()
    if records or readers:
        # the expiry is in the signed record; reading it needs py-libp2p's record code (slow import)
        from rlp2p.core.record import verify_record

        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        for row in records + readers:
            raw = row.pop("raw")
            if raw:
                try:
                    row["expires"] = verify_record(row["name"], raw, now=epoch).validity.isoformat(timespec="seconds")
                except Rlp2pError:
                    row["expires"] = "invalid"
    for row in records:
        _emit(args, f"storage    {row['name']}  record seq {row['record_seq']}, {row['record_bytes']} bytes, expires {row['expires']}", **row)
    for row in readers:
        _emit(args, f"reader     {row['name']}  {row['delivered']} messages, record seq {row['record_seq']}, expires {row['expires']}", **row)
    for row in local:
        _emit(args, f"publisher  {row['name']}  {row['messages']} messages, {row['published']} published", **row)
    _emit(args, f"{blocks} blocks, {block_bytes} bytes in {args.data}", role="blocks", blocks=blocks, bytes=block_bytes)
    return EXIT_OK


# --- demo, bench ---------------------------------------------------------------------------------


def _opts_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--messages", type=_at_least(1), default=200, metavar="N", help="messages Alice publishes first (default 200; a quarter as many more later)")
    p.add_argument(
        "--storage-peers", type=_at_least(3), default=4, metavar="N",
        help="storage peers in the swarm (default 4, at least 3: one is stopped and two must still hold the log)",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from rlp2p.cli.demo import run_demo

    _quiet_libp2p(args)
    return _trio_run(run_demo, args)


BENCH_MOVED = """\
the benchmarks are not part of the installed package; from a source checkout run
    {command}
(python -m bench --help, docs/benchmarks.md)"""


def _opts_bench(p: argparse.ArgumentParser) -> None:
    # the suite's own options, accepted so that an old command line gets the pointer, not an error
    for flag in ("--quick", "--no-js", "--no-plots"):
        p.add_argument(flag, action="store_true", help="passed on to python -m bench")
    for option in ("--out", "--scale-max"):
        p.add_argument(option, help="passed on to python -m bench")
    p.add_argument("--only", action="append", default=[], help="passed on to python -m bench")


def cmd_bench(args: argparse.Namespace) -> int:
    words = ["python", "-m", "bench"]
    words += [f for f in ("--quick", "--no-js", "--no-plots") if getattr(args, f[2:].replace("-", "_"))]
    for option in ("out", "scale_max"):
        if getattr(args, option) is not None:
            words += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    for section in args.only:
        words += ["--only", section]
    print(BENCH_MOVED.format(command=" ".join(words)), file=sys.stderr)
    return EXIT_USAGE


# --- share, rotate: a private log's read capability (local, no network) ---------------------

_SHARE_DESCRIPTION = """\
Print the read capability of a private log (one made with `rlp2p publish --private`):
rlp2p1:<name>:<key>. Whoever holds it reads the log's messages published so far and until the
next `rlp2p rotate`; `rlp2p sync CAPABILITY` takes it where a log name goes. Keep it secret.
"""

_ROTATE_DESCRIPTION = """\
Start a new key epoch for a private log and print its capability: messages appended from now on
are sealed under a fresh key that earlier capabilities cannot derive (they keep reading the older
messages). The new capability reads every epoch, old ones too.
"""


def _opts_private(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", type=Path, required=True, metavar="FILE", help="the log's key file (`rlp2p keygen`)")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="the publisher's data folder")


def _capability(args: argparse.Namespace, *, rotate: bool) -> str:
    from rlp2p.cli.light import key_file_name

    name = key_file_name(args.key)
    with _open_existing(args.data) as store:
        state = store.private_state(name)
        if state is None:
            raise CommandError(
                f"{name} is not a private log in {args.data}: "
                "`rlp2p publish --private` makes a new log private"
            )
        if rotate:
            state = state.rotated(store.log_length(name))
            store.set_private_state(name, state)
    return str(state.keyring(name).capability())


def cmd_share(args: argparse.Namespace) -> int:
    text = _capability(args, rotate=False)
    _emit(args, text, capability=text)
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    text = _capability(args, rotate=True)
    _emit(args, text, capability=text)
    return EXIT_OK


# --- truncate: drop a log's older messages and publish the rest ----------------------------

TRUNCATE_DESCRIPTION = """\
Drop the log's messages before seq N (--before N) or all but the newest N (--keep N), and publish.

Seqs do not change: the log then holds seq F..newest, and its head page says history starts at F.
The local log forgets the dropped messages; storage peers collect their blocks with their
retention. Readers that lacked them get every message still in the log and a note of the seqs
that are gone. A log keeps at least its newest message. If the publish fails, `rlp2p publish`
(or this command again) completes it. Options as for `rlp2p publish` (the layout must be the
one the log is published with).
"""


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def opts_truncate(p: argparse.ArgumentParser) -> None:
    _opts_publish(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--before", type=_count, metavar="N", help="drop the messages before seq N")
    which.add_argument("--keep", type=_count, metavar="N", help="keep only the newest N messages")


async def _truncate(args: argparse.Namespace) -> int:
    from rlp2p.core.keys import load_key
    from rlp2p.errors import PublishError
    from rlp2p.node.node import Node

    _quiet_libp2p(args)
    key = load_key(args.key)
    node = Node.open(args.data, config=_node_config(args, storage=False))
    try:
        with _BootstrapFailures() as failures:
            async with node:
                times = {k: v for k, v in (("validity", args.validity), ("ttl", args.ttl)) if v is not None}
                publisher = node.publisher(
                    key, mode=args.mode, replicas=args.replicas, write_quorum=args.quorum, invitations=args.invite, **times
                )
                if await publisher.length() == 0:
                    raise PublishError(f"{publisher.name}: the local log is empty: nothing to truncate")
                before = await publisher.first_seq()
                _check_bootstrap_reached(node, args, failures)
                progress = _Progress(args, "uploading", "block")
                try:
                    report = await publisher.truncate(args.before, keep=args.keep, progress=progress)
                finally:
                    progress.close()
                first = await publisher.first_seq()
    finally:
        node.close_store()
    dropped = first - before
    _emit(
        args,
        f"truncated {report.name}: history starts at seq {first} ({dropped} dropped now), "
        f"{report.messages - first + 1} kept, record seq {report.sequence}, "
        f"stored on {len(report.stored_on)} replicas ({report.bytes_sent} bytes sent, {report.seconds:.2f} s)",
        name=report.name,
        first_seq=first,
        dropped=dropped,
        messages=report.messages - first + 1,
        newest_seq=report.messages,
        sequence=report.sequence,
        stored_on=report.stored_on,
        bytes_sent=report.bytes_sent,
        seconds=round(report.seconds, 4),
    )
    return EXIT_OK


def cmd_truncate(args: argparse.Namespace) -> int:
    result: Any = _trio_run(_truncate, args)
    return int(result)


# --- invite: the operator of an invite-only storage peer signs an invitation ------------------

INVITE_DESCRIPTION = """\
Sign an invitation with this storage peer's key (DIR/node.key) and print it: one line,
`rlp2p-invite:...`, to give to the publisher (`rlp2p publish --invite TOKEN`).

A storage peer served with `--admission invite` stores only for writers that present an
invitation it signed: --for names the writer (the peer id of her node, `DIR/node.key` of her
data folder) or a log (its name); an invitation for a log admits that log's records from whoever
presents it. Within --quota bytes of blocks (default: the peer's --quota-bytes-per-peer), until
--expires from now (default: never). Nothing is sent anywhere and the peer keeps no list: the
signature is the permission, so keep a token private, and give a short --expires to one you may
want to take back. Works while the peer runs (it only reads the key).
"""


def opts_invite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="the storage peer's data folder")
    p.add_argument("--for", dest="subject", required=True, metavar="NAME_OR_PEER", help="the writer's peer id or the log's name")
    p.add_argument("--quota", type=_amount, default=None, metavar="SIZE", help="bytes of blocks the writer may store there (K/M/G/T suffixes)")
    p.add_argument("--expires", type=_duration, default=None, metavar="DURATION", help="valid for this long: 30d, 12h, 1d12h (default: no expiry)")


def cmd_invite(args: argparse.Namespace) -> int:
    from rlp2p.core.invitation import issue
    from rlp2p.core.keys import load_key
    from rlp2p.errors import StoreError

    key_file = args.data / "node.key"
    if not key_file.exists():
        raise StoreError(f"--data {args.data}: no node.key there (run `rlp2p serve --data {args.data}` once)")
    expires = None if args.expires is None else int(time.time() + args.expires.total_seconds())
    invitation = issue(load_key(key_file), args.subject, quota_bytes=args.quota or None, expires=expires)
    token = invitation.token()
    if args.json:
        print(json.dumps({
            "token": token, "issuer": invitation.issuer, "for": invitation.subject,
            "quota_bytes": invitation.quota_bytes, "expires": invitation.expires,
        }), flush=True)
    else:
        print(token, flush=True)
        what = f"{args.subject} on {invitation.issuer}"
        if invitation.quota_bytes:
            what += f", up to {invitation.quota_bytes} bytes"
        if expires is not None:
            what += f", until {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(expires))}"
        print(f"invitation for {what}", file=sys.stderr, flush=True)
    return 0


# --- parser --------------------------------------------------------------------------------------

#: name: (one-line help, long description or None, options, usage check or None, run)
COMMANDS: dict[str, tuple[str, str | None, Callable[..., None], Callable[..., None] | None, Callable[..., int]]] = {
    "keygen": ("make a log key and print the log's name", None, _opts_keygen, None, cmd_keygen),
    "name": ("print the name of the log a key file signs", None, _opts_name, None, cmd_name),
    "serve": ("run a storage peer until SIGINT/SIGTERM; prints its multiaddr first", None, _opts_serve, _check_serve, cmd_serve),
    "publish": ("append stdin's lines to a log and publish it", PUBLISH_DESCRIPTION, _opts_publish, _check_publish, cmd_publish),
    "sync": ("print what is new in a log", SYNC_DESCRIPTION, _opts_sync, _check_sync, cmd_sync),
    "truncate": ("drop a log's older messages and publish the rest", TRUNCATE_DESCRIPTION, opts_truncate, _check_publish, cmd_truncate),
    "invite": ("sign an invitation for a writer or a log to an invite-only storage peer", INVITE_DESCRIPTION, opts_invite, None, cmd_invite),
    "inbox": ("print again what this reader holds of a log (no network)", None, _opts_inbox, _check_inbox, cmd_inbox),
    "share": ("print a private log's read capability", _SHARE_DESCRIPTION, _opts_private, None, cmd_share),
    "rotate": ("start a new key epoch of a private log; prints its capability", _ROTATE_DESCRIPTION, _opts_private, None, cmd_rotate),
    "status": ("what a publisher's logs hold, and what is not yet published", None, _opts_status, None, cmd_status),
    "ls": ("the logs a data folder holds, as storage peer, reader or publisher", None, _opts_ls, None, cmd_ls),
    "demo": ("a local swarm: Alice publishes, goes offline, Bob syncs", None, _opts_demo, None, cmd_demo),
    "bench": ("how to run the benchmarks (python -m bench, from a checkout)", None, _opts_bench, None, cmd_bench),
}


EPILOG = f"""\
--json and -v go before or after the command. Exit status: 0 success, 1 the operation failed
(one line on stderr), 2 bad usage, 130 interrupted.

Bootstrap peers, first found wins: --bootstrap options; ${BOOTSTRAP_ENV} (multiaddrs separated by
commas or spaces); the config file ${CONFIG_ENV}, default $XDG_CONFIG_HOME/rlp2p/config.toml
(~/.config/rlp2p/config.toml), holding `bootstrap = ["/ip4/.../p2p/12D3KooW..."]`.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors as JSON on stdout too when the command line asks for --json (exit 2 still)."""

    json_errors = False

    def error(self, message: str) -> Any:  # type: ignore[override]
        if _Parser.json_errors:
            print(json.dumps({"error": "UsageError", "message": message}), flush=True)
        super().error(message)


def build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    parser = _Parser(
        prog="rlp2p",
        description="Vac 3/REMOTE-LOG over libp2p: make a log key, serve as a storage peer, publish, sync, and a local demo.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rlp2p {__version__}")
    _global_options(parser, sub=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {}
    for name, (summary, description, options, check, run) in COMMANDS.items():
        p = sub.add_parser(
            name, help=summary, description=description or summary[0].upper() + summary[1:] + ".",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _global_options(p, sub=True)
        options(p)
        p.set_defaults(run=run, check=check)
        parsers[name] = p
    return parser, parsers


def _setup_logging(verbose: int) -> None:
    import logging

    # rlp2p's warnings are for -v: what a person must know, a command says in its own words
    level = logging.ERROR if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    fmt = "rlp2p: %(name)s: %(message)s" if verbose == 0 else "%(asctime)s %(name)s %(levelname)s %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.addHandler(handler)
    # warnings are still made (a command may turn one into its error message), not printed
    root.setLevel(min(level, logging.WARNING))


def _describe(exc: BaseException, args: argparse.Namespace) -> str:
    if isinstance(exc, Timeout):
        return f"timed out (--timeout {getattr(args, 'timeout', DEFAULT_TIMEOUT):g} s)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{str(exc.filename) + ': ' if exc.filename else ''}{exc.strerror}"
    if isinstance(exc, CommandError):
        return str(exc)  # our own words, already one line
    return _short(exc)


def _report_error(args: argparse.Namespace, exc: BaseException) -> int:
    text = _describe(exc, args)
    if getattr(args, "verbose", 0):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": type(exc).__name__, "message": text}), flush=True)
    print(f"rlp2p: error: {text}", file=sys.stderr, flush=True)
    return EXIT_FAILED


def _stdout_gone() -> None:
    """The reader of stdout quit (`| head`): stop writing, and keep Python's exit flush quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _leaves(exc: BaseException) -> list[BaseException]:
    from rlp2p.errors import leaves

    return leaves(exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser, parsers = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = "--json" in argv[: argv.index("--") if "--" in argv else len(argv)]
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    args.verbose = getattr(args, "verbose", 0) or 0
    if args.check is not None:
        try:
            args.check(args)
        except UsageError as exc:
            parsers[args.command].error(str(exc))  # exits 2 with the usage line
    _setup_logging(args.verbose)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _stdout_gone()
        return EXIT_OK
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        leaves = _leaves(exc)
        if any(isinstance(e, BrokenPipeError) for e in leaves):
            _stdout_gone()
            return EXIT_OK
        expected = [e for e in leaves if _expected(e)]
        if expected:
            return _report_error(args, expected[0])
        if all(isinstance(e, KeyboardInterrupt) for e in leaves):
            return EXIT_INTERRUPTED
        # a bug: one line still, the traceback with -v
        if args.verbose:
            raise
        print(f"rlp2p: error: internal error: {type(exc).__name__}: {_short(exc)} (-v shows the traceback)", file=sys.stderr)
        return EXIT_FAILED


def _expected(exc: BaseException) -> bool:
    """What a command may fail with on purpose: one line, exit status 1."""
    return isinstance(exc, (Rlp2pError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
