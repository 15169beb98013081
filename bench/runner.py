"""``python -m bench``: the benchmark suite, every figure beside its baseline, in one run.

One process, one local swarm on 127.0.0.1 (``storage_peers`` storage peers and a client node,
plus the Alices, Bobs and DHT clients that sections start and stop), in a temporary folder that
is removed at the end. Sections run in order; each prints its tables as soon as it is done and
``results.json`` is rewritten after each, so an interrupted run keeps what it measured. A section
that fails is reported as an error and the others still run. Plots come last, when matplotlib is
installed.

1. transport: bulk CAS Get against raw yamux throughput; round trips on open and new streams
2. sync: Bob's cost to sync N messages by mode, against the messages' bytes and one round trip
3. poll: a caught-up reader's poll, against one record fetch
4. publish: append and publish one message with 1, 3, 5 replicas; batch throughput
5. offline: plain MVDS against the remote log between mostly-offline peers (epoch simulation)
6. dht: put/get latency among py nodes, and beside js-libp2p's in the same swarm
7. scale: publish one more, a fresh reader's sync (time, peak RSS) and a caught-up reader's sync
   at N = 1,000 and 100,000 (1,000,000 with --scale-max), each as a ratio to N = 1,000; off in --quick
8. live: push latency of a followed log beside a round trip; bytes per pushed message
9. private: a private log's sync against a public one's (time and bytes)
10. upload: bytes Alice sends to 3 replicas against 1 (upload once), a publish against a round trip
11. history: a truncation's publish, the next publish and a fresh sync against the untruncated log
12. transfer: the goals of issue 11.5-6 (bulk 4 KiB Get over raw, a 10,000-message sync by
   reference: seconds and round trips, bytes in over message bytes in embedded modes)
13. nspoll: NS Poll (conditional, batched Fetch) against Fetch, one log and 100; record bytes
14. ipfs: a Helia reader (DHT resolve + Bitswap) reading 1,000 messages beside rlp2p's reader
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from bench import dht, goals, history, ipfs, live, offline, poll, private, publishing, scale, sync_cost, transfer_goals, transport, upload
from bench.common import REPO_ROOT, BenchConfig, Context, scale_sizes
from bench.measure import finite
from bench.options import SECTION_NAMES, add_arguments

SectionRun = Callable[[Context], Awaitable[dict[str, Any]]]
SectionRender = Callable[[dict[str, Any]], list[str]]

SECTIONS: list[tuple[str, SectionRun, SectionRender]] = [
    ("transport", transport.run, transport.render),
    ("sync", sync_cost.run_sync, sync_cost.render_sync),
    ("poll", sync_cost.run_poll, sync_cost.render_poll),
    ("publish", publishing.run, publishing.render),
    ("offline", offline.run, offline.render),
    ("dht", dht.run, dht.render),
    ("scale", scale.run, scale.render),
    ("live", live.run, live.render),
    ("private", private.run, private.render),
    ("upload", upload.run, upload.render),
    ("history", history.run, history.render),
    ("transfer", transfer_goals.run, transfer_goals.render),
    ("nspoll", poll.run, poll.render),
    ("ipfs", ipfs.run, ipfs.render),
]
RESULTS_FILE = "results.json"
assert [name for name, _, _ in SECTIONS] == SECTION_NAMES


def code_state() -> dict[str, Any]:
    """The commit of the source checkout measured, and its uncommitted changes under rlp2p/
    (read-only git commands; None where git or the checkout is missing)."""
    import subprocess

    root = REPO_ROOT

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or "").strip() or None
    status = git("status", "--porcelain", "--", "rlp2p") if commit else None
    changed = None if status is None else [line[3:] for line in status.splitlines()]
    return {
        "source": str(root),
        "commit": commit,
        # the code measured (the suite's own files are in bench/, outside it)
        "uncommitted_in_rlp2p": changed,
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in ("rlp2p", "libp2p", "trio"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    return {
        "nproc": nproc,
        "cpu_model": cpu or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _command_line() -> str:
    if not sys.argv:
        return ""
    program = "python -m bench" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
    return " ".join([program, *sys.argv[1:]])


def write_results(results: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / RESULTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(finite(results), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def render_section(name: str, result: dict[str, Any]) -> str:
    status = result.get("status")
    if status == "skipped":
        return f"{name}: skipped: {result.get('reason', '')}"
    if status == "error":
        return f"{name}: error: {result.get('error', '')}"
    render = {n: r for n, _, r in SECTIONS}[name]
    return "\n".join(render(result)) + f"\n   ({name}: {result.get('seconds', 0):.1f} s)"


async def run_suite(
    config: BenchConfig,
    out_dir: Path,
    *,
    only: Sequence[str] | None = None,
    echo: Callable[[str], None] | None = print,
    quiet: bool = False,
    plots: bool = True,
) -> dict[str, Any]:
    """Run the suite; returns the results (also written to ``out_dir/results.json``).

    ``echo`` gets each section's tables as text (None: print nothing); progress goes to stderr
    unless ``quiet``.
    """
    from rlp2p import quiet_libp2p_logs
    from rlp2p.testing import LocalSwarm

    quiet_libp2p_logs(logging.CRITICAL)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": config.quick,
            "command": _command_line(),
            "machine": machine(),
            "code": code_state(),
            "config": config.describe(),
        },
        "sections": {},
        # name -> {value, limit, ratio, section, met}: every section's goals, gathered
        "goals": {},
    }

    def emit(text: str) -> None:
        if echo is not None:
            echo(text + "\n")

    with tempfile.TemporaryDirectory(prefix="rlp2p-bench-") as tmp:
        async with trio.open_nursery() as nursery:
            swarm = LocalSwarm(Path(tmp), nursery, timeout=config.node_timeout)
            try:
                ctx = Context(config=config, swarm=swarm, storage=[], client=None, quiet=quiet)  # type: ignore[arg-type]
                ctx.started = started
                ctx.say(f"starting {config.storage_peers} storage peers and a client on 127.0.0.1")
                for _ in range(config.storage_peers):
                    ctx.storage.append(await ctx.start_node("storage", storage=True))
                ctx.client = await ctx.start_node("client")
                for name, run, _ in SECTIONS:
                    if only and name not in only:
                        results["sections"][name] = {"status": "skipped", "reason": "not selected (--only)"}
                        continue
                    section_start = time.monotonic()
                    try:
                        result = await run(ctx)
                    except Exception as exc:  # one failed section must not lose the others
                        result = {
                            "status": "error",
                            "error": f"{type(exc).__name__}: {exc}"[:2000],
                            "traceback": traceback.format_exc()[-6000:],
                        }
                    result["seconds"] = round(time.monotonic() - section_start, 2)
                    results["sections"][name] = result
                    results["goals"] = goals.gather(results["sections"])
                    emit(render_section(name, result))
                    results["meta"]["total_seconds"] = round(time.monotonic() - started, 1)
                    write_results(results, out_dir)
            finally:
                with trio.CancelScope(shield=True):
                    await swarm.close()
    if plots:
        paths, reason = _draw(results, out_dir)
        results["plots"] = paths
        if reason:
            results["plots_skipped"] = reason
            emit(f"plots skipped: {reason}")
        elif paths:
            emit("plots: " + ", ".join(paths))
    else:
        results["plots"] = []
        results["plots_skipped"] = "--no-plots"
    results["meta"]["total_seconds"] = round(time.monotonic() - started, 1)
    path = write_results(results, out_dir)
    emit(goals.render(results["goals"]))
    failed = [n for n, s in results["sections"].items() if s.get("status") == "error"]
    emit(
        f"total {results['meta']['total_seconds']:.1f} s on {results['meta']['machine']['nproc']} cores "
        f"({results['meta']['machine']['cpu_model']}, Python {results['meta']['machine']['python']}); "
        f"results in {path}" + (f"; sections that failed: {', '.join(failed)}" if failed else "")
    )
    return results


def _draw(results: dict[str, Any], out_dir: Path) -> tuple[list[str], str | None]:
    from bench.plots import draw

    try:
        return draw(results, out_dir)
    except Exception as exc:  # a plotting bug must not lose the measurements
        return [], f"plotting failed: {type(exc).__name__}: {exc}"


# --- command line ------------------------------------------------------------------------------


def run_from_args(args: argparse.Namespace) -> int:
    """Run as ``python -m bench`` asks; exit status 1 if a section failed."""
    scale_max = getattr(args, "scale_max", None)
    if args.quick:
        config = BenchConfig.quick_run(js=not args.no_js)
    elif scale_max is not None:
        config = BenchConfig.full(js=not args.no_js, scale_sizes=scale_sizes(scale_max))
    else:
        config = BenchConfig.full(js=not args.no_js)
    as_json = bool(getattr(args, "json", False))

    def echo(text: str) -> None:
        print(text, flush=True)

    results = trio.run(
        lambda: run_suite(config, args.out, only=args.only, echo=None if as_json else echo, plots=not args.no_plots)
    )
    if as_json:
        print(json.dumps(finite(results), allow_nan=False), flush=True)
    return 1 if any(s.get("status") == "error" for s in results["sections"].values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object instead of tables")
    args = parser.parse_args(argv)
    from rlp2p import quiet_libp2p_logs

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    quiet_libp2p_logs(logging.CRITICAL)
    return run_from_args(args)
