"""Confidence intervals for the report: percentile bootstrap over tasks, numpy only.

The unit resampled is the task, not the episode: a task's attempts share its difficulty, so they
are averaged first and each task counts once. A difference between two arms is paired: both arms
ran the same tasks with the same seeds, so each task's difference is taken before resampling,
which removes the spread between easy and hard tasks from the interval.

    >>> estimate = bootstrap_mean([1.0, 0.0, 1.0, 1.0])
    >>> estimate.low <= estimate.mean <= estimate.high
    True

The generator is seeded, so the same records always give the same intervals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, computed_field

RESAMPLES = 2000
"""Bootstrap resamples per interval: the percentiles of a 95% interval move by under 0.01 beyond this."""
LEVEL = 0.95
SEED = 0
_MAX_CELLS = 4_000_000
"""Resampled values drawn at once; more resamples are drawn in blocks, so memory stays bounded."""


class Estimate(BaseModel):
    """A mean over tasks with its percentile-bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    """Tasks (for a paired difference: tasks both arms ran)."""
    level: float = LEVEL

    @computed_field
    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below zero (for a difference: the arms differ)."""
        return self.low > 0.0 or self.high < 0.0


def bootstrap_mean(values: Sequence[float], *, resamples: int = RESAMPLES, level: float = LEVEL,
                   seed: int = SEED) -> Estimate:
    """The mean of `values` (one per task) and the percentile bootstrap interval of that mean.

    With one value the interval is that value; with none, a ValueError (there is nothing to estimate).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_mean needs at least one value; got none")
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_CELLS // x.size)
    means = np.concatenate([
        x[rng.integers(0, x.size, size=(min(block, resamples - start), x.size))].mean(axis=1)
        for start in range(0, resamples, block)
    ])
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    mean = float(x.mean())
    # Clamp: for a constant sample the quantiles can differ from the mean by rounding alone.
    return Estimate(mean=mean, low=min(float(low), mean), high=max(float(high), mean), n=int(x.size), level=level)


def task_means(scores: Iterable[tuple[str, float]]) -> list[float]:
    """One value per task: the mean over its attempts of the (task id, score) pairs, in first-seen order."""
    by_task: dict[str, list[float]] = defaultdict(list)
    for task_id, score in scores:
        by_task[task_id].append(score)
    return [sum(v) / len(v) for v in by_task.values()]


def mean_over_tasks(scores: Iterable[tuple[str, float]], **options) -> Estimate | None:
    """The bootstrap estimate of the mean over tasks of (task id, score) pairs; None when there are none."""
    values = task_means(scores)
    return bootstrap_mean(values, **options) if values else None


def paired_difference(scores: Mapping[tuple[str, Hashable], float], baseline: Mapping[tuple[str, Hashable], float],
                      **options) -> Estimate | None:
    """The bootstrap estimate of `scores` minus `baseline` over the keys both hold.

    Keys are (task id, attempt): each attempt is paired with the baseline's same attempt, the
    differences are averaged per task and the tasks resampled. None when no key is shared.
    """
    shared = [key for key in scores if key in baseline]
    return mean_over_tasks(((key[0], scores[key] - baseline[key]) for key in shared), **options)
