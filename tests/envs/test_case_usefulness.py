"""The controlled env of case usefulness: gold cases are rare, similarity barely finds them, rewards depend on the shown set."""

from dataclasses import asdict

import numpy as np
import pytest

from memento.envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig, evaluate
from memento.errors import ValidationError
from memento.policies import make_policy
from memento.policies.neural_q import NeuralQConfig, NeuralQPolicy
from memento.policies.random_candidates import RandomCandidatesPolicy

SMALL = UsefulnessEnvConfig(families=3, dim=16, train_tasks_per_family=10, heldout_tasks_per_family=4,
                            gold_per_family=2, lookalike_per_family=2, decoy_per_family=4, seed=0)


def own_cases(env, task, role):
    return [c for c in env.gain if env.family_of[c] == task.family and env.role_of[c] == role]


@pytest.fixture
def env(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    yield env
    env.bank.close()


@pytest.fixture(scope="module")
def default_env(tmp_path_factory):
    env = CaseUsefulnessEnv.create(tmp_path_factory.mktemp("default") / "bank.db", UsefulnessEnvConfig(seed=0))
    yield env
    env.bank.close()


def test_look_alikes_are_the_most_similar_and_gold_is_rare_among_the_candidates(default_env):
    env, top_k_gold, top_n_gold, top_k_lookalikes = default_env, [], [], []
    for task in env.heldout_tasks:
        hits = env.bank.search(task.vector, k=32)
        roles = [env.role_of[h.case.id] if env.family_of[h.case.id] == task.family else "other" for h in hits]
        top_k_lookalikes.append(roles[:4].count("lookalike"))
        top_k_gold.append(roles[:4].count("gold"))
        top_n_gold.append(roles.count("gold"))
    assert np.mean(top_n_gold) == 3, "every gold case of the family is among the top 32 candidates"
    assert np.mean(top_k_gold) < 0.5, "similarity's top 4 rarely holds a gold case"
    assert np.mean(top_k_lookalikes) > 2, "similarity's top 4 holds most of the look-alikes"


def test_gold_cases_are_about_as_similar_as_decoys(default_env):
    env = default_env
    gold, decoy = [], []
    for task in env.heldout_tasks:
        hits = {h.case.id: h.score for h in env.bank.search(task.vector, k=32)}
        gold += [hits[c] for c in own_cases(env, task, "gold")]
        decoy += [hits[c] for c in own_cases(env, task, "decoy")]
    assert 0 < np.mean(gold) - np.mean(decoy) < 0.05, "similarity is a weak proxy: a little higher for gold, not a separator"
    assert np.percentile(decoy, 90) > np.percentile(gold, 50), "many decoys are more similar than the typical gold case"


def test_baselines_that_learn_nothing_stay_near_the_no_memory_rate(default_env):
    env = default_env
    base = env.config.base_success
    policies = {"similarity": make_policy("similarity", bank=env.bank), "random": RandomCandidatesPolicy(env.bank),
                "untrained": NeuralQPolicy(env.bank, NeuralQConfig(prior_shows=0))}
    scores = {name: evaluate(p, env, env.heldout_tasks, np.random.default_rng(1))["expected_success"]
              for name, p in policies.items()}
    ceiling = np.mean([env.best_success_probability(t, 4) for t in env.heldout_tasks])
    assert scores["similarity"] < base, "similarity shows the stale look-alikes"
    assert all(score < base + 0.15 for score in scores.values()), scores
    assert ceiling > base + 0.6


def test_reward_depends_on_the_shown_cases(env):
    task = env.train_tasks[0]
    gold, lookalike, decoy = (own_cases(env, task, role) for role in ("gold", "lookalike", "decoy"))
    base = env.success_probability(task, [])
    assert base == pytest.approx(SMALL.base_success)
    assert env.success_probability(task, gold) > base > env.success_probability(task, lookalike)
    assert env.success_probability(task, decoy) == base
    other_family = next(c for c in env.gain if env.family_of[c] != task.family)
    assert env.success_probability(task, [other_family]) == base
    rng = np.random.default_rng(0)
    rate = np.mean([env.reward(task, gold, rng) for _ in range(400)])
    assert rate == pytest.approx(env.success_probability(task, gold), abs=0.07)
    assert env.best_success_probability(task, 2) == env.success_probability(task, gold)


def test_nothing_a_policy_reads_reveals_the_roles(env):
    cases = list(env.bank.iter_cases())
    assert all(set(c.metadata) == {"family"} and c.reward == 1.0 and c.answer == "..." for c in cases)
    assert len({c.task.split(" case ")[0] for c in cases}) == SMALL.families
    positions = {env.role_of[c.id] for c in cases[:6]}
    assert len(positions) > 1, "cases are not stored grouped by role"


def test_flip_swaps_gold_and_look_alikes_in_the_flipped_families_only(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "flip.db", UsefulnessEnvConfig(**{**asdict(SMALL), "flip_families": 1}))
    flipped, kept = env.train_tasks[0], next(t for t in env.train_tasks if t.family == 1)
    before = {t.id: {r: env.success_probability(t, own_cases(env, t, r)) for r in ("gold", "lookalike")}
              for t in (flipped, kept)}
    assert env.flip() == {0}
    assert env.success_probability(flipped, own_cases(env, flipped, "lookalike")) == before[flipped.id]["gold"]
    assert env.success_probability(flipped, own_cases(env, flipped, "gold")) == before[flipped.id]["lookalike"]
    assert {r: env.success_probability(kept, own_cases(env, kept, r)) for r in ("gold", "lookalike")} == before[kept.id]
    env.flip()
    assert env.success_probability(flipped, own_cases(env, flipped, "gold")) == before[flipped.id]["gold"]
    env.bank.close()


def test_unseen_families_have_cases_but_no_training_tasks(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "unseen.db", UsefulnessEnvConfig(**{**asdict(SMALL), "unseen_families": 2}))
    trained = {t.family for t in env.train_tasks}
    assert trained == {t.family for t in env.heldout_tasks} == {0, 1, 2}
    assert {t.family for t in env.unseen_tasks} == {3, 4} and len(env.unseen_tasks) == 2 * SMALL.heldout_tasks_per_family
    assert env.bank.count() == 5 * 8
    env.bank.close()


def test_the_env_is_deterministic_from_its_seed(tmp_path):
    first = CaseUsefulnessEnv.create(tmp_path / "a.db", SMALL)
    second = CaseUsefulnessEnv.create(tmp_path / "b.db", SMALL)
    other = CaseUsefulnessEnv.create(tmp_path / "c.db", UsefulnessEnvConfig(**{**asdict(SMALL), "seed": 1}))
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
        CaseUsefulnessEnv.create(tmp_path / "a.db", UsefulnessEnvConfig(**{**asdict(SMALL), "families": 2}))
    with pytest.raises(ValidationError, match="counts must be"):
        UsefulnessEnvConfig(families=0)
    with pytest.raises(ValidationError, match="flip_families"):
        UsefulnessEnvConfig(families=2, flip_families=3)
