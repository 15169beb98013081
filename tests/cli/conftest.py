"""Running ``rlp2p`` as scripts do: real OS processes, 127.0.0.1 only, every process stopped.

``cli`` runs commands in a test's folder; ``storage_peers`` is three ``rlp2p serve`` processes
shared by the whole session (each costs a second or two of imports), which tests only read from
or publish fresh logs to, so sharing them couples nothing.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

RLP2P = [sys.executable, "-m", "rlp2p.cli.main"]
#: bound on one short-lived command (keygen, publish, sync); they take a few seconds
COMMAND_TIMEOUT = 60.0
#: bound on a storage peer printing its address, and on it exiting after SIGTERM
SERVE_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

PEER_ID = r"12D3KooW[1-9A-HJ-NP-Za-km-z]+"
SERVE_ADDR = re.compile(rf"/ip4/127\.0\.0\.1/tcp/(?P<port>\d+)/p2p/(?P<peer>{PEER_ID})")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a command: no bootstrap peers or config file from the user's own."""
    env = {k: v for k, v in os.environ.items() if k not in ("RLP2P_BOOTSTRAP", "RLP2P_CONFIG", "PYTHONSTARTUP")}
    env["PYTHONUNBUFFERED"] = "1"
    env["XDG_CONFIG_HOME"] = str(home / ".config-none")
    env.update(extra)
    return env


@dataclass
class Result:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    def describe(self) -> str:
        return f"rlp2p {' '.join(self.args)} -> {self.returncode}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"

    def clean_failure(self, status: int = 1, *phrases: str) -> None:
        """Exit ``status``, one ``rlp2p...error:`` line at the end of stderr, no traceback."""
        assert self.returncode == status, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        last = self.stderr.strip().splitlines()[-1] if self.stderr.strip() else ""
        assert re.match(r"rlp2p( \w+)?: error: ", last), self.describe()
        for phrase in phrases:
            assert phrase in last, f"{phrase!r} missing: {self.describe()}"


class Serve:
    """One ``rlp2p serve`` process; stdout lines pumped into a queue, stderr into a file."""

    def __init__(self, cwd: Path, name: str, bootstrap: Sequence[str] = (), *, listen: str = "/ip4/127.0.0.1/tcp/0", extra: Sequence[str] = ()) -> None:
        self.name = name
        self.data = cwd / name
        self.args = ["serve", "--data", str(self.data), "--listen", listen, *extra]
        for addr in bootstrap:
            self.args += ["--bootstrap", addr]
        self.stderr_path = cwd / f"{name}.stderr"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [*RLP2P, *self.args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=cwd, env=cli_env(cwd), text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read_stdout, daemon=True)
        self._pump.start()
        self.addr = ""

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text("utf-8", "replace")

    def line(self, timeout: float = SERVE_TIMEOUT) -> str | None:
        """The next stdout line; None once the process ended."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"{self.name}: no output line within {timeout} s; stderr:\n{self.stderr()}")

    def address(self) -> str:
        line = self.line()
        if line is None:
            pytest.fail(f"{self.name} exited ({self.proc.wait(STOP_TIMEOUT)}) early; stderr:\n{self.stderr()}")
        assert SERVE_ADDR.fullmatch(line), f"first line is not a full multiaddr: {line!r}"
        self.addr = line
        return line

    def wait(self, timeout: float = COMMAND_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not exit within {timeout} s")

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(STOP_TIMEOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._pump.join(timeout=STOP_TIMEOUT)
        self._stderr.close()


class Cli:
    """Commands run in one folder; processes it started are killed at the end of the test."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[Any] = []

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(self.cwd, **extra)

    def run_many(self, *commands: tuple[Sequence[str], bytes | None], timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> list[Result]:
        """Run commands at the same time (each with its stdin bytes); wait for all, bounded."""
        procs = []
        started = time.monotonic()
        try:
            for args, _ in commands:
                procs.append(
                    subprocess.Popen(
                        [*RLP2P, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        cwd=self.cwd, env=env or self.env(),
                    )
                )
            deadline = time.monotonic() + timeout
            results = []
            for proc, (args, data) in zip(procs, commands, strict=True):
                try:
                    out, err = proc.communicate(data or b"", timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pytest.fail(f"rlp2p {' '.join(args)} did not exit within {timeout} s")
                results.append(Result(args, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.monotonic() - started))
            return results
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=STOP_TIMEOUT)

    def run(self, *args: str, stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> Result:
        return self.run_many((args, stdin), timeout=timeout, env=env)[0]

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("cwd", self.cwd)
        kwargs.setdefault("env", self.env())
        proc = subprocess.Popen([*RLP2P, *args], **kwargs)
        self.started.append(proc)
        return proc

    def serve(self, name: str, bootstrap: Sequence[str] = (), **kwargs: Any) -> Serve:
        serve = Serve(self.cwd, name, bootstrap, **kwargs)
        self.started.append(serve)
        return serve

    def keygen(self, name: str = "log.key") -> tuple[Path, str]:
        key = self.cwd / name
        result = self.run("keygen", "--out", str(key))
        assert result.returncode == 0, result.describe()
        return key, result.stdout.strip()

    def close(self) -> None:
        for proc in self.started:
            if isinstance(proc, Serve):
                proc.kill()
            elif proc.poll() is None:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="session")
def storage_peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Three ``rlp2p serve`` processes for the session: the 2nd and 3rd join through the 1st."""
    runner = Cli(tmp_path_factory.mktemp("storage"))
    try:
        first = runner.serve("storage0")
        addr0 = first.address()
        others = [runner.serve(f"storage{i}", [addr0]) for i in (1, 2)]
        yield [addr0, *(s.address() for s in others)]
    finally:
        runner.close()


@pytest.fixture(scope="module")
def module_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A ``cli`` shared by one test module (for state several of its tests read, like a log)."""
    runner = Cli(tmp_path_factory.mktemp("module"))
    try:
        yield runner
    finally:
        runner.close()
