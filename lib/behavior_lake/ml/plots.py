"""Matplotlib figures logged as MLflow artifacts (headless Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt


def silhouette_by_k(scores: Mapping[int, float], chosen: int, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = sorted(scores)
    ax.plot(ks, [scores[k] for k in ks], marker="o")
    ax.axvline(chosen, color="tab:red", linestyle="--", label=f"chosen k = {chosen}")
    ax.set_xlabel("k (segments)")
    ax.set_ylabel("silhouette")
    ax.set_title("Silhouette by k")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float]],
    title: str,
    out: Path,
) -> Path:
    fig, ax = plt.subplots(figsize=(max(6, len(cols) * 0.6), max(3, len(rows) * 0.6)))
    lim = max(1.0, max((abs(v) for r in values for v in r), default=1.0))
    im = ax.imshow(values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(cols)), labels=cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=8)
    for i, r in enumerate(values):
        for j, v in enumerate(r):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="z-score")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def curve(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    out: Path,
    diagonal: bool = False,
    hline: tuple[float, str] | None = None,
    vline: tuple[float, str] | None = None,
    markers: bool = False,
) -> Path:
    """One line per series; reference lines: the diagonal, a level (`hline`: value,
    label, e.g. the base rate) and a position (`vline`, e.g. the capacity)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label, marker="o" if markers else None, markersize=3)
    if diagonal:
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect / random")
    if hline is not None:
        ax.axhline(hline[0], color="grey", linestyle="--", linewidth=1, label=hline[1])
    if vline is not None:
        ax.axvline(vline[0], color="tab:red", linestyle="--", linewidth=1, label=vline[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def bars(labels: Sequence[str], values: Sequence[float], title: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, max(3, len(labels) * 0.3)))
    ax.barh(list(labels), list(values))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
