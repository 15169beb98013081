"""Storage peers, a publisher and a reader as separate OS processes, driven through ``rlp2p``.

1. Three storage peers: ``rlp2p serve``; the first prints its address, the others join through it.
2. A log key: ``rlp2p keygen``.
3. Alice publishes five messages, one per line on stdin: ``rlp2p publish``. It exits once they
   are stored: Alice is offline from then on.
4. Bob reads them from the storage peers alone: ``rlp2p sync --json``, one JSON object a line.
5. Bob syncs again: nothing new.

Every process this script starts is stopped before it exits, on success, on error and on Ctrl-C.
Binds 127.0.0.1 only; its temporary folder is removed at the end.

Run: ``python examples/multi_process.py``
"""

from __future__ import annotations

import base64
import json
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

RLP2P = [sys.executable, "-m", "rlp2p.cli.main"]
START_TIMEOUT = 30.0  # seconds for a storage peer to print its address
COMMAND_TIMEOUT = 60.0  # seconds for keygen, publish or sync
STOP_TIMEOUT = 10.0  # seconds for a storage peer to exit after SIGTERM

MESSAGES = ["hello Bob", "this log lives on three storage peers", "I am offline now", "read it when you like", "bye"]


class StoragePeer:
    """``rlp2p serve`` in a child process; its first stdout line is its full multiaddr."""

    def __init__(self, data: Path, bootstrap: Sequence[str] = ()) -> None:
        args = [*RLP2P, "serve", "--data", str(data), "--listen", "/ip4/127.0.0.1/tcp/0"]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr.append), daemon=True).start()
        self.addr = ""

    @staticmethod
    def _pump(stream, put) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            put(line.rstrip("\n"))
        put(None)

    def wait_ready(self) -> str:
        try:
            line = self._lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"a storage peer printed nothing in {START_TIMEOUT} s") from None
        if not line or "/p2p/" not in line:
            raise RuntimeError(f"a storage peer failed to start: {line!r} {''.join(filter(None, self._stderr))}")
        self.addr = line
        return line

    def stop(self) -> int | None:
        """SIGTERM, wait, kill if it does not exit; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        return self.proc.returncode


def rlp2p(*args: str, stdin: str = "") -> str:
    """Run one short-lived rlp2p command; its stdout, or RuntimeError with its stderr."""
    try:
        done = subprocess.run([*RLP2P, *args], input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        raise RuntimeError(f"rlp2p {args[0]} did not finish in {COMMAND_TIMEOUT} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"rlp2p {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def main() -> int:
    peers: list[StoragePeer] = []
    with tempfile.TemporaryDirectory(prefix="rlp2p-multi-") as tmp:
        root = Path(tmp)
        try:
            peers.append(StoragePeer(root / "storage0"))
            first = peers[0].wait_ready()
            peers += [StoragePeer(root / f"storage{i}", [first]) for i in (1, 2)]
            for peer in peers[1:]:
                peer.wait_ready()
            print(f"3 storage peers up, as processes {[p.proc.pid for p in peers]}", flush=True)

            name = rlp2p("keygen", "--out", str(root / "alice.key")).strip()
            print(f"alice's log: {name}", flush=True)

            report = json.loads(
                rlp2p(
                    "publish", "--key", str(root / "alice.key"), "--data", str(root / "alice"),
                    "--bootstrap", peers[0].addr, "--json",
                    stdin="".join(m + "\n" for m in MESSAGES),
                ).splitlines()[-1]
            )
            print(f"alice published {report['messages']} messages on {len(report['stored_on'])} storage peers; her process has exited", flush=True)

            bob = ["--data", str(root / "bob"), "--bootstrap", peers[2].addr, "--json"]
            received = [json.loads(line) for line in rlp2p("sync", name, *bob).splitlines()]
            for m in received:
                print(f"bob got #{m['seq']}: {base64.b64decode(m['body']).decode()}", flush=True)
            again = rlp2p("sync", name, *bob).splitlines()
            print(f"bob synced again: {len(again)} new", flush=True)
            bodies = [base64.b64decode(m["body"]).decode() for m in received]
            ok = bodies == MESSAGES and not again
        except RuntimeError as exc:
            print(f"multi_process: error: {exc}", file=sys.stderr, flush=True)
            ok = False
        finally:
            codes = [peer.stop() for peer in peers]
        clean = codes == [0, 0, 0]
        print(f"storage peers stopped, exit statuses {codes}", flush=True)
    if ok and clean:
        print(f"multi_process: done, bob read all {len(MESSAGES)} messages while alice was offline", flush=True)
        return 0
    print("multi_process: FAILED", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
