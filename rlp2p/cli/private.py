"""`rlp2p share` and `rlp2p rotate`: a private log's read capability (local, no network)."""

from __future__ import annotations

import argparse
from pathlib import Path

SHARE_DESCRIPTION = """\
Print the read capability of a private log (one made with `rlp2p publish --private`):
rlp2p1:<name>:<key>. Whoever holds it reads the log's messages published so far and until the
next `rlp2p rotate`; `rlp2p sync CAPABILITY` takes it where a log name goes. Keep it secret.
"""

ROTATE_DESCRIPTION = """\
Start a new key epoch for a private log and print its capability: messages appended from now on
are sealed under a fresh key that earlier capabilities cannot derive (they keep reading the older
messages). The new capability reads every epoch, old ones too.
"""


def opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", type=Path, required=True, metavar="FILE", help="the log's key file (`rlp2p keygen`)")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="the publisher's data folder")


def _capability(args: argparse.Namespace, *, rotate: bool) -> str:
    from rlp2p.cli.light import key_file_name
    from rlp2p.cli.main import CommandError, _open_existing

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
    from rlp2p.cli.main import EXIT_OK, _emit

    text = _capability(args, rotate=False)
    _emit(args, text, capability=text)
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    from rlp2p.cli.main import EXIT_OK, _emit

    text = _capability(args, rotate=True)
    _emit(args, text, capability=text)
    return EXIT_OK
