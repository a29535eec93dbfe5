"""What policies and the agent keep in a bank, on every backend: replay, statistics, entries, checkpoints, traces.

First the `Bank` methods themselves, then the real policies learning on a bank and finding their
learning again after it is reopened, then several processes counting into one bank at once.
"""

import subprocess
import sys

import numpy as np
import pytest

from memento import Case, CaseBank
from memento.bank import EpisodicEntry, ReplayRow
from memento.errors import NotFoundError
from memento.policies import TaskState, make_policy
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder

TASKS = ["Who founded the Acme company?", "In which city was Ada Vell born?", "What did Borin Tal invent?",
         "Who is the spouse of Cara Moss?", "Which river flows through Dunmere?"]


def step(policy="p", ids=("a", "b"), reward=1.0, n_features=3, **extra):
    rng = np.random.default_rng(len(ids))
    return ReplayRow(policy=policy, episode_id="e", state=rng.normal(size=8).astype(np.float32), case_ids=tuple(ids),
                     case_features=rng.normal(size=(len(ids), n_features)).astype(np.float32), reward=reward,
                     done=True, **extra)


def test_replay_rows_stats_and_forget(make_bank):
    bank = make_bank()
    first = bank.append_replay(step(ids=("a", "b"), reward=1.0))
    second = bank.append_replay(step(ids=("b",), reward=0.5, next_state=np.ones(8, dtype=np.float32),
                                     next_ids=("c",), next_features=np.ones((1, 3), dtype=np.float32)))
    bank.append_replay(step(policy="other", ids=("a",)))
    assert second > first
    rows = bank.replay_rows("p", limit=10, n_features=3)
    assert [r.row_id for r in rows] == [first, second]
    assert rows[0].case_ids == ("a", "b") and rows[0].case_features.shape == (2, 3) and rows[0].next_state is None
    assert rows[1].next_ids == ("c",) and np.array_equal(rows[1].next_features, np.ones((1, 3)))
    assert np.allclose(rows[0].state, step(ids=("a", "b")).state)
    assert bank.case_stats("p") == {"a": (1, 1.0), "b": (2, 1.5)}
    third = bank.append_replay(step(ids=("c",), reward=0.0), drop_row_id=first)  # a full buffer drops its oldest
    assert [r.row_id for r in bank.replay_rows("p", limit=10, n_features=3)] == [second, third]
    assert [r.row_id for r in bank.replay_rows("p", limit=1, n_features=3)] == [third]
    bank.forget_replay("p", row_ids=[second], case_ids=["b"])
    assert [r.row_id for r in bank.replay_rows("p", limit=10, n_features=3)] == [third]
    assert bank.case_stats("p") == {"a": (1, 1.0), "c": (1, 0.0)}
    assert bank.case_stats("other") == {"a": (1, 1.0)}
    assert bank.policy_names() == ["other", "p"]


def test_forget_replay_can_store_the_statistics_counted_again_from_the_steps_kept(make_bank):
    bank = make_bank()
    first = bank.append_replay(step(ids=("a", "b"), reward=1.0))
    kept = bank.append_replay(step(ids=("a",), reward=0.0))
    bank.forget_replay("p", row_ids=[first], case_ids=["a", "b"], stats={"a": (1, 0.0)})
    assert [r.row_id for r in bank.replay_rows("p", limit=10, n_features=3)] == [kept]
    assert bank.case_stats("p") == {"a": (1, 0.0)}


def test_episodic_entries_insert_update_delete(make_bank):
    bank = make_bank()
    state = np.arange(4, dtype=np.float32)
    ids = bank.write_episodic_entries("ec", [EpisodicEntry("a", state, 0.5, 1), EpisodicEntry("b", state, 0.2, 1)])
    assert len(set(ids)) == 2
    assert bank.write_episodic_entries("ec", [EpisodicEntry("a", state, 0.9, 2, row_id=ids[0])]) == [ids[0]]
    entries = bank.episodic_entries("ec")
    assert [(e.case_id, e.q, e.visits, e.row_id) for e in entries] == [("a", 0.9, 2, ids[0]), ("b", 0.2, 1, ids[1])]
    assert np.array_equal(entries[0].state, state)
    bank.delete_episodic_entries("ec", ["a"])
    assert [e.case_id for e in bank.episodic_entries("ec")] == ["b"] and bank.episodic_entries("other") == []


def test_an_episode_is_noted_in_the_transaction_that_writes_its_entries(make_bank):
    bank = make_bank()
    state = np.arange(4, dtype=np.float32)
    assert not bank.episodic_recorded("ec", "ep1")
    bank.write_episodic_entries("ec", [EpisodicEntry("a", state, 0.5, 1)], episode_id="ep1")
    bank.write_episodic_entries("ec", [EpisodicEntry("b", state, 0.5, 1)], episode_id="ep1")  # a second step
    assert bank.episodic_recorded("ec", "ep1") and not bank.episodic_recorded("other", "ep1")
    with pytest.raises(ValueError):  # the second entry fails inside the transaction: nothing of it stays
        bank.write_episodic_entries("ec", [EpisodicEntry("c", state, 0.5, 1), EpisodicEntry("d", state, "x", 1)],
                                    episode_id="ep2")
    assert not bank.episodic_recorded("ec", "ep2") and [e.case_id for e in bank.episodic_entries("ec")] == ["a", "b"]
    assert bank.episodic_episodes("ec") == ["ep1"]


