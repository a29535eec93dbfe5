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

from memento.policies.base import CaseSelectionPolicy, Exclude, RerankConfig, Selection, TaskState


@dataclass(frozen=True)
class RandomCandidatesConfig(RerankConfig):
    """Hyperparameters of `RandomCandidatesPolicy`: K cases are drawn uniformly, without replacement, from the
    top `candidates`, with `seed` seeding the draws."""


class RandomCandidatesPolicy(CaseSelectionPolicy):
    """K cases drawn uniformly from the top-N by similarity, whether exploring or not."""

    kind = "random"
    config_class = RandomCandidatesConfig

    def __init__(self, bank: Any = None, config: RandomCandidatesConfig | None = None, *, share: bool = False):
        super().__init__(bank, config, share=share)
        self.rng = np.random.default_rng(self.config.seed)

    def select(self, state: TaskState, *, k: int | None = None, explore: bool = False,
               namespace: tuple[str, ...] | None = None, exclude: Exclude = None) -> list[Selection]:
        k = self._check_select(state, k, explore)
        hits = self._search(state, max(self.config.candidates, k + 1), namespace, exclude)
        chosen = self.rng.permutation(len(hits))[:k]
        return [Selection(case=hits[i].case, score=0.0, similarity=float(hits[i].score)) for i in chosen]
