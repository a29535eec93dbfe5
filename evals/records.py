"""Per-episode records (episodes.jsonl, appended and flushed one episode at a time) and the summary.

An episode is keyed by (arm, phase, iteration, task id, attempt). The log is the run's source of
truth: a restarted run reads it, skips the keys it holds and never writes one twice. A line cut
off by a crash mid-write is dropped on the next open (that episode is run again).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from envs.metrics import pass_at_k
from memento.errors import DataError

Phase = Literal["train", "test"]
EpisodeKey = tuple[str, str, int, str, int]
"""(arm, phase, iteration, task id, attempt)."""


def case_id_for(key: EpisodeKey) -> str:
    """The id of the case an episode writes: fixed by its key, so a re-run episode is detected."""
    arm, phase, iteration, task_id, attempt = key
    digest = hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:12]
    return f"{arm}-{phase}{iteration}-a{attempt}-{task_id[:120]}-{digest}"


class ShownCase(BaseModel):
    """A case the policy put in front of the agent, with the policy's score and the cosine similarity."""

    id: str
    score: float | None = None
    """None only in a record recovered from a case that kept the ids of what it was shown, not the scores."""
    similarity: float | None = None


class EpisodeRecord(BaseModel):
    """One line of episodes.jsonl: the task, the answer, its scores and what memory showed."""

    model_config = ConfigDict(extra="forbid")

    arm: str
    phase: Phase
    iteration: int
    """1-based pass over the task set (the test pass of the split protocol is 1)."""
    attempt: int = 0
    task_id: str
    question: str
    source: str
    benchmark: str
    domain: str = "unknown"
    """'in' or 'out' of DeepResearcher's training domains where the source says, else 'unknown'."""
    gold: list[str]
    answer: str = ""
    scores: dict[str, float] = Field(default_factory=dict)
    """em, f1 from the task's scorer; pm when a judge is configured."""
    reward: float = 0.0
    verdict: dict[str, Any] | None = None
    """The judge's grade, rationale, model, prompt id and raw reply."""
    learned: bool = False
    """Whether the episode wrote a case and updated its policy."""
    case_id: str | None = None
    shown: list[ShownCase] = Field(default_factory=list)
    same_task_shown: list[str] = Field(default_factory=list)
    """Shown cases whose task text equals this task (normalised): memory of this very question."""
    same_task_excluded: list[str] = Field(default_factory=list)
    """Retrieved cases the clean-split guard removed before the agent saw them."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    """Wall time of the episode (judge excluded)."""
    timings: dict[str, float] = Field(default_factory=dict)
    steps: int = 0
    error: str | None = None
    """Set when the episode failed with a memento error; it counts as a wrong answer."""
    recovered: bool = False
    """Rebuilt from the bank after a crash between the case write and the log write."""
    trace: Any = None
    finished_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @property
    def key(self) -> EpisodeKey:
        return (self.arm, self.phase, self.iteration, self.task_id, self.attempt)


class EpisodeLog:
    """episodes.jsonl: read once on open (repairing a cut-off last line), then appended one line at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.records: list[EpisodeRecord] = self._load()
        self.keys: set[EpisodeKey] = {record.key for record in self.records}

    def _load(self) -> list[EpisodeRecord]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            # A crash cut the last line: that episode is not done, so drop the fragment.
            data = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as handle:
                handle.truncate(len(data))
        records, seen = [], set()
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = EpisodeRecord.model_validate_json(line)
            except ValueError as error:
                raise DataError(f"{self.path}:{number} is not an episode record ({error}); "
                                f"fix or delete that line, or start a fresh run folder") from None
            if record.key not in seen:
                seen.add(record.key)
                records.append(record)
        return records

    def __contains__(self, key: EpisodeKey) -> bool:
        return key in self.keys

    def append(self, record: EpisodeRecord) -> bool:
        """Write one record and flush it to disk; False (nothing written) if its key is already there."""
        line = record.model_dump_json() + "\n"
        with self._lock:
            if record.key in self.keys:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.keys.add(record.key)
            self.records.append(record)
        return True


# --- the summary --------------------------------------------------------------------------


class MetricRow(BaseModel):
    """Mean scores of a group of episodes of one arm (one pass, one source or one domain)."""

    arm: str
    phase: Phase
    group: str
    """The pass number, the source or the domain, by table."""
    n: int
    """Episodes (tasks x attempts)."""
    em: float
    f1: float
    pm: float | None = None
    reward: float
    pass_at_k: dict[str, float] = Field(default_factory=dict)
    """'1'..'attempts' -> unbiased Pass@k of exact match over each task's attempts."""
    errors: int = 0
    cases_shown: float = 0.0
    same_task_shown: int = 0
    same_task_excluded: int = 0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    seconds: float = 0.0


