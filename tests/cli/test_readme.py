"""The README is a contract: its Python snippets run as written, and each row of its command table
holds, checked across real processes against the session's storage peers."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rlp2p import __version__

README = Path(__file__).resolve().parents[2] / "README.md"
SERVE_ADDR = re.compile(r"/ip4/127\.0\.0\.1/tcp/\d+/p2p/12D3KooW[1-9A-HJ-NP-Za-km-z]+")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.S)


def table_rows() -> list[tuple[str, str]]:
    """(command, contract) of each row of "The rlp2p command" table."""
    text = README.read_text("utf-8")
    section = text[text.index("## The rlp2p command") :]
    section = section[: section.index("\n## ", 3)]
    return re.findall(r"^\| `(rlp2p [^`]*)` \| (.*) \|$", section, flags=re.M)


def test_the_readme_python_snippets_run_as_written(cli, storage_peers) -> None:
    blocks = python_blocks()
    assert blocks, "no ```python block in README.md"
    for number, block in enumerate(blocks):
        script = cli.cwd / f"snippet{number}.py"
        script.write_text(block)
        done = subprocess.run(
            [sys.executable, str(script)], cwd=cli.cwd, env=cli.env(RLP2P_BOOTSTRAP=storage_peers[0]),
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"README python block {number}:\n{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        # nothing from py-libp2p's loggers on an embedding application's stderr
        assert done.stderr == "", done.stderr
        if "on_message=print" in block:
            assert "hello" in done.stdout and "world" in done.stdout, done.stdout


# --- the command table: one check per row ----------------------------------------------------------


class Rows:
    """State the row checks share: one log published and synced through the table's commands."""

    def __init__(self, cli, peers: list[str]) -> None:
        self.cli = cli
        self.peers = peers
        self.key = cli.cwd / "alice.key"
        self.name = ""


def row_version(rows: Rows) -> None:
    done = rows.cli.run("--version")
    assert done.returncode == 0 and done.stdout == f"rlp2p {__version__}\n", done.describe()


def row_keygen(rows: Rows) -> None:
    done = rows.cli.run("keygen", "--out", str(rows.key))
    assert done.returncode == 0, done.describe()
    rows.name = done.stdout.strip()
    assert done.stdout == rows.name + "\n" and re.fullmatch(r"12D3KooW\w+", rows.name)
    assert rows.key.stat().st_mode & 0o777 == 0o600
    before = rows.key.read_bytes()
    rows.cli.run("keygen", "--out", str(rows.key)).clean_failure(1, "already there")
    assert rows.key.read_bytes() == before
    assert not [p for p in rows.cli.cwd.iterdir() if p.name.endswith(".tmp")]  # no temporary file left
    forced = rows.cli.run("keygen", "--out", str(rows.cli.cwd / "other.key"))
    assert forced.returncode == 0
    forced = rows.cli.run("keygen", "--out", str(rows.cli.cwd / "other.key"), "--force")
    assert forced.returncode == 0 and forced.stdout.strip() != rows.name


def row_name(rows: Rows) -> None:
    done = rows.cli.run("name", "--key", str(rows.key))
    assert done.returncode == 0 and done.stdout == rows.name + "\n", done.describe()


def row_serve(rows: Rows) -> None:
    assert all(SERVE_ADDR.fullmatch(a) for a in rows.peers)  # the session's peers' first lines
    # a dead bootstrap peer beside a live one: a warning naming it, and the peer serves anyway
    dead = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWRLJqajeGZ7SYeTnoF3kFNZAKYhe27Wv3iGaXNT4vjGmG"
    serve = rows.cli.serve("extra", [dead, rows.peers[0]], extra=["--json"])
    addr = serve.address()
    assert SERVE_ADDR.fullmatch(addr)
    # with --json, what follows the address line is machine-readable too
    event = json.loads(serve.line() or "null")
    assert event["event"] == "serving" and event["peer_id"] == addr.split("/p2p/")[1], event
    assert serve.terminate() == 0  # SIGTERM: a clean stop
    assert serve.stderr().splitlines() == [
        "rlp2p: warning: bootstrap peer 12D3KooWRLJqajeGZ7SYeTnoF3kFNZAKYhe27Wv3iGaXNT4vjGmG unreachable (Connection refused); serving anyway"
    ], serve.stderr()
    # a port another program holds: test_cli_problems.py checks the refusal in detail


