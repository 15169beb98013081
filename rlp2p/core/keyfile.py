"""Reading a key file's bytes, bounded: shared by ``core.keys`` and the CLI's light path, which
must not import py-libp2p (it costs the command a second of start-up)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from rlp2p.errors import KeyFileError

#: a key file is a few dozen bytes; anything far larger is not one
MAX_KEY_FILE = 4096


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the key file at ``path``; KeyFileError if unreadable or over MAX_KEY_FILE."""
    target = Path(path)
    try:
        with open(target, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(f"{target}: cannot read key file: {exc.strerror or exc}") from exc
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{target}: over {MAX_KEY_FILE} bytes, not a key file")
    return data


#: a key file is readable by its owner alone
KEY_FILE_MODE = 0o600


def write_key_file(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False, hint: str = "") -> None:
    """Write a key file, mode 0600, atomically: a temporary file in the same directory, fsynced,
    then renamed into place, so a crash leaves the old file or the new one, never half a key.
    A key is an identity that cannot be recovered, so an existing file is replaced only with
    ``overwrite`` (without it the rename is a hard link, which refuses an existing path
    atomically; ``hint`` says how to overwrite). Raises :class:`KeyFileError`."""
    target = Path(path)
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), KEY_FILE_MODE)  # mkstemp already uses 0600; say so explicitly
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp_name, target)
        else:
            os.link(tmp_name, target)
            os.unlink(tmp_name)
        tmp_name = None
        _fsync_dir(target.parent)
    except FileExistsError as exc:
        raise KeyFileError(f"{target}: a key file is already there; not replacing it{hint}") from exc
    except OSError as exc:
        raise KeyFileError(f"{target}: cannot write key file: {exc.strerror or exc}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort, as some platforms cannot open a directory."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
