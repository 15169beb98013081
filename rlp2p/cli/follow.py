"""``rlp2p sync NAME... --follow``: print messages as they arrive until SIGINT or SIGTERM.

Each message is printed exactly as ``rlp2p sync`` prints it (one JSON object a line with
``--json``). With more than one log, a line naming the log comes before the messages of a log
other than the previous one: ``== <name>`` for people, ``{"event": "log", "name": ...}`` with
``--json``. ``--no-mesh`` follows with ``mesh=False`` on a node without gossipsub: one storage peer
pushes each newer record on a stream (rlp2p/wire/push.py). Failed syncs are retried (logged on stderr with ``-v``); a signal ends the command
with status 0, after the message being printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import trio

log = logging.getLogger("rlp2p.cli")


async def follow(args: argparse.Namespace, node: Any, names: Sequence[str], show: Callable[[Any], None]) -> int:
    from rlp2p.core.keys import name_to_peer_id
    from rlp2p.node.follow import DEFAULT_POLL, Follower

    for name in names:
        name_to_peer_id(name)  # DecodeError: exit status 1 before following anything
    poll = DEFAULT_POLL if args.poll is None else args.poll
    last: list[str | None] = [None]

    def printer(name: str) -> Callable[[Any], None]:
        def on_message(delivery: Any) -> None:
            if len(names) > 1 and last[0] != name:
                last[0] = name
                print(json.dumps({"event": "log", "name": name}) if args.json else f"== {name}", flush=True)
            show(delivery)

        return on_message

    def on_error(name: str, exc: Exception) -> None:
        log.info("syncing %s failed, retrying: %s", name, exc)

    def on_report(report: Any) -> None:
        if report.gone is not None:  # the publisher truncated what this reader had not got
            print(f"note: {report.name}: messages {report.gone[0]}..{report.gone[1]} are gone", file=sys.stderr, flush=True)

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            for name in names:
                follower = Follower(
                    node.reader(),
                    [name],
                    on_message=printer(name),
                    poll_interval=poll,
                    on_error=on_error,
                    on_report=on_report,
                    mesh=not args.no_mesh,
                )
                nursery.start_soon(follower.run)
            async for signum in signals:
                log.info("stopping on signal %d", signum)
                break
            nursery.cancel_scope.cancel()
    return 0


__all__ = ["follow"]
