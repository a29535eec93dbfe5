"""How the agent calls its policy: bound once, k from AgentConfig, exclude per run, one TaskState an episode."""

from __future__ import annotations

import numpy as np
import pytest

from memento.agent import Agent, AgentConfig
from memento.errors import ValidationError
from memento.policies import NeuralQPolicy, SimilarityPolicy
from memento.policies.neural_q import NeuralQConfig
from tests.agent.conftest import HAPPY, lookup, scripted

TASK = "In which city was the founder of Acme born?"


class SpyPolicy(NeuralQPolicy):
    """A neural policy that remembers the states and options it was called with (the test is about the calls)."""

    def __init__(self, bank):
        super().__init__(bank, NeuralQConfig(min_replay=1))
        self.selects, self.records = [], []

    def select(self, state, **options):
        self.selects.append((state, options))
        return super().select(state, **options)

    def record(self, state, selected_ids, reward, **options):
        self.records.append(state)
        return super().record(state, selected_ids, reward, **options)


def test_exclude_reaches_the_policy_and_the_excluded_case_is_not_shown(bank):
    agent = Agent(scripted(**HAPPY), bank, SimilarityPolicy(bank), [lookup], config=AgentConfig(k=2))
    first = agent.run(TASK, scorer=lambda t, a: 1.0)
    second = agent.run(TASK + " (again)", scorer=lambda t, a: 1.0)
    assert [s["case_id"] for s in agent.run(TASK, scorer=lambda t, a: 1.0).selected][:1] == [first.case_id]
    for exclude in ([first.case_id], lambda case: case.id == first.case_id):
        shown = [s["case_id"] for s in agent.run(TASK, exclude=exclude, learn=False).selected]
        assert first.case_id not in shown and second.case_id in shown
    with pytest.raises(ValidationError, match="one string"):
        agent.run(TASK, exclude=first.case_id)


def test_the_agent_passes_its_own_k_and_one_task_state_per_episode(bank):
    policy = SpyPolicy(bank)
    agent = Agent(scripted(**HAPPY), bank, policy, [lookup], config=AgentConfig(k=3, procedures=False))
    for _ in range(2):
        agent.run(TASK, scorer=lambda t, a: 1.0)
    assert [options["k"] for _, options in policy.selects] == [3, 3]
    (selected, _), recorded = policy.selects[-1], policy.records[-1]
    assert (selected.task, selected.episode_id) == (recorded.task, recorded.episode_id)
    assert np.array_equal(selected.embedding, recorded.embedding)
