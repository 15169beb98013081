"""Issue 13's numbered problems, each reproduced across real OS processes and shown fixed.

Problem 1 (nothing lost at the terminal) is in test_cli_sync.py; the others are here:
2 a retried publish, 3 a port in use, 4 a data folder in use, 5 the errors a new user meets.
"""

from __future__ import annotations

import json
import socket

from rlp2p.core.keys import generate_log_key, log_name

DEAD_PEER = log_name(generate_log_key().public_key)


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_publish_says_what_it_kept_and_a_retry_does_not_duplicate(cli, storage_peers) -> None:
    key, name = cli.keygen()
    dead = f"/ip4/127.0.0.1/tcp/{_closed_port()}/p2p/{DEAD_PEER}"
    lines = b"first\r\nsecond\n\nfourth\n"  # \r stripped, the blank line an empty message
    publish = ["publish", "--key", str(key), "--data", "alice", "--timeout", "3"]

    failed = cli.run(*publish, "--bootstrap", dead, stdin=lines)
    failed.clean_failure(1, f"cannot reach the bootstrap peer {dead}", "Connection refused", "4 messages", "appended locally")
    assert failed.stdout == ""
    assert len(failed.stderr.strip().splitlines()) == 1, failed.describe()
    # the same command again: still failing, and still 4 messages waiting, not 8
    again = cli.run(*publish, "--bootstrap", dead, stdin=lines)
    again.clean_failure(1, "4 messages (0 from this run)")
    status = cli.run("status", "--data", "alice", "--json")
    assert json.loads(status.stdout) == {"name": name, "messages": 4, "published": 0, "pending": 4, "record_seq": 0, "replicas": {}}, status.describe()

    # the swarm is back: the same stdin publishes the 4 once, a fifth line is appended after them
    done = cli.run(*publish, "--bootstrap", storage_peers[0], "--json", stdin=lines + b"fifth\n")
    assert done.returncode == 0, done.describe()
    report = json.loads(done.stdout)
    assert (report["appended"], report["already_appended"], report["messages"]) == (1, 4, 5), report
    status = cli.run("status", "--data", "alice", "--json")
    assert json.loads(status.stdout)["pending"] == 0, status.describe()

    # a bare publish (empty stdin) appends nothing and publishes the log as it is
    bare = cli.run(*publish, "--bootstrap", storage_peers[1], "--json", stdin=b"")
    assert bare.returncode == 0, bare.describe()
    assert (json.loads(bare.stdout)["appended"], json.loads(bare.stdout)["messages"]) == (0, 5)

    # what a reader gets: the five messages, once each (the body of the blank line is empty)
    synced = cli.run("sync", name, "--data", "bob", "--bootstrap", storage_peers[2], "--json")
    assert synced.returncode == 0, synced.describe()
    import base64

    bodies = [base64.b64decode(json.loads(line)["body"]) for line in synced.stdout.splitlines()]
    assert bodies == [b"first", b"second", b"", b"fourth", b"fifth"], synced.describe()


def test_more_replicas_than_storage_peers_warns_and_a_message_over_the_limit_is_refused(cli, storage_peers) -> None:
    key, _ = cli.keygen()
    common = ["publish", "--key", str(key), "--bootstrap", storage_peers[0]]
    big = b"x" * (1024 * 1024) + b"\n"
    wide, too_big = cli.run_many(
        (common + ["--data", "alice", "--replicas", "5", "--json"], b"hello\n"), (common + ["--data", "big"], b"ok\n" + big)
    )
    assert wide.returncode == 0, wide.describe()
    assert "warning: stored on 3 replicas, fewer than --replicas 5" in wide.stderr, wide.describe()
    assert len(json.loads(wide.stdout)["stored_on"]) == 3
    too_big.clean_failure(1, "stdin line 2", "1 MiB", "nothing appended")
    assert not (cli.cwd / "big").exists()  # refused before the node opened its folder


def test_serve_refuses_a_port_another_program_holds(cli) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        serve = cli.serve("s", listen=f"/ip4/127.0.0.1/tcp/{port}")
        assert serve.wait() == 1
        assert serve.line() is None  # nothing on stdout: no address a script could take
    err = serve.stderr()
    assert "Traceback" not in err and err.strip().splitlines() == [
        f"rlp2p: error: cannot listen on /ip4/127.0.0.1/tcp/{port}: port {port} is in use by another program (Address already in use)"
    ], err


def test_serve_refuses_a_port_another_serve_holds_and_a_data_folder_in_use(cli) -> None:
    first = cli.serve("first")
    port = first.address().split("/")[4]
    pid = first.proc.pid
    # the same port, another folder: py-libp2p's SO_REUSEPORT would let it share the port
    same_port = cli.serve("second", listen=f"/ip4/127.0.0.1/tcp/{port}")
    # the same folder: a second storage peer with the first one's identity and database
    key, _ = cli.keygen()
    same_folder, publish_same_folder = cli.run_many(
        (["serve", "--data", "first", "--listen", "/ip4/127.0.0.1/tcp/0"], None),
        (["publish", "--key", str(key), "--data", "first", "--bootstrap", first.addr], b"hello\n"),
    )
    assert same_port.wait() == 1
    assert f"port {port} is in use" in same_port.stderr() and "Traceback" not in same_port.stderr()
    for result in (same_folder, publish_same_folder):
        result.clean_failure(1, "the data folder first is in use by process", str(pid), "serve --data")
    assert first.proc.poll() is None
    assert first.terminate() == 0
    # once it stopped, the folder is free again (the kernel drops the lock with the process)
    again = cli.serve("first")
    assert again.address().split("/p2p/")[1] == first.addr.split("/p2p/")[1]  # the same identity
    assert again.terminate() == 0
