"""The usual case filters as a PostgreSQL WHERE clause: fixed SQL text, every value bound.

The same rules as the SQLite backend (`memento.bank.schema`): metadata keys must match the
strict key pattern and are bound as parameters too; values are strings or numbers, and a
boolean equals 0/1 as SQLite's JSON functions make it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from memento.bank.schema import check_metadata_key, filter_value, prefix_key
from memento.case import namespace_key
from memento.errors import ValidationError

# A number filter matches a JSON number or a JSON boolean (true = 1), never a string, as in SQLite.
NUMBER_MATCH = ("CASE jsonb_typeof(metadata_json -> %s) WHEN 'number' THEN (metadata_json ->> %s)::float8 = %s "
                "WHEN 'boolean' THEN ((metadata_json ->> %s)::boolean)::int = %s ELSE false END")
TEXT_MATCH = "(jsonb_typeof(metadata_json -> %s) = 'string' AND metadata_json ->> %s = %s)"


def filter_sql(*, namespace=None, namespace_prefix=None, where: dict[str, Any] | None = None,
               min_reward: float | None = None, max_reward: float | None = None,
               text: str | None = None, since: datetime | None = None,
               until: datetime | None = None, ids: Iterable[str] | None = None) -> tuple[str, list]:
    """A WHERE clause (or '') with %s placeholders, and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if namespace is not None:
        clauses.append("namespace = %s")
        params.append(namespace_key(namespace))
    if namespace_prefix is not None:
        prefix = prefix_key(namespace_prefix)
        # "C" collation: the names under prefix/ sort between 'prefix/' and 'prefix0' ('0' follows '/').
        clauses.append("(namespace = %s OR (namespace >= %s AND namespace < %s))")
        params += [prefix, prefix + "/", prefix + "0"]
    for key, value in (where or {}).items():
        key = check_metadata_key(key)
        value = filter_value(key, value)
        if isinstance(value, str):
            _no_nul(value, f"metadata filter {key}={value!r:.80}")
            clauses.append(TEXT_MATCH)
            params += [key, key, value]
        else:
            clauses.append(NUMBER_MATCH)
            params += [key, key, float(value), key, float(value)]
    if min_reward is not None:
        clauses.append("reward >= %s")
        params.append(float(min_reward))
    if max_reward is not None:
        clauses.append("reward <= %s")
        params.append(float(max_reward))
    if text:
        _no_nul(text, f"text filter {text!r:.80}")
        clauses.append("(strpos(lower(task), lower(%s)) > 0 OR strpos(lower(answer), lower(%s)) > 0)")
        params += [text, text]
    if since is not None:
        clauses.append("created_at >= %s")
        params.append(since)
    if until is not None:
        clauses.append("created_at < %s")
        params.append(until)
    if ids is not None:
        clauses.append("id = ANY(%s)")
        params.append(list(ids))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _no_nul(value: str, what: str) -> None:
    if "\x00" in value:
        raise ValidationError(f"{what} holds a NUL character, which PostgreSQL text cannot hold (so no case "
                              f"has it); remove it from the filter")
