"""Each example runs to completion as a script and prints what its README promises.

py-libp2p installs a top-level package named ``examples``, so the examples are never imported:
they run as scripts, by path, in a subprocess (bounded by a timeout; killed if it expires).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 60.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run_example(name: str, tmp_path: Path) -> list[str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # TMPDIR points into tmp_path, so the example's temporary folder can be checked afterwards
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    # its own process group: whatever it starts can be found, and killed, through the group
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=10)
        pytest.fail(f"{name} did not finish within {TIMEOUT} s; output so far:\n{stdout!r}\n{stderr!r}")
    finally:
        leftovers = _group_alive(proc.pid)
        if leftovers:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not leftovers, f"{name} exited but left processes of its own running"
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"{name} exited {done.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert "Traceback" not in err, err
    assert list(tmp.iterdir()) == [], f"{name} left files in its temporary folder"
    return out.splitlines()


def test_embed_in_app(tmp_path: Path) -> None:
    lines = run_example("embed_in_app.py", tmp_path)
    text = "\n".join(lines)
    assert "3 storage peers are up" in text
    assert "[alice] published 3 messages to 12D3KooW" in text
    assert "on 3 storage peers" in text
    # the app's own protocol carried the log's name
    assert "[bob] chat from" in text and ": read my log 12D3KooW" in text
    # Bob read everything after Alice went offline, in order
    offline = lines.index("[alice] app offline")
    got = [line for line in lines[offline:] if line.startswith("[bob] #")]
    assert got == ["[bob] #1: hi Bob", "[bob] #2: the remote log works", "[bob] #3: while I am offline too"]
    assert any(line.startswith("[bob] got 3 messages from 12D3KooW") and line.endswith("while alice was offline") for line in lines)
    assert "[bob] polled again: up to date" in lines
    assert lines[-1] == "embed_in_app: done"


def test_multi_process(tmp_path: Path) -> None:
    lines = run_example("multi_process.py", tmp_path)
    assert lines[0].startswith("3 storage peers up, as processes")
    assert "alice published 5 messages on 3 storage peers; her process has exited" in lines
    assert [line for line in lines if line.startswith("bob got #")] == [
        "bob got #1: hello Bob",
        "bob got #2: this log lives on three storage peers",
        "bob got #3: I am offline now",
        "bob got #4: read it when you like",
        "bob got #5: bye",
    ]
    assert "bob synced again: 0 new" in lines
    assert "storage peers stopped, exit statuses [0, 0, 0]" in lines
    assert lines[-1] == "multi_process: done, bob read all 5 messages while alice was offline"