def _publish(rows: Rows, stdin: bytes, *extra: str) -> dict:
    done = rows.cli.run("publish", "--key", str(rows.key), "--data", "alice", "--bootstrap", rows.peers[0], "--json", *extra, stdin=stdin)
    assert done.returncode == 0, done.describe()
    return json.loads(done.stdout)


def row_publish(rows: Rows) -> None:
    report = _publish(rows, b"hello\r\n\nworld\n", "--layout", "paged:2", "--embed", "newest:1", "--replicas", "3", "--quorum", "2")
    assert (report["appended"], report["messages"], len(report["stored_on"])) == (3, 3, 3), report


def row_publish_empty(rows: Rows) -> None:
    report = _publish(rows, b"")
    assert (report["appended"], report["messages"]) == (0, 3), report


def _messages(stdout: str) -> list[tuple[int, bytes]]:
    return [(m["seq"], base64.b64decode(m["body"])) for m in map(json.loads, stdout.splitlines())]


def row_sync(rows: Rows) -> None:
    sync = ["sync", rows.name, "--data", "bob", "--bootstrap", rows.peers[1], "--json"]
    first = rows.cli.run(*sync)
    assert first.returncode == 0, first.describe()
    assert _messages(first.stdout) == [(1, b"hello"), (2, b""), (3, b"world")], first.describe()
    assert set(json.loads(first.stdout.splitlines()[0])) == {"id", "seq", "group_id", "timestamp", "body"}
    again = rows.cli.run(*sync)
    assert again.returncode == 0 and again.stdout == "", again.describe()
    # a closed pipe and Ctrl-C: test_cli_sync.py


