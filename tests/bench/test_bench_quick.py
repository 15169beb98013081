"""``python -m bench --quick``, run as a real process from the checkout: every section is there
and well formed, and the goals are gathered.

This keeps the suite working; it asserts nothing about speed (the machine may be slow or busy):
only that each figure was measured (positive where it must be), that every ratio is the one its
own measured numbers give, and that results.json holds what the run printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import goals as goals_mod
from bench.common import REPO_ROOT, BenchConfig, mode_label
from bench.runner import RESULTS_FILE, SECTION_NAMES, run_suite

# a benchmark run: scripts/long-runs.sh, not the default suite
pytestmark = pytest.mark.long

#: the quick run takes about a minute here; a loaded 2-core machine gets several times that
QUICK_RUN_TIMEOUT = 900.0


def approx(value: float, digits: int) -> object:
    """Equal to ``value`` up to the rounding the suite applies (``digits`` decimals)."""
    return pytest.approx(value, rel=1e-6, abs=10 ** -digits)


def positive(*values: object) -> bool:
    return all(isinstance(v, (int, float)) and v > 0 for v in values)


@pytest.fixture(scope="module")
def config() -> BenchConfig:
    return BenchConfig.quick_run()


def test_quick_run_has_every_section_well_formed(tmp_path: Path, config: BenchConfig, js_deps: None) -> None:
    # js_deps: the dht and ipfs sections run js peers (npm ci first, as the interop tests do)
    # the command a developer runs, in its own process, from the checkout (bench/ is not installed)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=QUICK_RUN_TIMEOUT, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / RESULTS_FILE).read_text())
    printed = [done.stdout]
    sections = results["sections"]
    assert list(sections) == SECTION_NAMES
    for name, section in sections.items():
        expected = "skipped" if name == "scale" else "ok"  # the scale section is off in --quick
        assert section["status"] == expected, f"{name}: {section.get('error')}\n{section.get('traceback', '')}"
        assert section["seconds"] >= 0

    on_disk = results
    assert on_disk["meta"]["quick"] is True
    assert on_disk["meta"]["command"].startswith("python -m bench --quick")
    machine = on_disk["meta"]["machine"]
    assert machine["nproc"] >= 1 and machine["python"]
    assert on_disk["meta"]["total_seconds"] > 0

    text = "\n".join(printed)
    for heading in ("1a.", "1b.", "1c.", "2.", "3.", "4a.", "4b.", "5.", "6.", "total"):
        assert heading in text

    check_transport(sections["transport"], config)
    check_sync(sections["sync"], sections["transport"], config)
    check_poll(sections["poll"])
    check_publish(sections["publish"], sections["transport"], config)
    check_offline(sections["offline"], config)
    check_dht(sections["dht"], config)
    check_goals(results["goals"], sections, text)
    check_private(sections["private"])
    check_transfer(sections["transfer"])

    # plots: drawn when matplotlib is installed, otherwise skipped with the reason
    if results.get("plots_skipped"):
        assert "matplotlib" in results["plots_skipped"] and "plots skipped" in text
    else:
        assert results["plots"] and all(Path(p).is_file() for p in results["plots"])


def check_goals(goals: dict, sections: dict, text: str) -> None:
    # every section's goals, gathered with their section; the live and offline ones at least
    expected = {
        (name, section): entry for section, result in sections.items() for name, entry in result.get("goals", {}).items()
    }
    assert {(name, g["section"]) for name, g in goals.items()} == set(expected)
    assert {"live_p50_ms_over_rtt", "live_bytes_over_msg", "sim_alice_multiplier_10pct",
            "sim_bob_multiplier_10pct", "sim_delivered_10pct"} <= goals.keys()
    for name, g in goals.items():
        own = expected[(name, g["section"])]
        assert (g["value"], g["limit"], g["ratio"]) == (own["value"], own["limit"], own["ratio"])
        assert g["ratio"] == approx(g["value"] / g["limit"], 3)
        assert g["met"] == goals_mod.met(g)
    # the table that ends the run: one row per goal, with met or MISSED
    table = text[text.index("Goals: "):]
    for name, g in goals.items():
        row = next(line for line in table.splitlines() if line.startswith(name + " "))
        assert row.split()[-1] == ("met" if g["met"] else "MISSED")


def check_transfer(t: dict) -> None:
    goals = t["goals"]
    assert set(goals) == {"cas_get_4k_over_raw", "sync_10k_ref_seconds", "sync_10k_ref_round_trips_over", "bytes_in_over_msg_embedded"}
    for goal in goals.values():
        assert set(goal) >= {"value", "limit", "ratio"}
    get = t["cas_get_4k"]
    assert positive(get["raw_mb_s"]["median"], get["cas_mb_s"]["median"], get["ratio"])
    assert goals["cas_get_4k_over_raw"]["value"] == approx(get["ratio"], 3)
    ref = t["sync_ref"]
    assert goals["sync_10k_ref_round_trips_over"]["value"] == approx(ref["round_trips"] / (2 + ref["pages"] + 1), 3)
    assert goals["sync_10k_ref_seconds"]["value"] == approx(ref["seconds"], 3) and ref["seconds"] > 0
    worst = max(c["bytes_in_over_message_bytes"] for c in t["sync_embedded"])
    assert goals["bytes_in_over_msg_embedded"]["value"] == approx(worst, 3) and worst > 1


def check_transport(t: dict, config: BenchConfig) -> None:
    for entry in t["throughput"].values():
        assert entry["bytes"] >= config.transfer_bytes
        assert entry["mb_s"]["n"] == config.throughput_rounds and positive(entry["mb_s"]["median"])
    assert set(t["ratios"]) == {str(s) for s in config.block_sizes}
    for r in t["ratios"].values():
        assert positive(r["cas_mb_s"], r["raw_mb_s"], r["raw_same_writes_mb_s"])
        assert r["cas_over_raw"] == approx(r["cas_mb_s"] / r["raw_mb_s"], 3)
        assert r["cas_over_raw_same_writes"] == approx(r["cas_mb_s"] / r["raw_same_writes_mb_s"], 3)
    rtt = t["rtt"]
    assert rtt["raw_open_ms"]["n"] == config.rtt_open_samples
    assert rtt["raw_new_stream_ms"]["n"] == config.rtt_new_samples
    assert positive(*(v["median"] for v in rtt.values()))
    assert t["rtt_ratios"]["cas_open_over_raw_open"] == approx(rtt["cas_open_ms"]["median"] / rtt["raw_open_ms"]["median"], 3)
    assert t["rtt_ratios"]["cas_new_over_raw_new"] == approx(
        rtt["cas_new_stream_ms"]["median"] / rtt["raw_new_stream_ms"]["median"], 3
    )


def check_sync(s: dict, transport: dict, config: BenchConfig) -> None:
    grid = {(n, mode_label(m)) for n in config.sync_sizes for m in config.sync_modes}
    measured = {(c["n"], c["mode"]) for c in s["cells"]}
    skipped = {(x["n"], x["mode"]) for x in s["skipped"]}
    assert measured | skipped == grid and not measured & skipped
    assert all(x["reason"] for x in s["skipped"])
    assert s["cells"], "no cell of the sync grid was measured"
    raw_mb_s = transport["ratios"][str(config.block_sizes[-1])]["raw_mb_s"]
    assert s["raw_mb_s"] == raw_mb_s
    for c in s["cells"]:
        assert c["delivered"] == c["n"]
        assert positive(c["seconds"], c["round_trips"], c["requests"], c["streams"], c["bytes_in"], c["bytes_out"])
        assert c["message_bytes"] > c["body_bytes"] == c["n"] * config.body_bytes
        assert c["bytes_in_over_message_bytes"] == approx(c["bytes_in"] / c["message_bytes"], 3)
        assert c["round_trips_over_minimum"] == c["round_trips"]
        floor = c["probe_rtt_open_ms"] / 1e3 + c["message_bytes"] / (raw_mb_s * 1e6)
        assert c["floor_seconds"] == approx(floor, 5)
        assert c["seconds_over_floor"] == approx(c["seconds"] / c["floor_seconds"], 1)


def check_poll(p: dict) -> None:
    assert positive(p["record_bytes"], p["raw_new_stream_ms"]["median"], p["raw_open_ms"]["median"])
    assert p["polls"]
    for poll in p["polls"].values():
        assert poll["round_trips"] >= 1 and positive(poll["bytes_in"], poll["bytes_out"], poll["ms"]["median"])
        assert poll["bytes_in_over_record"] == approx(poll["bytes_in"] / p["record_bytes"], 3)
        assert poll["round_trips_over_minimum"] == poll["round_trips"]
        assert poll["ms_over_raw_new_stream"] == approx(poll["ms"]["median"] / p["raw_new_stream_ms"]["median"], 3)


def check_publish(p: dict, transport: dict, config: BenchConfig) -> None:
    expected = {(placement, r) for placement in config.publish_placements for r in config.publish_replicas if r <= config.storage_peers}
    assert {(r["placement"], r["replicas"]) for r in p["one_message"]} == expected
    assert positive(p["rtt_open_ms"], p["rtt_new_stream_ms"])
    for r in p["one_message"]:
        assert r["publish_ms"]["n"] == config.publish_reps
        assert positive(r["append_ms"]["median"], r["publish_ms"]["median"], r["total_ms"]["median"], r["bytes_sent"])
        assert r["total_over_rtt_open"] == approx(r["total_ms"]["median"] / p["rtt_open_ms"], 1)
    b = p["batch"]
    assert b["messages"] == config.batch_messages
    assert positive(b["messages_per_second"], b["seconds"], b["bytes_sent"], b["floor_seconds"])
    assert b["messages_per_second"] == approx(b["messages"] / b["seconds"], 0)
    raw_mb_s = transport["ratios"][str(config.block_sizes[-1])]["raw_mb_s"]
    assert b["floor_seconds"] == approx(b["bytes_sent"] / (raw_mb_s * 1e6), 4)
    assert b["seconds_over_floor"] == approx(b["seconds"] / b["floor_seconds"], 1)


def check_private(p: dict) -> None:
    med = p["median"]
    assert positive(med["public"]["seconds"], med["private"]["seconds"], med["public"]["bytes_in"])
    time_goal, bytes_goal = p["goals"]["private_time_ratio"], p["goals"]["private_bytes_ratio"]
    assert time_goal["value"] == approx(med["private"]["seconds"] / med["public"]["seconds"], 3)
    assert bytes_goal["value"] == approx(med["private"]["bytes_in"] / med["public"]["bytes_in"], 3)
    assert (time_goal["limit"], bytes_goal["limit"]) == (1.2, 1.1)
    # sealing adds bytes: 31 a message
    assert med["private"]["bytes_in"] > med["public"]["bytes_in"]


def check_offline(o: dict, config: BenchConfig) -> None:
    assert [c["online"] for c in o["compare"]] == list(config.offline_fractions)
    # MVDS and the remote log as the library does it, per fraction; then the other way of uploading
    assert len(o["results"]) == 3 * len(config.offline_fractions)
    assert o["config"]["replicas"] == 3 and o["config"]["upload_once"] and o["config"]["conditional"]
    for c in o["compare"]:
        assert 0 < c["mvds_delivered_share"] <= 1 and 0 < c["log_delivered_share"] <= 1
        assert c["delivered_log_over_mvds"] == approx(c["log_delivered_share"] / c["mvds_delivered_share"], 2)
        assert positive(c["mvds_multiplier"], c["log_multiplier"])
        assert c["multiplier_mvds_over_log"] == approx(c["mvds_multiplier"] / c["log_multiplier"], 2)
        assert positive(c["mvds_alice_multiplier"], c["mvds_bob_multiplier"], c["log_alice_multiplier"], c["log_bob_multiplier"])
        # uploading to each replica, Alice sends more than twice what she sends uploading once; Bob is unchanged
        assert c["log_other_alice_multiplier"] > 2 * c["log_alice_multiplier"]
        assert c["log_other_bob_multiplier"] == c["log_bob_multiplier"]
    assert [row["layout"] for row in o["layouts"]][0] == "paged:64/all"
    at = next(c for c in o["compare"] if c["online"] == 0.1)
    # the floors are plain figures beside the goals, not goals
    assert o["floors"]["sim_alice_floor_10pct"] == at["log_alice_floor"] and 1 < at["log_alice_floor"] <= at["log_alice_multiplier"]
    assert o["floors"]["sim_bob_floor_10pct"] == at["log_bob_floor"] and 1 < at["log_bob_floor"] <= at["log_bob_multiplier"]
    assert not {"sim_alice_floor_10pct", "sim_bob_floor_10pct"} & o["goals"].keys()
    prefix = "log"
    assert o["goals"]["sim_alice_multiplier_10pct"]["value"] == at[f"{prefix}_alice_multiplier"]
    assert o["goals"]["sim_bob_multiplier_10pct"]["value"] == at[f"{prefix}_bob_multiplier"]
    assert o["goals"]["sim_delivered_10pct"] == {"value": at[f"{prefix}_delivered_share"], "limit": 0.99,
                                                 "ratio": approx(at[f"{prefix}_delivered_share"] / 0.99, 3), "at_least": True}


def check_dht(d: dict, config: BenchConfig) -> None:
    py = d["py"]
    assert py["put_ms"]["n"] == py["get_ms"]["n"] == config.dht_keys
    assert positive(py["put_ms"]["median"], py["get_ms"]["median"])
    js = d["js"]
    assert js["status"] in ("ok", "skipped"), js
    if js["status"] == "skipped":
        assert js["reason"]
        return
    ms = js["ms"]
    assert all(v["n"] == config.dht_keys and positive(v["median"]) for v in ms.values())
    assert js["js_put_over_py_put_server"] == approx(ms["js_put"]["median"] / ms["py_put_server"]["median"], 3)
    assert js["js_get_over_py_get"] == approx(ms["js_get"]["median"] / ms["py_get_of_js"]["median"], 3)


async def test_scale_section_measures_each_size_against_the_first(tmp_path: Path) -> None:
    config = BenchConfig.quick_run(scale_sizes=(20, 60))
    printed: list[str] = []
    results = await run_suite(config, tmp_path, only=["scale"], echo=printed.append, quiet=True, plots=False)
    scale = results["sections"]["scale"]
    assert scale["status"] == "ok", f"{scale.get('error')}\n{scale.get('traceback', '')}"
    first, second = scale["rows"]
    assert (first["n"], second["n"]) == (20, 60)
    for row in (first, second):
        # measured in the reader's own process: its peak and its start are its own
        assert positive(row["publish_one_ms"], row["publish_one_bytes"], row["fresh_sync_seconds"])
        assert positive(row["fresh_rss_start_mib"], row["caught_up_ms"], row["caught_up_bytes"])
        assert row["fresh_rss_above_start_mib"] >= 0
    for key in ("publish_one_ms", "fresh_sync_seconds", "caught_up_bytes"):
        assert first[f"{key}_ratio"] == 1.0
        assert second[f"{key}_ratio"] == approx(second[key] / first[key], 3)
    assert "7. Scale" in "\n".join(printed)


def test_rlp2p_bench_points_to_the_suite_with_the_same_options(capsys: pytest.CaptureFixture[str]) -> None:
    from rlp2p.cli.main import main

    assert main(["bench", "--quick", "--out", "somewhere", "--no-js", "--only", "sync"]) == 2
    assert "python -m bench --quick --no-js --out somewhere --only sync" in capsys.readouterr().err
