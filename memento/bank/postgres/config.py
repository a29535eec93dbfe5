"""`PostgresConfig`: how a PostgreSQL bank is reached and indexed, read from its URL.

    postgresql://user:secret@db.internal:5432/memento?schema=team_a&index=hnsw&ef_search=100

memento's own query parameters (below) are taken off the URL; the rest goes to libpq as it is
(`sslmode`, `connect_timeout`, a unix socket folder as `host=/path`, ...). One bank is one
PostgreSQL schema, so one database holds as many banks as it has schemas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from memento.errors import ValidationError

INDEX_KINDS = ("hnsw", "ivfflat", "flat")
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class PostgresConfig:
    """Options of a PostgreSQL bank (each also a URL query parameter of the same name)."""

    schema: str = "memento"
    """The PostgreSQL schema that holds this bank's tables (lower-case letters, digits and '_')."""
    index: str = "hnsw"
    """'hnsw' or 'ivfflat' (approximate, pgvector's indexes) or 'flat' (no index: exact search)."""
    hnsw_m: int = 16
    """HNSW graph degree."""
    ef_construction: int = 64
    """HNSW build-time beam width."""
    ef_search: int = 64
    """HNSW query-time beam width; raised to k for a larger k."""
    lists: int = 100
    """IVFFlat clusters (build the index once the bank holds data: `reindex()`)."""
    probes: int = 10
    """IVFFlat clusters visited per query."""
    max_scan_tuples: int = 20_000
    """How far an iterative index scan goes for a filtered search before the exact fallback."""
    pool_size: int = 4
    """Connections this process keeps open to the server."""

    def __post_init__(self) -> None:
        if not SCHEMA_NAME.fullmatch(self.schema):
            raise ValidationError(f"schema={self.schema!r} is not allowed: 1-63 lower-case letters, digits and '_', "
                                  "starting with a letter or '_' (e.g. 'memento' or 'team_a')")
        if self.index not in INDEX_KINDS:
            raise ValidationError(f"index kind {self.index!r} is not supported on PostgreSQL; use 'hnsw', 'ivfflat' "
                                  "(approximate) or 'flat' (exact)")
        numbers = {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}
        bad = [name for name, value in numbers.items() if not isinstance(value, int) or value < 1]
        if bad:
            raise ValidationError(f"{bad[0]}={numbers[bad[0]]!r} must be a whole number of at least 1")


def parse_url(url: str, **overrides: Any) -> tuple[str, str, PostgresConfig]:
    """(conninfo for libpq, the URL to show (no password, no memento options), config) of a bank URL."""
    parts = urlsplit(url)
    ours = {f.name: f for f in fields(PostgresConfig)}
    given: dict[str, Any] = {}
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ours:
            given[key] = int(value) if ours[key].type == "int" and value.isdigit() else value
        else:
            rest.append((key, value))
    given.update({k: v for k, v in overrides.items() if v is not None})
    config = replace(PostgresConfig(), **given)
    conninfo = urlunsplit(parts._replace(query=urlencode(rest)))
    shown_netloc = parts.netloc.rsplit("@", 1)
    if len(shown_netloc) == 2:
        shown_netloc = [shown_netloc[0].split(":", 1)[0] + "@" + shown_netloc[1]]
    shown = urlunsplit(parts._replace(netloc=shown_netloc[0], query=urlencode(rest + [("schema", config.schema)])))
    return conninfo, shown, config
