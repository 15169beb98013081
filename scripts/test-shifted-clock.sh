#!/usr/bin/env bash
# Proves that no core or store test depends on the calendar: runs them with the clock a year ahead
# (Debian's libfaketime). Monotonic time is shifted too (the default): with it left alone
# (FAKETIME_DONT_FAKE_MONOTONIC=1), libfaketime 0.9.10 makes Python's time.sleep raise EINVAL
# (wolfcw/libfaketime#426), a fault of the tool rather than of our code.
set -euo pipefail
cd "$(dirname "$0")/.."
SHIFT=${SHIFT:-+365d}
if ! command -v faketime >/dev/null; then
  apt-get update -qq && apt-get install -y -qq faketime >/dev/null
fi
[ -x .venv/bin/python ] || { echo "run scripts/test.sh first (it makes .venv)" >&2; exit 2; }
echo "core and store tests with the clock moved $SHIFT: $(faketime -f "$SHIFT" date -u +%FT%TZ)"
exec faketime -f "$SHIFT" .venv/bin/python -m pytest tests/core tests/store -q -p no:cacheprovider "$@"
