"""Drive the js-libp2p peer of ``interop/node.mjs`` from trio.

``JsNode`` is an async context manager: it starts ``node --import ./polyfill.mjs node.mjs`` as a
child process, waits for its JSON "ready" line, sends JSON-line commands with :meth:`JsNode.call`,
and on exit always stops it (the ``stop`` command, then closing its stdin, then a kill), so no
test leaves a node behind. :func:`ensure_npm_deps` runs ``npm ci`` in ``interop/`` when the
installed packages are missing or older than ``package-lock.json``, under a file lock so that
several test processes can share one checkout.

The command protocol is described in ``interop/README.md``. The interop tests and the DHT
benchmark both import this module as ``interop.jsnode`` from a checkout.
"""

from __future__ import annotations

import base64
import collections
import fcntl
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import trio

INTEROP_DIR = Path(__file__).resolve().parent

#: npm ci, measured at about 10 s here; a slow registry gets much more before we give up
NPM_CI_TIMEOUT = 600.0
#: from process start to the "ready" line (about 0.6 s here)
START_TIMEOUT = 30.0
#: the js node's own per-command timeout unless a call says otherwise; we wait a little longer
#: than the node so that its timeout answer, which names the command, is what we see
DEFAULT_CALL_TIMEOUT = 20.0
CALL_GRACE = 5.0
#: how long a clean stop may take before we close stdin, then kill
STOP_TIMEOUT = 10.0
#: longest stdout line we accept (a reply with a few MiB of base64 fits)
MAX_LINE = 64 * 1024 * 1024
#: stderr lines kept for error messages
STDERR_TAIL = 200


class JsNodeUnavailable(RuntimeError):
    """node or npm is not installed: interop tests skip."""


