"""The controlled environment: similarity ranks harmful cases first, rewards depend on the shown set."""

import numpy as np
import pytest

from envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig
from memento.errors import ValidationError
from tests.policies.conftest import SMALL


def test_similarity_ranks_harmful_cases_above_helpful_ones(env):
    for task in env.train_tasks + env.heldout_tasks:
        hits = env.bank.search(task.vector, k=env.bank.count())
        own = [env.role_of[h.case.id] for h in hits if env.family_of[h.case.id] == task.family]
        harmful = [i for i, role in enumerate(own) if role == "harmful"]
        helpful = [i for i, role in enumerate(own) if role == "helpful"]
        assert np.mean(harmful) < np.mean(helpful)
        assert hits[0].case.id in env.gain and env.role_of[hits[0].case.id] != "helpful"


def test_reward_depends_on_the_shown_cases(env):
    task = env.train_tasks[0]
    own = {role: [c for c in env.gain if env.family_of[c] == task.family and env.role_of[c] == role]
           for role in ("harmful", "neutral", "helpful")}
    base = env.success_probability(task, [])
    assert base == pytest.approx(SMALL.base_success)
    assert env.success_probability(task, own["helpful"]) > base > env.success_probability(task, own["harmful"])
    assert env.success_probability(task, own["neutral"]) == base
    other_family = next(c for c in env.gain if env.family_of[c] != task.family)
    assert env.success_probability(task, [other_family]) == base
    rng = np.random.default_rng(0)
    rate = np.mean([env.reward(task, own["helpful"], rng) for _ in range(400)])
    assert rate == pytest.approx(env.success_probability(task, own["helpful"]), abs=0.07)
    assert env.best_success_probability(task, 3) == env.success_probability(task, own["helpful"][:3])


def test_the_env_is_deterministic_from_its_seed(tmp_path):
    first = CaseUsefulnessEnv.create(tmp_path / "a.db", SMALL)
    second = CaseUsefulnessEnv.create(tmp_path / "b.db", SMALL)
    other = CaseUsefulnessEnv.create(tmp_path / "c.db", UsefulnessEnvConfig(**{**SMALL.__dict__, "seed": 1}))
    ids = sorted(first.gain)
    assert np.array_equal(first.bank.vectors(ids), second.bank.vectors(ids))
    assert not np.allclose(first.bank.vectors(ids), other.bank.vectors(ids))
    assert all(np.array_equal(a.vector, b.vector) for a, b in zip(first.heldout_tasks, second.heldout_tasks))
    for env in (first, second, other):
        env.bank.close()


def test_reopening_checks_the_bank_matches(tmp_path):
    CaseUsefulnessEnv.create(tmp_path / "a.db", SMALL).bank.close()
    CaseUsefulnessEnv.create(tmp_path / "a.db", SMALL).bank.close()  # same config: reuses its cases
    with pytest.raises(ValidationError, match="not this env's"):
        CaseUsefulnessEnv.create(tmp_path / "a.db", UsefulnessEnvConfig(**{**SMALL.__dict__, "families": 2}))
    with pytest.raises(ValidationError, match="counts must be"):
        UsefulnessEnvConfig(families=0)
