"""A neural policy learning and saving its checkpoint in a loop (resumed from it when it exists), for the kill -9 test.

    python -m tests.faults.policy_trainer BANK CHECKPOINT [hang]

Each step: select, record the outcome (a replay row in the bank's SQLite), update, save the
checkpoint, then print `saved STEP EPISODE_ID`, flushed: the parent knows which steps were
acknowledged. With `hang`, the first save stops inside its fsync (after the temporary file is
written, before the rename), prints `saving` and waits, so the kill lands mid-save every time.
"""

import os
import sys
import time

import numpy as np

from memento import Case, CaseBank
from memento.policy import TaskState
from memento.policies import load_policy, make_policy
from tests.fakes import FakeHashEmbedder


def main() -> None:
    bank = CaseBank(sys.argv[1], embedder=FakeHashEmbedder())
    checkpoint, hang = sys.argv[2], len(sys.argv) > 3
    if not bank.count():
        bank.add_many([Case(task=f"seed task {i}", answer=str(i), reward=1.0) for i in range(40)])
    policy = (load_policy(checkpoint, bank) if os.path.exists(checkpoint)
              else make_policy("neural", bank, min_replay=2, batch_size=4, gradient_steps=2))
    rng = np.random.default_rng(os.getpid())
    if hang:
        real_fsync = os.fsync

        def stuck_fsync(fd):
            print("saving", flush=True)
            time.sleep(60)
            real_fsync(fd)

        os.fsync = stuck_fsync
    for _ in range(1_000_000):
        state = TaskState.from_task(bank, f"seed task {int(rng.integers(40))}")
        shown = policy.select(state, k=2)
        policy.record(state, [s.case.id for s in shown], float(rng.random()))
        policy.update()
        policy.save(checkpoint)
        print(f"saved {policy.step} {state.episode_id}", flush=True)


if __name__ == "__main__":
    main()
