"""Issue 12: learning must beat every baseline that learns nothing, back off to similarity where it knows nothing, and follow changes."""

from dataclasses import asdict

import numpy as np
import pytest

from memento.envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig, evaluate, train_online
from memento import Case, CaseBank
from memento.envs.case_usefulness import SyntheticEmbedder
from memento.embedders import normalize_rows
from memento.policies import EpisodicControlPolicy, NeuralQPolicy, TaskState, make_policy
from memento.policies.episodic_control import EpisodicControlConfig
from memento.policies.neural_q import NeuralQConfig
from memento.policies.random_candidates import RandomCandidatesPolicy
from tests.policies.conftest import SMALL

EPISODES = 300
"""Online learning episodes on the training tasks (a few seconds per policy)."""


def expected(policy, env, tasks):
    return evaluate(policy, env, tasks, np.random.default_rng(1))["expected_success"]


def best_baseline(env, tasks):
    baselines = {"similarity": make_policy("similarity", bank=env.bank), "random": RandomCandidatesPolicy(env.bank),
                 "untrained": NeuralQPolicy(env.bank, NeuralQConfig(name="untrained", prior_shows=0))}
    return max(expected(p, env, tasks) for p in baselines.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["neural", "episodic"])
def test_learning_beats_the_best_baseline_by_20_points_on_heldout_tasks(tmp_path, name):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(seed=0))
    baseline = best_baseline(env, env.heldout_tasks)
    policy = make_policy(name, bank=env.bank)
    train_online(policy, env, EPISODES, np.random.default_rng(0))
    learned = expected(policy, env, env.heldout_tasks)
    print(f"held-out expected success: best baseline {baseline:.3f}, {name} after {EPISODES} episodes {learned:.3f}")
    assert learned >= baseline + 0.20
    env.bank.close()


@pytest.mark.slow
def test_the_same_check_fails_for_a_network_that_does_not_learn(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(seed=0))
    baseline = best_baseline(env, env.heldout_tasks)
    frozen = NeuralQPolicy(env.bank, NeuralQConfig(gradient_steps=0, residual_lr=0, change_threshold=0))
    train_online(frozen, env, EPISODES, np.random.default_rng(0))
    assert expected(frozen, env, env.heldout_tasks) < baseline + 0.20
    env.bank.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["neural", "neural-copy", "episodic"])
def test_on_families_never_trained_on_a_learned_policy_is_not_below_similarity(tmp_path, name):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(unseen_families=2, seed=0))
    similarity = expected(make_policy("similarity", bank=env.bank), env, env.unseen_tasks)
    policy = make_policy(name, bank=env.bank)
    train_online(policy, env, 200, np.random.default_rng(0))
    assert expected(policy, env, env.unseen_tasks) >= similarity - 1e-9
    assert expected(policy, env, env.heldout_tasks) > similarity + 0.2, "it did learn the trained families"
    env.bank.close()


@pytest.mark.parametrize("name", ["neural", "episodic"])
def test_with_no_evidence_a_learned_policy_ranks_as_similarity(env, name):
    policy, similarity = make_policy(name, bank=env.bank), make_policy("similarity", bank=env.bank)
    for task in env.heldout_tasks:
        state = env.state(task)
        assert [s.case.id for s in policy.select(state)] == [s.case.id for s in similarity.select(state)]


def line_bank(tmp_path, cosines):
    """A bank of cases whose vectors have the given cosines to the query vector e0, and the query's state."""
    dim = 16
    rows = []
    for i, cosine in enumerate(cosines):
        row = np.zeros(dim, dtype=np.float32)
        row[0], row[1 + i] = cosine, np.sqrt(1 - cosine ** 2)
        rows.append(row)
    bank = CaseBank(tmp_path / "line.db", embedder=SyntheticEmbedder(dim))
    ids = [c.id for c in bank.add_many([Case(id=f"c{i}", task=f"case {i}") for i in range(len(cosines))], vectors=np.stack(rows))]
    query = np.zeros(dim, dtype=np.float32)
    query[0] = 1
    return bank, ids, TaskState(task="query", embedding=query)


def at_cosine(state, cosine, axis):
    vector = np.zeros_like(state.embedding)
    vector[0], vector[axis] = cosine, np.sqrt(1 - cosine ** 2)
    return TaskState(task=f"task at cosine {cosine}", embedding=vector)


BEFORE_ISSUE_12 = EpisodicControlConfig(bandwidth=0.3, prior_weight=0.05, min_similarity=-1, prior_slope=0, min_step=1e-9,
                                        weigh_visits=False, change_threshold=0)


