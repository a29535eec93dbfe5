"""A baseline that learns nothing and ignores similarity inside the candidates: K random cases of the top N.

It measures how much of a learned policy's gain comes from merely not taking the top K by
similarity: a learned policy that re-ranks the FAISS top-N should beat it by what it learned.

    policy = RandomCandidatesPolicy(bank)
    selections = policy.select(TaskState.from_task(bank, "What is ..."))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from policies.base import CaseSelectionPolicy, Exclude, Selection, TaskState, check_config


@dataclass(frozen=True)
class RandomCandidatesConfig:
    """Hyperparameters of `RandomCandidatesPolicy`."""

    k: int = 4
    """How many cases to show."""
    candidates: int = 32
    """N: the FAISS top-N the K cases are drawn from, uniformly without replacement."""
    seed: int = 0
    """Seeds the draws."""

    def __post_init__(self) -> None:
        check_config(self, [(isinstance(self.k, int) and self.k >= 1, "k must be a positive integer"),
                            (isinstance(self.candidates, int) and self.candidates > self.k,
                             "candidates (N) must be an integer above k")])


class RandomCandidatesPolicy(CaseSelectionPolicy):
    """K cases drawn uniformly from the top-N by similarity, whether exploring or not."""

    kind = "random"
    config_class = RandomCandidatesConfig

    def __init__(self, bank: Any = None, config: RandomCandidatesConfig | None = None, *, share: bool = False):
        super().__init__(bank, config, share=share)
        self.rng = np.random.default_rng(self.config.seed)

    def select(self, state: TaskState, *, k: int | None = None, explore: bool = False,
               namespace: tuple[str, ...] | None = None, exclude: Exclude = None) -> list[Selection]:
        bank = self._bank()
        self._check_state(state, bank)
        k = self._k(k)
        hits = self._search(state, max(self.config.candidates, k + 1), namespace, exclude)
        chosen = self.rng.permutation(len(hits))[:k]
        return [Selection(case=hits[i].case, score=0.0, similarity=float(hits[i].score)) for i in chosen]
