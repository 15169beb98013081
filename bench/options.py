"""The options of ``python -m bench``, kept apart from the suite so that building its parser
imports nothing heavy (no libp2p)."""

from __future__ import annotations

import argparse
from pathlib import Path

#: the suite's sections, in the order they run
SECTION_NAMES = ["transport", "sync", "poll", "publish", "offline", "dht", "scale", "live", "private", "upload", "history", "transfer", "nspoll", "ipfs"]
DEFAULT_OUT = Path("bench-results")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a small run (under a minute) that keeps the suite working; asserts nothing about speed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for results.json and the plots (default {DEFAULT_OUT}/)")
    parser.add_argument("--only", action="append", choices=SECTION_NAMES, metavar="SECTION", help=f"run only this section (repeatable): {', '.join(SECTION_NAMES)}")
    parser.add_argument("--no-js", action="store_true", help="do not start the js-libp2p peer in the DHT section")
    parser.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    parser.add_argument(
        "--scale-max",
        type=int,
        default=100_000,
        metavar="N",
        help="largest log the scale section builds, of 1,000 / 100,000 / 1,000,000 (default 100,000; "
        "1000000 takes several minutes); the scale section is off in --quick",
    )
