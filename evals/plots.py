"""The run's PNG plots: accuracy against pass per arm, per-source bars, in-domain against out-of-domain.

Drawn from the summary alone (matplotlib, Agg backend), so a finished run folder can be re-plotted.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402

from evals.records import EvalSummary, MetricRow  # noqa: E402

ITERATION_PLOT = "accuracy_by_iteration.png"
SOURCE_PLOT = "accuracy_by_source.png"
DOMAIN_PLOT = "accuracy_by_domain.png"


def write_plots(summary: EvalSummary, out_dir: str | Path) -> list[Path]:
    """Write the plots the summary has data for; returns their paths."""
    out_dir = Path(out_dir)
    written = []
    if summary.by_iteration:
        written.append(plot_by_iteration(summary, out_dir / ITERATION_PLOT))
    if len({r.group for r in summary.by_source}) > 1:
        written.append(plot_bars(summary.by_source, summary.arms, out_dir / SOURCE_PLOT,
                                 title=f"By source ({_scored(summary)})"))
    if summary.by_domain:
        written.append(plot_bars(summary.by_domain, summary.arms, out_dir / DOMAIN_PLOT,
                                 title=f"In-domain vs out-of-domain ({_scored(summary)})"))
    return written


def _scored(summary: EvalSummary) -> str:
    return "test pass" if summary.protocol == "split" else f"pass {summary.iterations}"


def plot_by_iteration(summary: EvalSummary, path: Path) -> Path:
    """EM and F1 against the learning pass, one line per arm; the split protocol's test pass as a marker."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for metric, axis in zip(("em", "f1"), axes):
        for number, arm in enumerate(summary.arms):
            colour = f"C{number}"
            # A small sideways shift per arm keeps equal scores of different arms visible.
            shift = 0.04 * (number - (len(summary.arms) - 1) / 2)
            train = [r for r in summary.by_iteration if r.arm == arm and r.phase == "train"]
            axis.plot([int(r.group) + shift for r in train], [getattr(r, metric) for r in train], marker="o",
                      color=colour, label=arm)
            for row in (r for r in summary.by_iteration if r.arm == arm and r.phase == "test"):
                axis.scatter([summary.iterations + 0.5 + shift], [getattr(row, metric)], marker="*", s=150,
                             color=colour, label=f"{arm} (test)")
        axis.set_title(metric.upper())
        axis.set_xlabel("learning pass")
        axis.set_xticks(range(1, summary.iterations + 1))
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean score")
    axes[-1].legend(loc="best", fontsize="small")
    figure.suptitle(f"Accuracy by pass ({summary.protocol} protocol)")
    return _save(figure, path)


def plot_bars(rows: list[MetricRow], arms: list[str], path: Path, *, title: str) -> Path:
    """Grouped bars of EM per group (source or domain), one bar per arm, with n under each group."""
    groups = list(dict.fromkeys(r.group for r in rows))
    width = 0.8 / max(1, len(arms))
    figure, axis = plt.subplots(figsize=(max(5, 1.2 * len(groups) * len(arms)), 4))
    for number, arm in enumerate(arms):
        values = [next((r.em for r in rows if r.arm == arm and r.group == g), 0.0) for g in groups]
        positions = [i + (number - (len(arms) - 1) / 2) * width for i in range(len(groups))]
        axis.bar(positions, values, width=width, label=arm, color=f"C{number}")
    sizes = {g: max(r.n for r in rows if r.group == g) for g in groups}
    axis.set_xticks(range(len(groups)), [f"{g}\n(n={sizes[g]})" for g in groups])
    axis.set_ylim(0, 1.02)
    axis.set_ylabel("exact match")
    axis.set_title(title)
    axis.legend(fontsize="small")
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
