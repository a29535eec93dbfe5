"""The run's PNG plots: the learning curve, accuracy against pass per arm, per-source bars, in-domain
against out-of-domain.

Drawn from the summary alone (matplotlib, Agg backend), so a finished run folder can be re-plotted.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from memento.evals.records import EvalSummary, MetricRow  # noqa: E402

LEARNING_CURVE_PLOT = "learning_curve.png"
ITERATION_PLOT = "accuracy_by_iteration.png"
SOURCE_PLOT = "accuracy_by_source.png"
DOMAIN_PLOT = "accuracy_by_domain.png"


def write_plots(summary: EvalSummary, out_dir: str | Path) -> list[Path]:
    """Write the plots the summary has data for; returns their paths."""
    out_dir = Path(out_dir)
    written = []
    if summary.training_curves:
        written.append(plot_learning_curve(summary, out_dir / LEARNING_CURVE_PLOT))
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


def running_mean(values: list[float], window: int) -> np.ndarray:
    """The mean of the last `window` values at each point (fewer at the start, where fewer exist)."""
    sums = np.cumsum(np.asarray(values, dtype=float))
    n = len(sums)
    dropped = np.concatenate([np.zeros(min(window, n)), sums[: max(0, n - window)]])
    return (sums - dropped) / np.minimum(np.arange(1, n + 1), window)


def plot_learning_curve(summary: EvalSummary, path: Path, *, window: int | None = None) -> Path:
    """EM by training episode per arm (running mean over `window`, cumulative mean dashed); each arm's
    test-pass EM as a horizontal line with its 95% interval as a band.

    The default window is a tenth of the longest arm's training episodes (at least 3): wide enough
    to smooth 0/1 scores, narrow enough to show a change within a pass.
    """
    longest = max(len(c.em) for c in summary.training_curves)
    window = window or max(3, longest // 10)
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for number, arm in enumerate(summary.arms):
        colour = f"C{number}"
        curve = next((c for c in summary.training_curves if c.arm == arm), None)
        if curve is not None:
            x = np.arange(1, len(curve.em) + 1)
            axis.plot(x, running_mean(curve.em, window), color=colour, label=f"{arm} (mean of last {window})")
            axis.plot(x, np.cumsum(curve.em) / x, color=colour, linestyle="--", alpha=0.6, label=f"{arm} (cumulative)")
        test = summary.interval(arm, "test", "1")
        if test is not None:
            axis.axhspan(test.em.low, test.em.high, color=colour, alpha=0.12)
            axis.axhline(test.em.mean, color=colour, linestyle=":", linewidth=2,
                         label=f"{arm} test EM {test.em.mean:.2f} [{test.em.low:.2f}, {test.em.high:.2f}]")
    # Pass boundaries, from the first arm that trained (the arms run the same passes).
    iterations = summary.training_curves[0].iteration
    for x, (before, after) in enumerate(zip(iterations, iterations[1:]), start=1):
        if after != before:
            axis.axvline(x + 0.5, color="grey", linewidth=0.8, alpha=0.5)
    axis.set_xlim(0.5, longest + 0.5)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("training episode (order run; grey lines: pass boundaries)")
    axis.set_ylabel("exact match")
    axis.set_title("Learning curve: EM by training episode; held-out test EM with 95% CI as bands")
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize="x-small")
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
