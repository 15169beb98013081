"""Runs ``interop/helia-read.mjs`` (a plain Helia node reading an rlp2p log) from Python.

``helia_read`` returns what the script printed; ``HeliaPin`` keeps the Helia node up after the
read, serving the blocks it fetched over Bitswap, until the context exits. Both stop the process
they started. Used by tests/interop/test_helia.py and bench/ipfs.py.
"""

from __future__ import annotations

import json
import subprocess
from base64 import b64decode
from collections.abc import Sequence
from typing import Any

import trio

from interop.jsnode import INTEROP_DIR, find_tools

#: longest stdout line we read from the script (1,000 messages of a few hundred bytes in base64)
MAX_OUTPUT = 64 * 1024 * 1024
STOP_TIMEOUT = 10.0


class HeliaError(RuntimeError):
    pass


def _argv(peers: Sequence[str], name: str, timeout: float, pin: bool) -> list[str]:
    node, _ = find_tools()
    argv = [node, "--import", "./polyfill.mjs", "helia-read.mjs", "--name", name, "--timeout-ms", str(int(timeout * 1000))]
    for peer in peers:
        argv += ["--peer", peer]
    return argv + (["--pin"] if pin else [])


def _parse(line: bytes, stderr: bytes = b"") -> dict[str, Any]:
    try:
        result = json.loads(line)
    except ValueError as exc:
        raise HeliaError(f"helia-read printed {line[:200]!r}; stderr: {stderr[-2000:]!r}") from exc
    if not result.get("ok"):
        raise HeliaError(f"helia-read failed: {result.get('error')}; stderr: {stderr[-2000:]!r}")
    return result


def messages_of(result: dict[str, Any]) -> list[tuple[int, bytes]]:
    """``(seq, message bytes)`` oldest first, as the script found them."""
    return [(m["seq"], b64decode(m["data_b64"])) for m in result["messages"]]


async def helia_read(peers: Sequence[str], name: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """Read the log ``name`` with a fresh Helia node that knows only ``peers`` (multiaddrs)."""
    with trio.fail_after(timeout + STOP_TIMEOUT):
        done = await trio.run_process(
            _argv(peers, name, timeout, pin=False), cwd=INTEROP_DIR, capture_stdout=True, capture_stderr=True, check=False
        )
    lines = done.stdout.strip().splitlines()
    return _parse(lines[-1] if lines else b"", done.stderr)


class HeliaPin:
    """A Helia node that read the log and keeps serving its blocks while the context is open.

    ``result`` is the read's result, ``addr`` the node's multiaddr (with /p2p/).
    """

    def __init__(self, peers: Sequence[str], name: str, *, timeout: float = 30.0) -> None:
        self.argv = _argv(peers, name, timeout, pin=True)
        self.timeout = timeout
        self.result: dict[str, Any] = {}
        self.addr = ""
        self._process: trio.Process | None = None

    async def __aenter__(self) -> HeliaPin:
        self._process = await trio.lowlevel.open_process(
            self.argv, cwd=INTEROP_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self._process.stdout is not None
        buffer = b""
        lines: list[bytes] = []
        try:
            with trio.fail_after(self.timeout + STOP_TIMEOUT):
                while len(lines) < 2:
                    chunk = await self._process.stdout.receive_some(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    if len(buffer) > MAX_OUTPUT:
                        raise HeliaError("helia-read printed too much")
                    *done, buffer = buffer.split(b"\n")
                    lines += done
            if not lines:
                raise HeliaError("helia-read printed nothing")
            self.result = _parse(lines[0])
            if len(lines) < 2:
                raise HeliaError("helia-read did not start serving")
            self.addr = json.loads(lines[1])["serving"]
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stop()

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            await process.stdin.aclose()  # the script stops at the end of stdin
        with trio.move_on_after(STOP_TIMEOUT):
            await process.wait()
            return
        process.kill()
        await process.wait()
