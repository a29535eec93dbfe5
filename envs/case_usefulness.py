"""A controlled environment where a case's usefulness is not its similarity to the task.

It tests case-selection policies without an LLM. Tasks come in families. Every family has
cases of three kinds in a real `CaseBank`, with vectors built so that cosine similarity ranks
them in the wrong order:

- harmful: near-duplicates of the family's tasks (the most similar cases); showing one lowers
  the chance of success, like a similar past case with a wrong answer;
- neutral: fairly similar, no effect;
- helpful: the least similar of the family's cases (they share the family's topic but also a
  "solution" direction of their own); showing one raises the chance of success.

An episode shows a set C of cases for a task and succeeds with probability
clip(base_success + sum of the gains of the cases in C, 0.02, 0.98), so its reward depends on
which cases were selected, with Bernoulli noise. The gain is deliberately not the logistic
model `NeuralQPolicy` assumes. Everything is deterministic given the config's seed; the vectors
are synthetic (no embedding model), so episodes take well under a millisecond of env time.

    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(seed=0))
    train_online(policy, env, episodes=300, rng=np.random.default_rng(0))
    print(evaluate(policy, env, env.heldout_tasks, rng=np.random.default_rng(1)))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from memento.case import Case
from memento.errors import ValidationError
from memento.embedders import normalize_rows

ROLES = ("harmful", "neutral", "helpful")


@dataclass(frozen=True)
class UsefulnessEnvConfig:
    """Shape of the controlled environment."""

    families: int = 6
    """Task families; each has its own cases."""
    dim: int = 64
    """Dimension of the synthetic embeddings."""
    train_tasks_per_family: int = 40
    """Tasks a policy learns on."""
    heldout_tasks_per_family: int = 10
    """New tasks of the same families, for evaluation only."""
    harmful_per_family: int = 4
    """Cases most similar to the family's tasks, which hurt."""
    neutral_per_family: int = 8
    """Cases of middling similarity, which do nothing."""
    helpful_per_family: int = 6
    """Cases least similar among the family's, which help."""
    base_success: float = 0.3
    """Chance of success with no case shown."""
    helpful_gain: float = 0.17
    """Added to the chance of success per helpful case shown."""
    harmful_gain: float = -0.15
    """Added to the chance of success per harmful case shown."""
    task_spread: float = 0.4
    """Noise around the family centre in a task's vector (relative to the centre's length 1)."""
    harmful_spread: float = 0.35
    """Noise around the family centre in a harmful case's vector."""
    neutral_spread: float = 0.8
    """Noise around the family centre in a neutral case's vector."""
    helpful_solution: float = 1.0
    """Weight of the family's solution direction in a helpful case's vector."""
    helpful_spread: float = 0.5
    """Noise in a helpful case's vector."""
    seed: int = 0
    """Seeds every vector."""

    def __post_init__(self) -> None:
        counts = (self.families, self.dim, self.train_tasks_per_family, self.heldout_tasks_per_family,
                  self.harmful_per_family, self.neutral_per_family, self.helpful_per_family)
        if min(counts) < 1 or self.dim < 8:
            raise ValidationError(f"invalid UsefulnessEnvConfig {self!r}: counts must be >= 1 and dim >= 8")
        if not 0.0 <= self.base_success <= 1.0:
            raise ValidationError(f"base_success={self.base_success} must be a probability in [0, 1]")


class SyntheticEmbedder:
    """The environment's embedder: the env gives every vector itself, so this only names the space.

    `embed` maps a text to a hash-seeded random unit vector, so that the bank can still embed a
    text query; it carries no meaning.
    """

    def __init__(self, dim: int):
        self.dim = dim
        self.name = f"case-usefulness-synthetic-{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little"))
                .standard_normal(self.dim) for t in texts]
        return normalize_rows(np.array(rows, dtype=np.float32).reshape(len(texts), self.dim))


@dataclass(frozen=True)
class UsefulnessTask:
    """One task of the environment: its family and its (synthetic) embedding."""

    id: str
    family: int
    text: str
    vector: np.ndarray = field(repr=False)