@pytest.mark.parametrize("config, learns", [(EpisodicControlConfig(), True), (BEFORE_ISSUE_12, False)])
def test_episodic_estimates_move_at_a_useful_rate(tmp_path, config, learns):
    bank, ids, state = line_bank(tmp_path, [0.9, 0.8, 0.7, 0.6, 0.5])
    policy = EpisodicControlPolicy(bank, config)
    related = at_cosine(state, 0.5, axis=15)  # a related task, as MiniLM puts related questions
    for _ in range(2):
        policy.record(related, [ids[0]], 0.0)
        policy.record(related, [ids[1]], 1.0)
    q = policy.q_values(state.embedding, ids[:2])
    # Two outcomes at a related task move the estimate a useful part of the way.
    assert (q[0] < config.prior_q - 0.12 and q[1] > config.prior_q + 0.12) == learns, q
    if learns:
        assert policy.select(state, k=1)[0].case.id == ids[1]


@pytest.mark.parametrize("config, local", [(EpisodicControlConfig(), True), (BEFORE_ISSUE_12, False)])
def test_episodic_history_far_away_does_not_outrank_untouched_nearby_cases(tmp_path, config, local):
    bank, ids, state = line_bank(tmp_path, [0.9, 0.8, 0.7, 0.6, 0.5])
    policy = EpisodicControlPolicy(bank, config)
    unrelated = at_cosine(state, 0.1, axis=15)
    for _ in range(20):
        policy.record(unrelated, [ids[4]], 1.0)  # the least similar case helped, but on an unrelated task
    ranked = [s.case.id for s in policy.select(state, k=5)]
    assert (ranked == ids) == local, "far-away history counts for nothing: similarity's order stands"
    assert policy.q_values(unrelated.embedding, ids[4:])[0] > 0.9


def test_neural_evidence_counts_only_near_where_it_was_gathered(tmp_path):
    bank, ids, state = line_bank(tmp_path, [0.9, 0.8, 0.7, 0.6, 0.5])
    policy = NeuralQPolicy(bank, NeuralQConfig(min_replay=1, gradient_steps=4, change_threshold=0))
    unrelated = at_cosine(state, 0.1, axis=15)
    for _ in range(20):
        policy.record(unrelated, [ids[4]], 1.0)
        policy.update()
    assert [s.case.id for s in policy.select(state, k=5)] == ids


def test_a_run_of_failures_where_successes_were_the_rule_forgets_the_neighbourhood(env):
    policy = make_policy("neural", bank=env.bank, min_replay=1)
    task = env.train_tasks[0]
    state = env.state(task)
    shown = [s.case.id for s in policy.select(state, k=3)]
    rng = np.random.default_rng(0)
    rewards = [float(rng.random() < 0.9) for _ in range(40)]
    for reward in rewards:
        policy.record(state, shown, reward)
        policy.update()
    assert policy.changes == 0, "the usual failures of a 90% set are not a change"
    assert all(policy.replay.stats[c][0] == 40 for c in shown)
    for failures in range(1, 11):
        policy.record(state, shown, 0.0)
        if policy.changes:
            break
    assert policy.changes == 1 and failures <= 6
    rewards += [0.0] * failures
    neighbourhood = {c.id for c in policy._candidates(state, policy.config.candidates, None).cases}
    # Forgotten: every step before the CUSUM's rise began; kept: the steps since, which hold the failures
    # that revealed the change (fresh evidence), and the statistics and residuals are counted from them alone.
    kept = [t.reward for t in policy.replay.transitions if set(t.case_ids) & neighbourhood]
    assert failures <= len(kept) < 10 and kept == rewards[-len(kept):], kept
    assert {c: policy.replay.stats[c] for c in neighbourhood & set(policy.replay.stats)} == {
        c: (len(kept), sum(kept)) for c in shown}
    assert all(policy.residual[c] < 0 for c in shown), "refitted to a run of mostly failures"
    stored = env.bank.case_stats(policy.config.name)
    assert {c: stored.get(c) for c in neighbourhood} == {c: policy.replay.stats.get(c) for c in neighbourhood}
    assert not policy.residual.keys() & (neighbourhood - set(shown))


