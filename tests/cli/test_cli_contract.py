"""The ``rlp2p`` command's contract, as scripts outside the project use it: separate OS processes.

The session's three ``rlp2p serve`` storage peers (tests/cli/conftest.py), ``keygen``, ``publish``
(several page layouts) and ``sync --json`` each in a process of its own, over 127.0.0.1 only. The
message ids are recomputed here from the MVDS rule, not taken from rlp2p.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import time
from collections.abc import Sequence

from rlp2p.core.keys import generate_log_key, log_name


def expected_id(group_id: bytes, timestamp: int, body: bytes) -> str:
    """H1, the MVDS message id, computed independently of rlp2p."""
    return hashlib.sha256(b"MESSAGE_ID" + group_id + struct.pack("<q", timestamp) + body).hexdigest()


def check_sync_output(result, bodies: Sequence[bytes], first_seq: int) -> list[dict]:
    """``sync --json``: exactly one JSON message object a line, in order, ids recomputed."""
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert [m["seq"] for m in messages] == list(range(first_seq, first_seq + len(bodies))), result.describe()
    now = time.time()
    for m, body in zip(messages, bodies, strict=True):
        assert {"id", "seq", "group_id", "timestamp", "body"} <= set(m), m
        assert base64.b64decode(m["body"], validate=True) == body
        group_id = bytes.fromhex(m["group_id"])
        assert isinstance(m["timestamp"], int) and not isinstance(m["timestamp"], bool)
        assert abs(m["timestamp"] - now) < 86400, "timestamp is not Unix seconds of today"
        assert m["id"] == expected_id(group_id, m["timestamp"], body), m
    return messages


def test_keygen_publish_sync_across_processes(cli, storage_peers) -> None:
    key, name = cli.keygen()
    storage_ids = {a.split("/p2p/")[1] for a in storage_peers}
    batches = [
        # (bodies, publish mode options): the page layout may change from one publish to the next
        ([b"hello Bob", "h\u00e9llo w\u00f6rld \u2713".encode(), b'{"not": "json"} trailing space '], ["--layout", "linked", "--embed", "none"]),
        ([b"second batch, 1", b"second batch, 2"], []),
        ([b"third batch, 1", b"third batch, 2"], ["--layout", "full"]),
    ]
    sent: list[bytes] = []
    group_ids = set()
    reader = ["--data", "bob", "--bootstrap", storage_peers[1], "--json"]
    for bodies, mode in batches:
        # the publisher's process has exited once this returns: the reader gets it from storage
        stdin = b"".join(body + b"\n" for body in bodies)
        published = cli.run("publish", "--key", str(key), "--data", "alice", "--bootstrap", storage_peers[0], "--json", *mode, stdin=stdin)
        assert published.returncode == 0 and "Traceback" not in published.stderr, published.describe()
        report = json.loads(published.stdout.splitlines()[-1])
        assert report["name"] == name
        assert report["appended"] == len(bodies)
        assert report["messages"] == len(sent) + len(bodies)
        assert set(report["stored_on"]) == storage_ids, published.describe()

        synced = cli.run("sync", name, *reader)
        messages = check_sync_output(synced, bodies, first_seq=len(sent) + 1)
        group_ids.update(m["group_id"] for m in messages)
        sent.extend(bodies)
    assert len(group_ids) == 1  # one log, one MVDS group

    # at the same time: Bob polls (nothing new) and a new reader gets everything from seq 1
    poll, fresh = cli.run_many(
        (["sync", name, *reader], None),
        (["sync", name, "--data", "carol", "--bootstrap", storage_peers[2], "--json"], None),
    )
    assert poll.returncode == 0 and poll.stdout == "", poll.describe()
    assert "Traceback" not in poll.stderr, poll.describe()
    everything = check_sync_output(fresh, sent, first_seq=1)
    assert len({m["id"] for m in everything}) == len(sent)


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


def test_sync_of_a_malformed_name_fails_cleanly(cli) -> None:
    # a well-formed bootstrap address (nobody listens there): only the name is wrong
    boot = f"/ip4/127.0.0.1/tcp/{_closed_port()}/p2p/{log_name(generate_log_key().public_key)}"
    common = ["--bootstrap", boot, "--timeout", "3"]
    results = cli.run_many(
        *[(["sync", name, "--data", f"r{i}", *common], None) for i, name in enumerate(MALFORMED_NAMES)],
        (["sync", MALFORMED_NAMES[0], "--data", "rj", *common, "--json"], None),
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
    assert not any(p.name.startswith("r") for p in cli.cwd.iterdir()), "a usage error created a data folder"


