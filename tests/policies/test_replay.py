"""Learning state kept in the bank's SQLite: it survives reopening the bank, and ages out."""

import numpy as np
import pytest
import torch

from memento.envs.case_usefulness import CaseUsefulnessEnv, train_online
from memento.policies import make_policy
from memento.policies.replay import REPLAY_TABLE, STATS_TABLE
from tests.policies.conftest import SMALL


def test_the_replay_buffer_survives_reopening_the_bank(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    policy = make_policy("neural", bank=env.bank)
    rewards = train_online(policy, env, 15, np.random.default_rng(0))
    before = [(t.state.tobytes(), t.case_ids, t.reward, t.case_features.tobytes()) for t in policy.replay.transitions]
    stats = dict(policy.replay.stats)
    policy.close()
    env.bank.close()

    reopened = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    try:
        again = make_policy("neural", bank=reopened.bank)
        after = [(t.state.tobytes(), t.case_ids, t.reward, t.case_features.tobytes()) for t in again.replay.transitions]
        assert after == before and [t[2] for t in after] == rewards
        assert again.replay.stats == stats
        assert sum(shown for shown, _ in stats.values()) == 15 * 4
        shown = again.replay.transitions[0]
        assert np.allclose(shown.case_vectors, reopened.bank.vectors(list(shown.case_ids)))
        # Another policy name on the same bank starts with an empty buffer.
        assert len(make_policy("neural-copy", bank=reopened.bank).replay) == 0
    finally:
        reopened.bank.close()


def test_episodic_entries_survive_reopening_the_bank(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    policy = make_policy("episodic", bank=env.bank)
    train_online(policy, env, 15, np.random.default_rng(0))
    state = env.state(env.heldout_tasks[0])
    ids = [c.id for c in env.bank.iter_cases()]
    expected = policy.q_values(state.embedding, ids)
    policy.close()
    env.bank.close()
    reopened = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    try:
        again = make_policy("episodic", bank=reopened.bank)
        assert np.allclose(again.q_values(state.embedding, ids), expected)
        assert again.update()["charts/entries"] == policy.update()["charts/entries"] > 0
    finally:
        reopened.bank.close()


def test_the_buffer_keeps_the_last_capacity_steps(env, rng):
    policy = make_policy("neural", bank=env.bank, replay_capacity=10)
    train_online(policy, env, 25, rng)
    rows = env.bank.db.execute(f"SELECT id FROM {REPLAY_TABLE} WHERE policy = 'neural' ORDER BY id").fetchall()
    assert len(policy.replay) == 10 == len(rows)
    assert [r[0] for r in rows] == [t.row_id for t in policy.replay.transitions]
    shown = env.bank.db.execute(f"SELECT SUM(shown) FROM {STATS_TABLE} WHERE policy = 'neural'").fetchone()[0]
    assert shown == 25 * 4, "case statistics count every episode, not only the ones still in the buffer"


def test_steps_that_showed_a_deleted_case_are_dropped_on_reload(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    policy = make_policy("neural", bank=env.bank)
    train_online(policy, env, 10, np.random.default_rng(0))
    gone = policy.replay.transitions[0].case_ids[0]
    keep = sum(gone not in t.case_ids for t in policy.replay.transitions)
    env.bank.delete(gone)
    policy.close()
    again = make_policy("neural", bank=env.bank)
    assert len(again.replay) == keep < 10
    assert again.update()["charts/replay_size"] == keep
    env.bank.close()


def test_multi_step_targets_use_the_soft_bellman_backup(env):
    policy = make_policy("neural", bank=env.bank, gamma=0.5, min_replay=1)
    first, second = env.state(env.train_tasks[0]), env.state(env.train_tasks[1])
    shown = [s.case.id for s in policy.select(first, explore=True)]
    policy.record(first, shown, 0.0, next_state=second, done=False)
    policy.record(second, [s.case.id for s in policy.select(second, explore=True)], 1.0)
    step = policy.replay.transitions[0]
    assert not step.done and len(step.next_ids) == env.bank.count() == len(step.next_vectors)
    value = policy._next_values([step])[0].item()
    with torch.no_grad():
        q = policy.target(torch.from_numpy(second.embedding)[None], torch.from_numpy(step.next_vectors)[None],
                          torch.from_numpy(step.next_features)[None])[0] + policy.target.base(torch.from_numpy(second.embedding)[None])
    alpha = policy.config.alpha
    expected = torch.sigmoid(alpha * (torch.logsumexp(q / alpha, 0) - np.log(len(q)))).item()
    assert value == pytest.approx(expected, rel=1e-5)
    assert torch.sigmoid(q.min()).item() <= value <= torch.sigmoid(q.max()).item()
    assert policy._next_values([policy.replay.transitions[1]])[0].item() == 0.0, "a last step has no future"
    # Both steps go through the loss, and a policy bound later finds the next-state candidates.
    assert np.isfinite(policy.update()["losses/q_loss"])
    policy.close()
    assert make_policy("neural", bank=env.bank, gamma=0.5).replay.transitions[0].next_ids == step.next_ids


def test_episodic_multi_step_target_adds_the_discounted_next_value(env):
    policy = make_policy("episodic", bank=env.bank, gamma=0.5)
    first, second = env.state(env.train_tasks[0]), env.state(env.train_tasks[1])
    # Nothing is known about the next state yet, so its candidates are worth their similarity prior.
    following = policy._candidates(second, policy.config.candidates, None)
    prior = policy.q_values(second.embedding, [c.id for c in following.cases], following.similarities)
    alpha = policy.config.alpha
    value = alpha * np.log(np.mean(np.exp(prior / alpha)))
    assert prior.min() <= value <= prior.max() and prior.max() > prior.min()
    policy.record(first, [policy.select(first)[0].case.id], 0.0, next_state=second, done=False)
    entry = next(iter(policy.entries.values()))
    assert entry.q[0] == pytest.approx(0.5 * value)


def test_sampling_can_favour_recent_steps(env, rng):
    policy = make_policy("neural", bank=env.bank, gradient_steps=0)
    train_online(policy, env, 50, rng)
    recent_ids = {t.row_id for t in list(policy.replay.transitions)[-5:]}
    batch = policy.replay.sample(20, np.random.default_rng(0), recent=10, window=5)
    assert len(batch) == 20 and sum(t.row_id in recent_ids for t in batch) >= 10
    uniform = policy.replay.sample(2000, np.random.default_rng(0))
    assert np.mean([t.row_id in recent_ids for t in uniform]) == pytest.approx(5 / 50, abs=0.03)


def test_forgetting_cases_drops_their_steps_and_statistics_in_the_file_too(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    policy = make_policy("neural", bank=env.bank, gradient_steps=0)
    train_online(policy, env, 30, np.random.default_rng(0))
    gone = policy.replay.transitions[0].case_ids[0]
    keep = [t.row_id for t in policy.replay.transitions if gone not in t.case_ids]
    assert policy.replay.forget([gone]) == 30 - len(keep) > 0
    assert [t.row_id for t in policy.replay.transitions] == keep
    assert gone not in policy.replay.stats and policy.replay.shown_where(gone) is None
    policy.close()
    again = make_policy("neural", bank=env.bank)
    assert [t.row_id for t in again.replay.transitions] == keep and gone not in again.replay.stats
    env.bank.close()
