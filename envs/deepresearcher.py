"""DeepResearcher's QA benchmark: seven sources, in-domain and out-of-domain, EM and F1.

Two file forms carry the same tasks:
- parquet (as `deepresearcher/dev.parquet`): `data_source`, `prompt` (a list of
  `{role, content}` whose user message is the question), `reward_model.ground_truth`
  (gold answers joined by `<|answer_split|>`), `extra_info` (`{index, split}`);
- JSONL: `{question, ground_truth, data_source}` with the same joined gold answers.

Sources are lowercased ("Bamboogle" becomes "bamboogle") so reports match the R1-Searcher sets.
PM, DeepResearcher's judged partial match, is `envs.metrics.judge_answer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memento.envs.metrics import em_f1
from memento.envs.task import Task, field, gold_list, read_jsonl, require_file, select, shared_data_dir
from memento.errors import DataError, ValidationError

ANSWER_SPLIT = "<|answer_split|>"
IN_DOMAIN = frozenset({"nq", "tq", "hotpotqa", "2wiki"})
OUT_OF_DOMAIN = frozenset({"musique", "bamboogle", "popqa"})


def domain_of(source: str) -> str:
    """'in' for the sources DeepResearcher trained on, 'out' for the held-out ones, else 'unknown'."""
    source = source.lower()
    return "in" if source in IN_DOMAIN else "out" if source in OUT_OF_DOMAIN else "unknown"


def default_path() -> Path:
    return shared_data_dir() / "deepresearcher" / "dev.parquet"


def load_deepresearcher(
    path: str | Path | None = None,
    *,
    sources: Iterable[str] | None = None,
    domain: str | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Task]:
    """Tasks from a DeepResearcher parquet or JSONL file (the shared dev set when `path` is None).

    `sources` keeps those data sources (case-insensitive); `domain` keeps 'in' or 'out'.
    """
    path = require_file(path or default_path(), "DeepResearcher")
    if domain not in (None, "in", "out"):
        raise ValidationError(f"domain={domain!r} must be 'in', 'out' or None")
    tasks = _read_parquet(path) if path.suffix == ".parquet" else _read_jsonl(path)
    if sources is not None:
        wanted = {source.lower() for source in sources}
        present = {task.source for task in tasks}
        if not wanted <= present:
            raise ValidationError(f"sources {sorted(wanted - present)} are not in {path}; it has {sorted(present)}")
        tasks = [task for task in tasks if task.source in wanted]
    if domain is not None:
        tasks = [task for task in tasks if task.metadata["domain"] == domain]
    return select(tasks, limit, seed)


def _read_parquet(path: Path) -> list[Task]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path} is not a readable parquet file ({error})") from error
    tasks = []
    for number, row in enumerate(rows):
        where = f"{path} row {number}"
        prompt = field(row, "prompt", where)
        questions = [message["content"] for message in prompt or [] if message.get("role") == "user"]
        if not questions:
            raise DataError(f"{where}: prompt has no user message to take the question from")
        extra = field(row, "extra_info", where, default=None) or {}
        reward = field(row, "reward_model", where) or {}
        tasks.append(_task(row, where, number, question=questions[-1], ground_truth=reward.get("ground_truth"),
                           index=extra.get("index"), split=extra.get("split", "")))
    return tasks


def _read_jsonl(path: Path) -> list[Task]:
    tasks = []
    for line, row in read_jsonl(path):
        where = f"{path}:{line}"
        tasks.append(_task(row, where, line, question=field(row, "question", where),
                           ground_truth=field(row, "ground_truth", where),
                           index=row.get("index") or row.get("id"), split=row.get("split", "")))
    return tasks


def _task(row: dict[str, Any], where: str, number: int, *, question: str, ground_truth: Any, index: Any, split: str) -> Task:
    original_source = str(field(row, "data_source", where))
    source = original_source.lower()
    if isinstance(ground_truth, dict):  # Search-R1-style files nest the answers as {"target": [...]}
        ground_truth = ground_truth.get("target")
    gold = gold_list(ground_truth, ANSWER_SPLIT)
    if not gold:
        raise DataError(f"{where}: ground_truth {ground_truth!r} holds no answer")
    return Task(
        id=str(index) if index else f"{source}-{number}",
        question=question.strip(),
        gold=gold,
        benchmark="deepresearcher",
        source=source,
        split=split or "",
        metadata={"data_source": original_source, "domain": domain_of(source)},
    )


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """{"em", "f1"}: normalised exact match and token F1, each the max over the gold answers."""
    return em_f1(prediction, task.gold)
