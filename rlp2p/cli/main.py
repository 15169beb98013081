"""``rlp2p``: make a log key, serve as a storage peer, publish, sync, and a local demo.

Human output by default; ``--json`` prints one JSON object a line for scripts. Exit status: 0 on
success, 1 when the operation failed (no quorum, no replica, a bad key file), 2 on bad usage.
Scripts outside the project depend on the contract in README.md ("The rlp2p command").
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from rlp2p.bench.options import add_arguments as add_bench_arguments
from rlp2p.errors import Rlp2pError
from rlp2p.errors import leaves as exception_leaves

log = logging.getLogger("rlp2p.cli")


def _emit(args: argparse.Namespace, human: str, **machine: Any) -> None:
    if args.json:
        print(json.dumps(machine), flush=True)
    else:
        print(human, flush=True)


class _Progress:
    """A tqdm bar on stderr, only when stderr is a terminal and output is for people."""

    def __init__(self, args: argparse.Namespace, desc: str, unit: str) -> None:
        self.bar = None
        if not args.json and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=desc, unit=unit, file=sys.stderr, leave=False)

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- commands ------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from rlp2p.core.keys import generate_log_key, log_name, save_key

    key = generate_log_key()
    save_key(args.out, key, overwrite=args.force)
    name = log_name(key.public_key)
    _emit(args, name, name=name, key_file=str(args.out))
    return 0


def cmd_name(args: argparse.Namespace) -> int:
    from rlp2p.core.keys import load_key, log_name

    name = log_name(load_key(args.key).public_key)
    _emit(args, name, name=name)
    return 0


def _config(args: argparse.Namespace, *, storage: bool) -> Any:
    from rlp2p.node.node import NodeConfig

    return NodeConfig(
        listen=tuple(args.listen or ("/ip4/127.0.0.1/tcp/0",)),
        bootstrap=tuple(args.bootstrap or ()),
        storage=storage,
        timeout=args.timeout,
    )


async def _serve(args: argparse.Namespace) -> int:
    import signal

    from rlp2p.node.node import Node

    config = _config(args, storage=True)
    if args.republish_interval is not None:
        config.republish_interval = args.republish_interval
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with Node.open(args.data, config=config) as node:
            print(node.addrs[0], flush=True)  # the contract: the first line is the full multiaddr
            if args.json:
                print(json.dumps({"event": "serving", "peer_id": node.peer_id.to_string(), "addrs": node.addrs}), flush=True)
            else:
                print(f"storage peer {node.peer_id} serving {args.data}; Ctrl-C stops", flush=True)
            async for signum in signals:
                log.info("stopping on signal %d", signum)
                break
        node.close_store()
    return 0


async def _publish(args: argparse.Namespace) -> int:
    from rlp2p.core.keys import load_key
    from rlp2p.core.page import LogMode
    from rlp2p.node.node import Node

    key = load_key(args.key)
    mode = LogMode.parse(args.layout, args.embed)
    bodies = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    async with Node.open(args.data, config=_config(args, storage=False)) as node:
        publisher = node.publisher(key, mode=mode, replicas=args.replicas, write_quorum=args.quorum)
        seqs = await publisher.append(bodies) if bodies else []
        progress = _Progress(args, "uploading", "block")
        try:
            report = await publisher.publish(progress=progress)
        finally:
            progress.close()
    node.close_store()
    _emit(
        args,
        f"published {report.name}: {len(seqs)} new, {report.messages} in all, record seq {report.sequence}, "
        f"stored on {len(report.stored_on)} replicas ({report.bytes_sent} bytes sent, {report.seconds:.2f} s)",
        name=report.name,
        appended=len(seqs),
        messages=report.messages,
        sequence=report.sequence,
        stored_on=report.stored_on,
        bytes_sent=report.bytes_sent,
        seconds=round(report.seconds, 4),
    )
    return 0


async def _sync(args: argparse.Namespace) -> int:
    from rlp2p.core.keys import name_to_peer_id
    from rlp2p.errors import DecodeError
    from rlp2p.node.node import Node

    try:
        name_to_peer_id(args.name)  # a typed error before any network work
    except DecodeError as exc:
        raise DecodeError(f"not a log name (the 12D3KooW... name that `rlp2p keygen` prints): {exc}") from exc
    if args.more and not args.follow:
        raise ValueError("several log names need --follow")
    async with Node.open(args.data, config=_config(args, storage=False)) as node:
        progress = _Progress(args, "syncing", "msg")

        def show(delivery: Any) -> None:
            m = delivery.message
            if args.json:
                print(
                    json.dumps(
                        {
                            "id": delivery.id.hex(),
                            "seq": delivery.seq,
                            "group_id": m.group_id.hex(),
                            "timestamp": m.timestamp,
                            "body": base64.b64encode(m.body).decode("ascii"),
                        }
                    ),
                    flush=True,
                )
            else:
                print(f"{delivery.seq:>6}  {m.body.decode('utf-8', 'replace')}", flush=True)

        if args.follow:  # until SIGINT/SIGTERM: rlp2p/cli/follow.py
            from rlp2p.cli.follow import follow

            progress.close()
            return await follow(args, node, [args.name, *args.more], show)
        try:
            report = await node.reader().sync(args.name, on_message=show, progress=progress)
        finally:
            progress.close()
    node.close_store()
    if not args.json:
        status = "up to date" if report.up_to_date else f"{len(report.delivered)} new"
        print(
            f"{args.name}: {status}, record seq {report.record_seq}, {report.round_trips} round trips, "
            f"{report.bytes_in} bytes in, {report.seconds:.2f} s",
            file=sys.stderr,
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rlp2p.cli.demo import run_demo

    return trio.run(run_demo, args)


def cmd_bench(args: argparse.Namespace) -> int:
    from rlp2p.bench.runner import run_from_args

    return run_from_args(args)


# --- parser ----------------------------------------------------------------------------------


def _network_options(p: argparse.ArgumentParser, *, listen_required: bool = False) -> None:
    p.add_argument("--data", type=Path, required=True, help="the node's data folder (created if missing)")
    p.add_argument("--listen", action="append", required=listen_required, metavar="MULTIADDR", help="listen address (repeatable)")
    p.add_argument("--bootstrap", action="append", metavar="MULTIADDR", help="a peer to join through, with /p2p/ (repeatable)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for one network operation (default 10)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine output: one JSON object a line")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logs on stderr (-vv: libp2p's too)")
    parser = argparse.ArgumentParser(prog="rlp2p", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("keygen", parents=[common], help="make a log key and print the log's name")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")
    p.set_defaults(run=cmd_keygen)

    p = sub.add_parser("name", parents=[common], help="print the name of the log a key file signs")
    p.add_argument("--key", type=Path, required=True)
    p.set_defaults(run=cmd_name)

    p = sub.add_parser("serve", parents=[common], help="run a storage peer; prints its multiaddr first")
    _network_options(p, listen_required=True)
    p.add_argument("--republish-interval", type=float, default=None, help="seconds between republications (default 3600)")
    p.set_defaults(run=lambda a: trio.run(_serve, a))

    p = sub.add_parser("publish", parents=[common], help="append stdin lines to a log and publish it")
    p.add_argument("--key", type=Path, required=True)
    _network_options(p)
    p.add_argument("--layout", default="paged:64", help="full | paged:P | linked (default paged:64)")
    p.add_argument("--embed", default="all", help="none | all | newest:K (default all)")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--quorum", type=int, default=None, help="replicas that must store it (default: a majority)")
    p.set_defaults(run=lambda a: trio.run(_publish, a))

    p = sub.add_parser("sync", parents=[common], help="print what is new in a log")
    p.add_argument("name")
    _network_options(p)
    from rlp2p.cli.follow import add_arguments as add_follow_arguments  # --follow, more names

    add_follow_arguments(p)
    p.set_defaults(run=lambda a: trio.run(_sync, a))

    p = sub.add_parser("demo", parents=[common], help="a local swarm: Alice publishes, goes offline, Bob syncs")
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--storage-peers", type=int, default=4)
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("bench", parents=[common], help="measure sync, publish and DHT costs beside their baselines (local swarm)")
    add_bench_arguments(p)
    p.set_defaults(run=cmd_bench)
    return parser


def _setup_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # py-libp2p logs expected conditions (a DHT client refusing kad) at ERROR; keep them out
    # of people's terminals unless asked for
    from rlp2p.node.host import quiet_libp2p_logs

    quiet_libp2p_logs(logging.CRITICAL if verbose < 2 else logging.DEBUG)


#: what a command may fail with on purpose: reported in one line, exit status 1, no traceback
_EXPECTED_ERRORS = (Rlp2pError, ValueError, OSError, trio.TooSlowError)


def _report_error(args: argparse.Namespace, exc: BaseException) -> int:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, trio.TooSlowError):
        text = f"timed out (--timeout {getattr(args, 'timeout', '?')} s)"
    if args.json:
        print(json.dumps({"error": type(exc).__name__, "message": text}), flush=True)
    print(f"rlp2p: error: {text}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except _EXPECTED_ERRORS as exc:
        return _report_error(args, exc)
    except KeyboardInterrupt:
        return 130
    except BaseExceptionGroup as group:
        leaves = exception_leaves(group)
        # anything unexpected in the group is a bug: let its traceback show
        if not all(isinstance(e, (*_EXPECTED_ERRORS, KeyboardInterrupt)) for e in leaves):
            raise
        errors = [e for e in leaves if isinstance(e, _EXPECTED_ERRORS)]
        return _report_error(args, errors[0]) if errors else 130


if __name__ == "__main__":
    sys.exit(main())
