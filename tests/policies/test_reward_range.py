"""One reward range for every policy (memento.case.REWARD_RANGE): episodic control once took reward=2.0."""

import pytest

from memento import Case, CaseBank
from memento.errors import ValidationError
from memento.policy import TaskState
from memento.policies import POLICIES, make_policy
from tests.fakes import FakeHashEmbedder


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("reward", [2.0, -0.5, float("nan"), True])
def test_every_policy_refuses_a_reward_outside_the_range_and_records_nothing(tmp_path, name, reward):
    with CaseBank(tmp_path / "bank.db", embedder=FakeHashEmbedder()) as bank:
        case = bank.add(Case(task="a past task"))
        policy = make_policy(name, bank=bank)
        state = TaskState.from_task(bank, "a new task")
        with pytest.raises(ValidationError, match="reward"):
            policy.record(state, [case.id], reward)
        policy.record(state, [case.id], 1.0)  # a reward in range still goes through
