#!/usr/bin/env bash
# The README's test command: installs what the suite needs into .venv, then runs every test on
# every core (pytest-xdist, a worker more than cores; RLP2P_TEST_WORKERS=1 runs them in one
# process) with line coverage of the package. Extra arguments go to pytest. Long runs (the quick benchmark run, the scale and
# crash trials) are scripts/long-runs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# the interop tests' npm packages (pinned by interop/package-lock.json) are installed here, not
# inside the suite's first js test (about 45 s on a fresh clone); without Node.js they skip
.venv/bin/python - <<'PY'
from interop.jsnode import JsNodeUnavailable, ensure_npm_deps

try:
    ensure_npm_deps()
except JsNodeUnavailable:
    pass
PY
# one worker more than cores: many tests wait on child processes and sockets (8.7 min with 3
# workers on 2 cores against 10.3 with 2)
WORKERS=${RLP2P_TEST_WORKERS:-$(( $(nproc) + 1 ))}
if [ "$WORKERS" = 1 ]; then
  exec .venv/bin/python -m pytest --cov=rlp2p --cov-report=term "$@"
fi
exec .venv/bin/python -m pytest -n "$WORKERS" --dist worksteal --cov=rlp2p --cov-report=term "$@"
