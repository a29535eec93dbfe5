"""Per-episode records (episodes.jsonl, appended and flushed one episode at a time) and the summary.

An episode is keyed by (arm, phase, iteration, task id, attempt). The log is the run's source of
truth: a restarted run reads it, skips the episodes it holds as done and never writes a done one
twice. An episode that errored is not done: the restarted run retries it and appends its new
record after the old one (the log is append-only), and the latest record of a key is the one
that counts. A line cut off by a crash mid-write is dropped on the next open (that episode is
run again).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from statistics import median
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from memento.envs.metrics import pass_at_k
from memento.evals.config import NO_MEMORY
from memento.evals.stats import Estimate, mean_over_tasks, paired_difference
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
    llm_calls: int | None = None
    """LLM calls the episode made; None in logs written before the runner counted them."""
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
    """episodes.jsonl: read once on open (repairing a cut-off last line), then appended one line at a time.

    `records` holds the latest record of each key, in the order the keys first appear.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._latest: dict[EpisodeKey, EpisodeRecord] = self._load()

    @property
    def records(self) -> list[EpisodeRecord]:
        return list(self._latest.values())

    def _load(self) -> dict[EpisodeKey, EpisodeRecord]:
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            # A crash cut the last line: that episode is not done, so drop the fragment.
            data = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as handle:
                handle.truncate(len(data))
        latest: dict[EpisodeKey, EpisodeRecord] = {}
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = EpisodeRecord.model_validate_json(line)
            except ValueError as error:
                raise DataError(f"{self.path}:{number} is not an episode record ({error}); "
                                f"fix or delete that line, or start a fresh run folder") from None
            if not self._is_done(latest.get(record.key)):
                latest[record.key] = record
        return latest

    @staticmethod
    def _is_done(record: EpisodeRecord | None) -> bool:
        return record is not None and record.error is None

    def __contains__(self, key: EpisodeKey) -> bool:
        """Whether the key has a record, done or errored."""
        return key in self._latest

    def done(self, key: EpisodeKey) -> bool:
        """Whether the episode of `key` finished without an error (an errored one is retried)."""
        return self._is_done(self._latest.get(key))

    def append(self, record: EpisodeRecord) -> bool:
        """Write one record and flush it to disk; False (nothing written) if its episode is already done."""
        line = record.model_dump_json() + "\n"
        with self._lock:
            if self.done(record.key):
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                # Worker processes of a distributed run append to the same file: one whole line each.
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            self._latest[record.key] = record
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


class ArmInterval(BaseModel):
    """EM and F1 of one arm on one pass, each a mean over tasks with its 95% bootstrap interval."""

    arm: str
    phase: Phase
    group: str
    """The pass number."""
    n: int
    """Episodes (tasks x attempts); the estimates' own `n` counts tasks."""
    em: Estimate
    f1: Estimate


class BaselineDifference(BaseModel):
    """One arm minus the no-memory arm on one pass, paired by task and attempt, with 95% bootstrap intervals."""

    arm: str
    baseline: str = NO_MEMORY
    phase: Phase
    group: str
    """The pass number."""
    pairs: int
    """Episodes paired (same task and attempt in both arms); the estimates' own `n` counts tasks."""
    em: Estimate
    f1: Estimate


class ArmCost(BaseModel):
    """What an episode of one arm cost in one phase: wall time, LLM calls, tokens and agent steps."""

    arm: str
    phase: Phase
    episodes: int
    seconds: float
    """Mean wall time of an episode (judge excluded)."""
    seconds_median: float
    llm_calls: float | None = None
    """Mean LLM calls per episode, over the episodes that recorded them; None when none did."""
    prompt_tokens: float
    completion_tokens: float
    steps: float


class TrainingCurve(BaseModel):
    """One arm's training episodes in the order they ran (all passes): the learning curve's data."""

    arm: str
    iteration: list[int]
    """The pass of each episode."""
    em: list[float]


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
    intervals: list[ArmInterval] = Field(default_factory=list)
    """Per arm and pass: EM and F1 with 95% bootstrap intervals over tasks."""
    versus_baseline: list[BaselineDifference] = Field(default_factory=list)
    """Per arm other than 'none' and pass: the paired difference to the 'none' arm; empty without that arm."""
    costs: list[ArmCost] = Field(default_factory=list)
    """Per arm and phase: mean episode time, LLM calls and tokens."""
    training_curves: list[TrainingCurve] = Field(default_factory=list)
    """Per arm: EM of each training episode in the order run."""
    errored_episodes: int = 0
    """Episodes whose latest record is an error (counted in `episodes`, as wrong answers); a resumed run retries them."""
    first_error: str | None = None
    """The first errored episode and its error, e.g. "similarity train 1 task t1 attempt 0: LLMConnectionError: ..."."""

    @computed_field
    @property
    def complete(self) -> bool:
        """Whether every planned episode is done without an error (else: run the same config again to resume)."""
        return self.episodes >= self.expected_episodes and self.errored_episodes == 0

    @property
    def scored_pass(self) -> tuple[Phase, str]:
        """(phase, pass) of the headline numbers: the test pass (split) or the last learning pass (iterated)."""
        return ("test", "1") if self.protocol == "split" else ("train", str(self.iterations))

    def row(self, arm: str, phase: str, group: str) -> MetricRow | None:
        """The by-iteration row of `arm` for `phase` and pass `group`, if any."""
        return next((r for r in self.by_iteration if (r.arm, r.phase, r.group) == (arm, phase, group)), None)

    def interval(self, arm: str, phase: str, group: str) -> ArmInterval | None:
        """EM and F1 with their intervals for `arm` on `phase` and pass `group`, if any."""
        return next((r for r in self.intervals if (r.arm, r.phase, r.group) == (arm, phase, group)), None)

    def difference(self, arm: str, phase: str, group: str) -> BaselineDifference | None:
        """The paired difference of `arm` to the 'none' arm on `phase` and pass `group`, if any."""
        return next((r for r in self.versus_baseline if (r.arm, r.phase, r.group) == (arm, phase, group)), None)


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
    errored = [r for r in records if r.error is not None]
    return EvalSummary(
        run_dir=run_dir, protocol=protocol, arms=arms, iterations=iterations, attempts=attempts,
        episodes=len(records), expected_episodes=expected_episodes,
        by_iteration=by_iteration,
        by_source=_rows(scored, arms, lambda r: r.source),
        by_domain=by_domain,
        elapsed_s=elapsed_s,
        episode_seconds=sum(r.seconds for r in records),
        intervals=[arm_interval(key, group) for key, group in _by_pass(records, arms).items()],
        versus_baseline=baseline_differences(records, arms),
        costs=[arm_cost(arm, phase, group) for (arm, phase), group in _grouped(records, arms, lambda r: r.phase)],
        training_curves=[TrainingCurve(arm=arm, iteration=[r.iteration for r in train],
                                       em=[r.scores.get("em", 0.0) for r in train])
                         for arm in arms if (train := [r for r in records if r.arm == arm and r.phase == "train"])],
        errored_episodes=len(errored),
        first_error=_describe_error(errored[0]) if errored else None,
    )


