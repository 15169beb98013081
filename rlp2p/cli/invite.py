"""``rlp2p invite``: the operator of an invite-only storage peer signs an invitation."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

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
    # (only argparse types from main: see rlp2p/cli/history.py on main's second copy)
    from rlp2p.cli.main import _amount, _duration

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
