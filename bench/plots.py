"""PNG plots of a run's results, with matplotlib when it is installed (the ``bench`` extra).

:func:`draw` never raises for a missing matplotlib: it returns no paths and the reason, which the
runner prints ("plots skipped: ...") beside the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(results: dict[str, Any], out_dir: Path) -> tuple[list[str], str | None]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed (pip install matplotlib, or the bench extra)"
    sections = results.get("sections", {})
    paths: list[str] = []
    for name, fn in (
        ("transport", _transport),
        ("sync", _sync),
        ("publish", _publish),
        ("offline", _offline),
        ("dht", _dht),
    ):
        section = sections.get(name)
        if not section or section.get("status") != "ok":
            continue
        fig = fn(plt, section)
        if fig is None:
            continue
        path = out_dir / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(str(path))
    return paths, None


def _bars(ax: Any, labels: list[str], values: list[float], title: str, ylabel: str) -> None:
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    for i, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=7)


def _transport(plt: Any, s: dict[str, Any]) -> Any:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = list(s["throughput"])
    _bars(left, names, [s["throughput"][n]["mb_s"]["median"] or 0 for n in names], "Bulk transfer, 127.0.0.1", "MB/s (median)")
    labels = {"raw_open_ms": "raw, open", "cas_open_ms": "CAS Get, open", "raw_new_stream_ms": "raw, new stream", "cas_new_stream_ms": "CAS Get, new stream"}
    _bars(right, [labels[k] for k in labels], [s["rtt"][k]["median"] or 0 for k in labels], "One request/response", "ms (median)")
    return fig


def _sync(plt: Any, s: dict[str, Any]) -> Any:
    cells = s["cells"]
    if not cells:
        return None
    modes = list(dict.fromkeys(c["mode"] for c in cells))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for metric, ax, title in (
        ("seconds", axes[0], "Sync time (s)"),
        ("round_trips", axes[1], "Sequential round trips (minimum 1)"),
        ("bytes_in_over_message_bytes", axes[2], "Bytes in / message bytes (minimum 1)"),
    ):
        for mode in modes:
            points = [(c["n"], c[metric]) for c in cells if c["mode"] == mode and c[metric] is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", label=mode)
        ax.set_xscale("log")
        if metric != "bytes_in_over_message_bytes":
            ax.set_yscale("log")
        ax.set_xlabel("messages in the log (N)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def _publish(plt: Any, s: dict[str, Any]) -> Any:
    rows = s["one_message"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for placement, label in (("named", "replicas named"), ("dht", "replicas placed through the DHT")):
        points = [(r["replicas"], r["total_ms"]["median"]) for r in rows if r["placement"] == placement]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(s["rtt_open_ms"], color="gray", linestyle="--", label="1 round trip (open stream)")
    ax.set_xlabel("replicas")
    ax.set_ylabel("append + publish one message, ms (median)")
    ax.set_yscale("log")
    ax.set_title(f"Publishing to a log of {rows[0]['existing_messages']:,}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def _offline(plt: Any, s: dict[str, Any]) -> Any:
    rows = s["compare"]
    xs = [r["online"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (mv, lg) in (
        (axes[0], ("mvds_delivered_share", "log_delivered_share")),
        (axes[1], ("mvds_latency_p50", "log_latency_p50")),
    ):
        ax.plot(xs, [r[mv] for r in rows], marker="o", label="plain MVDS")
        ax.plot(xs, [r[lg] for r in rows], marker="s", label="remote log")
    for key, label, marker in (
        ("mvds_alice_multiplier", "MVDS, Alice sent", "o"),
        ("mvds_bob_multiplier", "MVDS, Bob received", "o"),
        ("log_alice_multiplier", "remote log, Alice sent", "s"),
        ("log_bob_multiplier", "remote log, Bob received", "s"),
    ):
        axes[2].plot(xs, [r.get(key) for r in rows], marker=marker, label=label)
    axes[2].set_yscale("log")
    for ax, title in zip(axes, ("Share delivered", "Median latency (epochs)", "Each phone's bytes / payload delivered"), strict=True):
        ax.set_xlabel("fraction of epochs each peer is online")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    return fig


def _dht(plt: Any, s: dict[str, Any]) -> Any:
    labels = ["py put (py only)", "py get (py only)"]
    values = [s["py"]["put_ms"]["median"] or 0, s["py"]["get_ms"]["median"] or 0]
    if s["js"].get("status") == "ok":
        m = s["js"]["ms"]
        for key, label in (
            ("py_put_client", "py put client"),
            ("py_put_server", "py put server"),
            ("js_put", "js put"),
            ("py_get_of_js", "py get"),
            ("js_get", "js get"),
        ):
            labels.append(label + " (mixed)")
            values.append(m[key]["median"] or 0)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _bars(ax, labels, values, "DHT put/get latency", "ms (median)")
    return fig
