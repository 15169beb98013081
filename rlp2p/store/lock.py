"""One process at a time writes a data folder: an exclusive ``flock`` on ``DIR/lock``.

Two nodes on one folder would share an identity (two hosts with one peer id) and interleave their
writes to one log. The lock is ``flock(LOCK_EX | LOCK_NB)`` on a file that is never deleted (a
delete would let a third process lock a new file while the second still holds the old one); the
kernel drops it when the process dies, so a crash never leaves a stale lock. The holder writes its
pid and command line into the file so the refusal can name it. ``flock`` locks belong to an open
file, so a second :func:`lock_data_dir` in the same process is refused too.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from rlp2p.errors import StoreError

LOCK_FILENAME = "lock"


class DataDirLocked(StoreError):
    """Another process (or another node of this one) has the data folder open."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        super().__init__(f"the data folder {data_dir} is in use by {holder}; stop it first (one process per data folder)")
        self.data_dir = data_dir
        self.holder = holder


class DataDirLock:
    """A held lock; :meth:`release` (or process exit) frees it."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor of the open file releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __del__(self) -> None:
        self.release()


def lock_data_dir(data_dir: str | os.PathLike[str]) -> DataDirLock:
    """Take the data folder's lock (creating the folder, 0700, if missing); DataDirLocked if taken."""
    folder = Path(data_dir)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILENAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the data folder {folder}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise DataDirLocked(folder, holder) from None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock the data folder {folder}: {exc.strerror or exc}") from exc
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {' '.join(sys.argv)[:500]}\n".encode("utf-8", "replace"), 0)
    except OSError:  # the pid is a courtesy; the lock holds without it
        pass
    return DataDirLock(folder, fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 600, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    if int(pid) == os.getpid():
        return "this process (a node already open on it)"
    return f"process {pid}" + (f" ({command})" if command else "")
