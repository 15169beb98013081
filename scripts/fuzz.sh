#!/usr/bin/env bash
# The long fuzz run: every decoder that reads a peer's bytes, RUNS inputs each (default 1,000,000),
# coverage-guided by atheris, one decoder after another at low priority. Prints per decoder the
# inputs, seconds, inputs/s and crashes (an exception other than the decoder's typed errors, a
# MemoryError under the address-space limit, or a heap peak over the bound); crashing inputs and
# their tracebacks are kept under $FUZZ_OUT/<target>/crashes. Exits 1 if any decoder crashed
# or stopped early (a hang: libFuzzer's per-input timeout).
# Usage: scripts/fuzz.sh [RUNS]   (FUZZ_TARGETS="page record" to run some; FUZZ_OUT to move the work folder)
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-1000000}
TARGETS=${FUZZ_TARGETS:-"message address frames page cas record ns"}
OUT=${FUZZ_OUT:-${TMPDIR:-/tmp}/rlp2p-fuzz}
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[fuzz]' || exit 1
mkdir -p "$OUT"
status=0
for target in $TARGETS; do
  echo "== $target: $RUNS inputs (log: $OUT/$target.log)"
  rm -f "$OUT/$target/stats.json"
  FUZZ_DIR="$OUT/$target" FUZZ_KEEP_GOING=1 nice -n 10 .venv/bin/python -m tests.fuzz "$target" \
    -atheris_runs="$RUNS" >"$OUT/$target.log" 2>&1
  rc=$?
  .venv/bin/python - "$OUT/$target/stats.json" "$RUNS" "$rc" <<'PY' || status=1
import json, sys
path, runs, rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    s = json.load(open(path))
except OSError:
    sys.exit(f"   no stats: the run failed to start (rc {rc})")
print(f"   {s['target']}: {s['inputs']} inputs in {s['seconds']} s ({s['inputs_per_s']}/s), "
      f"crashes {s['crashes']} ({s['distinct_crashes']} distinct), slowest input {s['slowest_ms']} ms, "
      f"heap peak {s['peak_heap_bytes']} B over {s['traced_inputs']} traced inputs")
for sig, count in s["signatures"].items():
    print(f"     {count} x {sig}")
if s["crashes"] or s["inputs"] < runs - 1:  # atheris counts the first run differently
    if s["inputs"] < runs - 1:
        print(f"   stopped early (rc {rc}): see the log")
    sys.exit(1)
PY
done
exit $status
