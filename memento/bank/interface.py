"""`Bank`: what the rest of memento needs from a case bank, whatever stores it.

Two backends implement it: `CaseBank` (SQLite rows + a FAISS index, one file; the embedded
default) and `PostgresBank` (PostgreSQL + pgvector, one schema shared by many processes and
hosts; `pip install 'memento[postgres]'`). `CaseBank.open(location)` picks one: a path opens
SQLite, a `postgresql://` URL opens PostgreSQL.

Callers (policies, the agent, the LangGraph store adapter, the CLI, the evals) hold a `Bank`
and nothing else: no connection, no SQL. Everything a policy keeps (its replay buffer, the
per-case statistics, episodic entries, checkpoints) and the agent's traces go through the
methods below, so each backend owns its tables and its transactions.

Records the bank stores for the policies are small frozen dataclasses of plain values and
numpy arrays; a backend decides how they are encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from memento.case import Case
from memento.embedders import Embedder


@dataclass
class SearchHit:
    """A case found by search, with its cosine similarity to the query."""

    case: Case
    score: float
    vector: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ReplayRow:
    """One step a learned policy recorded, as the bank stores it (`policies.replay` builds on it)."""

    policy: str
    """The policy's name: several policies can learn on one bank."""
    episode_id: str
    state: np.ndarray
    """(dim,) embedding of the task."""
    case_ids: tuple[str, ...]
    case_features: np.ndarray
    """(len(case_ids), n_features) features the policy saw for the cases it showed."""
    reward: float
    done: bool
    next_state: np.ndarray | None = None
    next_ids: tuple[str, ...] = ()
    next_features: np.ndarray | None = None
    """(len(next_ids), n_features), or None for none."""
    created_at: str = ""
    row_id: int = 0
    """The bank's id of the row (0 before it is stored); increasing in the order rows were added."""


@dataclass(frozen=True)
class EpisodicEntry:
    """One (state, Q, visits) entry of a case in the episodic-control policy's table."""

    case_id: str
    state: np.ndarray
    q: float
    visits: int
    row_id: int = 0
    """0: a new entry to insert; otherwise the stored entry whose q and visits to overwrite."""


@dataclass
class PolicyState:
    """Everything one policy keeps in a bank: what `memento bank copy` moves between backends."""

    policy: str
    replay: list[ReplayRow] = field(default_factory=list)
    stats: dict[str, tuple[int, float]] = field(default_factory=dict)
    entries: list[EpisodicEntry] = field(default_factory=list)
    checkpoints: list[tuple[int, bytes]] = field(default_factory=list)
    """(version, bytes), oldest first."""
    episodes: list[str] = field(default_factory=list)
    """Episode ids the episodic-control policy noted as recorded (`Bank.episodic_recorded`)."""


