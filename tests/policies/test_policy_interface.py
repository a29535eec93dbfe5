"""Every policy behind the one interface, on a real bank (SQLite + FAISS) with synthetic vectors."""

import math

import numpy as np
import pytest
import torch

from memento.envs.case_usefulness import SyntheticEmbedder
from memento import Case, CaseBank
from memento.errors import NotFoundError, PolicyError, ValidationError
from memento.policies import POLICIES, Selection, SimilarityPolicy, TaskState, make_policy

ALL = sorted(POLICIES)


def outcome_tables(bank):
    """Every row of the policy tables and of the cases table: what a failed call must leave alone."""
    tables = [t for t in bank.db.table_names() if t.startswith("policy_")] + ["cases"]
    return {t: bank.db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}


@pytest.mark.parametrize("name", ALL)
def test_select_returns_k_distinct_cases_with_scores(env, name):
    policy = make_policy(name, bank=env.bank)
    state = env.state(env.train_tasks[0])
    for explore in (False, True):
        chosen = policy.select(state, explore=explore)
        assert len(chosen) == 4 and all(isinstance(s, Selection) for s in chosen)
        assert len({s.case.id for s in chosen}) == 4
        assert all(math.isfinite(s.score) and -1.0001 <= s.similarity <= 1.0001 for s in chosen)
    assert len(policy.select(state, k=2)) == 2
    assert len(policy.select(state, k=100)) == env.bank.count()


def test_similarity_is_the_banks_top_k(env):
    state = env.state(env.heldout_tasks[0])
    chosen = SimilarityPolicy(env.bank).select(state)
    hits = env.bank.search(state.embedding, k=4)
    assert [s.case.id for s in chosen] == [h.case.id for h in hits]
    assert [s.score for s in chosen] == pytest.approx([h.score for h in hits])


def test_evaluation_takes_the_top_k_by_q_and_exploration_varies(env):
    policy = make_policy("neural", bank=env.bank)
    state = env.state(env.train_tasks[0])
    greedy = policy.select(state)
    assert [s.score for s in greedy] == sorted([s.score for s in greedy], reverse=True)
    assert [s.case.id for s in policy.select(state)] == [s.case.id for s in greedy]
    explored = {tuple(sorted(s.case.id for s in policy.select(state, explore=True))) for _ in range(20)}
    assert len(explored) > 1, "sampling from softmax(Q/alpha) should vary the shown set"


@pytest.mark.parametrize("name", ALL)
def test_empty_bank_selects_nothing(tmp_path, name):
    with CaseBank(tmp_path / "empty.db", embedder=SyntheticEmbedder(16)) as bank:
        policy = make_policy(name, bank=bank)
        state = TaskState(task="anything", embedding=np.ones(16, dtype=np.float32))
        assert policy.select(state, explore=True) == []
        policy.record(state, [], 1.0)  # the agent ran without memory: still a valid outcome
        assert isinstance(policy.update(), dict)


@pytest.mark.parametrize("name", ALL)
def test_namespace_limits_the_candidates(tmp_path, name):
    with CaseBank(tmp_path / "ns.db", embedder=SyntheticEmbedder(16)) as bank:
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((10, 16)).astype(np.float32)
        bank.add_many([Case(task=f"case {i}", namespace=("team", "a" if i < 5 else "b")) for i in range(10)],
                      vectors=vectors)
        policy = make_policy(name, bank=bank)
        state = TaskState(task="query", embedding=vectors[7])
        chosen = policy.select(state, namespace=("team", "a"), explore=True)
        assert len(chosen) == 4 and all(s.case.namespace == ("team", "a") for s in chosen)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("reward", [float("nan"), float("inf"), "1.0", None])
def test_a_bad_reward_is_refused_and_nothing_is_written(env, name, reward):
    policy = make_policy(name, bank=env.bank)
    state = env.state(env.train_tasks[0])
    shown = [s.case.id for s in policy.select(state, explore=True)]
    before = outcome_tables(env.bank)
    with pytest.raises(ValidationError, match="reward"):
        policy.record(state, shown, reward)
    assert outcome_tables(env.bank) == before


@pytest.mark.parametrize("name", ALL)
def test_an_unknown_case_id_is_refused_and_nothing_is_written(env, name):
    policy = make_policy(name, bank=env.bank)
    state = env.state(env.train_tasks[0])
    shown = [s.case.id for s in policy.select(state)]
    before = outcome_tables(env.bank)
    with pytest.raises(NotFoundError, match="no-such-case"):
        policy.record(state, shown[:2] + ["no-such-case"], 1.0)
    assert outcome_tables(env.bank) == before
    if name == "neural":
        assert len(policy.replay) == 0 and policy.replay.stats == {}


def test_neural_rewards_must_be_probabilities(env):
    policy = make_policy("neural", bank=env.bank)
    state = env.state(env.train_tasks[0])
    with pytest.raises(ValidationError, match=r"outside \[0(\.0)?, 1(\.0)?\]"):
        policy.record(state, [], 2.0)


@pytest.mark.parametrize("name", ALL)
def test_bad_arguments_get_clear_errors(env, name):
    policy = make_policy(name, bank=env.bank)
    state = env.state(env.train_tasks[0])
    with pytest.raises(ValidationError, match="k=0"):
        policy.select(state, k=0)
    with pytest.raises(ValidationError, match="dim 8 but bank"):
        policy.select(TaskState(task="t", embedding=np.ones(8)))
    with pytest.raises(ValidationError, match="next_state"):
        policy.record(state, [], 1.0, done=False)
    with pytest.raises(ValidationError, match="empty"):
        TaskState(task="  ", embedding=np.ones(16))
    with pytest.raises(ValidationError, match="not finite"):
        TaskState(task="t", embedding=np.full(16, np.nan))


