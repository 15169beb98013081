"""Reading a key file's bytes, bounded: shared by ``core.keys`` and the CLI's light path, which
must not import py-libp2p (it costs the command a second of start-up)."""

from __future__ import annotations

import os
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
