"""``rlp2p bench --only upload``: the section is well formed and its bytes goal holds.

Bytes are counted, not timed, so the 3-vs-1 upload ratio is asserted; the time goal is only
checked to be the ratio its own figures give.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import BenchConfig
from bench.runner import run_suite
from bench.upload import PUBLISH_RTT_LIMIT, UPLOAD_RATIO_LIMIT


async def test_upload_section_reports_its_goals(tmp_path: Path) -> None:
    printed: list[str] = []
    results = await run_suite(BenchConfig.quick_run(), tmp_path, only=["upload"], echo=printed.append, quiet=True, plots=False)
    section = results["sections"]["upload"]
    assert section["status"] == "ok", f"{section.get('error')}\n{section.get('traceback', '')}"
    base, once, each = section["rows"]
    assert (base["replicas"], once["upload"], each["upload"]) == (1, "once", "each")
    goals = section["goals"]
    upload = goals["publish_upload_ratio_3v1"]
    assert upload["value"] == pytest.approx(once["log_bytes_sent"] / base["log_bytes_sent"], abs=1e-3)
    assert upload["limit"] == UPLOAD_RATIO_LIMIT and upload["value"] <= UPLOAD_RATIO_LIMIT
    assert section["each_ratio_3v1"] > 2.9  # the baseline it beats: every block three times
    timing = goals["publish_ms_over_rtt"]
    assert timing["limit"] == PUBLISH_RTT_LIMIT and timing["value"] > 0
    assert timing["ratio"] == pytest.approx(timing["value"] / PUBLISH_RTT_LIMIT, abs=1e-3)
    assert any(line.startswith("9. Upload once") for line in printed)