class EvalSummary(BaseModel):
    """summary.json: the tables of the report, as data."""

    run_dir: str
    protocol: str
    arms: list[str]
    iterations: int
    attempts: int
    episodes: int
    expected_episodes: int
    by_iteration: list[MetricRow]
    """Per arm and pass (train passes, then the test pass of the split protocol)."""
    by_source: list[MetricRow]
    """Per arm and source, on the scored pass: the last pass (iterated) or the test pass (split)."""
    by_domain: list[MetricRow]
    """Per arm and domain (in/out), on the scored pass; empty when no task has a known domain."""
    elapsed_s: float = 0.0
    """Wall time of the invocation that wrote this summary (set-up included)."""
    episode_seconds: float = 0.0
    """Sum of episode wall times over the whole run, resumed parts included."""

    @computed_field
    @property
    def complete(self) -> bool:
        """Whether every planned episode is done (else: run the same config again to resume)."""
        return self.episodes >= self.expected_episodes

    def row(self, arm: str, phase: str, group: str) -> MetricRow | None:
        """The by-iteration row of `arm` for `phase` and pass `group`, if any."""
        return next((r for r in self.by_iteration if (r.arm, r.phase, r.group) == (arm, phase, group)), None)


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def metric_row(arm: str, phase: Phase, group: str, records: list[EpisodeRecord]) -> MetricRow:
    """Aggregate the records of one group."""
    judged = [r.scores["pm"] for r in records if "pm" in r.scores]
    attempts: dict[str, list[float]] = defaultdict(list)
    for record in records:
        attempts[record.task_id].append(record.scores.get("em", 0.0))
    max_k = min(len(v) for v in attempts.values())
    pass_k = {
        str(k): _mean(pass_at_k(len(v), int(sum(s >= 1.0 for s in v)), k) for v in attempts.values())
        for k in range(1, max_k + 1)
    }
    return MetricRow(
        arm=arm, phase=phase, group=group, n=len(records),
        em=_mean(r.scores.get("em", 0.0) for r in records),
        f1=_mean(r.scores.get("f1", 0.0) for r in records),
        pm=_mean(judged) if judged else None,
        reward=_mean(r.reward for r in records),
        pass_at_k=pass_k,
        errors=sum(r.error is not None for r in records),
        cases_shown=_mean(len(r.shown) for r in records),
        same_task_shown=sum(len(r.same_task_shown) for r in records),
        same_task_excluded=sum(len(r.same_task_excluded) for r in records),
        prompt_tokens=_mean(r.prompt_tokens for r in records),
        completion_tokens=_mean(r.completion_tokens for r in records),
        seconds=_mean(r.seconds for r in records),
    )


def _rows(records: list[EpisodeRecord], arms: list[str], group_of) -> list[MetricRow]:
    groups: dict[tuple[str, str, str], list[EpisodeRecord]] = defaultdict(list)
    for record in records:
        groups[record.arm, record.phase, group_of(record)].append(record)
    order = {arm: i for i, arm in enumerate(arms)}

    def sort_key(item):
        (arm, phase, group), _ = item
        number = int(group) if group.isdigit() else 0
        return order.get(arm, len(order)), phase != "train", number, group

    return [metric_row(arm, phase, group, rows) for (arm, phase, group), rows in sorted(groups.items(), key=sort_key)]


def summarize(records: list[EpisodeRecord], *, run_dir: str, protocol: str, arms: list[str], iterations: int,
              attempts: int, expected_episodes: int, elapsed_s: float = 0.0) -> EvalSummary:
    """The summary of a run's records: per pass, and on the scored pass per source and per domain."""
    by_iteration = _rows(records, arms, lambda r: str(r.iteration))
    scored_phase, scored_pass = ("test", 1) if protocol == "split" else ("train", iterations)
    scored = [r for r in records if r.phase == scored_phase and r.iteration == scored_pass]
    by_domain = [row for row in _rows(scored, arms, lambda r: r.domain) if row.group in ("in", "out")]
    return EvalSummary(
        run_dir=run_dir, protocol=protocol, arms=arms, iterations=iterations, attempts=attempts,
        episodes=len(records), expected_episodes=expected_episodes,
        by_iteration=by_iteration,
        by_source=_rows(scored, arms, lambda r: r.source),
        by_domain=by_domain,
        elapsed_s=elapsed_s,
        episode_seconds=sum(r.seconds for r in records),
    )
