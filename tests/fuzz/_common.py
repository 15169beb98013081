"""What every fuzz harness shares: a :class:`Target`, the crash rule, and the atheris runner.

A target is one decoder fed bytes from a peer. ``one_input`` may raise only the target's
documented typed errors (``allowed``); anything else is a crash. The same targets run two ways:

* coverage-guided under atheris, ``python -m tests.fuzz <name> -atheris_runs=N``, with an
  address-space limit (a decoder that believes a declared size and allocates it gets a
  MemoryError, which counts as a crash), a sampled tracemalloc check of the Python heap per
  input, and libFuzzer's per-input timeout for hangs;
* as a short hypothesis run in the default suite (``test_fuzz_short.py``).

Environment of the atheris runner: ``FUZZ_KEEP_GOING=1`` records every crash (input and
traceback in the work folder) and goes on, instead of stopping at the first one, so a long run
can say how many it found; ``FUZZ_DIR`` is the work folder (corpus, crashes, stats).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import sys
import time
import tracemalloc
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: address space a run may take beyond what it had at the start: far above what any input of
#: ``max_len`` bytes needs, far below what believing a declared size would ask for
MEMORY_HEADROOM = 512 * 1024 * 1024
#: one input in this many is run under tracemalloc
TRACE_EVERY = 1000
#: the Python heap one input may use at its peak: a fixed allowance plus a multiple of its size
TRACE_BASE = 2 * 1024 * 1024
TRACE_FACTOR = 64
#: an input slower than this is reported (libFuzzer's -timeout kills a real hang)
SLOW_SECONDS = 1.0


@dataclass
class Target:
    name: str
    #: decodes one input; raises only ``allowed``
    one_input: Callable[[bytes], None]
    #: the documented typed errors of this decoder
    allowed: tuple[type[BaseException], ...]
    #: real encoded values the code produces (the seed corpus)
    seeds: Callable[[], list[bytes]]
    #: longest input the atheris runner generates
    max_len: int = 4096
    #: harness functions to instrument too: branches on what was decoded, which stand in for
    #: coverage of protobuf's C parser
    instrument: tuple[Callable[..., Any], ...] = ()


def check(target: Target, data: bytes) -> None:
    """Run one input; the allowed errors are swallowed, anything else propagates (a crash)."""
    try:
        target.one_input(data)
    except target.allowed:
        pass


def drive(coroutine: Any) -> Any:
    """Run a coroutine that never really suspends (in-memory backends, canned answers) to its end,
    without an event loop: a trio.run per input would cost more than the decoding."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the coroutine suspended: a harness backend must not await real I/O")


@dataclass
class _Stats:
    target: str
    inputs: int = 0
    crashes: int = 0
    signatures: dict[str, int] = field(default_factory=dict)
    slow: int = 0
    slowest_ms: float = 0.0
    traced: int = 0
    peak_heap: int = 0
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        return {
            "target": self.target,
            "inputs": self.inputs,
            "seconds": round(seconds, 1),
            "inputs_per_s": round(self.inputs / seconds) if seconds else 0,
            "crashes": self.crashes,
            "distinct_crashes": len(self.signatures),
            "signatures": self.signatures,
            "slow_inputs": self.slow,
            "slowest_ms": round(self.slowest_ms, 1),
            "traced_inputs": self.traced,
            "peak_heap_bytes": self.peak_heap,
        }


def _signature(exc: BaseException) -> str:
    """Where a crash comes from: its type and the innermost frame in rlp2p (or the last one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/rlp2p/" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(exc).__name__} at {where}"


def _limit_memory() -> None:
    with open("/proc/self/status") as status:
        vm_kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = vm_kib * 1024 + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str]) -> None:
    """``python -m tests.fuzz <target> [libFuzzer flags]``: fuzz one target with atheris."""
    import importlib
    import logging

    import atheris

    if len(argv) < 2 or argv[1].startswith("-"):
        sys.exit("usage: python -m tests.fuzz TARGET [-atheris_runs=N] [libFuzzer flags]")
    name = argv[1]
    # the harness imports rlp2p, so it is imported here, inside the instrumentation; a target
    # names more packages than rlp2p when they are what it fuzzes (the CID libraries)
    packages = {"address": ["cid", "multihash", "multibase"]}.get(name, [])
    with atheris.instrument_imports(include=["rlp2p", *packages]):
        target: Target = importlib.import_module(f"tests.fuzz.fuzz_{name}").TARGET
    for function in target.instrument:
        atheris.instrument_func(function)
    logging.disable(logging.CRITICAL)  # py-libp2p logs every bad record it is shown

    workdir = Path(os.environ.get("FUZZ_DIR") or Path(os.environ.get("TMPDIR", "/tmp")) / "rlp2p-fuzz" / target.name)
    corpus = workdir / "corpus"
    crashes = workdir / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds():
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)
    keep_going = os.environ.get("FUZZ_KEEP_GOING") == "1"
    stats = _Stats(target.name)
    stats_path = workdir / "stats.json"
    last_write = [0.0]

    def write_stats(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last_write[0] > 5:
            last_write[0] = now
            stats_path.write_text(json.dumps(stats.as_dict(), indent=1) + "\n")

    def test_one_input(data: bytes) -> None:
        stats.inputs += 1
        traced = stats.inputs % TRACE_EVERY == 0
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            check(target, data)
        except Exception as exc:
            if not keep_going:
                raise
            stats.crashes += 1
            sig = _signature(exc)
            if sig not in stats.signatures:
                name = f"crash-{hashlib.sha1(data).hexdigest()}"
                (crashes / name).write_bytes(data)
                (crashes / f"{name}.txt").write_text(sig + "\n\n" + "".join(traceback.format_exception(exc)))
                print(f"CRASH {target.name}: {sig} (input saved as {crashes / name})", file=sys.stderr, flush=True)
            stats.signatures[sig] = stats.signatures.get(sig, 0) + 1
        finally:
            elapsed = time.perf_counter() - started
            if traced:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                stats.traced += 1
                stats.peak_heap = max(stats.peak_heap, peak)
                if peak > TRACE_BASE + TRACE_FACTOR * len(data):
                    message = f"{target.name}: one input of {len(data)} bytes took {peak} bytes of heap"
                    if not keep_going:
                        raise AssertionError(message)
                    stats.crashes += 1
                    stats.signatures["heap"] = stats.signatures.get("heap", 0) + 1
                    (crashes / f"heap-{hashlib.sha1(data).hexdigest()}").write_bytes(data)
                    print(f"CRASH {message}", file=sys.stderr, flush=True)
            stats.slowest_ms = max(stats.slowest_ms, elapsed * 1000)
            if elapsed > SLOW_SECONDS:
                stats.slow += 1
            write_stats()

    args = [argv[0], *argv[2:]]
    if not any(a.startswith("-max_len=") for a in args):
        args.append(f"-max_len={target.max_len}")
    if not any(a.startswith("-timeout=") for a in args):
        args.append("-timeout=10")
    if not any(a.startswith("-rss_limit_mb=") for a in args):
        args.append("-rss_limit_mb=2048")
    args.append(str(corpus))

    import atexit

    def at_exit() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)  # libFuzzer's timeout alarm, not to fire at shutdown
        write_stats(force=True)
        print("STATS " + json.dumps(stats.as_dict()), flush=True)

    atexit.register(at_exit)
    atheris.Setup(args, test_one_input)
    _limit_memory()
    stats.started = time.monotonic()
    atheris.Fuzz()
