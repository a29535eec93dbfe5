"""The bank's SQLite schema and the mapping between rows and `Case` objects.

SQLite is the source of truth: every case row holds its embedding as a float32 blob,
so the FAISS index can always be rebuilt from it. `vid` is the case's id inside FAISS;
it is never reused, and a re-embedded case gets a new one, so the change log
(`bank_changes`) can replay adds and deletes in order in any process.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime
from typing import Any, Iterable

import numpy as np

from memento.case import Case, Step, namespace_key
from memento.errors import ValidationError
from memento.procedure import Procedure

SCHEMA_VERSION = 2
"""1: the first release. 2: adds `cases.procedure` (JSON of a `memento.procedure.Procedure`, '' for none)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS bank_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY,
    vid INTEGER NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    task TEXT NOT NULL,
    plan TEXT NOT NULL,
    trajectory TEXT NOT NULL,
    answer TEXT NOT NULL,
    reward REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    embedding BLOB NOT NULL,
    procedure TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cases_namespace ON cases (namespace);
CREATE INDEX IF NOT EXISTS cases_created_at ON cases (created_at);
CREATE TABLE IF NOT EXISTS bank_changes (
    generation INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'del')),
    vid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bank_changes_generation ON bank_changes (generation);
"""

CASE_FIELDS = "id, namespace, task, plan, trajectory, answer, reward, created_at, updated_at, metadata, procedure"
SELECT_CASE = f"SELECT {CASE_FIELDS} FROM cases"
ROW_COLUMNS = "id, vid, namespace, task, plan, trajectory, answer, reward, created_at, updated_at, metadata, embedding, procedure"
INSERT_CASE = f"INSERT INTO cases ({ROW_COLUMNS}) VALUES ({','.join('?' * len(ROW_COLUMNS.split(',')))})"

MIGRATIONS = {
    1: ["ALTER TABLE cases ADD COLUMN procedure TEXT NOT NULL DEFAULT ''"],
}
"""Statements that take a bank from version N to N + 1, run in one transaction when an older bank opens."""


def case_fields(case: Case) -> tuple:
    """The case's stored values, in CASE_FIELDS order (JSON text for lists and dicts, ISO times)."""
    return (
        case.id, namespace_key(case.namespace), case.task,
        json.dumps(case.plan, ensure_ascii=False),
        json.dumps([step.model_dump(mode="json") for step in case.trajectory], ensure_ascii=False),
        case.answer, case.reward, case.created_at.isoformat(), case.updated_at.isoformat(),
        json.dumps(case.metadata, ensure_ascii=False, default=str),
        case.procedure.model_dump_json() if case.procedure is not None else "",
    )


def case_to_row(case: Case, vid: int, vector: np.ndarray) -> tuple:
    """A `cases` row in ROW_COLUMNS order."""
    values = case_fields(case)
    return (values[0], vid, *values[1:10], np.asarray(vector, dtype=np.float32).tobytes(), values[10])


def row_to_case(row: sqlite3.Row | tuple) -> Case:
    """Build a Case from a row selected with SELECT_CASE (already validated when stored)."""
    id_, namespace, task, plan, trajectory, answer, reward, created, updated, metadata, procedure = row
    return stored_case({
        "id": id_, "namespace": tuple(namespace.split("/")), "task": task, "plan": _json(plan, list),
        "trajectory": [Step.model_construct(**s) for s in _json(trajectory, list)] if trajectory != "[]" else [],
        "answer": answer, "reward": reward, "created_at": _datetime(created), "updated_at": _datetime(updated),
        "metadata": _json(metadata, dict),
        "procedure": Procedure.model_validate_json(procedure) if procedure else None,
    })


CASE_FIELD_NAMES = tuple(Case.model_fields)


def stored_case(values: dict[str, Any]) -> Case:
    """A Case holding `values`, every field given in declaration order, without validating them again.

    What `Case.model_construct` does when every field is given, without its per-field walk over
    defaults and aliases, which cost more than the SQL read in a search (3.4 against 0.9 us a
    case; a search builds k of them). Only for values validated when they were written; a test
    checks the result equals the validated case (`tests/bank/test_case.py`).
    """
    case = Case.__new__(Case)
    object.__setattr__(case, "__dict__", values)
    object.__setattr__(case, "__pydantic_fields_set__", set(CASE_FIELD_NAMES))
    object.__setattr__(case, "__pydantic_extra__", None)
    object.__setattr__(case, "__pydantic_private__", None)
    return case


