"""The ``rlp2p`` command's contract, as scripts outside the project use it: separate OS processes.

Three ``rlp2p serve`` storage peers, ``keygen``, ``publish`` (several page layouts) and
``sync --json`` each in a process of its own, talking over 127.0.0.1 only. The message ids are
recomputed here from the MVDS rule, not taken from rlp2p. Every process a test starts is stopped
by that test (``procs`` fixture), and every wait has a bound.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from rlp2p.core.keys import generate_log_key, load_key, log_name

RLP2P = [sys.executable, "-m", "rlp2p.cli.main"]
#: bound on one short-lived command (keygen, publish, sync); they take a few seconds
COMMAND_TIMEOUT = 60.0
#: bound on a storage peer printing its address, and on it exiting after SIGTERM
SERVE_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

PEER_ID = r"12D3KooW[1-9A-HJ-NP-Za-km-z]+"
SERVE_ADDR = re.compile(rf"/ip4/127\.0\.0\.1/tcp/(?P<port>\d+)/p2p/(?P<peer>{PEER_ID})")
LOG_NAME = re.compile(PEER_ID)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


@dataclass
class Result:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"rlp2p {' '.join(self.args)} -> {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_many(*commands: tuple[Sequence[str], bytes | None], cwd: Path, timeout: float = COMMAND_TIMEOUT) -> list[Result]:
    """Run rlp2p commands at the same time (each with its stdin bytes); wait for all, bounded."""
    procs = []
    try:
        for args, _ in commands:
            procs.append(
                subprocess.Popen(
                    [*RLP2P, *args],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=cwd,
                    env=_env(),
                )
            )
        deadline = time.monotonic() + timeout
        results = []
        for proc, (args, data) in zip(procs, commands):
            try:
                out, err = proc.communicate(data or b"", timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"rlp2p {' '.join(args)} did not exit within {timeout} s")
            results.append(Result(args, proc.returncode, out.decode("utf-8"), err.decode("utf-8")))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)


def run(args: Sequence[str], *, cwd: Path, stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT) -> Result:
    return run_many((args, stdin), cwd=cwd, timeout=timeout)[0]


def assert_clean_failure(result: Result, *phrases: str) -> None:
    """Exit status 1, one clear ``rlp2p: error:`` line, no traceback."""
    assert result.returncode == 1, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    assert "rlp2p: error:" in result.stderr, result.describe()
    for phrase in phrases:
        assert phrase in result.stderr, f"{phrase!r} missing: {result.describe()}"


class Serve:
    """One ``rlp2p serve`` process; stdout lines pumped into a queue, stderr into a file."""

    def __init__(self, tmp: Path, name: str, bootstrap: Sequence[str] = (), *, json_output: bool = False) -> None:
        self.name = name
        args = ["serve", "--data", str(tmp / name), "--listen", "/ip4/127.0.0.1/tcp/0"]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        if json_output:
            args.append("--json")
        self.stderr_path = tmp / f"{name}.stderr"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [*RLP2P, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=tmp,
            env=_env(),
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read_stdout, daemon=True)
        self._pump.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text("utf-8", "replace")

    def line(self, timeout: float = SERVE_TIMEOUT) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"{self.name}: no output line within {timeout} s; stderr:\n{self.stderr()}")
        if line is None:
            pytest.fail(f"{self.name} exited ({self.proc.wait(STOP_TIMEOUT)}) early; stderr:\n{self.stderr()}")
        return line

    def terminate(self) -> int:
        """SIGTERM, then wait (bounded); returns the exit status. Killed if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not exit within {STOP_TIMEOUT} s of SIGTERM")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._pump.join(timeout=STOP_TIMEOUT)
        self._stderr.close()


@pytest.fixture
def procs() -> Iterator[list[Serve]]:
    """Long-running processes a test starts; whatever is still running at the end is killed."""
    started: list[Serve] = []
    try:
        yield started
    finally:
        for serve in started:
            serve.kill()


