"""The goals of a run: each section's figures with a limit, gathered and printed at the end."""

from __future__ import annotations

import pytest

from bench.goals import gather, goal, met, render


def test_a_goal_is_its_value_its_limit_and_their_ratio():
    assert goal(2.6, 1.3) == {"value": 2.6, "limit": 1.3, "ratio": 2.0}
    assert goal(1.0, 0.99, at_least=True) == {"value": 1.0, "limit": 0.99, "ratio": 1.01, "at_least": True}
    assert goal(None, 5.0) == {"value": None, "limit": 5.0, "ratio": None}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (goal(1.2, 1.3), True),
        (goal(1.3, 1.3), True),
        (goal(1.31, 1.3), False),
        (goal(0.995, 0.99, at_least=True), True),
        (goal(0.98, 0.99, at_least=True), False),
        (goal(None, 1.3), None),
        ({"value": 3.0, "limit": None, "ratio": None}, None),
    ],
)
def test_met_is_at_most_the_limit_or_at_least_a_floor(entry, expected):
    assert met(entry) is expected


def test_gather_collects_every_section_with_its_name_and_whether_it_was_met():
    sections = {
        "transport": {"status": "ok"},  # no goals
        "offline": {"goals": {"sim_bob": goal(15.0, 1.3), "sim_delivered": goal(1.0, 0.99, at_least=True)}},
        "live": {"goals": {"live_p50": goal(3.0, 5.0), "legacy": 1.5}},
        "broken": {"status": "error", "goals": "not a dict"},
        "again": {"goals": {"live_p50": goal(9.0, 5.0)}},
    }
    goals = gather(sections)
    assert list(goals) == ["sim_bob", "sim_delivered", "live_p50", "legacy"]
    assert goals["sim_bob"] == {"value": 15.0, "limit": 1.3, "ratio": 11.538, "section": "offline", "met": False}
    assert goals["sim_delivered"]["met"] is True and goals["sim_delivered"]["section"] == "offline"
    # a bare number is kept as a value without a limit; a clash keeps the first and says so
    assert goals["legacy"] == {"value": 1.5, "limit": None, "ratio": None, "section": "live", "met": None}
    assert goals["live_p50"]["value"] == 3.0 and goals["live_p50"]["also_in"] == ["again"]


def test_render_prints_a_row_per_goal_with_met_or_missed():
    goals = gather({"offline": {"goals": {"sim_bob": goal(15.0, 1.3), "sim_delivered": goal(1.0, 0.99, at_least=True)}},
                    "live": {"goals": {"legacy": 1.5}}})
    text = render(goals)
    lines = text.splitlines()
    assert lines[0] == "Goals: 1 of 2 met"
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert rows["sim_bob"][1:] == ["offline", "15.000", "<=", "1.3", "11.538", "MISSED"]
    assert rows["sim_delivered"][1:] == ["offline", "1.000", ">=", "0.99", "1.010", "met"]
    assert rows["legacy"][1:] == ["live", "1.500", "-", "-", "-"]
    assert render({}) == "Goals: none measured in this run"
