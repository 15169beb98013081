"""``rlp2p truncate``: drop a log's older messages and publish what is left (Publisher.truncate)."""

from __future__ import annotations

import argparse
from typing import Any

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
    # (main.py imports this module: when it runs as __main__, these come from a second copy of it,
    # so only its plain functions are used here, never its exception classes)
    from rlp2p.cli.main import _opts_publish

    _opts_publish(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--before", type=_count, metavar="N", help="drop the messages before seq N")
    which.add_argument("--keep", type=_count, metavar="N", help="keep only the newest N messages")


async def _truncate(args: argparse.Namespace) -> int:
    from rlp2p.cli import main as cli
    from rlp2p.core.keys import load_key
    from rlp2p.errors import PublishError
    from rlp2p.node.node import Node

    cli._quiet_libp2p(args)
    key = load_key(args.key)
    node = Node.open(args.data, config=cli._node_config(args, storage=False))
    try:
        with cli._BootstrapFailures() as failures:
            async with node:
                times = {k: v for k, v in (("validity", args.validity), ("ttl", args.ttl)) if v is not None}
                publisher = node.publisher(
                    key, mode=args.mode, replicas=args.replicas, write_quorum=args.quorum, invitations=args.invite, **times
                )
                if await publisher.length() == 0:
                    raise PublishError(f"{publisher.name}: the local log is empty: nothing to truncate")
                before = await publisher.first_seq()
                cli._check_bootstrap_reached(node, args, failures)
                progress = cli._Progress(args, "uploading", "block")
                try:
                    report = await publisher.truncate(args.before, keep=args.keep, progress=progress)
                finally:
                    progress.close()
                first = await publisher.first_seq()
    finally:
        node.close_store()
    dropped = first - before
    cli._emit(
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
    return cli.EXIT_OK


def cmd_truncate(args: argparse.Namespace) -> int:
    from rlp2p.cli.main import _trio_run

    result: Any = _trio_run(_truncate, args)
    return int(result)
