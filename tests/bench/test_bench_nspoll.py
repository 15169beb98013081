"""The ``nspoll`` bench section, run in-process: its figures and goals are there and consistent.

Nothing about speed; the byte and round-trip counts are exact, so those are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import BenchConfig
from bench.runner import run_suite


async def test_nspoll_section_reports_its_goals(tmp_path: Path) -> None:
    printed: list[str] = []
    results = await run_suite(BenchConfig.quick_run(), tmp_path, only=["nspoll"], echo=printed.append, quiet=True, plots=False)
    section = results["sections"]["nspoll"]
    assert section["status"] == "ok", f"{section.get('error')}\n{section.get('traceback', '')}"
    goals = section["goals"]
    assert set(goals) == {"poll_bytes_fanout3", "poll_round_trips", "poll_100_logs_round_trips", "poll_100_logs_bytes", "record_bytes"}
    for g in goals.values():
        assert g["ratio"] == pytest.approx(g["value"] / g["limit"], abs=1e-3)
    one, many = section["one_log"], section["followed_logs"]
    assert goals["poll_bytes_fanout3"]["value"] == one["poll"]["bytes"] < one["fetch"]["bytes"]
    assert goals["poll_round_trips"]["value"] == one["poll"]["round_trips"] == 1
    assert goals["poll_100_logs_round_trips"]["value"] == 1 and many["poll"]["rounds"] == 1
    assert many["logs"] == 100 and many["each_synced"]["round_trips"] == 100
    assert goals["poll_100_logs_bytes"]["value"] == many["poll"]["bytes"] < many["each_synced"]["bytes"]
    assert goals["record_bytes"]["value"] == section["record_bytes"]["compact"] == 221
    assert section["record_bytes"]["v1_compatible"] == 435
    assert "poll_100_logs_bytes" in "\n".join(printed)
    # a changed log over three storage peers: one record in, not three
    changed = section["changed_log"]
    assert changed["rounds"] == 1 and changed["record_bytes"] == 221
    # the record in compact form (151 B, rebuilt to the 221 B one) and the others' sequences
    assert 151 / 221 < changed["bytes_in_over_record"] < 1.5 and changed["bytes_in"] < 2 * changed["record_bytes"]
