"""Start-up times of the rlp2p command: a benchmark, not a test (no timed assertions).

    .venv/bin/python scripts/startup-times.py [--runs N]

Times, in the same run, ``python -c pass`` (the baseline: the interpreter alone), ``rlp2p --help``,
a usage error, the local commands ``name``, ``keygen``, ``status``, ``inbox`` and ``ls``, and a
caught-up ``sync`` against one ``rlp2p serve`` on 127.0.0.1. Prints the median wall time and the
median CPU time (user + system) of each, and their ratio to the baseline; CPU time is the figure to
read on a loaded machine, where wall time mostly measures the queue for a core.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
RLP2P = [PYTHON, "-m", "rlp2p.cli.main"]


def measure(argv: list[str], runs: int, cwd: Path, env: dict[str, str], stdin: bytes = b"") -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (default 9; the median is printed)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("RLP2P_BOOTSTRAP", "RLP2P_CONFIG")}
    with tempfile.TemporaryDirectory(prefix="rlp2p-startup-") as tmp:
        root = Path(tmp)
        env["XDG_CONFIG_HOME"] = str(root / "config")
        serve = subprocess.Popen(
            [*RLP2P, "serve", "--data", "s", "--listen", "/ip4/127.0.0.1/tcp/0"], cwd=root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            assert serve.stdout is not None
            addr = serve.stdout.readline().strip()
            name = subprocess.run([*RLP2P, "keygen", "--out", "a.key"], cwd=root, env=env, capture_output=True, text=True).stdout.strip()
            boot = ["--bootstrap", addr, "--replicas", "1"]
            subprocess.run([*RLP2P, "publish", "--key", "a.key", "--data", "alice", *boot], cwd=root, env=env, input=b"hello\n", capture_output=True, check=True)
            sync = [*RLP2P, "sync", name, "--data", "bob", "--bootstrap", addr]
            subprocess.run(sync, cwd=root, env=env, capture_output=True, check=True)  # bob is caught up from here
            cases = [
                ("python -c pass (baseline)", [PYTHON, "-c", "pass"]),
                ("rlp2p --help", [*RLP2P, "--help"]),
                ("usage error (bad name)", [*RLP2P, "sync", "not-a-name", "--data", "x", "--bootstrap", addr]),
                ("rlp2p name", [*RLP2P, "name", "--key", "a.key"]),
                ("rlp2p keygen", [*RLP2P, "keygen", "--out", "b.key", "--force"]),
                ("rlp2p status", [*RLP2P, "status", "--data", "alice"]),
                ("rlp2p inbox", [*RLP2P, "inbox", name, "--data", "bob"]),
                ("rlp2p ls (reads record expiry)", [*RLP2P, "ls", "--data", "bob"]),
                ("rlp2p sync, caught up", sync),
            ]
            results = [(label, *measure(argv, args.runs, root, env)) for label, argv in cases]
        finally:
            serve.terminate()
            serve.wait(10)
    base_wall, base_cpu = results[0][1], results[0][2]
    load = os.getloadavg()[0]
    print(f"median of {args.runs} runs, load average {load:.1f} on {os.cpu_count()} cores")
    print(f"{'command':34} {'wall s':>8} {'cpu s':>8} {'wall/base':>10} {'cpu/base':>9}")
    for label, wall, cpu in results:
        print(f"{label:34} {wall:8.3f} {cpu:8.3f} {wall / base_wall:10.1f} {cpu / base_cpu:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
