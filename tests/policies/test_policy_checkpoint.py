"""Saving and loading policies: one dict, written atomically, refused when it does not match."""

import numpy as np
import pytest
import torch

from memento.envs.case_usefulness import CaseUsefulnessEnv, SyntheticEmbedder, train_online
from memento import CaseBank
from memento.errors import NotFoundError, PolicyError
from memento.policies import POLICIES, EpisodicControlPolicy, NeuralQPolicy, load_policy, make_policy
from memento.policies.base import CHECKPOINT_VERSION
from tests.policies.conftest import SMALL


def trained(env, name, episodes=20):
    policy = make_policy(name, bank=env.bank)
    train_online(policy, env, episodes, np.random.default_rng(0))
    return policy


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_round_trip_selects_the_same_cases(env, tmp_path, name):
    policy = trained(env, name)
    path = policy.save(tmp_path / "ckpt" / "policy.pt")
    checkpoint = torch.load(path, weights_only=True)
    extra = {"residual"} if name.startswith("neural") else set()
    assert set(checkpoint) == {"version", "kind", "config", "embedder", "model", "optimizer", "step"} | extra
    assert checkpoint["embedder"] == {"name": env.bank.embedder.name, "dim": 16}
    assert checkpoint["version"] == CHECKPOINT_VERSION and checkpoint["step"] == policy.step
    assert [p.name for p in path.parent.iterdir()] == ["policy.pt"], "no temporary file is left behind"

    loaded = load_policy(path, env.bank, share=True)  # both alive on one bank, to compare them
    assert type(loaded) is type(policy) and loaded.config == policy.config and loaded.step == policy.step
    for task in env.heldout_tasks[:5]:
        state = env.state(task)
        expected, got = policy.select(state), loaded.select(state)
        assert [s.case.id for s in got] == [s.case.id for s in expected]
        assert [s.score for s in got] == pytest.approx([s.score for s in expected], abs=1e-6)


def test_saving_again_replaces_the_file(env, tmp_path):
    policy = trained(env, "neural")
    path = tmp_path / "policy.pt"
    policy.save(path)
    train_online(policy, env, 5, np.random.default_rng(1))
    policy.save(path)
    policy.close()
    assert load_policy(path, env.bank).step == policy.step


def test_a_checkpoint_from_another_embedder_is_refused(env, tmp_path):
    path = trained(env, "neural").save(tmp_path / "policy.pt")
    with CaseBank(tmp_path / "wide.db", embedder=SyntheticEmbedder(32)) as other:
        with pytest.raises(PolicyError, match="trained with embedder 'case-usefulness-synthetic-16'"):
            load_policy(path, other)


def test_a_checkpoint_of_another_kind_or_version_is_refused(env, tmp_path):
    path = trained(env, "neural").save(tmp_path / "policy.pt")
    with pytest.raises(PolicyError, match="holds a 'neural' policy, not 'episodic'"):
        EpisodicControlPolicy.load(path, env.bank)
    checkpoint = torch.load(path, weights_only=True)
    torch.save({**checkpoint, "version": CHECKPOINT_VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(PolicyError, match="format version"):
        load_policy(tmp_path / "future.pt", env.bank)
    torch.save({**checkpoint, "kind": "transformer"}, tmp_path / "alien.pt")
    with pytest.raises(PolicyError, match="unknown kind 'transformer'"):
        load_policy(tmp_path / "alien.pt", env.bank)


def test_a_checkpoint_of_another_architecture_is_refused(env, tmp_path):
    path = trained(env, "neural").save(tmp_path / "policy.pt")
    checkpoint = torch.load(path, weights_only=True)
    model = dict(checkpoint["model"])
    model["pair.0.weight"] = torch.zeros(64, 99)  # a network that saw other features
    torch.save({**checkpoint, "model": model}, tmp_path / "wider.pt")
    with pytest.raises(PolicyError, match="does not fit this network architecture"):
        load_policy(tmp_path / "wider.pt", env.bank)
    torch.save({**checkpoint, "config": {**checkpoint["config"], "layers": 3}}, tmp_path / "newer.pt")
    with pytest.raises(PolicyError, match="config fields \\['layers'\\]"):
        load_policy(tmp_path / "newer.pt", env.bank)


def test_missing_or_foreign_files(env, tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_policy(tmp_path / "nope.pt", env.bank)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(PolicyError, match="not a policy checkpoint"):
        load_policy(tmp_path / "notes.txt", env.bank)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(PolicyError, match="not a policy checkpoint"):
        NeuralQPolicy.load(tmp_path / "plain.pt", env.bank)


def test_loading_into_a_reopened_bank_keeps_learning(tmp_path):
    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    policy = trained(env, "neural")
    path = policy.save(tmp_path / "policy.pt")
    policy.close()
    env.bank.close()
    reopened = CaseUsefulnessEnv.create(tmp_path / "bank.db", SMALL)
    try:
        loaded = load_policy(path, reopened.bank)
        assert len(loaded.replay) == 20
        metrics = loaded.update()
        assert loaded.step == policy.step + loaded.config.gradient_steps and np.isfinite(metrics["losses/q_loss"])
    finally:
        reopened.bank.close()


def test_a_temporary_left_by_a_dead_writer_is_removed_and_a_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from memento.policy import read_checkpoint, remove_stale_temporaries, write_checkpoint

    checkpoint = tmp_path / "policy.pt"
    write_checkpoint(checkpoint, {"kind": "similarity", "version": 1, "step": 1})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".policy.pt.{dead.stdout.strip()}.abc123.tmp"
    live = tmp_path / f".policy.pt.{os.getpid()}.def456.tmp"
    stale.write_bytes(b"half a checkpoint"), live.write_bytes(b"a save in progress")
    assert read_checkpoint(checkpoint)["step"] == 1
    assert not stale.exists() and live.exists()
    live.unlink()
    assert remove_stale_temporaries(checkpoint) == []
