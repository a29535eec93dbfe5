"""The R1-Searcher multi-hop QA sets: HotpotQA, 2Wiki, MuSiQue, Bamboogle.

JSONL with `idx`, `question`, `answer` (a string or a list of strings); the source is taken from
the file name ("hotpotqa_500.jsonl" is hotpotqa). Scored by EM and token F1 like DeepResearcher.
"""

from __future__ import annotations

from pathlib import Path

from memento.envs.deepresearcher import domain_of
from memento.envs.metrics import em_f1
from memento.envs.task import Task, field, gold_list, read_jsonl, require_file, select, shared_data_dir
from memento.errors import DataError, ValidationError

FILES = {
    "hotpotqa": "hotpotqa_500.jsonl",
    "2wiki": "2wiki_500.jsonl",
    "musique": "musique_500.jsonl",
    "bamboogle": "bamboogle.jsonl",
}


def default_path(name: str = "hotpotqa") -> Path:
    """The shared file of one of the sets in `FILES`."""
    if name not in FILES:
        raise ValidationError(f"QA set {name!r} is not one of {sorted(FILES)}; pass path= for another file")
    return shared_data_dir() / "qa" / FILES[name]


def load_qa(
    path: str | Path | None = None,
    *,
    name: str = "hotpotqa",
    limit: int | None = None,
    seed: int | None = None,
    offset: int = 0,
) -> list[Task]:
    """Tasks from an R1-Searcher JSONL file; with no `path`, the shared file of set `name`.

    `offset` skips that many tasks of the seeded draw first, so two calls with the same seed and
    offsets 0 and N draw disjoint train and test sets.
    """
    path = require_file(path or default_path(name), "QA set")
    source = path.name.split("_")[0].removesuffix(".jsonl").lower()
    tasks = []
    for line, row in read_jsonl(path):
        where = f"{path}:{line}"
        gold = gold_list(field(row, "answer", where))
        if not gold:
            raise DataError(f"{where}: answer {row.get('answer')!r} holds no answer")
        index = field(row, "idx", where, default=line)
        tasks.append(Task(
            id=f"{source}-{index}",
            question=str(field(row, "question", where)).strip(),
            gold=gold,
            benchmark="qa",
            source=source,
            split="test",
            metadata={"idx": index, "domain": domain_of(source)},
        ))
    if offset < 0:
        raise ValidationError(f"offset={offset} must be 0 or more")
    drawn = select(tasks, None, seed)[offset:]
    return drawn if limit is None else select(drawn, limit)


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """{"em", "f1"}: normalised exact match and token F1, each the max over the gold answers."""
    return em_f1(prediction, task.gold)
