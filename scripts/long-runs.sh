#!/usr/bin/env bash
# The long runs, kept out of the default suite (scripts/test.sh) for its time: `python -m bench
# --quick` as a process with every section checked, a thousand connections against one storage
# peer, and the crash trials (processes killed around publishes and mid-batch). CI runs them
# after the suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest -m long -n "${RLP2P_TEST_WORKERS:-auto}" --durations=10 "$@"