def test_a_policy_stays_with_its_bank(env, tmp_path):
    policy = make_policy("neural", bank=env.bank)
    with CaseBank(tmp_path / "other.db", embedder=SyntheticEmbedder(16)) as other:
        with pytest.raises(PolicyError, match="create another policy"):
            policy.bind(other)
    with pytest.raises(PolicyError, match="no bank yet"):
        make_policy("neural").update()


def test_make_policy_names_and_settings():
    assert make_policy("neural-copy").config.credit == "copy"
    assert make_policy("neural", alpha=0.2).config.alpha == 0.2
    with pytest.raises(ValidationError, match="unknown policy 'greedy'"):
        make_policy("greedy")
    with pytest.raises(ValidationError, match="no setting"):
        make_policy("similarity", alpha=1.0)
    with pytest.raises(ValidationError, match="candidates"):
        make_policy("neural", candidates=1)


def test_update_learns_from_recorded_outcomes_and_leaves_the_cases_alone(env, rng):
    policy = make_policy("neural", bank=env.bank)
    assert "losses/q_loss" not in policy.update()  # nothing recorded yet
    for _ in range(12):
        task = env.train_tasks[int(rng.integers(len(env.train_tasks)))]
        state = env.state(task)
        shown = [s.case.id for s in policy.select(state, explore=True)]
        policy.record(state, shown, env.reward(task, shown, rng))
    cases_before = env.bank.db.execute("SELECT * FROM cases ORDER BY id").fetchall()
    weights_before = [p.detach().clone() for p in policy.net.parameters()]
    metrics = policy.update()
    assert set(metrics) >= {"losses/q_loss", "charts/replay_size", "charts/step"}
    assert math.isfinite(metrics["losses/q_loss"]) and metrics["charts/replay_size"] == 12
    assert any(not torch.equal(a, b) for a, b in zip(weights_before, policy.net.parameters()))
    assert env.bank.db.execute("SELECT * FROM cases ORDER BY id").fetchall() == cases_before


def test_a_failed_update_changes_nothing(env, rng):
    policy = make_policy("neural", bank=env.bank)
    state = env.state(env.train_tasks[0])
    for _ in range(10):
        policy.record(state, [s.case.id for s in policy.select(state, explore=True)], 1.0)
    # Corrupt the in-memory buffer behind record()'s checks, to force a non-finite loss.
    from dataclasses import replace
    policy.replay.transitions[0] = replace(policy.replay.transitions[0], reward=float("nan"))
    policy.config = replace(policy.config, batch_size=len(policy.replay))
    before_tables = outcome_tables(env.bank)
    weights_before = [p.detach().clone() for p in policy.net.parameters()]
    with pytest.raises(PolicyError, match="not applied"):
        policy.update()
    assert all(torch.equal(a, b) for a, b in zip(weights_before, policy.net.parameters()))
    assert outcome_tables(env.bank) == before_tables and policy.step == 0


@pytest.mark.parametrize("name", ["neural", "neural-copy", "episodic"])
def test_usefulness_ranks_a_case_that_helped_above_one_that_hurt(env, name):
    policy = make_policy(name, bank=env.bank, **({} if name == "episodic" else {"min_replay": 2, "gradient_steps": 4}))
    state = env.state(env.train_tasks[0])
    helped, hurt, never = [s.case for s in policy.select(state)[:3]]
    for _ in range(8):
        policy.record(state, [helped.id], 1.0)
        policy.record(state, [hurt.id], 0.0)
        policy.update()
    scores = policy.usefulness([helped, hurt, never])
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    assert scores[0] > scores[1]
    summary = policy.summary()
    assert summary["step"] == policy.step
    assert summary.get("replay_size", 16) == 16 and summary.get("entries", 2) == 2


def test_similarity_has_no_usefulness_to_rank_by(env):
    policy = make_policy("similarity", bank=env.bank)
    with pytest.raises(PolicyError, match="cannot rank"):
        policy.usefulness(list(env.bank.iter_cases()))
    assert policy.summary() == {"step": 0}


def test_exploration_samples_from_the_softmax_without_replacement():
    from memento.policies.base import sample_without_replacement

    rng = np.random.default_rng(0)
    logits = np.log(np.array([1.0, 3.0, 6.0]))
    first = np.array([sample_without_replacement(logits, 1, rng)[0] for _ in range(6000)])
    assert np.bincount(first, minlength=3) / 6000 == pytest.approx([0.1, 0.3, 0.6], abs=0.025)
    draws = [sample_without_replacement(logits, 3, rng) for _ in range(200)]
    assert all(sorted(d) == [0, 1, 2] for d in draws)
    # Second draw given the first was 2: softmax over what is left, 1:3.
    seconds = [d[1] for d in draws if d[0] == 2]
    assert np.mean(np.array(seconds) == 1) == pytest.approx(0.75, abs=0.12)


@pytest.mark.slow
def test_policies_work_on_a_bank_with_the_real_embedder(tmp_path, real_embedder):
    with CaseBank(tmp_path / "real.db", embedder=real_embedder) as bank:
        bank.add_many([Case(task=t, answer="x", reward=1.0) for t in (
            "Who founded the Acme company?", "When was Acme founded?", "What is the capital of France?",
            "How tall is Mount Everest?", "Who wrote Hamlet?", "What does Acme sell?")])
        state = TaskState.from_task(bank, "Who was the founder of Acme?")
        assert SimilarityPolicy(bank).select(state, k=1)[0].case.task == "Who founded the Acme company?"
        for name in ("neural", "episodic"):
            policy = make_policy(name, bank=bank, candidates=5)
            shown = policy.select(state, explore=True)
            policy.record(state, [s.case.id for s in shown], 1.0)
            policy.update()
            assert len(policy.select(state)) == 4