def row_follow(rows: Rows) -> None:
    # a new reader catches up, then follows until SIGINT; push delivery: test_follow_cli.py
    proc = rows.cli.popen(
        ["sync", rows.name, "--follow", "--data", "carol", "--bootstrap", rows.peers[1], "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline().decode() for _ in range(3)]  # bounded: the process is stopped below
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert _messages("".join(lines)) == [(1, b"hello"), (2, b""), (3, b"world")], lines


def row_truncate(rows: Rows) -> None:
    # a log of its own, so the rows after this one see the table's log unchanged
    key = rows.cli.cwd / "truncated.key"
    assert rows.cli.run("keygen", "--out", str(key)).returncode == 0
    name = rows.cli.run("name", "--key", str(key)).stdout.strip()
    opts = ["--key", str(key), "--data", "dora", "--bootstrap", rows.peers[0]]
    assert (r := rows.cli.run("publish", *opts, stdin=b"a\nb\nc\n")).returncode == 0, r.describe()
    done = rows.cli.run("truncate", *opts, "--keep", "1", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["first_seq"] == 3, done.describe()
    read = rows.cli.run("sync", name, "--data", "erin", "--bootstrap", rows.peers[1], "--json")
    assert _messages(read.stdout) == [(3, b"c")], read.describe()
    assert f"note: {name}: messages 1..2 are gone" in read.stderr, read.describe()
    assert json.loads(read.stderr.strip().splitlines()[-1])["summary"]["gone"] == {"first": 1, "last": 2}


def row_invite(rows: Rows) -> None:
    (rows.cli.cwd / "gated").mkdir()
    assert rows.cli.run("keygen", "--out", str(rows.cli.cwd / "gated" / "node.key")).returncode == 0
    done = rows.cli.run("invite", "--data", "gated", "--for", rows.name)
    assert done.returncode == 0 and re.fullmatch(r"rlp2p-invite:[A-Za-z0-9_-]+\n", done.stdout), done.describe()
    # presented by `rlp2p publish --invite`: test_cli_invite.py


def row_inbox(rows: Rows) -> None:
    everything = rows.cli.run("inbox", rows.name, "--data", "bob", "--json")
    assert _messages(everything.stdout) == [(1, b"hello"), (2, b""), (3, b"world")], everything.describe()
    later = rows.cli.run("inbox", rows.name, "--data", "bob", "--after", "1", "--limit", "1")
    assert later.returncode == 0 and later.stdout.split() == ["2"], later.describe()


def row_status(rows: Rows) -> None:
    done = rows.cli.run("status", "--data", "alice", "--json")
    status = json.loads(done.stdout)
    replicas = status.pop("replicas")
    assert status == {"name": rows.name, "messages": 3, "published": 3, "pending": 0, "record_seq": 2}, done.describe()
    assert len(replicas) == 3 and set(replicas.values()) == {3}, replicas  # each replica holds all 3
    keyed = rows.cli.run("status", "--data", "alice", "--key", str(rows.key))
    assert keyed.returncode == 0 and keyed.stdout.startswith(f"{rows.name}: 3 messages, 3 published"), keyed.describe()
    assert keyed.stdout.count("  replica 12D3KooW") == 3 and "behind" not in keyed.stdout, keyed.describe()


def row_ls(rows: Rows) -> None:
    bob = [json.loads(line) for line in rows.cli.run("ls", "--data", "bob", "--json").stdout.splitlines()]
    reader = next(r for r in bob if r["role"] == "reader")
    assert (reader["name"], reader["delivered"], reader["record_seq"]) == (rows.name, 3, 2), bob
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", reader["expires"]), reader
    alice = [json.loads(line) for line in rows.cli.run("ls", "--data", "alice", "--json").stdout.splitlines()]
    assert {"role": "publisher", "name": rows.name, "messages": 3, "published": 3} in alice, alice
    human = rows.cli.run("ls", "--data", "bob")
    assert human.returncode == 0 and f"reader     {rows.name}  3 messages" in human.stdout, human.describe()


def row_demo(rows: Rows) -> None:
    tmp = rows.cli.cwd / "tmp"
    tmp.mkdir()
    done = rows.cli.run("demo", "--messages", "12", "--storage-peers", "3", env=rows.cli.env(TMPDIR=str(tmp)))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.describe()
    steps = [
        "3 storage peers are up",
        "Alice published 12 messages",
        "Alice is now offline",
        "Bob came online and synced 12 messages from the storage peers alone",
        "first: 'hello Bob, message 0', last: 'hello Bob, message 11'",
        "While Bob was offline, Alice came back, published 3 more",
        "went down",
        "Bob came back and got exactly the 3 messages he missed (seq 13..15)",
        "Bob polled again: up to date",
        "demo finished",
    ]
    at = 0
    for step in steps:  # in this order
        found = done.stdout.find(step, at)
        assert found >= 0, f"step {step!r} missing or out of order:\n{done.stdout}"
        at = found + len(step)
    assert done.stdout.splitlines()[-1].endswith("demo finished")
    assert list(tmp.iterdir()) == [], "the demo left files in its temporary folder"


def row_bench(rows: Rows) -> None:
    # the suite is not installed (bench/ in a checkout): the command says how to run it; the quick
    # run itself is tests/bench/test_bench_quick.py
    done = rows.cli.run("bench", "--quick")
    assert done.returncode == 2 and "python -m bench" in done.stderr


#: the table's rows, by their command up to the first option (plus the empty-stdin publish)
ROW_CHECKS: dict[str, Callable[[Rows], None]] = {
    "rlp2p --version": row_version,
    "rlp2p keygen": row_keygen,
    "rlp2p name": row_name,
    "rlp2p serve": row_serve,
    "rlp2p publish": row_publish,
    "rlp2p publish < /dev/null": row_publish_empty,
    "rlp2p sync": row_sync,
    "rlp2p sync --follow": row_follow,
    "rlp2p truncate": row_truncate,
    "rlp2p invite": row_invite,
    "rlp2p inbox": row_inbox,
    "rlp2p status": row_status,
    "rlp2p ls": row_ls,
    "rlp2p demo": row_demo,
    "rlp2p bench": row_bench,
}


def _row_key(command: str) -> str:
    words = command.split()
    key = " ".join(words[:2]) if not words[1].startswith("--") or words[1] == "--version" else words[0]
    key += " --follow" if "--follow" in words else ""
    return key + (" < /dev/null" if command.endswith("< /dev/null") else "")


# a long run (scripts/long-runs.sh, in CI): some thirty CLI processes one after the other, 70 s
@pytest.mark.long
def test_each_row_of_the_readme_command_table_holds(cli, storage_peers) -> None:
    rows = table_rows()
    keys = [_row_key(command) for command, _ in rows]
    assert keys == list(ROW_CHECKS), f"README rows {keys} != checks {list(ROW_CHECKS)}"
    state = Rows(cli, storage_peers)
    for (command, contract), key in zip(rows, keys, strict=True):
        try:
            ROW_CHECKS[key](state)
        except AssertionError as exc:
            pytest.fail(f"README row `{command}` ({contract[:80]}...) does not hold:\n{exc}")

