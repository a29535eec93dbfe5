"""GAIA (2023): loader for a split folder and the official leaderboard scorer.

A split folder (e.g. `2023/validation/`) holds `metadata.jsonl` with one task a line
(`task_id`, `Question`, `Level`, `Final answer`, `file_name`, `Annotator Metadata`) and the
attachments named by `file_name`. On the test split `Final answer` is "?": those tasks load
with an empty gold list and cannot be scored here.

GAIA's terms ask that its data not be re-shared, so nothing of it ships with memento.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path

from memento.envs.task import Task, field, read_jsonl, require_file, select
from memento.errors import DataError, ValidationError

HIDDEN_ANSWER = "?"


def load_gaia(
    path: str | Path,
    *,
    levels: Iterable[int] | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Task]:
    """Tasks of one GAIA split; `path` is the split folder or its `metadata.jsonl`.

    `levels` keeps only those difficulty levels (1 to 3). Attachments are resolved to paths in
    the split folder and must exist.
    """
    path = require_file(path, "GAIA split")
    metadata_file = path / "metadata.jsonl" if path.is_dir() else path
    folder = require_file(metadata_file, "GAIA metadata").parent
    wanted = None if levels is None else {int(level) for level in levels}
    if wanted is not None and not wanted <= {1, 2, 3}:
        raise ValidationError(f"levels={sorted(wanted)} must be among 1, 2, 3")
    tasks = []
    for line_number, row in read_jsonl(metadata_file):
        where = f"{metadata_file}:{line_number}"
        task = _task_from_row(row, folder, where)
        if wanted is None or task.metadata["level"] in wanted:
            tasks.append(task)
    return select(tasks, limit, seed)


def _task_from_row(row: dict, folder: Path, where: str) -> Task:
    task_id = str(field(row, "task_id", where))
    answer = str(field(row, "Final answer", where)).strip()
    file_name = field(row, "file_name", where, default="") or ""
    attachments = []
    if file_name:
        attachment = folder / file_name
        if not attachment.exists():
            raise DataError(
                f"{where}: task {task_id} names attachment {file_name!r}, which is not in {folder}; download the whole split"
            )
        attachments.append(attachment)
    try:
        level = int(field(row, "Level", where))
    except (TypeError, ValueError) as error:
        raise DataError(f"{where}: Level {row.get('Level')!r} is not 1, 2 or 3") from error
    return Task(
        id=task_id,
        question=str(field(row, "Question", where)),
        gold=[] if answer == HIDDEN_ANSWER else [answer],
        benchmark="gaia",
        source="gaia",
        split=folder.name,
        metadata={
            "level": level,
            "file_name": file_name,
            "annotator_metadata": field(row, "Annotator Metadata", where, default={}),
        },
        attachments=attachments,
    )


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """{"em": 1.0 or 0.0} by the official GAIA rules."""
    if not task.scorable:
        raise DataError(
            f"GAIA task {task.id} has no gold answer (split {task.split!r} hides them); "
            "submit to the leaderboard to score it, or skip tasks whose `scorable` is False"
        )
    return {"em": float(question_scorer(prediction or "", task.gold[0]))}


# --- the official scorer (huggingface.co/spaces/gaia-benchmark/leaderboard, scorer.py) ---------


def question_scorer(prediction: str, gold: str) -> bool:
    """GAIA's rules: a number gold compares as float after stripping `$ % ,` from the prediction;
    a gold with `,` or `;` is a list compared element-wise; anything else compares as text with
    whitespace and punctuation removed, lowercased.

    Kept faithful, quirks included: other units make a number wrong ("17 km" is not 17), and a
    gold like "1,000" is a list of "1" and "000".
    """
    if _is_float(gold):
        return _number(prediction) == float(gold)
    if any(separator in gold for separator in ",;"):
        gold_items, predicted_items = _split_list(gold), _split_list(prediction)
        if len(gold_items) != len(predicted_items):
            return False
        return all(
            _number(predicted) == float(expected) if _is_float(expected)
            else _normalize_text(predicted, keep_punctuation=True) == _normalize_text(expected, keep_punctuation=True)
            for predicted, expected in zip(predicted_items, gold_items)
        )
    return _normalize_text(prediction) == _normalize_text(gold)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str) -> float:
    for unit in "$%,":
        text = text.replace(unit, "")
    try:
        return float(text)
    except ValueError:
        return float("inf")  # never equal to a gold number


def _split_list(text: str) -> list[str]:
    return re.split(r"[,;]", text)


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _normalize_text(text: str, keep_punctuation: bool = False) -> str:
    text = re.sub(r"\s", "", text).lower()
    return text if keep_punctuation else text.translate(_NO_PUNCTUATION)
