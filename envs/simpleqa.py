"""SimpleQA (OpenAI simple-evals): short fact-seeking questions graded by an LLM judge.

The CSV has `metadata` (a Python dict literal: topic, answer_type, urls), `problem`, `answer`.
The official grade is the judge's correct / incorrect / not attempted (`envs.metrics.judge_answer`,
summarised by `envs.metrics.simpleqa_aggregate`); `score` gives the rule-based EM and F1 beside it.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from memento.envs.metrics import em_f1
from memento.envs.task import Task, field, require_file, select, shared_data_dir
from memento.errors import DataError


def default_path() -> Path:
    return shared_data_dir() / "simpleqa" / "simple_qa_test_set.csv"


def load_simpleqa(
    path: str | Path | None = None,
    *,
    topics: list[str] | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Task]:
    """Tasks from the SimpleQA CSV (the shared test set when `path` is None); `topics` filters by topic."""
    path = require_file(path or default_path(), "SimpleQA")
    tasks = []
    with open(path, encoding="utf-8", newline="") as handle:
        # Row numbers count from 1 after the header, so "row 1" is the file's second line.
        for number, row in enumerate(csv.DictReader(handle), start=1):
            tasks.append(_task(row, number, f"{path} row {number}"))
    if topics is not None:
        tasks = [task for task in tasks if task.metadata.get("topic") in set(topics)]
    return select(tasks, limit, seed)


def _task(row: dict[str, str], number: int, where: str) -> Task:
    raw_metadata = field(row, "metadata", where)
    try:
        metadata = ast.literal_eval(raw_metadata) if raw_metadata else {}
    except (ValueError, SyntaxError) as error:
        raise DataError(f"{where}: metadata {raw_metadata[:80]!r} is not a Python dict literal") from error
    if not isinstance(metadata, dict):
        raise DataError(f"{where}: metadata is a {type(metadata).__name__}, expected a dict")
    return Task(
        id=f"simpleqa-{number}",
        question=field(row, "problem", where).strip(),
        gold=[field(row, "answer", where).strip()],
        benchmark="simpleqa",
        source="simpleqa",
        split="test",
        metadata=metadata,
    )


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """{"em", "f1"} against the gold answer; the official grade comes from the judge."""
    return em_f1(prediction, task.gold)