def _datetime(value: str | datetime) -> datetime:
    """A stored time: ISO text (SQLite) or a datetime already (PostgreSQL's timestamptz)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _json(text: str, empty: type) -> Any:
    """json.loads, skipped for the empty list or dict that most rows hold (search reads rows hot)."""
    return empty() if text in ("[]", "{}") else json.loads(text)


def blob_to_vector(blob: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32, count=dim)


# A metadata filter key: letters, digits, '_', '-' and '.', starting with a letter or '_'. The key only
# ever reaches SQL inside a bound JSON-path parameter; the pattern keeps that path a single member name.
METADATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")


def check_metadata_key(key: Any) -> str:
    """`key` if it is an allowed metadata filter key (every backend uses this rule), else ValidationError."""
    if not isinstance(key, str) or not METADATA_KEY.fullmatch(key):
        raise ValidationError(
            f"metadata filter key {key!r:.80} is not allowed: a key is 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or '_' (e.g. 'dataset' or 'judge_v2'); rename the key or filter in Python"
        )
    return key


def metadata_path(key: Any) -> str:
    """The JSON path of a top-level metadata key, for binding as a parameter (never spliced into SQL)."""
    return f'$."{check_metadata_key(key)}"'


def filter_value(key: str, value: Any) -> Any:
    """A metadata filter's value (a string or a number; a bool counts as 0 or 1), else ValidationError."""
    if isinstance(value, (dict, list)) or value is None or not isinstance(value, (str, int, float)):
        raise ValidationError(
            f"metadata filter {key}={value!r:.80}: only equality on strings, numbers and booleans is supported; "
            "filter other values in Python after iter_cases()"
        )
    return int(value) if isinstance(value, bool) else value


def prefix_key(namespace_prefix: Any) -> str:
    """The stored form of a namespace prefix; ValidationError for the empty one (it would match everything)."""
    if not namespace_key(namespace_prefix):
        raise ValidationError(
            "namespace_prefix '' would match every namespace; pass None (or leave --namespace-prefix out) "
            "to mean all namespaces, or name the prefix, e.g. 'team/alice'"
        )
    return namespace_key(namespace_prefix)


def filter_sql(*, namespace=None, namespace_prefix=None, where: dict[str, Any] | None = None,
               min_reward: float | None = None, max_reward: float | None = None,
               text: str | None = None, since: datetime | None = None,
               until: datetime | None = None, ids: Iterable[str] | None = None) -> tuple[str, list]:
    """A WHERE clause (or '') and its parameters for the usual case filters.

    `namespace` matches exactly; `namespace_prefix` matches that namespace and all below it.
    `where` is equality on metadata keys, e.g. {"dataset": "hotpotqa"}.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if namespace is not None:
        clauses.append("namespace = ?")
        params.append(namespace_key(namespace))
    if namespace_prefix is not None:
        prefix = prefix_key(namespace_prefix)
        clauses.append("(namespace = ? OR substr(namespace, 1, ?) = ?)")
        params += [prefix, len(prefix) + 1, prefix + "/"]
    for key, value in (where or {}).items():
        clauses.append("json_extract(metadata, ?) = ?")
        params += [metadata_path(key), filter_value(key, value)]
    if min_reward is not None:
        clauses.append("reward >= ?")
        params.append(float(min_reward))
    if max_reward is not None:
        clauses.append("reward <= ?")
        params.append(float(max_reward))
    if text:
        clauses.append("(instr(lower(task), lower(?)) > 0 OR instr(lower(answer), lower(?)) > 0)")
        params += [text, text]
    if since is not None:
        clauses.append("created_at >= ?")
        params.append(since.isoformat())
    if until is not None:
        clauses.append("created_at < ?")
        params.append(until.isoformat())
    if ids is not None:
        ids = list(ids)
        clauses.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
        params += ids
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
