"""The writer that test_crash.py runs as a subprocess and kills with SIGKILL.

Usage: ``python crash_writer.py DATA_DIR BATCH_SIZE MAX_BATCHES MAX_SECONDS``

It opens the store in DATA_DIR, prints ``ready <batches already done>``, then writes batch after
batch, each as a node would: ``put_blocks`` of BATCH_SIZE blocks, ``append_messages`` of
BATCH_SIZE messages, ``deliver`` of the next BATCH_SIZE messages, every call one transaction.
After a batch's last commit returns it prints ``committed <batch number>`` and flushes, then starts
the next one at once, so a kill right after a line lands inside a batch. It resumes where a killed
run stopped, as a restarted node would. Bounded by MAX_BATCHES and MAX_SECONDS so that it can never
outlive a test that forgot it.

The test imports this module too, for the payloads of each batch.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from rlp2p.store import SQLiteStore, open_store

LOG = "crash-test-log"
#: bytes per block: big enough that each put_blocks transaction writes many pages
BLOCK_BYTES = 2048


def block(batch: int, i: int) -> tuple[bytes, bytes]:
    """The i-th ``(address, data)`` of a batch (the address is a stand-in, opaque to the store)."""
    data = hashlib.sha256(f"block {batch} {i}".encode()).digest() * (BLOCK_BYTES // 32)
    return hashlib.sha256(data).digest(), data


def message(batch: int, i: int) -> bytes:
    return f"message {batch}/{i};".encode() * 16


def message_id(batch: int, i: int) -> bytes:
    return hashlib.sha256(message(batch, i)).digest()


def run_batch(store: SQLiteStore, batch: int, size: int) -> None:
    """Write batch number ``batch`` (1-based), skipping what a killed run already committed."""
    store.put_blocks([block(batch, i) for i in range(size)])  # idempotent
    if store.log_length(LOG) < batch * size:
        store.append_messages(LOG, [message(batch, i) for i in range(size)])
    first = (batch - 1) * size + 1
    store.deliver(LOG, [(first + i, message_id(batch, i), message(batch, i)) for i in range(size)])


def main(argv: list[str]) -> int:
    data_dir, size = Path(argv[1]), int(argv[2])
    max_batches, max_seconds = int(argv[3]), float(argv[4])
    deadline = time.monotonic() + max_seconds
    with open_store(data_dir) as store:
        done = store.get_reader_state(LOG).delivered_seq // size
        print(f"ready {done}", flush=True)
        for batch in range(done + 1, done + 1 + max_batches):
            if time.monotonic() > deadline:
                break
            run_batch(store, batch, size)
            print(f"committed {batch}", flush=True)
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
