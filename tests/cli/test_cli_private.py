"""`rlp2p publish --private`, `share`, `rotate` and `sync CAPABILITY` as real processes."""

from __future__ import annotations

import json

import pytest


def _bodies(out: str) -> list[str]:
    import base64

    lines = [json.loads(line) for line in out.splitlines()]
    return [base64.b64decode(line["body"]).decode() for line in lines if "body" in line]


# about 40 s of processes: a long run (scripts/long-runs.sh, in CI); tests/node covers the
# same logic in process in the default suite
@pytest.mark.long
def test_share_sync_rotate(cli, storage_peers) -> None:
    key, name = cli.keygen()
    publish = ["publish", "--key", str(key), "--data", "alice", "--bootstrap", storage_peers[0], "--private"]
    done = cli.run(*publish, stdin=b"first secret\nsecond secret\n")
    assert done.returncode == 0, done.describe()
    share = cli.run("share", "--key", str(key), "--data", "alice")
    assert share.returncode == 0, share.describe()
    old = share.stdout.strip()
    assert old.startswith(f"rlp2p1:{name}:")

    got = cli.run("sync", old, "--data", "bob", "--bootstrap", storage_peers[1], "--json")
    assert got.returncode == 0, got.describe()
    assert _bodies(got.stdout) == ["first secret", "second secret"]

    rotate = cli.run("rotate", "--key", str(key), "--data", "alice", "--json")
    assert rotate.returncode == 0, rotate.describe()
    new = json.loads(rotate.stdout)["capability"]
    assert new != old and new.startswith(f"rlp2p1:{name}:")
    done = cli.run(*publish, stdin=b"after rotation\n")
    assert done.returncode == 0, done.describe()

    # the old capability: nothing more, a clean typed failure
    stale = cli.run("sync", old, "--data", "bob", "--bootstrap", storage_peers[1], "--json")
    stale.clean_failure(1, "epoch")
    assert _bodies(stale.stdout) == []
    assert json.loads(stale.stdout.splitlines()[-1])["error"] == "CapabilityOutdated"
    fresh = cli.run("sync", new, "--data", "bob", "--bootstrap", storage_peers[1], "--json")
    assert fresh.returncode == 0, fresh.describe()
    assert _bodies(fresh.stdout) == ["after rotation"]

    # a malformed capability is bad usage; a public log has none to share
    bad = cli.run("sync", old[:-3], "--data", "bob", "--bootstrap", storage_peers[1])
    bad.clean_failure(2, "CAPABILITY")
    pub_key, _ = cli.keygen("public.key")
    assert cli.run("publish", "--key", str(pub_key), "--data", "alice", "--bootstrap", storage_peers[0], stdin=b"x\n").returncode == 0
    cli.run("share", "--key", str(pub_key), "--data", "alice").clean_failure(1, "not a private log")
