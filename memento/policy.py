"""The case-selection policy interface: the task state, a selection, the base class, checkpoints.

The library holds the interface (the agent calls it); `policies/` holds the implementations
(similarity, neural soft-Q, episodic control, no memory), each importing this module.

In the memory-augmented MDP of AgentFly/Memento the agent acts with
pi(a|s,M) = sum_c mu(c|s,M) p_LLM(a|s,c); the LLM is frozen and mu, the case-selection policy,
is what learns. A policy here does four things:

    policy = make_policy("neural", bank)                      # bound to its bank once
    selections = policy.select(state, k=4, explore=True)      # which cases the agent sees
    policy.record(state, [s.case.id for s in selections], reward)  # what came of it
    metrics = policy.update()                                 # learn from what was recorded
    policy.save("policy.pt"); policy.close()                  # close() frees its name on the bank
    policy = load_policy("policy.pt", bank)                   # later, or in another process

A policy is bound to one bank, on construction (or once, with `bind`): the learned ones keep
their replay buffer and statistics in that bank's SQLite file, in tables prefixed `policy_`
and keyed by the policy's name, so learning survives restarts. While a learned policy lives it
holds its name on the bank: a second live policy of that name is a PolicyError unless it is
made with `share=True`. Everything after the state is keyword-only, so that `k`, the bank and
the flags cannot be swapped by position; `k` is the caller's (`AgentConfig.k`), `DEFAULT_K`
when not given.
"""

from __future__ import annotations

import math
import os
import tempfile
import uuid
import weakref
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Collection, Sequence, Union

import numpy as np

from memento.bank.arguments import check_flag
from memento.case import Case
from memento.case import check_reward as check_case_reward
from memento.errors import NotFoundError, PolicyError, ValidationError

CHECKPOINT_VERSION = 1

DEFAULT_K = 4
"""Cases `select` returns when it is not told `k` (the paper's best). The agent always tells it: the one
owner of k is the caller's config (`AgentConfig.k`, `EvalConfig.k`), never the policy's."""

Exclude = Union[Collection[str], Callable[[Case], bool], None]
"""Cases `select` must never return: a collection of case ids, or a predicate true for a case to leave out."""


@dataclass(frozen=True)
class TaskState:
    """What a policy sees of the task at hand: its text and its unit-length embedding."""

    task: str
    embedding: np.ndarray
    episode_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Groups the steps of one multi-step episode; a fresh id per state by default."""

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task.strip():
            raise ValidationError(f"task state text {self.task!r} is empty; pass the task the agent is solving")
        vector = np.asarray(self.embedding, dtype=np.float32).reshape(-1)
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise ValidationError(
                f"the embedding of task {self.task[:60]!r} is empty or not finite; embed the task with the bank's embedder"
            )
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise ValidationError(f"the embedding of task {self.task[:60]!r} is all zeros; embed the task with the bank's embedder")
        object.__setattr__(self, "embedding", np.ascontiguousarray(vector / norm, dtype=np.float32))

    @classmethod
    def from_task(cls, bank: Any, task: str, **kwargs: Any) -> TaskState:
        """Embed `task` with the bank's embedder."""
        if not isinstance(task, str) or not task.strip():
            raise ValidationError(f"task text {task!r} is empty; pass the task the agent is solving")
        return cls(task=task, embedding=bank.embed([task])[0], **kwargs)


@dataclass(frozen=True)
class PolicyConfig:
    """The base of every policy's config. `k` is not a policy setting: the caller passes it to `select`."""


@dataclass(frozen=True)
class RerankConfig(PolicyConfig):
    """Settings shared by the policies that re-rank the FAISS top-N."""

    candidates: int = 32
    """N: how many FAISS nearest cases are re-ranked (at least k + 1 are, whatever N is)."""
    seed: int = 0
    """Seeds the policy's random draws (and a network's initial weights)."""

    def __post_init__(self) -> None:
        check_config(self, [(isinstance(self.candidates, int) and not isinstance(self.candidates, bool)
                             and self.candidates >= 2, "candidates (N) must be an integer of at least 2"),
                            (isinstance(self.seed, int), "seed must be an integer")])


