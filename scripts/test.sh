#!/usr/bin/env bash
# The README's test command: installs what the suite needs into .venv, then runs every test
# with line coverage of the package. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest --cov=rlp2p --cov-report=term "$@"
