"""A cases page's query, from the address bar: search text, filters and page number.

The filters are the CLI's (`--namespace`, `--min-reward`, `--where key=value`, `--text`) and
become the same keyword arguments of `CaseBank.search` / `iter_cases` / `count`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from memento.cli.options import parse_where
from memento.errors import ValidationError

FAILURE_REWARD = 0.0
"""'Failures only' keeps the cases whose reward is at most this (a wrong answer scores 0)."""


def parse_number(value: str | None, name: str) -> float | None:
    """A number typed into a filter box, or None for an empty box."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValidationError(f"{name} {value!r} is not a number; type e.g. 0.5, or leave it empty") from None
    if not math.isfinite(number):
        raise ValidationError(f"{name} {value!r} is not a finite number; type e.g. 0.5, or leave it empty")
    return number


def parse_page(value: str | None) -> int:
    try:
        page = int(value or 1)
    except ValueError:
        raise ValidationError(f"page {value!r} is not a whole number; pages count from 1") from None
    if page < 1:
        raise ValidationError(f"page {page} does not exist; pages count from 1")
    return page


@dataclass(frozen=True)
class CaseQuery:
    """What the cases table shows: a semantic search (`q`) or a listing, narrowed by the filters."""

    q: str = ""
    """Text to rank the cases by (the bank's embedding search); empty: newest first."""
    text: str = ""
    """Task or answer contains this text (case-insensitive)."""
    namespace: str = ""
    min_reward: float | None = None
    max_reward: float | None = None
    where: tuple[str, ...] = field(default_factory=tuple)
    """Metadata equality, `key=value` each (the value read as JSON when it parses)."""
    failures: bool = False
    page: int = 1

    @classmethod
    def from_params(cls, params: Any) -> CaseQuery:
        """The query in a request's query parameters (a Starlette QueryParams or a plain mapping)."""
        get_list = params.getlist if hasattr(params, "getlist") else (lambda key: [params[key]] if key in params else [])
        return cls(q=(params.get("q") or "").strip(), text=(params.get("text") or "").strip(),
                   namespace=(params.get("namespace") or "").strip(),
                   min_reward=parse_number(params.get("min_reward"), "min reward"),
                   max_reward=parse_number(params.get("max_reward"), "max reward"),
                   where=tuple(w.strip() for w in get_list("where") if w.strip()),
                   failures=(params.get("failures") or "") in ("1", "on", "true"),
                   page=parse_page(params.get("page")))

    def filters(self) -> dict[str, Any]:
        """Keyword arguments of `CaseBank.search`, `iter_cases` and `count`."""
        max_reward = self.max_reward
        if self.failures:
            max_reward = FAILURE_REWARD if max_reward is None else min(max_reward, FAILURE_REWARD)
        found = {"namespace": self.namespace or None, "text": self.text or None, "where": parse_where(list(self.where)) or None,
                 "min_reward": self.min_reward, "max_reward": max_reward}
        return {key: value for key, value in found.items() if value is not None}

    def params(self, **changes: Any) -> str:
        """This query (with `changes`) as a query string, for the links of the page."""
        query = replace(self, **changes)
        pairs: list[tuple[str, Any]] = [(key, value) for key, value in (
            ("q", query.q), ("text", query.text), ("namespace", query.namespace),
            ("min_reward", "" if query.min_reward is None else f"{query.min_reward:g}"),
            ("max_reward", "" if query.max_reward is None else f"{query.max_reward:g}"),
            ("failures", "1" if query.failures else "")) if value]
        pairs += [("where", w) for w in query.where]
        if query.page != 1:
            pairs.append(("page", query.page))
        return urlencode(pairs)

