"""kill -9 of a real eval run mid-episode, again and again, then resume: nothing lost, nothing twice.

The runner (evals.runner, its episode log, the arms' real banks and policies) runs in its own
process with a fake agent and a slow fake LLM (the test is about the runner) and is killed with
SIGKILL at random moments, several times; each time it is started again on the same folder. The
last start runs to the end. Then every episode is logged exactly once, each learning arm's bank
holds one case per learning episode, and the neural arm's replay buffer one step per episode.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from memento.evals.records import EpisodeLog
from memento import CaseBank
from memento.policies import load_policy
from tests.conftest import ROOT
from tests.fakes import FakeHashEmbedder
from tests.faults import eval_run

pytestmark = [pytest.mark.faults, pytest.mark.slow]

KILLS = 4
LEARNING_PER_ARM = eval_run.TASKS * eval_run.ITERATIONS
EXPECTED = LEARNING_PER_ARM * len(eval_run.ARMS)  # the iterated protocol: every pass learns, in every arm


def logged(run_dir) -> list[tuple]:
    path = run_dir / "episodes.jsonl"
    if not path.exists():
        return []
    keys = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line the kill cut off
        keys.append(tuple(row[k] for k in ("arm", "phase", "iteration", "task_id", "attempt")))
    return keys


def test_an_eval_killed_mid_episode_again_and_again_resumes_to_every_episode_once(tmp_path):
    run_dir = tmp_path / "run"
    rng = np.random.default_rng(15)
    kill_points = []
    for _ in range(KILLS):
        before = len(logged(run_dir))
        process = subprocess.Popen([sys.executable, "-m", "tests.faults.eval_run", str(run_dir), "0.15"], cwd=ROOT)
        wait_for = before + int(rng.integers(1, 5))  # a few more episodes, then a random moment inside the next
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and len(logged(run_dir)) < wait_for:
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 0.3)))
        assert process.poll() is None, "the run ended before it could be killed; make it longer"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kill_points.append(len(logged(run_dir)))
    assert kill_points == sorted(kill_points) and kill_points[-1] < EXPECTED

    summary = eval_run.run(run_dir)

    keys = logged(run_dir)
    assert len(keys) == len(set(keys)) == summary.episodes == EXPECTED, "every episode logged exactly once"
    records = EpisodeLog(run_dir / "episodes.jsonl").records
    assert not [r for r in records if r.error], "no episode errored"
    for arm in ("similarity", "neural"):
        learned = {r.case_id for r in records if r.arm == arm and r.learned}
        assert len(learned) == LEARNING_PER_ARM
        arm_dir = run_dir / "arms" / arm
        with CaseBank(arm_dir / "bank.db", embedder=FakeHashEmbedder()) as bank:
            ids = Counter(c.id for c in bank.iter_cases())
            assert set(ids) == learned and set(ids.values()) == {1}, "one case per learning episode, none twice"
            assert bank.stats()["index"]["healthy"]
            if arm == "neural":
                policy = load_policy(arm_dir / "policy.pt", bank)
                steps = Counter(t.episode_id for t in policy.replay.transitions)
                assert set(steps) == learned and set(steps.values()) == {1}, "one replay step per learned episode"
                policy.close()
    print(f"\nkill -9 of an eval run: {KILLS} kills after {kill_points} logged episodes, "
          f"{len(keys)} episodes in the end, {sum(r.recovered for r in records)} recovered, 0 lost, 0 twice")
