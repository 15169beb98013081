#!/usr/bin/env bash
# The long runs, kept out of the default suite (scripts/test.sh) for its time: `python -m bench
# --quick` as a process with every section checked, a thousand connections against one storage
# peer, the crash trials (processes killed around publishes and mid-batch) and the README's
# command table checked row by row across some thirty CLI processes. CI runs them
# after the suite. Extra arguments go to pytest.
set -euo pipefail
# one at a time: they load the machine on their own (the attack has a 2-minute bound)
RLP2P_TEST_WORKERS=${RLP2P_TEST_WORKERS:-1} exec bash "$(dirname "$0")/test.sh" -m long --no-cov --durations=10 "$@"
