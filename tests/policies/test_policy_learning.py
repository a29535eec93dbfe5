"""The learning claim of issue 3: a neural soft-Q policy beats similarity where usefulness is not similarity."""

import numpy as np
import pytest

from envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig, evaluate, train_online
from policies import make_policy

EPISODES = 300
"""Online learning episodes on the training tasks (about 3 s of learning)."""


@pytest.mark.slow
def test_neural_q_beats_similarity_by_20_points_on_heldout_tasks(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(seed=0))
    similarity = make_policy("similarity", bank=env.bank)
    neural = make_policy("neural", bank=env.bank, seed=0)
    before = evaluate(neural, env, env.heldout_tasks, np.random.default_rng(1), repeats=4)["success_rate"]
    train_online(neural, env, EPISODES, np.random.default_rng(0))
    # The same held-out tasks and the same evaluation noise for both policies.
    learned = evaluate(neural, env, env.heldout_tasks, np.random.default_rng(1), repeats=4)["success_rate"]
    baseline = evaluate(similarity, env, env.heldout_tasks, np.random.default_rng(1), repeats=4)["success_rate"]
    print(f"held-out success: similarity {baseline:.3f}, neural before {before:.3f}, after {EPISODES} episodes {learned:.3f}")
    assert learned >= baseline + 0.20
    assert learned >= before + 0.20, "the gain comes from learning, not from the untrained network"
    env.bank.close()


def test_episodic_control_learns_from_rewards(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(families=3, seed=0))
    similarity = make_policy("similarity", bank=env.bank)
    episodic = make_policy("episodic", bank=env.bank)
    train_online(episodic, env, 150, np.random.default_rng(0))
    learned = evaluate(episodic, env, env.heldout_tasks, np.random.default_rng(1), repeats=4)["success_rate"]
    baseline = evaluate(similarity, env, env.heldout_tasks, np.random.default_rng(1), repeats=4)["success_rate"]
    assert learned >= baseline + 0.20
    env.bank.close()
