"""Plots of a serving run: throughput and latency against load, one PNG per request shape."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"ganserve": "tab:blue", "naive": "tab:orange", "in-process": "tab:green"}


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _points(
    rows: list[dict[str, Any]], system: str, mode: str, images: int, x: str
) -> list[tuple[float, dict[str, Any]]]:
    """(x, row) for ``system``'s rows of one mode and request shape, in the order of x."""
    pts = [
        (_num(r[x]), r)
        for r in rows
        if r["system"] == system and r["mode"] == mode and r["images_per_request"] == images
    ]
    return sorted(pts, key=lambda p: p[0])


def plot_closed_loop(rows: list[dict[str, Any]], images: int, path: Path, title: str) -> Path:
    """Images/s and p50/p99 latency against concurrency; the in-process limit as a line."""
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system in ("ganserve", "naive"):
        pts = [
            (x, r)
            for x, r in _points(rows, system, "closed", images, "concurrency")
            if not r["settings"] and r["round"] in ("", 1)
        ]
        if not pts:
            continue
        xs = [c for c, _ in pts]
        ax_t.plot(
            xs, [_num(r["images_per_s"]) for _, r in pts], "o-", color=COLORS[system], label=system
        )
        _latencies(ax_l, system, pts)
    limits = [r for r in rows if r["system"] == "in-process" and r["images_per_request"] == images]
    if limits:
        best = max(limits, key=lambda r: _num(r["images_per_s"]))
        ax_t.axhline(
            _num(best["images_per_s"]),
            color=COLORS["in-process"],
            linestyle=":",
            label=f"in-process, best of the run (batch {best['batch']})",
        )
    for ax in (ax_t, ax_l):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent requests (closed loop)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_t.set_ylabel("images/s")
    ax_t.set_ylim(bottom=0)
    ax_l.set_yscale("log")
    ax_l.set_ylabel("latency (ms)")
    return _save(fig, path, title)


def plot_open_loop(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """p50/p99 latency and answered rate against the offered rate, per request shape."""
    shapes = sorted({r["images_per_request"] for r in rows if r["mode"] == "open"})
    fig, axes = plt.subplots(
        1, max(len(shapes), 1), figsize=(5.5 * max(len(shapes), 1), 4.2), squeeze=False
    )
    for ax, images in zip(axes[0], shapes, strict=False):
        for system in ("ganserve", "naive"):
            pts = _points(rows, system, "open", images, "rate")
            if not pts:
                continue
            _latencies(ax, system, pts)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered requests/s (open loop)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"{images}-image requests", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path, title)


def _latencies(ax: Any, system: str, pts: list[tuple[float, dict[str, Any]]]) -> None:
    """p50 (solid) and p99 (dashed) latency of ``system`` at each point's x."""
    xs = [x for x, _ in pts]
    for key, style in (("p50", "o-"), ("p99", "s--")):
        ys = [_num(r[f"{key}_ms"]) for _, r in pts]
        ax.plot(xs, ys, style, color=COLORS[system], label=f"{system} {key}")


def _save(fig: Any, path: Path, title: str) -> Path:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
