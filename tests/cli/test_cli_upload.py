"""``rlp2p publish --upload once|each`` across OS processes, on the session's three storage peers."""

from __future__ import annotations

import json


def test_publish_uploads_once_by_default_and_to_each_replica_with_upload_each(cli, storage_peers) -> None:
    storage_ids = {a.split("/p2p/")[1] for a in storage_peers}
    sent = {}
    for upload in ("each", "once"):
        key, name = cli.keygen(f"{upload}.key")
        bodies = [f"{upload} message {i} ".encode() * 10 for i in range(30)]
        args = ["publish", "--key", str(key), "--data", f"alice-{upload}", "--bootstrap", storage_peers[0], "--json"]
        published = cli.run(*args, "--upload", upload, "--layout", "paged:8", "--embed", "none", stdin=b"\n".join(bodies) + b"\n")
        assert published.returncode == 0 and "Traceback" not in published.stderr, published.describe()
        report = json.loads(published.stdout.splitlines()[-1])
        assert set(report["stored_on"]) == storage_ids, published.describe()
        sent[upload] = report["bytes_sent"]
        synced = cli.run("sync", name, "--data", f"bob-{upload}", "--bootstrap", storage_peers[2], "--json")
        assert synced.returncode == 0, synced.describe()
        assert [json.loads(line)["seq"] for line in synced.stdout.splitlines()] == list(range(1, 31))
    # each: every block three times; once: one time, and small requests besides
    assert sent["once"] < 0.5 * sent["each"], sent
