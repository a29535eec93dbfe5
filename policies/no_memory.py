"""The no-memory policy: selects nothing, so the agent runs as it would without a case bank.

It is the baseline arm of every eval: the same agent, tools and budgets, with no past case shown.

    policy = NoMemoryPolicy(bank)
    policy.select(state)          # []
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memento.policy import CaseSelectionPolicy, Exclude, PolicyConfig, Selection


@dataclass(frozen=True)
class NoMemoryConfig(PolicyConfig):
    """Settings of `NoMemoryPolicy`: none."""


class NoMemoryPolicy(CaseSelectionPolicy):
    """Shows no case; records and updates nothing."""

    kind = "none"
    config_class = NoMemoryConfig

    def select(self, state: Any, *, k: int | None = None, explore: bool = False,
               namespace: tuple[str, ...] | None = None, exclude: Exclude = None) -> list[Selection]:
        return []
