"""Checks of the arguments of a bank's public calls, shared by every backend.

A wrong type (`min_reward="high"`, `k="5"`, `limit=-1`, `since="yesterday"`, `ids="abc"`) must be
a `ValidationError` that names the value, the rule and the fix, raised before anything is read
or written, never a TypeError from deep in a driver or a filter that silently means something
else (a string of ids iterated as characters, `True` as a reward of 1). `BankBase` and both
backends call these before building SQL; the SQL builders (`schema.filter_sql`,
`postgres.filters.filter_sql`) may then trust the types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from numbers import Integral, Real
from typing import Any

from memento.errors import ValidationError

FILTERS = ("namespace", "namespace_prefix", "where", "min_reward", "max_reward", "text", "since", "until", "ids")
"""The case filters every bank call that selects cases takes (`search`, `iter_cases`, `count`, ...)."""


def check_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """`filters` with each value checked (and ids as a list); ValidationError for an unknown filter or a bad value."""
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise ValidationError(f"unknown case filter(s) {unknown!r:.120}; the filters are {', '.join(FILTERS)}")
    checked = dict(filters)
    for name in ("min_reward", "max_reward"):
        if checked.get(name) is not None:
            checked[name] = _reward_bound(name, checked[name])
    for name in ("since", "until"):
        value = checked.get(name)
        if value is not None and not isinstance(value, datetime):
            raise ValidationError(f"{name}={value!r:.80} is not a datetime; pass one, e.g. "
                                  f"datetime(2026, 1, 1, tzinfo=timezone.utc) or datetime.fromisoformat('2026-01-01T00:00:00+00:00')")
    text = checked.get("text")
    if text is not None and not isinstance(text, str):
        raise ValidationError(f"text={text!r:.80} is not a string; pass the words to look for in tasks and answers")
    if text is not None:
        check_unicode("text", text)
    where = checked.get("where")
    if where is not None and not isinstance(where, Mapping):
        raise ValidationError(f"where={where!r:.80} is not a dict; pass metadata equalities, e.g. where={{'dataset': 'hotpotqa'}}")
    for key, value in (where or {}).items():
        if isinstance(value, str):
            check_unicode(f"where[{key!r:.40}]", value)
    if checked.get("ids") is not None:
        checked["ids"] = _ids(checked["ids"])
    return checked


def check_unicode(name: str, value: str) -> None:
    """A lone surrogate cannot be encoded for any database driver (and no stored case holds one)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{name}={value!r:.80} holds a lone surrogate, which is not valid Unicode text; "
                              f"decode the text properly (e.g. errors='replace') before using it") from None


def namespace_listing_filters(prefix: Any, where: Any, filters: dict[str, Any]) -> dict[str, Any]:
    """The checked filters of `list_namespaces(prefix=..., where=..., **filters)`."""
    if "namespace_prefix" in filters:
        raise ValidationError("list_namespaces() takes the prefix as prefix=..., not namespace_prefix=...")
    return check_filters(dict(namespace_prefix=prefix, where=where, **filters))


def check_k(k: Any) -> int:
    """`k`, the number of hits a search returns, if it is a positive integer."""
    if not _is_int(k) or k < 1:
        raise ValidationError(f"k={k!r:.80} must be a positive integer (at most 2**63 - 1): the number of cases to return, e.g. k=8")
    return int(k)


def check_page(limit: Any, offset: Any) -> tuple[int | None, int]:
    """(limit, offset) of a listing: limit None (no limit) or an integer >= 0, offset an integer >= 0."""
    if limit is not None and (not _is_int(limit) or limit < 0):
        raise ValidationError(f"limit={limit!r:.80} must be None (no limit) or an integer from 0 to 2**63 - 1, e.g. limit=20")
    if not _is_int(offset) or offset < 0:
        raise ValidationError(f"offset={offset!r:.80} must be an integer from 0 to 2**63 - 1: how many rows to skip, e.g. offset=20")
    return (None if limit is None else int(limit)), int(offset)


def check_flag(name: str, value: Any, meaning: str = "True or False") -> bool:
    """A boolean argument (`descending=True`), never a truthy string such as 'no'; `meaning` says what each value does."""
    if not isinstance(value, bool):
        raise ValidationError(f"{name}={value!r:.80} must be {meaning}")
    return value


def _reward_bound(name: str, value: Any) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or math.isnan(value):
        raise ValidationError(f"{name}={value!r:.80} is not a number; pass a reward bound such as {name}=0.5 "
                              f"(rewards lie in [0, 1])")
    return float(value)


def _ids(ids: Any) -> list[str]:
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise ValidationError(f"ids={ids!r:.80} is not a collection of case ids; pass a list, e.g. ids=['c1', 'c2']")
    ids = list(ids)
    wrong = next((i for i in ids if not isinstance(i, str)), None)
    if wrong is not None:
        raise ValidationError(f"ids holds {wrong!r:.80}, which is not a case id; case ids are strings")
    for case_id in ids:
        check_unicode("ids", case_id)
    return ids


LARGEST = 2**63 - 1
"""The largest integer SQLite and PostgreSQL store (a signed 64-bit one); a larger limit overflowed the driver."""


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value <= LARGEST