def start_swarm(tmp: Path, procs: list[Serve]) -> tuple[list[Serve], list[str]]:
    """Three storage peers: the 2nd and 3rd bootstrap from the 1st's printed address."""
    first = Serve(tmp, "storage0")
    procs.append(first)
    addr0 = first.line()
    assert SERVE_ADDR.fullmatch(addr0), f"first line is not a full multiaddr: {addr0!r}"
    others = [Serve(tmp, f"storage{i}", [addr0], json_output=(i == 2)) for i in (1, 2)]
    procs.extend(others)
    addrs = [addr0] + [s.line() for s in others]
    for addr in addrs:
        m = SERVE_ADDR.fullmatch(addr)
        assert m, f"first line is not a full multiaddr: {addr!r}"
        assert int(m["port"]) != 0
    assert len({SERVE_ADDR.fullmatch(a)["peer"] for a in addrs}) == 3  # type: ignore[index]
    # with --json, what follows the address line is machine-readable too
    event = json.loads(others[1].line())
    assert event["event"] == "serving"
    assert event["peer_id"] == SERVE_ADDR.fullmatch(addrs[2])["peer"]  # type: ignore[index]
    return [first, *others], addrs


def expected_id(group_id: bytes, timestamp: int, body: bytes) -> str:
    """H1, the MVDS message id, computed independently of rlp2p."""
    return hashlib.sha256(b"MESSAGE_ID" + group_id + struct.pack("<q", timestamp) + body).hexdigest()


def check_sync_output(result: Result, bodies: Sequence[bytes], first_seq: int) -> list[dict]:
    """``sync --json``: exactly one JSON message object a line, in order, ids recomputed."""
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert [m["seq"] for m in messages] == list(range(first_seq, first_seq + len(bodies))), result.describe()
    now = time.time()
    for m, body in zip(messages, bodies):
        assert {"id", "seq", "group_id", "timestamp", "body"} <= set(m), m
        assert base64.b64decode(m["body"], validate=True) == body
        group_id = bytes.fromhex(m["group_id"])
        assert isinstance(m["timestamp"], int) and not isinstance(m["timestamp"], bool)
        assert abs(m["timestamp"] - now) < 86400, "timestamp is not Unix seconds of today"
        assert m["id"] == expected_id(group_id, m["timestamp"], body), m
    return messages


def publish(tmp: Path, key: Path, addr: str, bodies: Sequence[bytes], *mode: str) -> Result:
    stdin = b"".join(body + b"\n" for body in bodies)
    args = ["publish", "--key", str(key), "--data", str(tmp / "alice"), "--bootstrap", addr, "--json", *mode]
    result = run(args, cwd=tmp, stdin=stdin)
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    return result


