"""Section 6, the DHT: put and get latency of py-libp2p's Kademlia, and of js-libp2p's beside it.

py among py nodes (always): the swarm's storage peers are DHT servers; two fresh client nodes
(as phones are) take turns: ``dht-a`` puts a key, ``dht-b`` gets it. A client keeps no copy of
what it puts, so every get asks the network.

js in the same swarm (when the js-libp2p interop peer works): ``interop/node.mjs``, a DHT server,
driven through ``interop.jsnode``. It joins the swarm;
then each round it gets a key that py put before it joined (so it holds no copy), puts a key of
its own that a py client then gets, and a py client and a py server put one key each. js times
include the driver's JSON-line round trip to the js process, measured apart as ``ipc_ms``.

Keys are ``/rlp2pbench/<random>`` text keys (under the 50 bytes py-libp2p accepts for a key that
is not a multihash); py nodes get a permissive validator for that namespace and the js node is
started with ``--ns rlp2pbench``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from libp2p.records.validator import BlankValidator

from bench.common import Context
from bench.measure import ratio, summary, table
from rlp2p import Node

NAMESPACE = "rlp2pbench"
#: the source checkout bench/ sits in (the js peer and its driver live in its interop/)
REPO_ROOT = Path(__file__).resolve().parents[1]
CALL_TIMEOUT = 20.0
IPC_SAMPLES = 10


def _key(tag: str, i: int) -> str:
    return f"/{NAMESPACE}/{tag}{i}-{secrets.token_hex(6)}"


def _allow_namespace(nodes: list[Node]) -> None:
    for node in nodes:
        assert node.discovery is not None
        node.discovery.dht.register_validator(NAMESPACE, BlankValidator())


async def _timed(coro: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = await coro
    return time.perf_counter() - start, value


def load_driver() -> tuple[ModuleType | None, str]:
    """The js driver module, or None and the reason it cannot be used."""
    try:
        import interop.jsnode as module
    except ImportError as exc:
        return None, f"cannot import interop.jsnode (run from a source checkout): {exc}"
    try:
        module.find_tools()
    except module.JsNodeUnavailable as exc:  # node or npm not on PATH
        return None, str(exc)
    if not module.deps_are_current(module.INTEROP_DIR):
        return None, (
            f"{module.INTEROP_DIR}/node_modules is missing or older than package-lock.json: run `npm ci` in "
            f"{module.INTEROP_DIR} (the benchmark installs nothing)"
        )
    return module, ""


def _js_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    node = shutil.which("node")
    if node:
        try:
            versions["node"] = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        package = json.loads((REPO_ROOT / "interop" / "package.json").read_text())
        versions["libp2p"] = package.get("dependencies", {}).get("libp2p", "")
        versions["@libp2p/kad-dht"] = package.get("dependencies", {}).get("@libp2p/kad-dht", "")
    except (OSError, ValueError):
        pass
    return versions


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    a = await ctx.start_node("dht-a")
    b = await ctx.start_node("dht-b")
    try:
        _allow_namespace([*ctx.storage, a, b])
        # warm-up: first lookups fill routing tables and open connections
        warm = _key("w", 0)
        await a.discovery.dht.put_value(warm, b"warm")  # type: ignore[union-attr]
        await b.discovery.dht.get_value(warm)  # type: ignore[union-attr]

        ctx.say(f"dht: {cfg.dht_keys} puts and gets among py nodes")
        py_put: list[float] = []
        py_get: list[float] = []
        py_keys: list[tuple[str, bytes]] = []
        failures = 0
        for i in range(cfg.dht_keys):
            key, value = _key("p", i), secrets.token_bytes(100)
            seconds, _ = await _timed(a.discovery.dht.put_value(key, value))  # type: ignore[union-attr]
            py_put.append(seconds)
            seconds, got = await _timed(b.discovery.dht.get_value(key))  # type: ignore[union-attr]
            py_get.append(seconds)
            failures += got != value
            py_keys.append((key, value))
        py = {
            "servers": len(ctx.storage),
            "put_ms": summary(py_put, scale=1e3),
            "get_ms": summary(py_get, scale=1e3),
            "get_failures": failures,
        }
        if not cfg.js:
            js_result: dict[str, Any] = {"status": "skipped", "reason": "--no-js"}
        else:
            try:
                js_result = await _run_js(ctx, a, b, py_keys)
            except Exception as exc:  # the js peer failing must not lose the py figures
                js_result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    finally:
        await ctx.stop_node(b)
        await ctx.stop_node(a)
    return {"status": "ok", "namespace": NAMESPACE, "py": py, "js": js_result}


async def _run_js(ctx: Context, a: Node, b: Node, py_keys: list[tuple[str, bytes]]) -> dict[str, Any]:
    driver, reason = load_driver()
    if driver is None:
        return {"status": "skipped", "reason": reason}
    assert a.discovery is not None and b.discovery is not None
    server = ctx.storage[-1]
    assert server.discovery is not None
    ctx.say("dht: starting the js-libp2p peer")
    async with driver.JsNode("--ns", NAMESPACE, call_timeout=CALL_TIMEOUT) as js:
        for node in ctx.storage:
            await js.call("add_peer", addr=node.addrs[0])
        for node in [*ctx.storage, a, b]:
            await node.connect(js.addrs[0])
        ipc = [(await _timed(js.call("protocols")))[0] for _ in range(IPC_SAMPLES)]
        b64, unb64 = driver.b64, driver.unb64
        # warm-up
        warm = _key("jw", 0).encode()
        await js.call("dht_put", key_b64=b64(warm), value_b64=b64(b"warm"))
        await b.discovery.dht.get_value(warm.decode())

        ctx.say(f"dht: {len(py_keys)} rounds in the mixed swarm")
        times: dict[str, list[float]] = {k: [] for k in ("js_get", "js_put", "py_get_of_js", "py_put_client", "py_put_server")}
        stored_at: list[int] = []
        failures = {"js_get": 0, "py_get_of_js": 0}
        js_get_local = 0
        for i, (py_key, py_value) in enumerate(py_keys):
            seconds, reply = await _timed(js.call_raw("dht_get", key_b64=b64(py_key.encode())))
            times["js_get"].append(seconds)
            if reply.get("ok") is not True or unb64(reply["value_b64"]) != py_value:
                failures["js_get"] += 1
            js_get_local += bool(reply.get("local"))

            key, value = _key("j", i).encode(), secrets.token_bytes(100)
            seconds, reply = await _timed(js.call("dht_put", key_b64=b64(key), value_b64=b64(value)))
            times["js_put"].append(seconds)
            stored_at.append(len(reply.get("stored_at", [])))
            seconds, got = await _timed(b.discovery.dht.get_value(key.decode()))
            times["py_get_of_js"].append(seconds)
            failures["py_get_of_js"] += got != value

            seconds, _ = await _timed(a.discovery.dht.put_value(_key("q", i), secrets.token_bytes(100)))
            times["py_put_client"].append(seconds)
            seconds, _ = await _timed(server.discovery.dht.put_value(_key("s", i), secrets.token_bytes(100)))
            times["py_put_server"].append(seconds)
    ms = {name: summary(values, scale=1e3) for name, values in times.items()}
    return {
        "status": "ok",
        "versions": _js_versions(),
        "ipc_ms": summary(ipc, scale=1e3),
        "ms": ms,
        "stored_at_median": sorted(stored_at)[len(stored_at) // 2] if stored_at else 0,
        "failures": failures,
        "js_get_answered_locally": js_get_local,
        "js_put_over_py_put_server": ratio(ms["js_put"]["median"], ms["py_put_server"]["median"]),
        "js_get_over_py_get": ratio(ms["js_get"]["median"], ms["py_get_of_js"]["median"]),
    }


def render(result: dict[str, Any]) -> list[str]:
    py = result["py"]
    rows = [
        ["py put (client)", "py only", py["put_ms"]["n"], py["put_ms"]["median"], py["put_ms"]["p90"], None],
        ["py get (client)", "py only", py["get_ms"]["n"], py["get_ms"]["median"], py["get_ms"]["p90"], None],
    ]
    js = result["js"]
    notes = []
    if js["status"] == "ok":
        m = js["ms"]
        rows += [
            ["py put (client)", "py + js", m["py_put_client"]["n"], m["py_put_client"]["median"], m["py_put_client"]["p90"], None],
            ["py put (server)", "py + js", m["py_put_server"]["n"], m["py_put_server"]["median"], m["py_put_server"]["p90"], 1.0],
            ["js put (server)", "py + js", m["js_put"]["n"], m["js_put"]["median"], m["js_put"]["p90"], js["js_put_over_py_put_server"]],
            ["py get (client) of a js value", "py + js", m["py_get_of_js"]["n"], m["py_get_of_js"]["median"], m["py_get_of_js"]["p90"], 1.0],
            ["js get (server) of a py value", "py + js", m["js_get"]["n"], m["js_get"]["median"], m["js_get"]["p90"], js["js_get_over_py_get"]],
        ]
        v = js.get("versions", {})
        notes.append(
            f"   js-libp2p {v.get('libp2p', '?')} (kad-dht {v.get('@libp2p/kad-dht', '?')}) on Node {v.get('node', '?')}; "
            f"js times include the driver's JSON-line round trip, {js['ipc_ms']['median']} ms median; "
            f"js puts stored at {js['stored_at_median']} peers (median); failures: {js['failures']}; "
            f"js gets answered from its own store: {js['js_get_answered_locally']}"
        )
    else:
        notes.append(f"   js-libp2p: {js['status']}: {js.get('reason') or js.get('error')}")
    text = (
        f"6. DHT put/get latency, {py['servers']} py storage peers as servers (ms; ratio = js / py doing the same)\n"
        + table(["operation", "swarm", "n", "median ms", "p90 ms", "js / py"], rows)
    )
    if py["get_failures"]:
        notes.append(f"   py gets that missed the value: {py['get_failures']}")
    return [text, *notes]
