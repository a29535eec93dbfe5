"""Task sources and their scorers: GAIA, DeepResearcher, SimpleQA, HLE, the R1-Searcher QA sets,
and the generated offline suite ("fictional").

    from memento.envs import load_tasks, score
    tasks = load_tasks("deepresearcher", sources=["nq"], limit=20, seed=0)
    scores = score(tasks[0], "Paris")          # {"em": ..., "f1": ...}

Judged metrics (PM, SimpleQA grades, HLE judged accuracy) come from `envs.metrics.judge_answer`.
"""

from __future__ import annotations

from pathlib import Path

from memento.envs import deepresearcher, fictional_world, gaia, hle, qa, simpleqa
from memento.envs.task import Task, TaskSource, shared_data_dir
from memento.errors import ValidationError

SOURCES: dict[str, TaskSource] = {
    "gaia": TaskSource("gaia", gaia.load_gaia, gaia.score),
    "deepresearcher": TaskSource(
        "deepresearcher", deepresearcher.load_deepresearcher, deepresearcher.score, deepresearcher.default_path
    ),
    "simpleqa": TaskSource("simpleqa", simpleqa.load_simpleqa, simpleqa.score, simpleqa.default_path),
    "hle": TaskSource("hle", hle.load_hle, hle.score),
    "qa": TaskSource("qa", qa.load_qa, qa.score, qa.default_path),
    "fictional": TaskSource("fictional", fictional_world.load_fictional, fictional_world.score),
}
"""Every task source by name; `Task.benchmark` is one of these keys."""

__all__ = ["SOURCES", "Task", "TaskSource", "load_tasks", "score", "shared_data_dir"]


def get_source(name: str) -> TaskSource:
    """The source called `name`, or a ValidationError listing the known ones."""
    if name not in SOURCES:
        raise ValidationError(f"task source {name!r} is not one of {sorted(SOURCES)}")
    return SOURCES[name]


def load_tasks(source: str, path: str | Path | None = None, **options) -> list[Task]:
    """Load tasks of `source` from `path` (its shared-data default when None); options go to its loader.

    Options every loader takes: `limit` and `seed` (shuffle with seed, then keep `limit`).
    GAIA and HLE are not redistributed, so they need a `path`.
    """
    loader = get_source(source).load
    if path is None and source in ("gaia", "hle"):
        raise ValidationError(
            f"{source} data is not shipped or shared; download it and pass path= (the split folder or file)"
        )
    return loader(path, **options)


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """The rule-based scores of `prediction` for `task`, by the scorer of its benchmark."""
    return get_source(task.benchmark).score(task, prediction)