def _describe_error(record: EpisodeRecord) -> str:
    return (f"{record.arm} {record.phase} {record.iteration} task {record.task_id} attempt {record.attempt}: "
            f"{record.error}")


# --- intervals, differences to no memory, costs ---------------------------------------------


def _grouped(records: list[EpisodeRecord], arms: list[str],
             group_of) -> list[tuple[tuple[str, Any], list[EpisodeRecord]]]:
    """Records by (arm, group_of(record)), arms in run order, groups in first-seen order."""
    groups: dict[tuple[str, Any], list[EpisodeRecord]] = defaultdict(list)
    for record in records:
        groups[record.arm, group_of(record)].append(record)
    order = {arm: i for i, arm in enumerate(arms)}
    return sorted(groups.items(), key=lambda item: order.get(item[0][0], len(order)))


def _by_pass(records: list[EpisodeRecord], arms: list[str]) -> dict[tuple[str, Phase, str], list[EpisodeRecord]]:
    """Records by (arm, phase, pass): arms in run order, train passes in order, then the test pass."""
    order = {arm: i for i, arm in enumerate(arms)}
    ordered = sorted(records, key=lambda r: (order.get(r.arm, len(order)), r.phase != "train", r.iteration))
    groups: dict[tuple[str, Phase, str], list[EpisodeRecord]] = defaultdict(list)
    for record in ordered:
        groups[record.arm, record.phase, str(record.iteration)].append(record)
    return groups


def arm_interval(key: tuple[str, Phase, str], records: list[EpisodeRecord]) -> ArmInterval:
    """EM and F1 of one arm's pass, with bootstrap intervals over its tasks."""
    arm, phase, group = key
    return ArmInterval(arm=arm, phase=phase, group=group, n=len(records),
                       em=mean_over_tasks((r.task_id, r.scores.get("em", 0.0)) for r in records),
                       f1=mean_over_tasks((r.task_id, r.scores.get("f1", 0.0)) for r in records))


def baseline_differences(records: list[EpisodeRecord], arms: list[str]) -> list[BaselineDifference]:
    """Each arm minus the 'none' arm, pass by pass, on the tasks and attempts both ran."""
    groups = _by_pass(records, arms)
    differences = []
    for (arm, phase, group), rows in groups.items():
        baseline = groups.get((NO_MEMORY, phase, group))
        if arm == NO_MEMORY or not baseline:
            continue
        pairs = len({(r.task_id, r.attempt) for r in rows} & {(r.task_id, r.attempt) for r in baseline})
        if pairs:
            em, f1 = (paired_difference(_keyed(rows, metric), _keyed(baseline, metric)) for metric in ("em", "f1"))
            differences.append(BaselineDifference(arm=arm, phase=phase, group=group, pairs=pairs, em=em, f1=f1))
    return differences


def _keyed(records: list[EpisodeRecord], metric: str) -> dict[tuple[str, int], float]:
    return {(r.task_id, r.attempt): r.scores.get(metric, 0.0) for r in records}


def llm_calls_of(record: EpisodeRecord) -> int | None:
    """The record's LLM call count; for a log written before the field, the length of the trace's call list."""
    if record.llm_calls is not None:
        return record.llm_calls
    calls = record.trace.get("llm_calls") if isinstance(record.trace, dict) else None
    return len(calls) if isinstance(calls, list) else None


def arm_cost(arm: str, phase: Phase, records: list[EpisodeRecord]) -> ArmCost:
    """Mean (and median) wall time, LLM calls, tokens and steps of one arm's episodes in one phase."""
    calls = [c for c in map(llm_calls_of, records) if c is not None]
    return ArmCost(
        arm=arm, phase=phase, episodes=len(records),
        seconds=_mean(r.seconds for r in records), seconds_median=median(r.seconds for r in records),
        llm_calls=_mean(calls) if calls else None,
        prompt_tokens=_mean(r.prompt_tokens for r in records),
        completion_tokens=_mean(r.completion_tokens for r in records),
        steps=_mean(r.steps for r in records),
    )
