"""``rlp2p truncate`` and what ``rlp2p sync`` says about a truncated log (real processes)."""

from __future__ import annotations

import json

import pytest


def _lines(n: int, start: int = 1) -> bytes:
    return b"".join(f"message {i}\n".encode() for i in range(start, start + n))


# about 40 s of processes: a long run (scripts/long-runs.sh, in CI); tests/node covers the
# same logic in process in the default suite
@pytest.mark.long
def test_truncate_then_readers_get_the_rest_and_a_note(cli, storage_peers) -> None:
    key, name = cli.keygen()
    boot = ["--bootstrap", storage_peers[0]]
    publish = ["publish", "--key", str(key), "--data", "alice", *boot, "--layout", "paged:8", "--embed", "none"]
    assert (r := cli.run(*publish, stdin=_lines(10))).returncode == 0, r.describe()
    first = cli.run("sync", name, "--data", "bob", "--bootstrap", storage_peers[1], "--json")
    assert first.returncode == 0, first.describe()
    assert len(first.stdout.splitlines()) == 10
    assert (r := cli.run(*publish, stdin=_lines(20, 11))).returncode == 0, r.describe()

    truncate = ["truncate", "--key", str(key), "--data", "alice", *boot, "--layout", "paged:8", "--embed", "none"]
    done = cli.run(*truncate, "--before", "25", "--json")
    assert done.returncode == 0, done.describe()
    out = json.loads(done.stdout)
    assert (out["first_seq"], out["dropped"], out["messages"], out["newest_seq"]) == (25, 24, 6, 30)

    bob = cli.run("sync", name, "--data", "bob", "--bootstrap", storage_peers[1], "--json")
    assert bob.returncode == 0, bob.describe()
    assert [json.loads(line)["seq"] for line in bob.stdout.splitlines()] == list(range(25, 31))
    assert "messages 11..24 are gone" in bob.stderr
    summary = json.loads(bob.stderr.strip().splitlines()[-1])["summary"]
    assert summary["gone"] == {"first": 11, "last": 24} and summary["delivered"] == 6

    # --keep, and a reader that never read the log: plain output, the note on stderr
    kept = cli.run(*truncate, "--keep", "3")
    assert kept.returncode == 0, kept.describe()
    assert "history starts at seq 28 (3 dropped now)" in kept.stdout
    carol = cli.run("sync", name, "--data", "carol", "--bootstrap", storage_peers[2])
    assert carol.returncode == 0, carol.describe()
    assert [line.split()[0] for line in carol.stdout.splitlines()] == ["28", "29", "30"]
    assert "messages 1..27 are gone" in carol.stderr
    again = cli.run("sync", name, "--data", "carol", "--bootstrap", storage_peers[2])
    assert again.returncode == 0 and again.stdout == "" and "gone" not in again.stderr, again.describe()


def test_truncate_usage_errors(cli) -> None:
    key, _ = cli.keygen()
    base = ["truncate", "--key", str(key), "--data", "alice", "--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLRPJAA5o6Pw4RUMgvgQCyNuUpAPumDZKaxtmqfAZEALW"]
    for extra in ([], ["--before", "0"], ["--keep", "2", "--before", "3"]):
        result = cli.run(*base, *extra)
        assert result.returncode == 2, result.describe()
    empty = cli.run(*base, "--keep", "2")
    empty.clean_failure(1)
