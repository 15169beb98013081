"""``rlp2p serve --admission invite``, ``rlp2p invite`` and ``rlp2p publish --invite`` (real processes)."""

from __future__ import annotations

import json


def test_an_invite_only_storage_peer_stores_for_the_invited_publisher_only(cli) -> None:
    gated = cli.serve("gated", extra=["--admission", "invite"])
    addr = gated.address()
    (cli.cwd / "alice").mkdir()
    _, alice_id = cli.keygen("alice/node.key")  # Alice's node identity, as `publish` would make it

    made = cli.run("invite", "--data", str(gated.data), "--for", alice_id, "--quota", "1M", "--expires", "1d", "--json")
    assert made.returncode == 0, made.describe()
    out = json.loads(made.stdout)
    assert out["token"].startswith("rlp2p-invite:") and out["for"] == alice_id and out["quota_bytes"] == 1024 * 1024
    plain = cli.run("invite", "--data", str(gated.data), "--for", alice_id)
    assert plain.returncode == 0 and plain.stdout.startswith("rlp2p-invite:") and len(plain.stdout.splitlines()) == 1

    key, name = cli.keygen()
    lines = b"one\ntwo\nthree\n"
    common = ["--bootstrap", addr, "--replicas", "1", "--layout", "paged:2", "--embed", "none"]
    done = cli.run("publish", "--key", str(key), "--data", "alice", *common, "--invite", out["token"], stdin=lines)
    assert done.returncode == 0, done.describe()

    other, _ = cli.keygen("bob.key")
    refused = cli.run("publish", "--key", str(other), "--data", "bob", *common, stdin=lines)
    refused.clean_failure(1)
    assert "NOT_ALLOWED" in refused.stderr, refused.describe()

    read = cli.run("sync", name, "--data", "carol", "--bootstrap", addr)
    assert read.returncode == 0, read.describe()
    assert [line.split(None, 1)[1] for line in read.stdout.splitlines()] == ["one", "two", "three"]

    bad = cli.run("invite", "--data", str(gated.data), "--for", "not-a-peer")
    bad.clean_failure(1)
