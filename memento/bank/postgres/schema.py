"""A PostgreSQL bank's tables, created and migrated by the code.

Everything lives in one schema per bank. `cases` holds each case's fields as SQLite does
(JSON text, so a case reads back byte for byte the same from either backend), its metadata
also as `jsonb` (a generated column, for filters), and its embedding as a pgvector `vector`.
Text that is sorted or compared as a prefix uses the "C" collation, so order and prefixes are
by code point, as in SQLite. Creating or migrating runs under an advisory lock, so processes
opening a new bank at once create it once.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
"""1: the first PostgreSQL schema. 2: `policy_ec_episodes`, the episodes the episodic-control policy recorded."""


def _episodes_table(qualifier: str = "") -> str:
    return (f"CREATE TABLE {qualifier}policy_ec_episodes (policy text NOT NULL, episode_id text NOT NULL, "
            f"PRIMARY KEY (policy, episode_id))")


MIGRATIONS: dict[int, list[str]] = {1: [_episodes_table()]}
"""Statements that take a bank from version N to N + 1, run in one transaction when an older bank opens
(unqualified names: the connection's search_path starts with the bank's schema)."""


def create_statements(schema: str, dim: int) -> list[str]:
    """The DDL of a new bank in `schema` (validated by PostgresConfig: safe to format in)."""
    s = f'"{schema}"'
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE {s}.bank_meta (key text PRIMARY KEY, value text NOT NULL)",
        f"""CREATE TABLE {s}.cases (
            seq bigserial UNIQUE,
            id text COLLATE "C" PRIMARY KEY,
            namespace text COLLATE "C" NOT NULL,
            task text COLLATE "C" NOT NULL,
            plan text NOT NULL,
            trajectory text NOT NULL,
            answer text NOT NULL,
            reward double precision NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            metadata text NOT NULL,
            metadata_json jsonb GENERATED ALWAYS AS (metadata::jsonb) STORED,
            procedure text NOT NULL DEFAULT '',
            embedding vector({int(dim)}) NOT NULL
        )""",
        f"CREATE INDEX cases_namespace ON {s}.cases (namespace)",
        f"CREATE INDEX cases_created_at ON {s}.cases (created_at)",
        f"""CREATE TABLE {s}.policy_replay (
            id bigserial PRIMARY KEY,
            policy text NOT NULL,
            episode_id text NOT NULL,
            state bytea NOT NULL,
            case_ids text[] NOT NULL,
            case_features bytea NOT NULL,
            reward double precision NOT NULL,
            done boolean NOT NULL,
            next_state bytea,
            next_ids text[] NOT NULL,
            next_features bytea NOT NULL,
            created_at text NOT NULL
        )""",
        f"CREATE INDEX policy_replay_policy ON {s}.policy_replay (policy, id)",
        f"""CREATE TABLE {s}.policy_case_stats (
            policy text NOT NULL,
            case_id text NOT NULL,
            shown bigint NOT NULL,
            reward_sum double precision NOT NULL,
            PRIMARY KEY (policy, case_id)
        )""",
        f"""CREATE TABLE {s}.policy_ec_entries (
            id bigserial PRIMARY KEY,
            policy text NOT NULL,
            case_id text NOT NULL,
            state bytea NOT NULL,
            q double precision NOT NULL,
            visits bigint NOT NULL
        )""",
        f"CREATE INDEX policy_ec_entries_policy ON {s}.policy_ec_entries (policy, case_id)",
        _episodes_table(f"{s}."),
        f"""CREATE TABLE {s}.policy_checkpoints (
            policy text NOT NULL,
            version bigint NOT NULL,
            created_at text NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (policy, version)
        )""",
        f"""CREATE TABLE {s}.agent_traces (
            seq bigserial,
            episode_id text PRIMARY KEY,
            case_id text,
            task text NOT NULL,
            reward double precision,
            created_at text COLLATE "C" NOT NULL,
            trace text NOT NULL
        )""",
        f"CREATE INDEX agent_traces_created_at ON {s}.agent_traces (created_at)",
    ]


def vector_index_statements(schema: str, kind: str, *, hnsw_m: int, ef_construction: int, lists: int) -> list[str]:
    """Drop the vector index and create the one of `kind` ('flat': none; search is then exact)."""
    s = f'"{schema}"'
    statements = [f"DROP INDEX IF EXISTS {s}.cases_embedding"]
    if kind == "hnsw":
        statements.append(f"CREATE INDEX cases_embedding ON {s}.cases USING hnsw (embedding vector_ip_ops) "
                          f"WITH (m = {int(hnsw_m)}, ef_construction = {int(ef_construction)})")
    elif kind == "ivfflat":
        statements.append(f"CREATE INDEX cases_embedding ON {s}.cases USING ivfflat (embedding vector_ip_ops) "
                          f"WITH (lists = {int(lists)})")
    return statements