@pytest.mark.parametrize("test_reward, confirmed", [(1.0, True), (0.0, False)])
def test_a_suspected_change_is_tested_with_similaritys_picks_before_anything_is_forgotten(env, test_reward, confirmed):
    policy = make_policy("neural", bank=env.bank, min_replay=1)
    state = env.state(env.train_tasks[0])
    shown = [s.case.id for s in policy.select(state, k=3)]
    rng = np.random.default_rng(0)
    for _ in range(40):
        policy.record(state, shown, float(rng.random() < 0.9))
        policy.update()
    while not policy.monitor.suspects:
        policy.record(state, shown, 0.0)
    assert policy.changes == 0 and len(policy.monitor.suspects) == 1
    similarity = [s.case.id for s in make_policy("similarity", bank=env.bank).select(state)]
    for _ in range(policy.config.test_episodes):
        test = TaskState(task=state.task, embedding=state.embedding)  # a new episode on the same task
        picked = [s.case.id for s in policy.select(test, explore=True)]
        assert picked == similarity, "a suspected change is tested with the similarity prior's picks"
        policy.record(test, picked, test_reward)
    assert policy.monitor.suspects == [] and policy.changes == int(confirmed)
    history = policy.replay.stats.get(shown[0], (0, 0.0))[0]
    assert (history >= 40) == (not confirmed), "a confirmed change forgets the history, a false alarm nothing"


@pytest.mark.slow
@pytest.mark.parametrize("policy_class, now, before", [
    (NeuralQPolicy, NeuralQConfig(), NeuralQConfig(prior_shows=0, residual_lr=0, recent_fraction=0, change_threshold=0)),
    (EpisodicControlPolicy, EpisodicControlConfig(), BEFORE_ISSUE_12),
])
def test_after_a_flip_a_learned_policy_recovers_more_than_before_issue_12(tmp_path, policy_class, now, before):
    """Not the 30-episode goal (the README has the measured recovery): the change handling must help, 30 episodes on."""
    results = {}
    for name, config in {"now": now, "before": before}.items():
        scores = []
        for seed in (0, 1):
            env = CaseUsefulnessEnv.create(tmp_path / f"{name}-{seed}.db",
                                           UsefulnessEnvConfig(flip_families=2, seed=seed))
            policy = policy_class(env.bank, type(config)(**{**asdict(config), "seed": seed}))
            rng = np.random.default_rng([seed, 0])
            train_online(policy, env, 300, rng)
            tasks = env.tasks_of(env.heldout_tasks, env.flip())
            train_online(policy, env, 30, rng)
            scores.append(expected(policy, env, tasks))
            env.bank.close()
        results[name] = float(np.mean(scores))
    print(results)
    assert results["now"] >= results["before"] + 0.2


def test_after_a_change_the_networks_old_view_of_a_forgotten_case_is_not_used(env):
    """Until fresh steps retrain it, a forgotten case scores as the prior plus its residual, whatever the network says."""
    import torch

    policy = make_policy("neural", bank=env.bank, min_replay=1)
    state = env.state(env.train_tasks[0])
    shown = [s.case.id for s in policy.select(state, k=3)]
    for _ in range(40):
        policy.record(state, shown, 1.0)
        policy.update()
    while not policy.changes:
        policy.record(state, shown, 0.0)
    assert all(policy.stale_until[c] > policy.recorded for c in shown)
    for _ in range(3):  # fresh evidence: the forgotten cases are shown again, so the learned score has weight
        policy.record(TaskState(task=state.task, embedding=state.embedding), shown, 1.0)

    def stale_gaps():
        scores = {s.case.id: s.score for s in policy.select(state, k=policy.config.candidates)}
        return np.array([scores[c] - scores[shown[0]] for c in shown[1:]])

    before = stale_gaps()
    with torch.no_grad():
        for parameter in policy.net.parameters():
            parameter.add_(torch.randn_like(parameter))
    np.testing.assert_allclose(stale_gaps(), before, atol=1e-4)


def test_a_forgotten_case_seldom_shown_since_stays_on_the_prior_after_the_window(env):
    """The window passing is not enough: the network's old view returns only once the case itself has fresh shows."""
    from memento.policies.neural_q import STALE_SHOWS

    policy = make_policy("neural", bank=env.bank, min_replay=1, recent_window=4)
    state = env.state(env.train_tasks[0])
    shown = [s.case.id for s in policy.select(state, k=3)]
    policy.forget(shown)
    others = [s.case.id for s in policy.select(env.state(env.train_tasks[-1]), k=3) if s.case.id not in shown]
    for _ in range(policy.config.recent_window + 2):  # the window passes on steps that show other cases
        policy.record(env.state(env.train_tasks[-1]), others, 1.0)
    assert all(policy._stale(c) for c in shown), "shown 0 times since it was forgotten"
    for _ in range(STALE_SHOWS):
        policy.record(state, shown, 1.0)
    assert not any(policy._stale(c) for c in shown), "fresh shows and the window: the network counts again"
    policy.forget(shown[:1])
    assert policy._stale(shown[0]) and not policy._stale(shown[1])
