"""Non-parametric case-based reasoning: show the K cases most similar to the task.

The paper's non-parametric CBR baseline: mu(c|s) puts all its mass on the top-K cases by
cosine similarity between task embeddings. It learns nothing from rewards, so `record` only
checks its input and `update` does nothing. K=4 is the paper's best setting.

    policy = SimilarityPolicy(bank)
    selections = policy.select(TaskState.from_task(bank, "What is ..."))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memento.policies.base import CaseSelectionPolicy, Exclude, PolicyConfig, Selection, TaskState


@dataclass(frozen=True)
class SimilarityConfig(PolicyConfig):
    """Hyperparameters of `SimilarityPolicy`: none (how many cases to show is `select`'s k)."""


class SimilarityPolicy(CaseSelectionPolicy):
    """Top-K cases by cosine similarity; ignores rewards and `explore`."""

    kind = "similarity"
    config_class = SimilarityConfig

    def select(self, state: TaskState, *, k: int | None = None, explore: bool = False,
               namespace: tuple[str, ...] | None = None, exclude: Exclude = None) -> list[Selection]:
        k = self._check_select(state, k, explore)
        hits = self._search(state, k, namespace, exclude)
        return [Selection(case=hit.case, score=float(hit.score), similarity=float(hit.score)) for hit in hits]
