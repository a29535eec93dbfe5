"""kill -9 of a policy update mid-save: the checkpoint and the replay buffer stay loadable, nothing acknowledged lost.

A neural policy learns in its own process (tests/faults/policy_trainer.py): select, record (a replay
row in the bank's SQLite), update, save the checkpoint (temporary file, fsync, rename). It is killed
with SIGKILL at random moments, round after round, resuming from its checkpoint each time, and once
while its save is stuck between writing the temporary file and renaming it.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from memento import CaseBank
from memento.policies import load_policy, make_policy
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ROUNDS = 6


def start(bank_path, checkpoint, *extra):
    return subprocess.Popen([sys.executable, "-m", "tests.faults.policy_trainer", str(bank_path), str(checkpoint),
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def kill_and_collect(process, lines, reader):
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    reader.join(timeout=10)
    return [line.split() for line in lines if line.startswith("saved ")]


def read_into(process, lines):
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    return reader


def check_loadable(bank_path, checkpoint, acknowledged):
    """The checkpoint loads, is at least as far as the last acknowledged save, and the replay holds every acknowledged step."""
    with CaseBank(bank_path, embedder=FakeHashEmbedder()) as bank:
        policy = load_policy(checkpoint, bank)
        if acknowledged:
            assert policy.step >= int(acknowledged[-1][1]), "an acknowledged save was lost"
        episodes = {t.episode_id for t in policy.replay.transitions}
        assert {episode for _, _, episode in acknowledged} <= episodes, "an acknowledged replay step was lost"
        state = policy.replay.transitions[-1]
        assert np.isfinite(state.state).all()
        policy.close()


def test_a_policy_killed_at_random_points_while_learning_and_saving_stays_loadable(tmp_path):
    bank_path, checkpoint = tmp_path / "bank.db", tmp_path / "policy.pt"
    rng = np.random.default_rng(15)
    acknowledged = []
    for _ in range(ROUNDS):
        lines: list[str] = []
        process = start(bank_path, checkpoint)
        reader = read_into(process, lines)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(line.startswith("saved") for line in lines):
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 0.5)))
        acknowledged += kill_and_collect(process, lines, reader)
        check_loadable(bank_path, checkpoint, acknowledged)
    assert len(acknowledged) > ROUNDS
    print(f"\nkill -9 of a learning policy: {ROUNDS} kills, {len(acknowledged)} acknowledged saves, 0 lost")


def test_a_policy_killed_inside_its_save_keeps_the_previous_checkpoint(tmp_path):
    bank_path, checkpoint = tmp_path / "bank.db", tmp_path / "policy.pt"
    lines: list[str] = []
    process = start(bank_path, checkpoint)
    reader = read_into(process, lines)
    while len([line for line in lines if line.startswith("saved")]) < 3:
        time.sleep(0.02)
    acknowledged = kill_and_collect(process, lines, reader)
    before = checkpoint.read_bytes()

    lines = []
    process = start(bank_path, checkpoint, "hang")
    reader = read_into(process, lines)
    while "saving\n" not in lines:
        assert process.poll() is None
        time.sleep(0.02)
    kill_and_collect(process, lines, reader)

    assert checkpoint.read_bytes() == before, "the checkpoint is the last one saved whole"
    check_loadable(bank_path, checkpoint, acknowledged)


def test_a_checkpoint_save_killed_midway_leaves_no_temporary_file(tmp_path):
    bank_path, checkpoint = tmp_path / "bank.db", tmp_path / "policy.pt"
    lines: list[str] = []
    process = start(bank_path, checkpoint, "hang")
    reader = read_into(process, lines)
    while "saving\n" not in lines:
        assert process.poll() is None
        time.sleep(0.02)
    kill_and_collect(process, lines, reader)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "the kill left a temporary"
    with CaseBank(bank_path, embedder=FakeHashEmbedder()) as bank:
        if checkpoint.exists():  # the next load removes a dead writer's temporary ...
            load_policy(checkpoint, bank).close()
        else:  # ... and so does the next save
            policy = make_policy("neural", bank)
            policy.save(checkpoint)
            policy.close()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
