import numpy as np
import pytest

from memento.envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig

SMALL = UsefulnessEnvConfig(families=3, dim=16, train_tasks_per_family=10, heldout_tasks_per_family=4,
                            gold_per_family=2, lookalike_per_family=2, decoy_per_family=4, seed=0)
"""A small controlled env: a real bank of 24 cases with synthetic 16-dim vectors."""


@pytest.fixture
def env(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    yield env
    env.bank.close()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