class CaseUsefulnessEnv:
    """Families of tasks over a real `CaseBank` whose most similar cases are the harmful ones."""

    def __init__(self, bank: Any, config: UsefulnessEnvConfig = UsefulnessEnvConfig()):
        if bank.dim != config.dim:
            raise ValidationError(f"bank {str(bank.path)!r} has dim {bank.dim} but the env config asks for dim {config.dim}")
        self.bank = bank
        self.config = config
        rng = np.random.default_rng(config.seed)
        centres = normalize_rows(rng.standard_normal((config.families, config.dim)))
        solutions = normalize_rows(rng.standard_normal((config.families, config.dim)))
        # Make each solution direction orthogonal to its family centre, so it adds no similarity.
        solutions = normalize_rows(solutions - np.sum(solutions * centres, axis=1, keepdims=True) * centres)

        def around(centre: np.ndarray, spread: float, n: int, extra: np.ndarray | None = None) -> np.ndarray:
            noise = rng.standard_normal((n, config.dim)) * spread / np.sqrt(config.dim)
            return normalize_rows(centre + noise + (0 if extra is None else extra))

        self.train_tasks: list[UsefulnessTask] = []
        self.heldout_tasks: list[UsefulnessTask] = []
        self.gain: dict[str, float] = {}
        """case id -> what showing it adds to its own family's chance of success."""
        self.family_of: dict[str, int] = {}
        self.role_of: dict[str, str] = {}
        cases, vectors = [], []
        for family in range(config.families):
            centre = centres[family]
            tasks = around(centre, config.task_spread, config.train_tasks_per_family + config.heldout_tasks_per_family)
            for i, vector in enumerate(tasks):
                task = UsefulnessTask(id=f"f{family}-t{i}", family=family, text=f"family {family} task {i}", vector=vector)
                (self.train_tasks if i < config.train_tasks_per_family else self.heldout_tasks).append(task)
            groups = {
                "harmful": (around(centre, config.harmful_spread, config.harmful_per_family), config.harmful_gain),
                "neutral": (around(centre, config.neutral_spread, config.neutral_per_family), 0.0),
                "helpful": (around(centre, config.helpful_spread, config.helpful_per_family,
                                   config.helpful_solution * solutions[family]), config.helpful_gain),
            }
            for role, (role_vectors, gain) in groups.items():
                for i, vector in enumerate(role_vectors):
                    case_id = f"f{family}-{role}-{i}"
                    # Roles stay in the env: nothing a policy reads (text, metadata) reveals them.
                    cases.append(Case(id=case_id, task=f"family {family} case {len(cases)}", answer="...",
                                      reward=1.0, metadata={"family": family}))
                    vectors.append(vector)
                    self.gain[case_id], self.family_of[case_id], self.role_of[case_id] = gain, family, role
        if bank.count() == 0:
            bank.add_many(cases, vectors=np.stack(vectors))
        elif bank.count() != len(cases):
            raise ValidationError(f"bank {str(bank.path)!r} holds {bank.count()} cases, not this env's {len(cases)}; "
                                  f"use an empty bank or the one this env config built")

    @classmethod
    def create(cls, path: str | Path, config: UsefulnessEnvConfig = UsefulnessEnvConfig()) -> CaseUsefulnessEnv:
        """A new env over a bank at `path` (created if missing) with the env's synthetic embedder."""
        from memento import CaseBank

        return cls(CaseBank(path, embedder=SyntheticEmbedder(config.dim)), config)

    def state(self, task: UsefulnessTask):
        """The policy's view of `task`."""
        from policies.base import TaskState

        return TaskState(task=task.text, embedding=task.vector)

    def success_probability(self, task: UsefulnessTask, case_ids: Sequence[str]) -> float:
        """The chance that an episode on `task` succeeds when `case_ids` are shown."""
        gain = sum(self.gain[c] for c in case_ids if self.family_of.get(c) == task.family)
        return float(np.clip(self.config.base_success + gain, 0.02, 0.98))

    def reward(self, task: UsefulnessTask, case_ids: Sequence[str], rng: np.random.Generator) -> float:
        """1.0 for a success, 0.0 for a failure, drawn with `success_probability`."""
        return float(rng.random() < self.success_probability(task, case_ids))

    def best_success_probability(self, task: UsefulnessTask, k: int) -> float:
        """The chance of success with the best k cases: the ceiling a policy can reach."""
        gains = sorted((g for c, g in self.gain.items() if self.family_of[c] == task.family), reverse=True)
        return float(np.clip(self.config.base_success + sum(g for g in gains[:k] if g > 0), 0.02, 0.98))


def train_online(policy: Any, env: CaseUsefulnessEnv, episodes: int, rng: np.random.Generator) -> list[float]:
    """Run `episodes` learning episodes on random training tasks: select (exploring), reward, record, update."""
    rewards = []
    for _ in range(episodes):
        task = env.train_tasks[int(rng.integers(len(env.train_tasks)))]
        state = env.state(task)
        shown = [s.case.id for s in policy.select(state, env.bank, explore=True)]
        reward = env.reward(task, shown, rng)
        policy.record(state, shown, reward)
        policy.update()
        rewards.append(reward)
    return rewards


def evaluate(policy: Any, env: CaseUsefulnessEnv, tasks: Sequence[UsefulnessTask], rng: np.random.Generator,
             repeats: int = 1) -> dict[str, float]:
    """Success rate of `policy` (no exploration, no learning) on `tasks`, each run `repeats` times.

    Returns the observed `success_rate` and the `expected_success` (mean success probability
    of the chosen sets, free of the Bernoulli noise).
    """
    outcomes, expected = [], []
    for task in tasks:
        shown = [s.case.id for s in policy.select(env.state(task), env.bank, explore=False)]
        probability = env.success_probability(task, shown)
        expected.append(probability)
        outcomes.extend(float(rng.random() < probability) for _ in range(repeats))
    return {"success_rate": float(np.mean(outcomes)), "expected_success": float(np.mean(expected))}
