"""A controlled environment that measures what learning adds to case selection.

It tests case-selection policies without an LLM, on a real `CaseBank` with synthetic vectors.
Tasks come in families (one kind of problem). Each family's cases are of three kinds:

- gold (few: 3 of 26 by default): worked cases whose approach transfers; showing one raises
  the chance of success. Their similarity to the family's tasks is drawn like the decoys',
  only slightly higher on average, so similarity is a weak proxy for usefulness;
- look-alikes: near-duplicates of the family's tasks (the most similar cases) whose answers
  are stale; showing one lowers the chance of success a little;
- decoys (the rest): as similar as the gold cases and each in a direction of its own
  (similar and diverse, so no fixed direction or similarity band separates them from gold);
  no effect.

An episode shows a set C of cases for a task and succeeds with probability
clip(base_success + sum of the gains of the cases in C, 0.02, 0.98), Bernoulli noise on top.
The gain is not the logistic model `NeuralQPolicy` assumes. With gold 3 in 26, K=4 cases drawn
from the top 32 hold 0.4 gold cases on average, so similarity, a random K of the top N and an
untrained network all stay near `base_success`; only learning which cases help gets close to
the ceiling (best K cases). Usefulness is per case, so it transfers to new tasks of a family a
policy trained on (`heldout_tasks`), and not to families it never saw.

Two variants probe transfer and change:

- `unseen_families`: families whose tasks never appear in training (`unseen_tasks`): nothing
  learned applies there, so the best a policy can do is not to fall below similarity;
- `flip_families` and `flip()`: in that many trained families usefulness changes midway (a
  site or tool changed): the gold cases' answers go stale (they take the look-alikes' gain)
  and the look-alikes, recorded after the change, become the useful ones (they take the gold
  gain). After the flip similarity is close to the best choice in those families, so the
  question is how fast a learned policy unlearns what it knew.

Everything is deterministic given the config's seed; episodes take well under a millisecond
of env time.

    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(seed=0))
    train_online(policy, env, 300, rng=np.random.default_rng(0))
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
from memento.policy import TaskState

ROLES = ("lookalike", "decoy", "gold")


@dataclass(frozen=True)
class UsefulnessEnvConfig:
    """Shape of the controlled environment."""

    families: int = 4
    """Task families a policy trains on; each has its own cases."""
    unseen_families: int = 0
    """Further families whose tasks appear only in `unseen_tasks` (the transfer variant)."""
    flip_families: int = 0
    """How many of the trained families change usefulness at `flip()` (the change variant)."""
    dim: int = 64
    """Dimension of the synthetic embeddings."""
    train_tasks_per_family: int = 40
    """Tasks a policy learns on."""
    heldout_tasks_per_family: int = 10
    """New tasks per family, for evaluation only."""
    gold_per_family: int = 3
    """Cases that help."""
    lookalike_per_family: int = 3
    """Near-duplicates of the family's tasks with stale answers."""
    decoy_per_family: int = 20
    """Cases as similar as the gold ones that do nothing."""
    base_success: float = 0.25
    """Chance of success with no useful case shown."""
    gold_gain: float = 0.25
    """Added to the chance of success per gold case shown."""
    lookalike_gain: float = -0.05
    """Added to the chance of success per look-alike shown."""
    task_spread: float = 0.8
    """Noise around the family centre in a task's vector (two tasks of a family: cosine about 0.6)."""
    lookalike_spread: float = 0.3
    """Noise around the family centre in a look-alike's vector (the most similar cases)."""
    case_spread_min: float = 0.5
    """Least noise in a decoy's or gold case's vector; each case draws its own in [min, max]."""
    case_spread_max: float = 1.5
    """Most noise in a decoy's vector (cosine to a task about 0.45 to 0.7)."""
    gold_spread_max: float = 1.2
    """Most noise in a gold case's vector: below `case_spread_max`, so gold is slightly more similar on average."""
    seed: int = 0
    """Seeds every vector."""

    def __post_init__(self) -> None:
        counts = (self.families, self.dim, self.train_tasks_per_family, self.heldout_tasks_per_family,
                  self.gold_per_family, self.lookalike_per_family, self.decoy_per_family)
        if min(counts) < 1 or self.dim < 8 or self.unseen_families < 0:
            raise ValidationError(f"invalid UsefulnessEnvConfig {self!r}: counts must be >= 1 and dim >= 8")
        if not 0 <= self.flip_families <= self.families:
            raise ValidationError(f"flip_families={self.flip_families} must be between 0 and families={self.families}")
        if not 0.0 <= self.base_success <= 1.0:
            raise ValidationError(f"base_success={self.base_success} must be a probability in [0, 1]")
        if not 0 <= self.case_spread_min <= min(self.case_spread_max, self.gold_spread_max):
            raise ValidationError("need 0 <= case_spread_min <= case_spread_max and gold_spread_max")


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
    """Families of tasks over a real `CaseBank` where few cases help and similarity barely tells which."""

    def __init__(self, bank: Any, config: UsefulnessEnvConfig = UsefulnessEnvConfig()):
        if bank.dim != config.dim:
            raise ValidationError(f"bank {str(bank.path)!r} has dim {bank.dim} but the env config asks for dim {config.dim}")
        self.bank = bank
        self.config = config
        rng = np.random.default_rng(config.seed)
        n_families = config.families + config.unseen_families
        centres = normalize_rows(rng.standard_normal((n_families, config.dim)))

        def around(centre: np.ndarray, spread: np.ndarray | float, n: int) -> np.ndarray:
            spread = np.broadcast_to(np.asarray(spread, dtype=np.float64), (n,))[:, None]
            noise = rng.standard_normal((n, config.dim)) * spread / np.sqrt(config.dim)
            return normalize_rows(centre + noise)

        self.train_tasks: list[UsefulnessTask] = []
        self.heldout_tasks: list[UsefulnessTask] = []
        """New tasks of the trained families."""
        self.unseen_tasks: list[UsefulnessTask] = []
        """Tasks of the families no training task comes from."""
        self.gain: dict[str, float] = {}
        """case id -> what showing it adds to its own family's chance of success (changes at `flip()`)."""
        self.family_of: dict[str, int] = {}
        self.role_of: dict[str, str] = {}
        """case id -> its role at creation (a flip changes gains, not roles)."""
        self.flipped: set[int] = set()
        cases, vectors = [], []
        for family in range(n_families):
            centre = centres[family]
            unseen = family >= config.families
            n_train = 0 if unseen else config.train_tasks_per_family
            tasks = around(centre, config.task_spread, n_train + config.heldout_tasks_per_family)
            for i, vector in enumerate(tasks):
                task = UsefulnessTask(id=f"f{family}-t{i}", family=family, text=f"family {family} task {i}", vector=vector)
                (self.unseen_tasks if unseen else self.train_tasks if i < n_train else self.heldout_tasks).append(task)
            groups = {
                "lookalike": (around(centre, config.lookalike_spread, config.lookalike_per_family), config.lookalike_gain),
                "decoy": (around(centre, rng.uniform(config.case_spread_min, config.case_spread_max, config.decoy_per_family),
                                 config.decoy_per_family), 0.0),
                "gold": (around(centre, rng.uniform(config.case_spread_min, config.gold_spread_max, config.gold_per_family),
                                config.gold_per_family), config.gold_gain),
            }
            for role, (role_vectors, gain) in groups.items():
                for i, vector in enumerate(role_vectors):
                    case_id = f"f{family}-{role}-{i}"
                    cases.append((case_id, family, role, gain))
                    vectors.append(vector)
        # Shuffled, so that neither insertion order nor ids' order says which case is which.
        order = rng.permutation(len(cases))
        bank_cases = []
        for position in order:
            case_id, family, role, gain = cases[position]
            # Roles stay in the env: nothing a policy reads (text, metadata) reveals them.
            bank_cases.append(Case(id=case_id, task=f"family {family} case {len(bank_cases)}", answer="...",
                                   reward=1.0, metadata={"family": family}))
            self.gain[case_id], self.family_of[case_id], self.role_of[case_id] = gain, family, role
        vectors = np.stack([vectors[i] for i in order])
        if bank.count() == 0:
            bank.add_many(bank_cases, vectors=vectors)
        elif bank.count() != len(bank_cases):
            raise ValidationError(f"bank {str(bank.path)!r} holds {bank.count()} cases, not this env's {len(bank_cases)}; "
                                  f"use an empty bank or the one this env config built")

    @classmethod
    def create(cls, path: str | Path, config: UsefulnessEnvConfig = UsefulnessEnvConfig()) -> CaseUsefulnessEnv:
        """A new env over a bank at `path` (created if missing) with the env's synthetic embedder."""
        from memento import CaseBank

        return cls(CaseBank(path, embedder=SyntheticEmbedder(config.dim)), config)

    def state(self, task: UsefulnessTask) -> TaskState:
        """The policy's view of `task`."""
        return TaskState(task=task.text, embedding=task.vector)

    def flip(self) -> set[int]:
        """Change usefulness in the first `flip_families` families: gold and look-alikes swap gains.

        Returns the flipped families. Flipping twice swaps back.
        """
        families = set(range(self.config.flip_families))
        for case_id, family in self.family_of.items():
            if family in families:
                role = self.role_of[case_id]
                if role == "gold":
                    self.gain[case_id] = self.config.lookalike_gain if family not in self.flipped else self.config.gold_gain
                elif role == "lookalike":
                    self.gain[case_id] = self.config.gold_gain if family not in self.flipped else self.config.lookalike_gain
        self.flipped ^= families
        return families

    def tasks_of(self, tasks: Sequence[UsefulnessTask], families: set[int]) -> list[UsefulnessTask]:
        """The tasks among `tasks` whose family is in `families`."""
        return [t for t in tasks if t.family in families]

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
        shown = [s.case.id for s in policy.select(state, explore=True)]
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
        shown = [s.case.id for s in policy.select(env.state(task), explore=False)]
        probability = env.success_probability(task, shown)
        expected.append(probability)
        outcomes.extend(float(rng.random() < probability) for _ in range(repeats))
    return {"success_rate": float(np.mean(outcomes)), "expected_success": float(np.mean(expected))}
