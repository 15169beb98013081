"""Goals: figures with a limit, gathered from every section into ``results["goals"]``.

A section's result may carry ``"goals": {name: goal(value, limit)}``; :func:`gather` collects
them (with the section's name) and :func:`render` prints the table that ends a run. A goal is met
when its value is at most its limit, or at least its limit for a floor (``at_least=True``, such as
the share of messages delivered). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.measure import ratio, table


def goal(value: float | None, limit: float, *, at_least: bool = False, digits: int = 3) -> dict[str, Any]:
    """``{"value", "limit", "ratio"}`` (ratio = value / limit), plus ``"at_least": True`` for a floor."""
    shown = None if value is None else round(value, digits)
    # the ratio of the value shown: a reader recomputing it from results.json gets the same
    entry: dict[str, Any] = {"value": shown, "limit": limit, "ratio": ratio(shown, limit, 3)}
    if at_least:
        entry["at_least"] = True
    return entry


def met(entry: Mapping[str, Any]) -> bool | None:
    """Whether a goal is met; None when its value or limit was not measured."""
    value, limit = entry.get("value"), entry.get("limit")
    if value is None or limit is None:
        return None
    return bool(value >= limit) if entry.get("at_least") else bool(value <= limit)


def gather(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every section's goals by name, each with its ``section`` and whether it was ``met``.

    A bare number instead of a goal dict is kept as a value without a limit; a name two sections
    both claim keeps the first and records the clash, so no figure is lost silently.
    """
    goals: dict[str, dict[str, Any]] = {}
    for section, result in sections.items():
        own = result.get("goals")
        if not isinstance(own, Mapping):
            continue
        for name, entry in own.items():
            if not isinstance(entry, Mapping):
                entry = {"value": entry, "limit": None, "ratio": None}
            if name in goals:
                goals[name].setdefault("also_in", []).append(section)
                continue
            goals[name] = {**entry, "section": section, "met": met(entry)}
    return goals


def render(goals: Mapping[str, Mapping[str, Any]]) -> str:
    """The run's goals: value, limit, ratio and met/missed (``-`` where there is no limit)."""
    rows = []
    for name, g in goals.items():
        state = {True: "met", False: "MISSED", None: "-"}[g.get("met")]
        limit = g.get("limit")
        shown_limit = None if limit is None else (f">= {limit:g}" if g.get("at_least") else f"<= {limit:g}")
        rows.append([name, g.get("section", ""), g.get("value"), shown_limit, g.get("ratio"), state])
    if not rows:
        return "Goals: none measured in this run"
    n_met = sum(1 for g in goals.values() if g.get("met") is True)
    n_limited = sum(1 for g in goals.values() if g.get("met") is not None)
    return (
        f"Goals: {n_met} of {n_limited} met\n"
        + table(["goal", "section", "value", "limit", "value / limit", ""], rows, digits=3)
    )


__all__ = ["gather", "goal", "met", "render"]
