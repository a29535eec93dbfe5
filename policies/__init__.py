"""Case-selection policies: which past cases the agent sees for a new task.

    from memento.policies import make_policy, load_policy, TaskState
    policy = make_policy("neural", bank, name="n2")    # or "similarity", "neural-copy", "episodic"
    state = TaskState.from_task(bank, question)
    shown = policy.select(state, k=4, explore=True, exclude=ids_not_to_show)
    policy.record(state, [s.case.id for s in shown], reward)
    policy.update()
    policy.save("policy.pt"); policy.close()
    policy = load_policy("policy.pt", bank)
"""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Any

from memento.errors import PolicyError, ValidationError
from memento.policies.base import CaseSelectionPolicy, Selection, TaskState, read_checkpoint
from memento.policies.episodic_control import EpisodicControlConfig, EpisodicControlPolicy
from memento.policies.neural_q import NeuralQConfig, NeuralQPolicy
from memento.policies.similarity import SimilarityConfig, SimilarityPolicy

__all__ = [
    "CaseSelectionPolicy", "Selection", "TaskState",
    "SimilarityPolicy", "SimilarityConfig",
    "NeuralQPolicy", "NeuralQConfig",
    "EpisodicControlPolicy", "EpisodicControlConfig",
    "POLICIES", "make_policy", "load_policy",
]

POLICY_CLASSES: dict[str, type[CaseSelectionPolicy]] = {
    cls.kind: cls for cls in (SimilarityPolicy, NeuralQPolicy, EpisodicControlPolicy)
}

POLICIES: dict[str, tuple[type[CaseSelectionPolicy], dict[str, Any]]] = {
    "similarity": (SimilarityPolicy, {}),
    "neural": (NeuralQPolicy, {"name": "neural", "credit": "set"}),
    "neural-copy": (NeuralQPolicy, {"name": "neural-copy", "credit": "copy"}),
    "episodic": (EpisodicControlPolicy, {}),
}
"""The names `make_policy` knows: a class and the config values the name implies."""


def make_policy(preset: str, /, bank: Any = None, *, share: bool = False, **config: Any) -> CaseSelectionPolicy:
    """The policy `preset` names, bound to `bank`, with `config` overriding its defaults.

    The preset is positional-only, so every config field, `name` included, can be set by keyword:
    `make_policy("neural", bank, name="n2", alpha=0.2)`. `share=True` lets a second live policy of
    the same name learn on the same bank (one replay buffer for both); without it that is an error.
    """
    if preset not in POLICIES:
        raise ValidationError(f"unknown policy {preset!r}; choose one of {sorted(POLICIES)}")
    cls, implied = POLICIES[preset]
    known = {f.name for f in fields(cls.config_class)}
    unknown = sorted(set(config) - known)
    if "k" in unknown:
        raise ValidationError(f"k is not a setting of policy {preset!r}: the caller owns it. Pass it per call, "
                              f"policy.select(state, k=...), or set AgentConfig.k (EvalConfig.k in an eval)")
    if unknown:
        raise ValidationError(f"policy {preset!r} has no setting {unknown}; its settings are {sorted(known)}")
    return cls(bank, cls.config_class(**{**implied, **config}), share=share)


def load_policy(path: str | os.PathLike, bank: Any, *, share: bool = False) -> CaseSelectionPolicy:
    """Rebuild whichever policy `path` holds, bound to `bank` (`share` as in `make_policy`)."""
    checkpoint = read_checkpoint(path)
    cls = POLICY_CLASSES.get(checkpoint["kind"])
    if cls is None:
        raise PolicyError(f"policy checkpoint {str(path)!r} holds an unknown kind {checkpoint['kind']!r}; "
                          f"this memento knows {sorted(POLICY_CLASSES)}")
    return cls.load(path, bank, share=share)