@dataclass(frozen=True)
class LearnedConfig(RerankConfig):
    """Settings shared by the policies that learn: their name on the bank, discounting, change detection."""

    name: str = "policy"
    """Key of this policy's rows in the bank's `policy_` tables (two live policies on one bank need two names)."""
    alpha: float = 0.5
    """Temperature of mu(c|s) ~ exp(Q/alpha) while exploring: higher explores more."""
    gamma: float = 0.9
    """Discount of multi-step episodes."""
    change_threshold: float = 4.5
    """CUSUM level at which a case's outcomes, below its recent record, confirm a change; 0 = never."""
    suspect_threshold: float = 2.0
    """Level at which a change is suspected and tested: learning episodes there show similarity's picks; 0 = off."""
    test_episodes: int = 3
    """Learning episodes that test a suspected change."""
    test_margin: float = 0.3
    """How much better than the suspected cases' recent rate the similarity picks must do (or reach 90 %)."""
    change_drop: float = 0.4
    """The change looked for: a case's chance of success falls to this fraction of its recent rate."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_config(self, [
            (isinstance(self.name, str) and bool(self.name.strip()), "name must be a non-empty string"),
            (self.alpha > 0 and 0 <= self.gamma <= 1, "need alpha > 0 and 0 <= gamma <= 1"),
            (self.change_threshold >= 0 and self.suspect_threshold >= 0 and self.test_episodes >= 1
             and 0 < self.change_drop < 1, "need change and suspect thresholds >= 0, test_episodes >= 1, 0 < change_drop < 1"),
        ])


@dataclass(frozen=True)
class Selection:
    """One case a policy chose, with the score it chose it by."""

    case: Case
    score: float
    """The policy's score: cosine similarity for `SimilarityPolicy`, Q(s, c) for the learned ones."""
    similarity: float
    """Cosine similarity between the task and the case's task."""


@dataclass(frozen=True)
class Candidates:
    """The FAISS top-N for a state: cases, their vectors and cosine similarities, best first."""

    cases: list[Case]
    vectors: np.ndarray
    similarities: np.ndarray

    def __len__(self) -> int:
        return len(self.cases)


