"""Cases as JSON lines: the export and import behind every backend's `export_jsonl` / `import_jsonl`.

One case a line (`Case.model_dump(mode="json")`), optionally with its "embedding", so an export
from one bank imports into another (SQLite or PostgreSQL) without re-embedding. An import reads
and validates every line before anything is written, so a bad line fails it whole.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator

import numpy as np

from memento.case import Case, validate_case
from memento.embedders import as_vector
from memento.errors import ImportFormatError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from memento.bank.interface import Bank

log = logging.getLogger("memento.bank")

EXPORT_CHUNK = 500  # cases whose vectors are read in one query while exporting


def export_cases(bank: "Bank", destination: str | Path | IO[str], *, with_vectors: bool = False,
                 **filters: Any) -> int:
    """Write the bank's matching cases as JSON lines (optionally with their embeddings); returns the count."""
    handle = open(destination, "w", encoding="utf-8") if isinstance(destination, (str, Path)) else destination
    try:
        n = 0
        cases = list(bank.iter_cases(**filters))
        for start in range(0, len(cases), EXPORT_CHUNK):
            chunk = cases[start:start + EXPORT_CHUNK]
            vectors = bank.vectors([c.id for c in chunk]) if with_vectors else [None] * len(chunk)
            for case, vector in zip(chunk, vectors):
                record = case.model_dump(mode="json")
                if with_vectors:
                    record["embedding"] = vector.tolist()
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
        return n
    finally:
        if handle is not destination:
            handle.close()


def cases_to_import(bank: "Bank", source: str | Path | IO[str], *, skip_bad_lines: bool,
                    on_conflict: str) -> tuple[list[Case], np.ndarray | None]:
    """The cases of a JSONL file to add to `bank`, with their vectors (embedded where a line has none).

    Raises ImportFormatError naming the line for a bad line (unless `skip_bad_lines`) and for an id
    the bank or an earlier line already has (unless `on_conflict='skip'`); nothing is written here.
    """
    if on_conflict not in ("error", "skip"):
        raise ValidationError(f"on_conflict={on_conflict!r}; choose 'error' or 'skip'")
    cases, vectors, line_numbers = read_jsonl(source, bank.dim, skip_bad_lines)
    seen: dict[str, int] = {}  # id -> the line that first gave it
    existing = {c.id for c in bank.iter_cases(ids=[c.id for c in cases])} if cases else set()
    keep = []
    for i, case in enumerate(cases):
        if case.id in existing or case.id in seen:
            if on_conflict == "error":
                problem = (f"repeats case id {case.id!r} of line {seen[case.id]}" if case.id in seen
                           else f"case id {case.id!r} is already in the bank")
                raise ImportFormatError(f"line {line_numbers[i]}: {problem}; nothing was imported; pass "
                                        f"on_conflict='skip' (--on-conflict skip) to leave those out", line_numbers[i])
            continue
        seen[case.id] = line_numbers[i]
        keep.append(i)
    cases = [cases[i] for i in keep]
    given = [vectors[i] for i in keep]
    missing = [i for i, v in enumerate(given) if v is None]
    if missing:
        for i, vector in zip(missing, bank.embed([cases[i].task for i in missing])):
            given[i] = vector
    return cases, (np.stack(given) if cases else None)


def _lines(handle: IO[str]) -> Iterator[str]:
    """Lines of a text file; a line that is not UTF-8 comes back as an error to report, not a crash."""
    while True:
        try:
            line = handle.readline()
        except UnicodeDecodeError as exc:
            raise ImportFormatError(f"the file is not UTF-8 text ({exc.reason}); export JSONL as UTF-8") from None
        if not line:
            return
        yield line


def read_jsonl(source: str | Path | IO[str], dim: int, skip_bad_lines: bool) -> tuple[list[Case], list, list[int]]:
    """Parse and validate every line before anything is written; returns cases, vectors and line numbers."""
    if isinstance(source, (str, Path)):
        if Path(source).is_dir():
            raise ValidationError(f"import file '{source}' is a directory; give a JSONL file, e.g. {Path(source) / 'cases.jsonl'}")
        if not Path(source).exists():
            raise NotFoundError(f"import file '{source}' does not exist")
        handle = open(source, encoding="utf-8")
    else:
        handle = source
    cases, vectors, line_numbers = [], [], []
    try:
        for number, line in enumerate(_lines(handle), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                embedding = record.pop("embedding", None) if isinstance(record, dict) else None
                case = validate_case(record)
                vector = None if embedding is None else as_vector(embedding, dim, what="embedding")
            except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
                if skip_bad_lines:
                    log.warning("skipping line %d: %s", number, exc)
                    continue
                raise ImportFormatError(f"line {number}: {exc}; nothing was imported (fix the line, "
                                        f"or pass skip_bad_lines=True / --skip-bad-lines)", number) from None
            cases.append(case)
            vectors.append(vector)
            line_numbers.append(number)
    finally:
        if handle is not source:
            handle.close()
    return cases, vectors, line_numbers