def test_serve_keygen_publish_sync_across_processes(tmp_path: Path, procs: list[Serve]) -> None:
    key = tmp_path / "alice.key"
    # keygen runs while the storage peers start
    keygen_proc = subprocess.Popen(
        [*RLP2P, "keygen", "--out", str(key)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=tmp_path, env=_env(), text=True,
    )
    try:
        storage, addrs = start_swarm(tmp_path, procs)
        keygen_out, keygen_err = keygen_proc.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if keygen_proc.poll() is None:
            keygen_proc.kill()
            keygen_proc.wait(timeout=STOP_TIMEOUT)
    storage_ids = {SERVE_ADDR.fullmatch(a)["peer"] for a in addrs}  # type: ignore[index]
    assert keygen_proc.returncode == 0, keygen_err
    name = keygen_out.strip()
    assert LOG_NAME.fullmatch(name) and keygen_out == name + "\n", keygen_out
    assert log_name(load_key(key).public_key) == name

    batches = [
        # (bodies, publish mode options): the page layout may change from one publish to the next
        ([b"hello Bob", "h\u00e9llo w\u00f6rld \u2713".encode(), b'{"not": "json"} trailing space '], ["--layout", "linked", "--embed", "none"]),
        ([b"second batch, 1", b"second batch, 2"], []),
        ([b"third batch, 1", b"third batch, 2"], ["--layout", "full"]),
    ]
    sent: list[bytes] = []
    group_ids = set()
    reader = ["--data", str(tmp_path / "bob"), "--bootstrap", addrs[1], "--json"]
    for bodies, mode in batches:
        # the publisher's process has exited once this returns: the reader gets it from storage
        published = publish(tmp_path, key, addrs[0], bodies, *mode)
        report = json.loads(published.stdout.splitlines()[-1])
        assert report["name"] == name
        assert report["appended"] == len(bodies)
        assert report["messages"] == len(sent) + len(bodies)
        assert set(report["stored_on"]) == storage_ids, published.describe()

        synced = run(["sync", name, *reader], cwd=tmp_path)
        messages = check_sync_output(synced, bodies, first_seq=len(sent) + 1)
        group_ids.update(m["group_id"] for m in messages)
        sent.extend(bodies)
    assert len(group_ids) == 1  # one log, one MVDS group

    # at the same time: Bob polls (nothing new), a new reader gets everything from seq 1, and a
    # log nobody published is an error
    unknown = log_name(generate_log_key().public_key)
    poll, fresh, missing = run_many(
        (["sync", name, *reader], None),
        (["sync", name, "--data", str(tmp_path / "carol"), "--bootstrap", addrs[2], "--json"], None),
        (["sync", unknown, "--data", str(tmp_path / "dave"), "--bootstrap", addrs[0], "--timeout", "3"], None),
        cwd=tmp_path,
    )
    assert poll.returncode == 0 and poll.stdout == "", poll.describe()
    assert "Traceback" not in poll.stderr, poll.describe()
    everything = check_sync_output(fresh, sent, first_seq=1)
    assert len({m["id"] for m in everything}) == len(sent)
    assert_clean_failure(missing, unknown)

    # storage peers stop cleanly on SIGTERM
    for serve in storage:
        assert serve.terminate() == 0, f"{serve.name}: exit status {serve.proc.returncode}:\n{serve.stderr()}"
        assert "Traceback" not in serve.stderr(), serve.stderr()


def test_keygen_does_not_overwrite_a_key(tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    first = run(["keygen", "--out", str(key)], cwd=tmp_path)
    assert first.returncode == 0, first.describe()
    original = key.read_bytes()

    again = run(["keygen", "--out", str(key)], cwd=tmp_path)
    assert_clean_failure(again, str(key))
    assert again.stdout == ""
    assert key.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.key"]  # no temporary file left

    forced = run(["keygen", "--out", str(key), "--force"], cwd=tmp_path)
    assert forced.returncode == 0, forced.describe()
    assert key.read_bytes() != original
    assert forced.stdout.strip() == log_name(load_key(key).public_key) != first.stdout.strip()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MALFORMED_NAMES = [
    "not-a-log-name",
    "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",  # a peer id, but a sha2-256 one (not Ed25519)
    "12D3KooW" + "1" * 300,  # over the length limit
]


def test_sync_of_a_malformed_name_fails_cleanly(tmp_path: Path) -> None:
    # a well-formed bootstrap address (nobody listens there): only the name is wrong
    boot = f"/ip4/127.0.0.1/tcp/{_closed_port()}/p2p/{log_name(generate_log_key().public_key)}"
    common = ["--bootstrap", boot, "--timeout", "3"]
    results = run_many(
        *[(["sync", name, "--data", str(tmp_path / f"r{i}"), *common], None) for i, name in enumerate(MALFORMED_NAMES)],
        (["sync", MALFORMED_NAMES[0], "--data", str(tmp_path / "rj"), *common, "--json"], None),
        cwd=tmp_path,
    )
    # a usage error (exit 2), found before any dial: the usage line, then one error line
    for human in results[:-1]:
        assert human.returncode == 2, human.describe()
        assert "Traceback" not in human.stderr and human.stdout == "", human.describe()
        assert human.stderr.strip().splitlines()[-1].startswith("rlp2p sync: error: NAME: not a log name"), human.describe()
    machine = results[-1]
    assert machine.returncode == 2 and "not a log name" in machine.stderr, machine.describe()
    error = json.loads(machine.stdout)
    assert set(error) == {"error", "message"} and "not a log name" in error["message"], machine.describe()


def test_demo_runs_and_narrates(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**_env(), "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [*RLP2P, "demo"], stdin=subprocess.DEVNULL, capture_output=True, cwd=tmp_path, env=env, timeout=COMMAND_TIMEOUT
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, f"{out}\n{err}"
    assert "Traceback" not in err, err
    lines = out.splitlines()
    steps = [
        "storage peers are up",
        "Alice published 200 messages",
        "Alice is now offline",
        "Bob came online and synced 200 messages from the storage peers alone",
        "first: 'hello Bob, message 0', last: 'hello Bob, message 199'",
        "While Bob was offline, Alice came back, published 50 more",
        "went down",
        "Bob came back and got exactly the 50 messages he missed (seq 201..250)",
        "Bob polled again: up to date",
        "demo finished",
    ]
    at = 0
    for step in steps:  # in this order
        found = out.find(step, at)
        assert found >= 0, f"step {step!r} missing or out of order:\n{out}"
        at = found + len(step)
    assert lines[-1].endswith("demo finished")
    assert list(tmp.iterdir()) == [], "the demo left files in its temporary folder"
