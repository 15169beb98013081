"""``python -m tests.fuzz TARGET [-atheris_runs=N] [libFuzzer flags]`` (targets: fuzz_*.py)."""

import sys

from tests.fuzz._common import main

main(sys.argv)