class CaseSelectionPolicy(ABC):
    """The interface every case-selection policy implements.

    Subclasses set `kind` and `config_class`, and implement `select`, plus `record`/`update`
    and `_model_state`/`_load_model_state` where they learn.
    """

    kind: ClassVar[str]
    config_class: ClassVar[type]
    storage: ClassVar[str | None] = None
    """The bank table this policy keeps its learning in, keyed by `config.name`; None: it keeps nothing there."""

    def __init__(self, bank: Any = None, config: Any = None, *, share: bool = False):
        """`share=True` lets this policy share its learning with a live policy of the same name on the bank."""
        self.share = share
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise ValidationError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.bank: Any = None
        self.step = 0
        """Gradient (or table) updates done so far."""
        if bank is not None:
            self.bind(bank)

    # -- binding -------------------------------------------------------------------------------

    def bind(self, bank: Any) -> None:
        """Attach the policy to `bank`; a learned policy loads its replay buffer from it."""
        if self.bank is bank:
            return
        if self.bank is not None:
            raise PolicyError(
                f"this {self.kind} policy is bound to bank {str(self.bank.path)!r} and keeps its learning there; "
                f"create another policy for bank {str(bank.path)!r}"
            )
        self._claim(bank)
        self.bank = bank
        self._on_bind(bank)

    def _claim(self, bank: Any) -> None:
        """PolicyError if a live policy of this name keeps its learning in the same table of the same bank."""
        if self.storage is None:
            return
        key = (_bank_key(bank), self.storage, self.config.name)
        other = _CLAIMS.get(key)
        if other is not None and other is not self and not self.share:
            raise PolicyError(
                f"a {other.kind} policy named {self.config.name!r} is already learning on bank {str(bank.path)!r}; "
                f"two policies with one name share one replay buffer (the {self.storage!r} rows named "
                f"{self.config.name!r}), so each would learn from the other's episodes. Give this one its own "
                f"name (name='...'), close the other first (policy.close()), or pass share=True to share on purpose"
            )
        if other is None:
            _CLAIMS[key] = self

    def close(self) -> None:
        """Give up this policy's name on its bank, so another policy may take it (its learning stays in the bank)."""
        if self.bank is not None and self.storage is not None:
            key = (_bank_key(self.bank), self.storage, self.config.name)
            if _CLAIMS.get(key) is self:
                del _CLAIMS[key]

    def _on_bind(self, bank: Any) -> None:
        """Hook for subclasses: load whatever they keep in the bank."""

    def _bank(self) -> Any:
        if self.bank is None:
            raise PolicyError(f"this {self.kind} policy has no bank yet; pass one to the constructor "
                              f"(make_policy({self.kind!r}, bank)) or call policy.bind(bank)")
        return self.bank

    # -- the interface ---------------------------------------------------------------------------

    @abstractmethod
    def select(self, state: TaskState, *, k: int | None = None, explore: bool = False,
               namespace: tuple[str, ...] | None = None, exclude: Exclude = None) -> list[Selection]:
        """Choose up to `k` (default `DEFAULT_K`) cases for `state` from the policy's bank (fewer when it has fewer).

        `explore=True` while learning (sample), `False` when evaluating (take the best).
        `namespace` limits the cases to one namespace; `exclude` (case ids, or a predicate on a
        `Case`) names cases never to return: the policy chooses among the others, as if the
        excluded ones were not in the bank (an eval's same-task guard, a user's blocklist).
        """

    def record(self, state: TaskState, selected_ids: Sequence[str], reward: float, *,
               next_state: TaskState | None = None, done: bool = True,
               namespace: tuple[str, ...] | None = None) -> None:
        """Remember that showing `selected_ids` for `state` earned `reward`.

        For a multi-step episode pass the state that followed as `next_state` with `done=False`
        (and the `namespace` its cases come from). The base policy only checks its input.
        """
        self._check_outcome(state, selected_ids, reward, next_state, done)

    def has_recorded(self, episode_id: str) -> bool:
        """Whether `record` stored a step of `episode_id` (a resumed eval asks before recording a recovered
        episode). False for a policy that keeps nothing, for which recording again changes nothing."""
        return False

    def update(self) -> dict[str, float]:
        """Learn from what was recorded; returns metrics under namespaced keys (`losses/q_loss`)."""
        return {}

    def keep_watch(self, previous: CaseSelectionPolicy) -> None:
        """Take over what `previous`, the copy this one replaces, noticed itself and no checkpoint carries.

        A worker of a distributed run replaces its copy whenever the learner saves a newer
        checkpoint. What only the worker saw (which of its episodes probed the prior, the change
        sums of its own outcomes) would restart with every reload. Nothing, for a policy that
        watches nothing.
        """

    def summary(self) -> dict[str, Any]:
        """What the policy has learned, in a few numbers (shown by `memento policy show`)."""
        return {"step": self.step}

    def usefulness(self, cases: Sequence[Case]) -> np.ndarray:
        """A task-independent score per case, higher is more useful (for ranking and pruning)."""
        raise PolicyError(f"a {self.kind} policy learns nothing about cases, so it cannot rank them; "
                          f"use a learned policy (neural, episodic) or rank by the cases' stored reward")

    # -- checks shared by every policy -----------------------------------------------------------

    def _k(self, k: int | None) -> int:
        k = DEFAULT_K if k is None else k
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValidationError(f"k={k!r} must be a positive integer: the number of cases to show")
        return k

    def _check_select(self, state: TaskState, k: int | None, explore: Any) -> int:
        """`select`'s arguments checked before anything is chosen; returns k.

        `explore` must be a bool: a string such as "no" is truthy and would make an evaluation explore.
        """
        check_flag("explore", explore, "True (while learning) or False (when evaluating)")
        self._check_state(state, self._bank())
        return self._k(k)

    def _check_state(self, state: TaskState, bank: Any, what: str = "state") -> None:
        if not isinstance(state, TaskState):
            raise ValidationError(f"{what} must be a TaskState, got {type(state).__name__}; build it with TaskState.from_task(bank, text)")
        if state.embedding.shape[0] != bank.dim:
            raise ValidationError(
                f"{what} embedding has dim {state.embedding.shape[0]} but bank {str(bank.path)!r} has dim {bank.dim}; "
                f"embed the task with the bank's embedder (TaskState.from_task(bank, text))"
            )

    def _check_outcome(self, state: TaskState, selected_ids: Sequence[str], reward: float,
                       next_state: TaskState | None, done: bool) -> list[Case]:
        """Validate an outcome before anything is written; returns the shown cases."""
        bank = self._bank()
        self._check_state(state, bank)
        check_reward(reward)
        if not done:
            if next_state is None:
                raise ValidationError("done=False needs the next_state the episode moved to; pass done=True for the last step")
            self._check_state(next_state, bank, "next_state")
        if isinstance(selected_ids, str):
            raise ValidationError(f"selected_ids must be a list of case ids, got the string {selected_ids!r}")
        ids = list(selected_ids)
        if len(set(ids)) != len(ids):
            raise ValidationError(f"selected_ids {ids!r} repeats a case; each shown case counts once")
        if not ids:
            return []
        try:
            return bank.get_many(ids)
        except NotFoundError as exc:
            raise NotFoundError(f"cannot record the outcome: {exc}; pass the ids of the cases select() returned") from None

    # -- candidates ------------------------------------------------------------------------------

    def _search(self, state: TaskState, n: int, namespace: tuple[str, ...] | None, exclude: Exclude = None, *,
                with_vectors: bool = False) -> list[Any]:
        """The bank's top-`n` hits for `state` without the excluded cases.

        When some of the top `n` are excluded it asks for more, until `n` others are found or the
        bank has no more to give.
        """
        skip = excluder(exclude)
        wanted = n
        while True:
            hits = self.bank.search(state.embedding, k=wanted, namespace=namespace, with_vectors=with_vectors)
            if skip is None:
                return hits
            kept = [hit for hit in hits if not skip(hit.case)]
            if len(kept) >= n or len(hits) < wanted:
                return kept[:n]
            wanted = n + len(hits) - len(kept)  # > wanted, since fewer than n were kept

    def _candidates(self, state: TaskState, n: int, namespace: tuple[str, ...] | None,
                    exclude: Exclude = None) -> Candidates:
        """The FAISS top-`n` for `state` without the excluded cases, with vectors."""
        bank = self._bank()
        hits = self._search(state, n, namespace, exclude, with_vectors=True)
        if not hits:
            return Candidates([], np.zeros((0, bank.dim), dtype=np.float32), np.zeros(0, dtype=np.float32))
        return Candidates(
            cases=[hit.case for hit in hits],
            vectors=np.stack([np.asarray(hit.vector, dtype=np.float32) for hit in hits]),
            similarities=np.asarray([hit.score for hit in hits], dtype=np.float32),
        )

    # -- checkpoints -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the policy to `path` as one dict, atomically (temporary file, then rename)."""
        bank = self._bank()
        checkpoint = {
            "version": CHECKPOINT_VERSION,
            "kind": self.kind,
            "config": asdict(self.config),
            "embedder": {"name": bank.embedder.name, "dim": int(bank.dim)},
            "step": self.step,
            **self._model_state(),
        }
        return write_checkpoint(path, checkpoint)

    @classmethod
    def load(cls, path: str | os.PathLike, bank: Any, *, share: bool = False) -> CaseSelectionPolicy:
        """Rebuild a policy saved by `save`, bound to `bank`; PolicyError if it does not match.

        Like the constructor it takes the policy's name on the bank: close a live policy of that
        name first (`policy.close()`), or pass `share=True`.
        """
        checkpoint = read_checkpoint(path)
        check_checkpoint(checkpoint, path, kind=cls.kind, bank=bank)
        config = config_from_dict(cls.config_class, checkpoint["config"], f"checkpoint {str(path)!r}")
        policy = cls(bank, config, share=share)
        policy.step = int(checkpoint.get("step", 0))
        policy._load_model_state(checkpoint, path)
        return policy

    def _model_state(self) -> dict[str, Any]:
        """The learned part of the checkpoint: {'model': ..., 'optimizer': ...}."""
        return {"model": {}, "optimizer": {}}

    def _load_model_state(self, checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
        """Restore what `_model_state` wrote."""

    def __repr__(self) -> str:
        bank = str(self.bank.path) if self.bank is not None else None
        return f"{type(self).__name__}(bank={bank!r}, config={self.config!r})"


# -- helpers ---------------------------------------------------------------------------------------

_CLAIMS: weakref.WeakValueDictionary[tuple[str, str, str], CaseSelectionPolicy] = weakref.WeakValueDictionary()
"""(bank file, table, policy name) -> the live policy learning under that name, in this process."""


def _bank_key(bank: Any) -> str:
    path = str(bank.path)
    return f"memory:{id(bank)}" if path == ":memory:" else str(Path(path).resolve())


def check_config(config: Any, rules: list[tuple[bool, str]]) -> None:
    """ValidationError naming the config and the first rule (ok, text) it breaks."""
    for ok, rule in rules:
        if not ok:
            raise ValidationError(f"invalid {type(config).__name__} {config!r}: {rule}")


def excluder(exclude: Exclude) -> Callable[[Case], bool] | None:
    """`exclude` as a predicate on a case (None when nothing is excluded); ValidationError for a lone string."""
    if exclude is None:
        return None
    if callable(exclude):
        return exclude
    if isinstance(exclude, (str, bytes)):
        raise ValidationError(f"exclude={exclude!r} is one string; pass a collection of case ids "
                              f"(exclude=[{exclude!r}]) or a predicate on a Case")
    try:
        ids = frozenset(exclude)
    except TypeError:
        raise ValidationError(f"exclude={exclude!r} must be a collection of case ids or a predicate on a Case") from None
    if not all(isinstance(case_id, str) for case_id in ids):
        raise ValidationError(f"exclude={sorted(map(repr, ids))} must hold case ids (strings)")
    return (lambda case: case.id in ids) if ids else None


def check_reward(reward: Any) -> float:
    """A reward as a float in memento's one reward range (memento.case.REWARD_RANGE), else ValidationError."""
    return check_case_reward(reward)


def policy_transaction(bank: Any):
    """One transaction for a policy's own tables, under the bank's thread and cross-process locks."""
    return bank.write_transaction()


def sample_without_replacement(logits: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `k` draws without replacement from softmax(logits), in draw order.

    Gumbel-top-k: adding Gumbel noise and taking the k largest draws exactly the sequential
    softmax sampling without replacement (Plackett-Luce), in one vectorised step.
    """
    k = min(k, logits.shape[0])
    perturbed = logits + rng.gumbel(size=logits.shape[0])
    return np.argsort(-perturbed, kind="stable")[:k]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores; ties keep the FAISS order (most similar first)."""
    return np.argsort(-scores, kind="stable")[: min(k, scores.shape[0])]


def write_checkpoint(path: str | os.PathLike, checkpoint: dict[str, Any]) -> Path:
    """torch.save to a temporary file in the same folder, then rename it over `path`."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # The writer's pid in the name tells a later reader whose temporary it is (see remove_stale_temporaries).
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries of `path` left by writers that died mid-save (their pid is gone); returns them.

    A save killed between its temporary file and the rename leaves `.<name>.<pid>.<random>.tmp`
    beside the checkpoint; the checkpoint itself is intact (the old one, or none). A temporary of
    a process that is still running is its save in progress, and is left alone.
    """
    path = Path(path)
    removed = []
    for temporary in path.parent.glob(f".{path.name}.*.tmp"):
        pid = temporary.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        temporary.unlink(missing_ok=True)
        removed.append(temporary)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The dict a policy saved, or NotFoundError / PolicyError."""
    import torch

    path = Path(path)
    if path.parent.is_dir():
        remove_stale_temporaries(path)
    if not path.is_file():
        raise NotFoundError(f"policy checkpoint {str(path)!r} does not exist; save one with policy.save(path)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise PolicyError(f"{str(path)!r} is not a policy checkpoint ({type(exc).__name__}: {exc}); pass a file written by policy.save()") from None
    if not isinstance(checkpoint, dict) or "kind" not in checkpoint or "version" not in checkpoint:
        raise PolicyError(f"{str(path)!r} is not a policy checkpoint (no 'kind'/'version'); pass a file written by policy.save()")
    return checkpoint


def check_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike, *, kind: str, bank: Any) -> None:
    """PolicyError unless the checkpoint has our version, `kind`, and the bank's embedder."""
    where = f"policy checkpoint {str(path)!r}"
    if checkpoint["version"] != CHECKPOINT_VERSION:
        raise PolicyError(
            f"{where} has format version {checkpoint['version']!r}; this memento reads version {CHECKPOINT_VERSION}. "
            f"Retrain the policy, or load it with the memento version that wrote it"
        )
    if checkpoint["kind"] != kind:
        raise PolicyError(f"{where} holds a {checkpoint['kind']!r} policy, not {kind!r}; load it with load_policy(path, bank)")
    saved = checkpoint.get("embedder") or {}
    if saved.get("name") != bank.embedder.name or saved.get("dim") != bank.dim:
        raise PolicyError(
            f"{where} was trained with embedder {saved.get('name')!r} (dim {saved.get('dim')}) but bank "
            f"{str(bank.path)!r} uses {bank.embedder.name!r} (dim {bank.dim}); load it with a bank built by that "
            f"embedder, or train a new policy"
        )


def config_from_dict(config_class: type, values: dict[str, Any], where: str) -> Any:
    """Rebuild a config dataclass; PolicyError naming unknown fields."""
    known = {f.name for f in fields(config_class)}
    # Checkpoints from before issue 12 saved k in the policy's config; k is the caller's now (select(k=...)).
    values = {key: value for key, value in values.items() if key != "k" or "k" in known}
    unknown = sorted(set(values) - known)
    if unknown:
        raise PolicyError(f"{where} has config fields {unknown} that {config_class.__name__} does not know; "
                          f"it was written by another version of the policy")
    return config_class(**values)