@runtime_checkable
class Bank(Protocol):
    """A case bank: cases with their embeddings, and what the policies and the agent keep beside them.

    Every write is atomic: a call that raises leaves the stored data as it was. Errors come from
    `memento.errors` (ValidationError, NotFoundError, BankError, EmbedderMismatchError) with the
    same messages on every backend.
    """

    path: Any
    """Where the bank lives: a file path (SQLite) or a URL without its password (PostgreSQL)."""
    dim: int
    embedder_name: str

    # -- embedding --------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit-length float32 embeddings of texts, by the bank's embedder."""

    # -- cases --------------------------------------------------------------------------------------

    def add(self, case: Case | dict, *, vector: np.ndarray | None = None) -> Case:
        """Add one case (embedding its task unless `vector` is given); returns the stored case."""

    def add_many(self, cases: Iterable[Case | dict], *, vectors: np.ndarray | None = None,
                 batch_size: int = 256, progress: bool = False) -> list[Case]:
        """Add cases, one transaction per batch; every case is validated before anything is written."""

    def update(self, case_id: str, *, vector: np.ndarray | None = None, **fields: Any) -> Case:
        """Change fields of a stored case; a new task (or a given vector) re-embeds it."""

    def delete(self, case_id: str) -> None:
        """Delete one case; NotFoundError if it is not there."""

    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False) -> int:
        """Delete cases by id in one transaction; returns how many were deleted."""

    def delete_where(self, *, namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> int:
        """Delete every case matching the filters (at least one is required)."""

    def get(self, case_id: str) -> Case:
        """The case with this id; NotFoundError if there is none."""

    def get_many(self, ids: Sequence[str]) -> list[Case]:
        """Cases in the order of `ids`; NotFoundError naming the first missing one."""

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored embeddings of these cases, (len(ids), dim) float32, in order."""

    def search(self, query: str | np.ndarray, k: int = 8, *, namespace=None, namespace_prefix=None,
               where: dict[str, Any] | None = None, with_vectors: bool = False, **filters: Any) -> list[SearchHit]:
        """The k cases most similar to the query; filters restrict the search, so k come back when k match."""

    def iter_cases(self, *, namespace=None, namespace_prefix=None, where: dict | None = None,
                   order_by: str = "created_at", descending: bool = False, limit: int | None = None,
                   offset: int = 0, **filters: Any) -> Iterator[Case]:
        """Cases matching the filters, in order."""

    def count(self, *, namespace=None, namespace_prefix=None, where: dict | None = None, **filters: Any) -> int:
        """How many cases match the filters."""

    def __len__(self) -> int: ...

    def list_namespaces(self, *, prefix=None, where: dict | None = None, **filters: Any) -> list[tuple[str, ...]]:
        """Distinct namespaces, sorted."""

    def stats(self) -> dict[str, Any]:
        """Counts per namespace and dataset, the reward distribution, the index's health."""

    def export_jsonl(self, destination: str | Path | IO[str], *, with_vectors: bool = False, **filters: Any) -> int:
        """Write matching cases as JSON lines; returns the count."""

    def import_jsonl(self, source: str | Path | IO[str], *, skip_bad_lines: bool = False,
                     on_conflict: str = "error") -> int:
        """Import cases from JSON lines in one transaction; returns how many were added."""

    def reindex(self, embedder: Embedder | None = None, *, batch_size: int = 256, progress: bool = False) -> None:
        """Rebuild the vector index, or re-embed every case with another embedder (all or nothing)."""

    def save_index(self) -> None:
        """Persist whatever the backend keeps outside its database (a no-op where nothing is)."""

    # -- what learned policies keep -----------------------------------------------------------------

    def append_replay(self, row: ReplayRow, *, drop_row_id: int | None = None) -> int:
        """Store a step, count its cases as shown in the policy's statistics, and delete the row
        `drop_row_id` (the oldest, when the buffer is full), in one transaction. Returns the new row id."""

    def replay_rows(self, policy: str, *, limit: int, n_features: int) -> list[ReplayRow]:
        """The newest `limit` steps of `policy`, oldest first; features reshaped to `n_features` columns
        (-1: as wide as they were stored)."""

    def case_stats(self, policy: str) -> dict[str, tuple[int, float]]:
        """case id -> (times shown, sum of the rewards it was shown with), for `policy`."""

    def forget_replay(self, policy: str, *, row_ids: Iterable[int], case_ids: Iterable[str],
                      stats: Mapping[str, tuple[int, float]] | None = None) -> None:
        """Delete these steps and the statistics of these cases, and store `stats` (case id ->
        (times shown, reward sum)) as the new statistics of some of them, in one transaction."""

    def episodic_entries(self, policy: str) -> list[EpisodicEntry]:
        """Every episodic-control entry of `policy`, in the order they were added."""

    def write_episodic_entries(self, policy: str, entries: Sequence[EpisodicEntry], *,
                               episode_id: str | None = None) -> list[int]:
        """Insert the entries with row_id 0 and overwrite q and visits of the others, and note
        `episode_id` as recorded, in one transaction; returns each entry's row id."""

    def episodic_recorded(self, policy: str, episode_id: str) -> bool:
        """Whether `write_episodic_entries` noted `episode_id` for `policy` (so a resumed run does not
        record a recovered episode twice)."""

    def episodic_episodes(self, policy: str) -> list[str]:
        """Every episode id noted for `policy`, sorted."""

    def delete_episodic_entries(self, policy: str, case_ids: Iterable[str]) -> None:
        """Delete every entry of these cases, in one transaction."""

    def save_checkpoint(self, policy: str, data: bytes) -> int:
        """Store a new version of a policy's weights (bytes the policy wrote); returns its version."""

    def load_checkpoint(self, policy: str, *, newer_than: int = 0, version: int | None = None) -> tuple[int, bytes] | None:
        """(version, bytes) of the newest checkpoint of `policy` (or of `version`), or None if there is none
        newer than `newer_than`."""

    def checkpoint_versions(self, policy: str) -> list[int]:
        """The stored checkpoint versions of `policy`, oldest first."""

    def restore_policy(self, state: PolicyState) -> None:
        """Write a policy's records as they are (copying a bank): rows in order, stats and checkpoint versions
        as given, in one transaction. The policy must keep nothing in this bank yet."""

    def policy_names(self) -> list[str]:
        """Names of the policies that keep anything in this bank."""

    # -- agent traces -------------------------------------------------------------------------------

    def save_trace(self, trace: dict[str, Any]) -> None:
        """Insert or replace the trace of `trace["episode_id"]`."""

    def get_trace(self, episode_id: str) -> dict[str, Any]:
        """The trace of one episode; NotFoundError if there is none."""

    def list_traces(self, *, limit: int | None = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first: {"episode_id", "case_id", "task", "reward", "created_at"} per episode."""

    # -- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the bank's connections (and save what needs saving)."""

    def __enter__(self) -> "Bank": ...

    def __exit__(self, *exc_info: Any) -> None: ...


TRACE_FIELDS = ("episode_id", "case_id", "task", "reward", "created_at")
"""The columns of a trace summary, in `list_traces` order."""