def test_checkpoints_are_versioned(make_bank):
    bank = make_bank()
    assert bank.load_checkpoint("neural") is None
    assert bank.save_checkpoint("neural", b"weights-1") == 1
    assert bank.save_checkpoint("neural", b"\x00weights-2") == 2
    assert bank.load_checkpoint("neural") == (2, b"\x00weights-2")
    assert bank.load_checkpoint("neural", newer_than=2) is None
    assert bank.save_checkpoint("other", b"x") == 1


def test_traces_round_trip_newest_first(make_bank):
    bank = make_bank()
    bank.save_trace({"episode_id": "e1", "task": "first ü", "reward": 1.0, "created_at": "2026-01-01T00:00:00+00:00",
                     "selected": [{"id": "c1"}]})
    bank.save_trace({"episode_id": "e2", "task": "second", "created_at": "2026-01-02T00:00:00+00:00"})
    bank.save_trace({"episode_id": "e1", "task": "first, again", "reward": 0.0, "created_at": "2026-01-03T00:00:00+00:00"})
    assert [t["episode_id"] for t in bank.list_traces()] == ["e1", "e2"]
    assert bank.list_traces(limit=1, offset=1)[0]["task"] == "second"
    assert bank.get_trace("e1")["task"] == "first, again"
    with pytest.raises(NotFoundError, match="no trace for episode 'nope'"):
        bank.get_trace("nope")


def run_episodes(policy, bank, n):
    rewards = []
    for i in range(n):
        state = TaskState.from_task(bank, TASKS[i % len(TASKS)])
        chosen = policy.select(state, k=2, explore=True)
        rewards.append(float(i % 2))
        policy.record(state, [s.case.id for s in chosen], rewards[-1])
    return rewards


@pytest.mark.parametrize("preset", ["neural", "episodic"])
def test_a_policy_finds_its_learning_after_the_bank_is_reopened(bank_location, preset):
    location = bank_location("learn")
    bank = CaseBank.open(location, embedder=FakeHashEmbedder())
    bank.add_many([Case(task=t + f" #{i}", answer="x") for i in range(4) for t in TASKS])
    policy = make_policy(preset, bank=bank)
    run_episodes(policy, bank, 12)
    probe = TaskState.from_task(bank, TASKS[2])
    ids = [c.id for c in bank.iter_cases()]
    if preset == "neural":
        before = [(t.state.tobytes(), t.case_ids, t.reward) for t in policy.replay.transitions]
        stats = dict(policy.replay.stats)
    else:
        expected = policy.q_values(probe.embedding, ids)
    policy.close()
    bank.close()
    with CaseBank.open(location, embedder=FakeHashEmbedder()) as reopened:
        again = make_policy(preset, bank=reopened)
        if preset == "neural":
            assert [(t.state.tobytes(), t.case_ids, t.reward) for t in again.replay.transitions] == before
            assert again.replay.stats == stats and sum(s for s, _ in stats.values()) == 24
        else:
            assert np.allclose(again.q_values(probe.embedding, ids), expected)
            assert again.update()["charts/entries"] > 0
        again.close()


COUNTER = """
import sys
import numpy as np
from memento import CaseBank
from memento.bank import ReplayRow
from tests.fakes import FakeHashEmbedder
bank = CaseBank.open(sys.argv[1], embedder=FakeHashEmbedder())
for i in range(int(sys.argv[2])):
    bank.append_replay(ReplayRow(policy="shared", episode_id=f"{sys.argv[3]}-{i}", state=np.ones(4, dtype=np.float32),
                                 case_ids=("hot", f"own-{sys.argv[3]}"), case_features=np.ones((2, 1), dtype=np.float32),
                                 reward=1.0, done=True))
bank.close()
"""


@pytest.mark.slow
def test_workers_in_several_processes_lose_no_replay_step(bank_location):
    location = bank_location("workers")
    CaseBank.open(location, embedder=FakeHashEmbedder()).close()
    workers = [subprocess.Popen([sys.executable, "-c", COUNTER, location, "40", f"w{i}"], cwd=ROOT) for i in range(4)]
    assert all(w.wait(timeout=180) == 0 for w in workers)
    with CaseBank.open(location, embedder=FakeHashEmbedder()) as bank:
        assert len(bank.replay_rows("shared", limit=1000, n_features=1)) == 160
        stats = bank.case_stats("shared")
        assert stats["hot"] == (160, 160.0) and all(stats[f"own-w{i}"] == (40, 40.0) for i in range(4))