class JsNodeError(RuntimeError):
    """The js node answered ``ok: false``, exited, or broke the protocol."""

    def __init__(self, message: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reply = reply


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def find_tools() -> tuple[str, str]:
    """Paths of ``node`` and ``npm``; raises JsNodeUnavailable naming what is missing."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if missing:
        raise JsNodeUnavailable(
            f"{' and '.join(missing)} not found on PATH: the js-libp2p interop tests need "
            "Node.js 20+ and npm (see interop/README.md)"
        )
    assert node is not None and npm is not None
    return node, npm


def deps_are_current(interop_dir: Path = INTEROP_DIR) -> bool:
    """True when ``npm ci`` finished after package-lock.json last changed.

    npm writes ``node_modules/.package-lock.json`` when an install completes, so its absence
    also catches an install that was cut off halfway.
    """
    lock = interop_dir / "package-lock.json"
    installed = interop_dir / "node_modules" / ".package-lock.json"
    try:
        return installed.stat().st_mtime >= lock.stat().st_mtime
    except FileNotFoundError:
        return False


def _lock_path(interop_dir: Path) -> Path:
    digest = hashlib.sha256(str(interop_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rlp2p-npm-ci-{digest}.lock"


def ensure_npm_deps(interop_dir: Path = INTEROP_DIR, timeout: float = NPM_CI_TIMEOUT) -> float | None:
    """Run ``npm ci --no-audit --no-fund`` in interop/ if needed.

    Returns the seconds npm ci took, or None when the packages were already current. Blocking:
    call it from a thread (``trio.to_thread.run_sync``) or a sync fixture. Safe to call from
    several processes at once: the first one installs, the others wait for it and then see
    current packages.
    """
    _, npm = find_tools()
    if deps_are_current(interop_dir):
        return None
    with open(_lock_path(interop_dir), "a+") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
        if deps_are_current(interop_dir):
            return None
        start = time.monotonic()
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=interop_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise JsNodeError(f"npm ci in {interop_dir} took more than {timeout:.0f} s") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
            raise JsNodeError(f"npm ci in {interop_dir} failed with exit code {done.returncode}:\n{tail}")
        if not deps_are_current(interop_dir):
            raise JsNodeError(f"npm ci in {interop_dir} succeeded but left no node_modules/.package-lock.json")
        return time.monotonic() - start


class _Pending:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: dict[str, Any] | None = None


class JsNode:
    """A running js-libp2p peer. Use ``async with JsNode(...) as js``.

    After entering: ``js.peer_id`` (str) and ``js.addrs`` (list of str multiaddrs ending in
    /p2p/<id>). ``await js.call("ping", addr=...)`` returns the reply dict (without ``id`` and
    ``ok``) or raises JsNodeError with the node's error text. After exiting: ``js.returncode``.
    """

    def __init__(
        self,
        *args: str,
        interop_dir: Path = INTEROP_DIR,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        echo_stderr: bool | None = None,
    ) -> None:
        self.args = list(args)
        self.interop_dir = interop_dir
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.call_timeout = call_timeout
        # RLP2P_JS_LOG=1 copies the node's stderr to ours as it arrives
        self.echo_stderr = os.environ.get("RLP2P_JS_LOG") == "1" if echo_stderr is None else echo_stderr
        self.peer_id: str = ""
        self.addrs: list[str] = []
        self.returncode: int | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._proc: trio.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._ready = trio.Event()
        self._ready_line: dict[str, Any] | None = None
        self._closed = trio.Event()  # stdout reached its end: no more replies
        self._protocol_errors: list[str] = []
        self._send_lock = trio.Lock()
        self._stack: Any = None

    # ---- lifecycle ----

    async def __aenter__(self) -> "JsNode":
        self._stack = self._run()
        return await self._stack.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        stack, self._stack = self._stack, None
        return await stack.__aexit__(*exc_info)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator["JsNode"]:
        node, _ = find_tools()
        argv = [node, "--import", "./polyfill.mjs", "node.mjs", *self.args]
        # An exception from the body (a failed assertion, say) is re-raised after the nursery
        # closes, so that it reaches the test as itself, not wrapped in an ExceptionGroup.
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            try:
                self._proc = await trio.lowlevel.open_process(
                    argv,
                    cwd=self.interop_dir,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                nursery.start_soon(self._read_stdout)
                nursery.start_soon(self._read_stderr)
                with trio.move_on_after(self.start_timeout):
                    await self._wait_first(self._ready)
                if self._ready_line is None:
                    raise JsNodeError(self._explain(f"no ready line within {self.start_timeout:.0f} s"))
                self.peer_id = str(self._ready_line["peerId"])
                self.addrs = [str(a) for a in self._ready_line["addrs"]]
                if not self.addrs:
                    raise JsNodeError(self._explain("the node reported no listen address"))
                yield self
            except Exception as exc:
                failure = exc
            finally:
                with trio.CancelScope(shield=True):
                    await self._shutdown()
                nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _wait_first(self, event: trio.Event) -> None:
        """Wait for ``event``, or for the node's stdout to close, whichever comes first."""
        async with trio.open_nursery() as nursery:

            async def wait(ev: trio.Event) -> None:
                await ev.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(wait, event)
            nursery.start_soon(wait, self._closed)

    async def _shutdown(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and not self._closed.is_set():
            with trio.move_on_after(self.stop_timeout):
                try:
                    await self.call("stop", timeout=self.stop_timeout)
                except (JsNodeError, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                await proc.wait()
        if proc.returncode is None:
            # closing stdin makes node.mjs stop too
            with trio.move_on_after(2.0):
                try:
                    await proc.stdin.aclose()  # type: ignore[union-attr]
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            with trio.move_on_after(5.0):
                await proc.wait()
        self.returncode = proc.returncode
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with trio.move_on_after(1.0):
                    await stream.aclose()

    # ---- reading ----

    async def _lines(self, stream: trio.abc.ReceiveStream) -> AsyncIterator[bytes]:
        buffer = bytearray()
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                if buffer:
                    yield bytes(buffer)
                return
            buffer += chunk
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                yield line
            if len(buffer) > MAX_LINE:
                raise JsNodeError(f"a line from the js node is longer than {MAX_LINE} bytes")

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async for raw in self._lines(self._proc.stdout):
                self._dispatch(raw)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except JsNodeError as exc:
            self._protocol_errors.append(str(exc))
        finally:
            self._closed.set()
            for pending in self._pending.values():
                pending.event.set()  # reply stays None: the caller reports the exit

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self._protocol_errors.append(f"not JSON on stdout: {raw[:200]!r}")
            return
        if not isinstance(message, dict):
            self._protocol_errors.append(f"not a JSON object on stdout: {raw[:200]!r}")
            return
        if message.get("ready") is True and self._ready_line is None:
            self._ready_line = message
            self._ready.set()
            return
        pending = self._pending.get(message.get("id"))  # type: ignore[arg-type]
        if pending is None:
            self._protocol_errors.append(f"reply to no pending command: {raw[:200]!r}")
            return
        pending.reply = message
        pending.event.set()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        try:
            async for raw in self._lines(self._proc.stderr):
                line = raw.decode("utf-8", "replace")
                self.stderr_tail.append(line)
                if self.echo_stderr:
                    print(f"[js {self.peer_id[-6:]}] {line}", file=sys.stderr)
        except (trio.BrokenResourceError, trio.ClosedResourceError, JsNodeError):
            pass

    def _explain(self, what: str) -> str:
        rc = self._proc.returncode if self._proc is not None else None
        parts = [f"js node: {what}"]
        if rc is not None:
            parts.append(f"(exit code {rc})")
        if self._protocol_errors:
            parts.append("; protocol errors: " + "; ".join(self._protocol_errors[-5:]))
        if self.stderr_tail:
            parts.append("\n--- js node stderr (last lines) ---\n" + "\n".join(list(self.stderr_tail)[-30:]))
        return " ".join(parts)

    # ---- commands ----

    async def call_raw(self, cmd: str, *, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one command and return the whole reply, ``ok: false`` ones included.

        ``timeout`` (seconds) is passed to the node as ``timeout_ms``; we wait ``CALL_GRACE``
        longer for its answer, then raise trio.TooSlowError.
        """
        if self._proc is None or self._closed.is_set() or self._proc.returncode is not None:
            raise JsNodeError(self._explain(f"cannot send {cmd!r}: the node is not running"))
        timeout = self.call_timeout if timeout is None else timeout
        request_id = next(self._ids)
        message = {"id": request_id, "cmd": cmd, **args}
        if cmd != "stop":
            message["timeout_ms"] = max(1, math.ceil(timeout * 1000))
        pending = self._pending[request_id] = _Pending()
        try:
            with trio.fail_after(timeout + CALL_GRACE):
                async with self._send_lock:
                    assert self._proc.stdin is not None
                    try:
                        await self._proc.stdin.send_all(json.dumps(message).encode() + b"\n")
                    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                        raise JsNodeError(self._explain(f"cannot send {cmd!r}: the node is not running")) from exc
                await pending.event.wait()
        finally:
            del self._pending[request_id]
        if pending.reply is None:
            raise JsNodeError(self._explain(f"exited before answering {cmd!r}"))
        return pending.reply

    async def call(self, cmd: str, *, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one command; return its result fields, or raise JsNodeError on ``ok: false``."""
        reply = await self.call_raw(cmd, timeout=timeout, **args)
        if reply.get("ok") is not True:
            raise JsNodeError(f"js node {cmd!r} failed: {reply.get('error')}", reply)
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    @property
    def protocol_errors(self) -> list[str]:
        """Lines on the node's stdout that were not a ready line or an expected reply."""
        return list(self._protocol_errors)
